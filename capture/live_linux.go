package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"

	"github.com/zoomprobe/zoomprobe/decode"
)

// FanoutMode is how the kernel spreads packets over the sockets of a fanout group.
type FanoutMode int

const (
	// FanoutHash sends each flow to one socket by the kernel's symmetric flow
	// hash (both directions of a 5-tuple land together), defragmenting first
	// so IP fragments follow their flow.
	FanoutHash FanoutMode = iota
	// FanoutLoadBalance round-robins packets (no flow affinity).
	FanoutLoadBalance
	// FanoutCPU sends packets to the socket of the CPU that received them.
	FanoutCPU
)

// Fanout joins a socket to a kernel fanout group: every socket opened with
// the same ID on the same interface (in this or another process) gets a share
// of the packets instead of a copy of each.
type Fanout struct {
	ID   uint16
	Mode FanoutMode
}

var fanoutIDs atomic.Uint32

// NewFanoutID gives a fanout group ID not used before by this process. Each
// set of sockets that shares one interface's packets needs its own: a socket
// opened to replace a group (a reload) must get copies of the packets, not a
// share of them. The process ID makes a clash with another program's group
// (which would share its packets with ours) unlikely.
func NewFanoutID() uint16 {
	return uint16(os.Getpid()*131 + int(fanoutIDs.Add(1)))
}

// LiveOptions configure an AF_PACKET source.
type LiveOptions struct {
	// SnapLen bytes of each frame are kept (the kernel truncates through the
	// filter's return value, as libpcap does); 0 keeps whole frames.
	SnapLen int
	// RingSizeMB is the TPACKET_V3 ring size per socket; 0 means 32.
	RingSizeMB int
	// Promiscuous also captures frames not addressed to the interface (a mirror port needs it).
	Promiscuous bool
	// PollTimeout is how long ReadPacket waits for a frame before it
	// returns ErrTimeout; 0 means 250ms. Close wakes a waiting reader within
	// pollSlice whatever this is.
	PollTimeout time.Duration
	// BlockTimeout retires a partly filled ring block after this long, so
	// packets are not held back on a quiet link; 0 means 50ms.
	BlockTimeout time.Duration
	// Filter is a classic BPF program for the interface's link type (see ParseBPF).
	Filter []bpf.RawInstruction
	// Fanout, when set, joins the socket to a fanout group.
	Fanout *Fanout
}

// Defaults for zero LiveOptions fields.
const (
	DefaultRingSizeMB   = 32
	DefaultPollTimeout  = 250 * time.Millisecond
	DefaultBlockTimeout = 50 * time.Millisecond
	// pollSlice is the longest single wait in the kernel, so a blocked
	// reader notices Close this soon.
	pollSlice = 100 * time.Millisecond
)

// live is an AF_PACKET TPACKET_V3 source.
type live struct {
	name    string
	tp      *afpacket.TPacket
	link    decode.LinkType
	anyDev  bool
	links   map[int]decode.LinkType // ifindex -> link type, for the "any" device
	scratch []byte                  // a frame with its VLAN tag put back

	pollTimeout, pollSlice time.Duration

	mu      sync.Mutex
	reading bool // inside the ring poll
	holding bool // the caller holds a frame pointing into the ring
	// holderCloses: Close came while a frame was held; the holder's next
	// ReadPacket or Close releases the ring.
	holderCloses bool
	closed       bool
	released     chan struct{} // closed once the ring is unmapped
	stats        Stats         // accumulated kernel counters
	last         [3]uint32     // afpacket's 32-bit running sums at the last poll
}

// OpenLive opens an AF_PACKET socket with a TPACKET_V3 ring on iface ("any"
// or "" for all interfaces). Frames of Ethernet-like interfaces (and
// loopback) are LinkEthernet; of interfaces without a MAC address (tun,
// WireGuard, IP tunnels) LinkRaw. Requires CAP_NET_RAW.
func OpenLive(iface string, opts LiveOptions) (Source, error) {
	if opts.RingSizeMB <= 0 {
		opts.RingSizeMB = DefaultRingSizeMB
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = DefaultPollTimeout
	}
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = DefaultBlockTimeout
	}
	s := &live{name: iface, released: make(chan struct{}), links: map[int]decode.LinkType{},
		pollTimeout: opts.PollTimeout, pollSlice: min(opts.PollTimeout, pollSlice)}
	bindTo := iface
	if iface == "any" || iface == "" {
		s.name, s.anyDev, bindTo = "any", true, ""
		s.link = decode.LinkEthernet
	} else {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, fmt.Errorf("capture: interface %q: %v (list interfaces with `ip link`)", iface, err)
		}
		s.link = linkOf(ifc)
	}

	// Blocks must hold a whole frame; the ring is whole blocks.
	block := 1 << 17
	for block < opts.SnapLen+1024 || (opts.SnapLen == 0 && block < 1<<18) {
		block <<= 1
	}
	blocks := max(opts.RingSizeMB<<20/block, 2)
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(bindTo),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(1<<11),
		afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(blocks),
		afpacket.OptBlockTimeout(opts.BlockTimeout),
		afpacket.OptPollTimeout(s.pollSlice),
	)
	if err != nil {
		return nil, fmt.Errorf("capture: open AF_PACKET socket on %s: %w (needs CAP_NET_RAW)", s.name, err)
	}
	s.tp = tp
	fail := func(what string, err error) (Source, error) {
		tp.Close()
		return nil, fmt.Errorf("capture: %s on %s: %w", what, s.name, err)
	}
	if prog := withSnapLen(opts.Filter, opts.SnapLen); len(prog) > 0 {
		if err := tp.SetBPF(prog); err != nil {
			return fail("attach BPF filter", err)
		}
	}
	if opts.Promiscuous && !s.anyDev {
		if err := tp.SetPromiscuous(true); err != nil {
			return fail("set promiscuous mode", err)
		}
	}
	if opts.Fanout != nil {
		var mode afpacket.FanoutType
		switch opts.Fanout.Mode {
		case FanoutHash:
			mode = afpacket.FanoutHash | afpacket.FanoutHashWithDefrag
		case FanoutLoadBalance:
			mode = afpacket.FanoutLoadBalance
		case FanoutCPU:
			mode = afpacket.FanoutCPU
		default:
			return fail("fanout", fmt.Errorf("unknown fanout mode %d", opts.Fanout.Mode))
		}
		if err := tp.SetFanout(mode, opts.Fanout.ID); err != nil {
			return fail(fmt.Sprintf("join fanout group %d", opts.Fanout.ID), err)
		}
	}
	// Counters start when the socket is ready, not while it was set up.
	tp.InitSocketStats()
	return s, nil
}

