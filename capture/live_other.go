//go:build !linux

package capture

import (
	"errors"
	"time"

	"golang.org/x/net/bpf"
)

// FanoutMode, Fanout and LiveOptions mirror the Linux definitions so the
// package builds elsewhere; live capture itself needs Linux AF_PACKET.
type FanoutMode int

const (
	FanoutHash FanoutMode = iota
	FanoutLoadBalance
	FanoutCPU
)

type Fanout struct {
	ID   uint16
	Mode FanoutMode
}

type LiveOptions struct {
	SnapLen      int
	RingSizeMB   int
	Promiscuous  bool
	PollTimeout  time.Duration
	BlockTimeout time.Duration
	Filter       []bpf.RawInstruction
	Fanout       *Fanout
}

var errNotLinux = errors.New("capture: live capture needs Linux (AF_PACKET); analyze capture files instead")

// OpenLive fails: AF_PACKET is Linux only.
func OpenLive(iface string, opts LiveOptions) (Source, error) { return nil, errNotLinux }

// InNamespace fails: network namespaces are Linux only.
func InNamespace(nsName string, fn func() error) error { return errNotLinux }

// CheckFilter cannot ask a kernel without AF_PACKET; ParseBPF's checks stand.
func CheckFilter(prog []bpf.RawInstruction, snapLen int) error { return nil }

// NewFanoutID is a placeholder: there is no fanout without AF_PACKET.
func NewFanoutID() uint16 { return 0 }
