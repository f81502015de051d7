package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNamespace runs fn on a thread switched into the named network namespace
// (as made by `ip netns add NAME`, under /run/netns), then switches back.
// Sockets fn opens stay in that namespace after it returns, so a capture
// source can be opened inside a namespace and read from anywhere. If the
// thread cannot be switched back it is left locked, so the Go runtime
// discards it rather than reuse it in the wrong namespace.
func InNamespace(nsName string, fn func() error) error {
	path := nsName
	if !filepath.IsAbs(path) {
		path = filepath.Join("/run/netns", nsName)
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("capture: network namespace %q: %w (create it with `ip netns add`)", nsName, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("capture: own network namespace: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("capture: enter network namespace %q: %w", nsName, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread dies with this goroutine instead of
		// running other goroutines in the wrong namespace.
		return fmt.Errorf("capture: return from network namespace %q: %w", nsName, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}
