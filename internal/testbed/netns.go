package testbed

import (
	"fmt"

	"github.com/zoomprobe/zoomprobe/capture"
)

// Do runs fn with the calling goroutine's OS thread inside the namespace ns
// (capture.InNamespace: runtime.LockOSThread + setns), then moves the thread
// back. Sockets created inside fn belong to ns for their whole life:
// listeners keep accepting and dialed connections keep working after Do
// returns, from any goroutine. Goroutines that fn starts do NOT run in ns
// (Go schedules them on other threads), so create every socket in fn
// itself; in particular do not resolve host names with net's resolver inside
// fn (it queries from other goroutines).
func (b *Bed) Do(ns NS, fn func() error) error {
	name := b.names[ns]
	if name == "" {
		return fmt.Errorf("testbed: unknown namespace role %q", ns)
	}
	return capture.InNamespace(name, fn)
}
