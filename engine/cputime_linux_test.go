package engine

import "golang.org/x/sys/unix"

// threadCPU is the CPU time of the calling OS thread in nanoseconds: unlike
// wall time, it leaves out the time other processes had the CPU, so a
// benchmark on a busy shared machine still measures the work itself.
func threadCPU() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return ts.Nano()
}