// linkOf tells the link type SOCK_RAW frames of an interface start with.
func linkOf(ifc *net.Interface) decode.LinkType {
	if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) == 6 {
		return decode.LinkEthernet
	}
	return decode.LinkRaw
}

func (s *live) Name() string              { return s.name }
func (s *live) LinkType() decode.LinkType { return s.link }

func (s *live) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	s.mu.Lock()
	s.holding = false
	if s.closed {
		s.releaseLocked()
		s.mu.Unlock()
		return nil, time.Time{}, 0, 0, ErrClosed
	}
	s.reading = true
	s.mu.Unlock()

	var deadline time.Time
	for {
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		s.mu.Lock()
		if s.closed {
			s.reading = false
			s.releaseLocked()
			s.mu.Unlock()
			return nil, time.Time{}, 0, 0, ErrClosed
		}
		if errors.Is(err, afpacket.ErrTimeout) {
			// The ring is polled in short slices so Close is noticed soon;
			// the caller hears of a timeout only after its PollTimeout.
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(s.pollTimeout - s.pollSlice)
			}
			if !now.Before(deadline) {
				s.reading = false
				s.mu.Unlock()
				return nil, time.Time{}, 0, 0, ErrTimeout
			}
			s.mu.Unlock()
			continue
		}
		s.reading = false
		if err != nil {
			s.mu.Unlock()
			return nil, time.Time{}, 0, 0, fmt.Errorf("capture: read %s: %w", s.name, err)
		}
		data, link := s.deliver(data, ci)
		s.mu.Unlock()
		return data, ci.Timestamp, ci.Length, link, nil
	}
}

// deliver marks the frame as held by the caller and gives its link type,
// with any VLAN tag the kernel stripped put back; s.mu is held.
func (s *live) deliver(data []byte, ci gopacket.CaptureInfo) ([]byte, decode.LinkType) {
	s.holding = true
	link := s.link
	if s.anyDev {
		link = s.linkOfIndex(ci.InterfaceIndex)
	}
	// The kernel strips the VLAN tag (hardware offload) and reports it
	// beside the frame: put it back so the decoder sees the VLAN.
	for _, a := range ci.AncillaryData {
		if v, ok := a.(afpacket.AncillaryVLAN); ok && v.VLAN > 0 && link == decode.LinkEthernet && len(data) >= 12 {
			s.scratch = append(s.scratch[:0], data[:12]...)
			s.scratch = append(s.scratch, 0x81, 0x00, byte(v.VLAN>>8), byte(v.VLAN))
			s.scratch = append(s.scratch, data[12:]...)
			data = s.scratch
		}
	}
	return data, link
}

// linkOfIndex caches the link type of each interface the "any" socket sees.
func (s *live) linkOfIndex(idx int) decode.LinkType {
	if l, ok := s.links[idx]; ok {
		return l
	}
	l := decode.LinkEthernet
	if ifc, err := net.InterfaceByIndex(idx); err == nil {
		l = linkOf(ifc)
	}
	if len(s.links) < 4096 { // bounded: interfaces come and go
		s.links[idx] = l
	}
	return l
}

// releaseLocked unmaps the ring and closes the socket, once.
func (s *live) releaseLocked() {
	select {
	case <-s.released:
		return
	default:
	}
	s.pollStatsLocked()
	s.tp.Close()
	close(s.released)
}

func (s *live) pollStatsLocked() {
	select {
	case <-s.released:
		return
	default:
	}
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		return
	}
	// The kernel resets its counters on each read; afpacket sums them in
	// 32 bits, which wrap on a busy link: add the 32-bit deltas in 64 bits.
	cur := [3]uint32{uint32(v3.Packets()), uint32(v3.Drops()), uint32(v3.QueueFreezes())}
	s.stats.Received += uint64(cur[0] - s.last[0])
	s.stats.Dropped += uint64(cur[1] - s.last[1])
	s.stats.QueueFreezes += uint64(cur[2] - s.last[2])
	s.last = cur
}

func (s *live) Stats() (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollStatsLocked()
	return s.stats, nil
}

// Close stops the source. A reader blocked in ReadPacket returns ErrClosed
// within the poll timeout and the ring is released. When a reader on another
// goroutine holds a frame, Close only marks the source closed: the ring stays
// mapped until that reader calls ReadPacket (which returns ErrClosed) or Close
// itself, so a frame in use is never unmapped under it. The engine's reader
// always does one of the two.
func (s *live) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
	}
	switch {
	case s.reading:
		s.mu.Unlock()
		<-s.released // the reader wakes up within the poll timeout and releases
		return nil
	case s.holding && !s.holderCloses:
		// Another goroutine may still be reading the frame it holds.
		s.holderCloses = true
		s.mu.Unlock()
		return nil
	}
	s.releaseLocked()
	s.mu.Unlock()
	return nil
}
