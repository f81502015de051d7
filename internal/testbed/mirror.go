package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/capture"
)

// Capture bounds: a scenario sends a few hundred packets; these caps only
// stop a runaway test from eating memory. Packets past a cap are counted in
// Mirror.Overflow, not kept.
const (
	DefaultMaxCapturePackets = 200_000
	DefaultMaxCaptureBytes   = 256 << 20
	captureSnaplen           = 262144
)

// Packet is one frame the probe captured on mon0, with its kernel timestamp.
type Packet struct {
	Time time.Time
	Data []byte // the whole Ethernet frame
}

// Mirror captures what the router's mirror delivers to the probe's mon0,
// through the daemon's own capture path (capture.OpenLive: AF_PACKET,
// TPACKET_V3 ring) opened inside the probe namespace.
type Mirror struct {
	src      capture.Source
	maxPkts  int
	maxBytes int

	mu       sync.Mutex
	pkts     []Packet
	bytes    int
	overflow int
	taken    uint64 // frames taken from the ring, kept or not
	last     time.Time

	done chan struct{}
}

// Ring and latency settings of the probe's capture: small, since a scenario
// sends a few hundred frames, and quick to hand partly filled blocks over.
const (
	mirrorRingMB       = 4
	mirrorBlockTimeout = 10 * time.Millisecond
	mirrorPollTimeout  = 100 * time.Millisecond
)

func startMirror(b *Bed, ifname string) (*Mirror, error) {
	m := &Mirror{
		maxPkts:  b.opts.MaxCapturePackets,
		maxBytes: b.opts.MaxCaptureBytes,
		done:     make(chan struct{}),
	}
	if m.maxPkts <= 0 {
		m.maxPkts = DefaultMaxCapturePackets
	}
	if m.maxBytes <= 0 {
		m.maxBytes = DefaultMaxCaptureBytes
	}
	err := b.Do(NSProbe, func() error {
		var err error
		m.src, err = capture.OpenLive(ifname, capture.LiveOptions{
			RingSizeMB: mirrorRingMB, Promiscuous: true,
			BlockTimeout: mirrorBlockTimeout, PollTimeout: mirrorPollTimeout,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: probe capture on %s: %w", ifname, err)
	}
	go m.read()
	b.onClose(m.close)
	return m, nil
}

func (m *Mirror) read() {
	defer close(m.done)
	for {
		data, ts, _, _, err := m.src.ReadPacket()
		if errors.Is(err, capture.ErrTimeout) {
			continue
		}
		if err != nil {
			return
		}
		m.mu.Lock()
		if len(m.pkts) >= m.maxPkts || m.bytes+len(data) > m.maxBytes {
			m.overflow++
		} else {
			m.pkts = append(m.pkts, Packet{Time: ts, Data: append([]byte(nil), data...)})
			m.bytes += len(data)
		}
		m.taken++
		m.last = time.Now()
		m.mu.Unlock()
	}
}

func (m *Mirror) close() {
	m.src.Close()
	<-m.done
}

// Dropped is what the kernel dropped on the probe's ring (ring full).
func (m *Mirror) Dropped() uint64 {
	st, err := m.src.Stats()
	if err != nil {
		return 0
	}
	return st.Dropped
}

// Packets returns a copy of the list of captured frames (the frames
// themselves are shared; do not modify them).
func (m *Mirror) Packets() []Packet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Packet(nil), m.pkts...)
}

// Overflow is the number of frames not kept because a capture bound was hit.
func (m *Mirror) Overflow() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overflow
}

// Reset forgets what was captured so far.
func (m *Mirror) Reset() {
	m.mu.Lock()
	m.pkts, m.bytes, m.overflow = nil, 0, 0
	m.mu.Unlock()
}

// WaitQuiet returns once the reader has taken every frame the kernel put in
// the ring and no frame arrived for idle, or after limit. Without the first
// condition a reader starved of CPU on a busy machine looks like a quiet link.
func (m *Mirror) WaitQuiet(idle, limit time.Duration) {
	deadline := time.Now().Add(limit)
	m.mu.Lock()
	m.last = time.Now()
	m.mu.Unlock()
	for time.Now().Before(deadline) {
		m.mu.Lock()
		quietFor, taken := time.Since(m.last), m.taken
		m.mu.Unlock()
		if quietFor >= idle && m.caughtUp(taken) {
			return
		}
		time.Sleep(max(idle-quietFor, 10*time.Millisecond))
	}
}

// caughtUp reports whether the frames taken are all the kernel queued to the ring.
func (m *Mirror) caughtUp(taken uint64) bool {
	st, err := m.src.Stats()
	if err != nil {
		return true
	}
	return taken+st.Dropped >= st.Received
}

// WaitFor polls the captured frames until pred holds or max passes, and
// reports whether it held.
func (m *Mirror) WaitFor(pred func([]Packet) bool, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		if pred(m.Packets()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WritePcap writes what the probe captured to a pcap file (Ethernet link
// type, microsecond timestamps) for `zoomprobe analyze` and regression tests.
func (b *Bed) WritePcap(path string) error {
	if b.Mirror == nil {
		return errors.New("testbed: WritePcap: this bed has no mirror (Options.NoMirror)")
	}
	return WritePcap(path, b.Mirror.Packets())
}

// WritePcap writes packets to a pcap file.
func WritePcap(path string, pkts []Packet) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("testbed: pcap %s: %w", path, err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(captureSnaplen, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return fmt.Errorf("testbed: pcap %s: %w", path, err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}
		if err := w.WritePacket(ci, p.Data); err != nil {
			f.Close()
			return fmt.Errorf("testbed: pcap %s: %w", path, err)
		}
	}
	return f.Close()
}

// ethernet payload offset and type, skipping one VLAN tag if present.
func etherPayload(frame []byte) (etype uint16, payload []byte, ok bool) {
	if len(frame) < 14 {
		return 0, nil, false
	}
	etype = binary.BigEndian.Uint16(frame[12:14])
	off := 14
	if etype == 0x8100 && len(frame) >= 18 {
		etype = binary.BigEndian.Uint16(frame[16:18])
		off = 18
	}
	return etype, frame[off:], true
}
