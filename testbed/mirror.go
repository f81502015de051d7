package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// Capture bounds: a scenario sends a few hundred packets; these caps only
// stop a runaway test from eating memory. Packets past a cap are counted in
// Mirror.Overflow, not kept.
const (
	DefaultMaxCapturePackets = 200_000
	DefaultMaxCaptureBytes   = 256 << 20
	captureSnaplen           = 65535
)

// Packet is one frame the probe captured on mon0, with its kernel timestamp.
type Packet struct {
	Time time.Time
	Data []byte // the whole Ethernet frame
}

// Mirror captures what the router's mirror delivers to the probe's mon0
// through a plain AF_PACKET socket opened in the probe namespace.
//
// TODO(capture): switch to the capture package's AF_PACKET source once it
// is committed, so the test bed exercises the daemon's own capture path.
type Mirror struct {
	fd       int
	maxPkts  int
	maxBytes int

	mu       sync.Mutex
	pkts     []Packet
	bytes    int
	overflow int
	last     time.Time
	changed  *sync.Cond

	stop chan struct{}
	done chan struct{}
}

func startMirror(b *Bed) (*Mirror, error) {
	m := &Mirror{
		maxPkts:  b.opts.MaxCapturePackets,
		maxBytes: b.opts.MaxCaptureBytes,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		fd:       -1,
	}
	if m.maxPkts <= 0 {
		m.maxPkts = DefaultMaxCapturePackets
	}
	if m.maxBytes <= 0 {
		m.maxBytes = DefaultMaxCaptureBytes
	}
	m.changed = sync.NewCond(&m.mu)
	err := b.Do(NSProbe, func() error {
		ifi, err := net.InterfaceByName(ProbeIf)
		if err != nil {
			return fmt.Errorf("testbed: probe interface %s: %w", ProbeIf, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("testbed: AF_PACKET socket in probe (needs CAP_NET_RAW): %w", err)
		}
		m.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("testbed: bind AF_PACKET to %s: %w", ProbeIf, err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("testbed: SO_TIMESTAMPNS: %w", err)
		}
		// A receive timeout lets the reader notice Close without closing
		// the fd under a blocked syscall.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if m.fd >= 0 {
			unix.Close(m.fd)
		}
		return nil, err
	}
	go m.read()
	b.onClose(m.close)
	return m, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (m *Mirror) read() {
	defer close(m.done)
	buf := make([]byte, captureSnaplen)
	oob := make([]byte, 128)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(m.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		ts := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range msgs {
				if c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS && len(c.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					tsp := (*unix.Timespec)(unsafe.Pointer(&c.Data[0]))
					ts = time.Unix(tsp.Unix())
				}
			}
		}
		m.mu.Lock()
		if len(m.pkts) >= m.maxPkts || m.bytes+n > m.maxBytes {
			m.overflow++
		} else {
			m.pkts = append(m.pkts, Packet{Time: ts, Data: append([]byte(nil), buf[:n]...)})
			m.bytes += n
		}
		m.last = time.Now()
		m.changed.Broadcast()
		m.mu.Unlock()
	}
}

func (m *Mirror) close() {
	close(m.stop)
	<-m.done
	unix.Close(m.fd)
	m.mu.Lock()
	m.changed.Broadcast()
	m.mu.Unlock()
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

// WaitQuiet returns once no frame arrived for idle, or after max.
func (m *Mirror) WaitQuiet(idle, max time.Duration) {
	deadline := time.Now().Add(max)
	m.mu.Lock()
	m.last = time.Now()
	m.mu.Unlock()
	for time.Now().Before(deadline) {
		m.mu.Lock()
		quietFor := time.Since(m.last)
		m.mu.Unlock()
		if quietFor >= idle {
			return
		}
		time.Sleep(idle - quietFor)
	}
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
