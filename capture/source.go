// Package capture provides the packet sources the engine reads: live
// AF_PACKET sockets (TPACKET_V3 rings, optional fanout, kernel BPF filter,
// kernel drop counters) and pcap/pcapng files merged in packet-time order.
// Everything is pure Go: the binary builds with CGO_ENABLED=0 and needs no
// libpcap at run time (filters are compiled ahead with `tcpdump -ddd`).
package capture

import (
	"errors"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// Source is where frames come from.
type Source interface {
	// Name is the interface name or the file path(s).
	Name() string
	// LinkType is the link type of the source's first interface or file.
	// A source can mix link types (pcapng interfaces, several files, the
	// "any" device): the link type that counts is the one ReadPacket returns
	// with each frame.
	LinkType() decode.LinkType
	// ReadPacket returns the next frame, its capture time, its length on the
	// wire, and its link type. data is valid only until the next call (or
	// Close): it points into the kernel ring or the reader's buffer.
	// Errors: io.EOF when files are exhausted; ErrTimeout when a live source
	// saw nothing for its poll timeout (call again); ErrClosed after Close.
	ReadPacket() (data []byte, ts time.Time, wireLen int, link decode.LinkType, err error)
	// Stats reports the kernel's counters for a live source since it was
	// opened (the kernel resets them on each read, so they are accumulated
	// here); files report the packets read and zero drops.
	Stats() (Stats, error)
	// Close releases the source and makes a blocked ReadPacket return. It
	// may be called from any goroutine, more than once.
	Close() error
}

// Stats are cumulative counters of one source.
type Stats struct {
	Received     uint64 // frames the kernel passed the filter (live), frames read (files)
	Dropped      uint64 // frames the kernel dropped because the ring was full
	QueueFreezes uint64 // TPACKET_V3 ring freezes (live only)
}

var (
	// ErrTimeout means a live source saw no packet within its poll timeout.
	ErrTimeout = errors.New("capture: no packet within the poll timeout")
	// ErrClosed is returned by ReadPacket after Close.
	ErrClosed = errors.New("capture: source closed")
)
