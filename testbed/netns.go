package testbed

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn with the calling goroutine's OS thread inside the namespace ns,
// then moves the thread back. Sockets created inside fn belong to ns for
// their whole life: listeners keep accepting and dialed connections keep
// working after Do returns, from any goroutine. Goroutines that fn starts do
// NOT run in ns (Go schedules them on other threads), so create every socket
// in fn itself; in particular do not resolve host names with net's resolver
// inside fn (it queries from other goroutines).
func (b *Bed) Do(ns NS, fn func() error) error {
	name := b.names[ns]
	if name == "" {
		return fmt.Errorf("testbed: unknown namespace role %q", ns)
	}
	return InNamespace("/run/netns/"+name, fn)
}

// InNamespace runs fn on the calling goroutine's OS thread switched into the
// network namespace at path (a bind mount like /run/netns/NAME or
// /proc/PID/ns/net). If the thread cannot be switched back it stays locked
// (Go retires it with the goroutine) and InNamespace panics.
func InNamespace(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("testbed: open namespace %s: %w", path, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: open current namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: setns %s: %w", path, err)
	}
	defer func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked so the thread is never reused in the wrong
			// namespace, and stop: the caller's later sockets would land
			// in the wrong place.
			panic(fmt.Sprintf("testbed: cannot return thread from %s: %v", path, err))
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}
