package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// Addresses live only inside the two namespaces the test creates.
var (
	addrA = net.IPv4(192, 0, 2, 1).To4()
	addrB = net.IPv4(192, 0, 2, 2).To4()
)

const ifB = "zpb0" // the capture side of the veth pair, in namespace B

// vethPair makes namespaces A and B joined by a veth pair (192.0.2.1 in A,
// 192.0.2.2 on ifB in B) and deletes them when the test ends.
func vethPair(t *testing.T) (nsA, nsB string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("live capture test needs the ip command (Debian package iproute2)")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	nsA, nsB = "zpcap-a-"+suffix, "zpcap-b-"+suffix
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, ns := range []string{nsA, nsB} {
		if err := run("netns", "add", ns); err != nil {
			t.Skipf("cannot create a network namespace here: %v", err)
		}
		t.Cleanup(func() {
			if err := run("netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	for _, args := range [][]string{
		{"-n", nsA, "link", "add", "zpa0", "type", "veth", "peer", "name", ifB, "netns", nsB},
		{"-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "zpa0"},
		{"-n", nsB, "addr", "add", "192.0.2.2/24", "dev", ifB},
		{"-n", nsA, "link", "set", "zpa0", "up"},
		{"-n", nsB, "link", "set", ifB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return nsA, nsB
}

// openIn opens a live source on ifB inside namespace B.
func openIn(t *testing.T, nsB string, opts LiveOptions) Source {
	t.Helper()
	if opts.PollTimeout == 0 {
		opts.PollTimeout = 50 * time.Millisecond
	}
	opts.BlockTimeout = 10 * time.Millisecond
	opts.RingSizeMB = 2
	var src Source
	err := InNamespace(nsB, func() (err error) {
		src, err = OpenLive(ifB, opts)
		return err
	})
	if err != nil {
		t.Fatalf("open live source in %s: %v", nsB, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// sender is an unconnected UDP socket in namespace A: unlike a connected
// one, an ICMP error from B does not make its next send fail.
type sender struct {
	c  *net.UDPConn
	to *net.UDPAddr
}

func (s sender) send(t *testing.T, format string, args ...any) {
	t.Helper()
	if _, err := s.c.WriteToUDP(fmt.Appendf(nil, format, args...), s.to); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (s sender) port() int { return s.c.LocalAddr().(*net.UDPAddr).Port }

// senders opens n UDP sockets in namespace A (distinct source ports) sending to port on B.
func senders(t *testing.T, nsA string, n int, port int) []sender {
	t.Helper()
	var out []sender
	err := InNamespace(nsA, func() error {
		for range n {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: addrA})
			if err != nil {
				return err
			}
			out = append(out, sender{c, &net.UDPAddr{IP: addrB, Port: port}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range out {
			s.c.Close()
		}
	})
	return out
}

type seen struct {
	udp  map[string]decode.Packet // by payload
	icmp []decode.Packet
	ops  int // frames read
}

// collect reads src until done says so or the guard deadline passes (a guard
// against hanging, not a speed assertion).
func collect(t *testing.T, src Source, done func(*seen) bool) *seen {
	t.Helper()
	s := &seen{udp: map[string]decode.Packet{}}
	d := decode.NewDecoder(decode.Options{Decapsulate: true})
	guard := time.Now().Add(10 * time.Second)
	for !done(s) && time.Now().Before(guard) {
		data, ts, wireLen, link, err := src.ReadPacket()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatalf("ReadPacket: %v", err)
		}
		s.ops++
		if link != decode.LinkEthernet {
			t.Fatalf("veth frame reported as %v", link)
		}
		var p decode.Packet
		if err := d.Decode(data, link, ts, wireLen, &p); err != nil {
			continue // ARP, IPv6 router solicitations...
		}
		switch {
		case p.IsUDP():
			p.Payload = append([]byte(nil), p.Payload...)
			s.udp[string(p.Payload)] = p
		case p.IsICMP() && p.IPVersion == 4:
			// IPv6 brings its own ICMP (MLD reports, router solicitations)
			// when the veth comes up: only the IPv4 answers are the test's.
			s.icmp = append(s.icmp, p)
		}
	}
	return s
}

func TestLiveCaptureUDP(t *testing.T) {
	nsA, nsB := vethPair(t)
	src := openIn(t, nsB, LiveOptions{SnapLen: 65535, Promiscuous: true})
	if src.Name() != ifB || src.LinkType() != decode.LinkEthernet {
		t.Fatalf("source %q link %v", src.Name(), src.LinkType())
	}
	conn := senders(t, nsA, 1, 9999)[0]
	const n = 20
	for i := range n {
		conn.send(t, "zp-%02d", i)
	}
	localPort := conn.port()
	// Nothing listens on B:9999, so B answers with ICMP port unreachable.
	s := collect(t, src, func(s *seen) bool { return len(s.udp) == n && len(s.icmp) > 0 })
	for i := range n {
		p, ok := s.udp[fmt.Sprintf("zp-%02d", i)]
		if !ok {
			t.Errorf("datagram %d not captured", i)
			continue
		}
		if p.Src.String() != "192.0.2.1" || p.Dst.String() != "192.0.2.2" || int(p.SrcPort) != localPort || p.DstPort != 9999 || p.TTL != 64 {
			t.Errorf("datagram %d decoded as %v:%d > %v:%d ttl %d", i, p.Src, p.SrcPort, p.Dst, p.DstPort, p.TTL)
		}
		if p.WireLen != 14+20+8+5 {
			t.Errorf("wire length %d, want %d", p.WireLen, 14+20+8+5)
		}
	}
	if len(s.icmp) == 0 {
		t.Fatal("no ICMP port unreachable captured")
	}
	q := s.icmp[0]
	if q.ICMP.Type != 3 || q.ICMP.Code != 3 || !q.ICMP.Quoted || q.ICMP.QDstPort != 9999 || int(q.ICMP.QSrcPort) != localPort || q.Src.String() != "192.0.2.2" {
		t.Errorf("ICMP decoded as %+v from %v", q.ICMP, q.Src)
	}
	// The kernel may count a frame that reached the ring before the socket
	// was bound to the veth (or not count one from then): compare with the
	// datagrams this test sent, not with every frame read.
	st, err := src.Stats()
	if err != nil || st.Received < n || st.Dropped != 0 {
		t.Errorf("stats %+v (%v), read %d frames", st, err, s.ops)
	}
}

func TestLiveBPFAndSnapLen(t *testing.T) {
	nsA, nsB := vethPair(t)
	text, err := os.ReadFile("testdata/udp-dst-9999.bpf")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := ParseBPF(string(text))
	if err != nil {
		t.Fatal(err)
	}
	const snap = 14 + 20 + 8 + 4 // keeps 4 payload bytes
	src := openIn(t, nsB, LiveOptions{Filter: prog, SnapLen: snap})
	keep, drop := senders(t, nsA, 1, 9999)[0], senders(t, nsA, 1, 9998)[0]
	for i := range 10 {
		drop.send(t, "drop-%d", i)
		keep.send(t, "keep-%d", i)
	}
	// Each "drop" is sent before its "keep" over the same FIFO link, so a
	// leak through the filter shows up before the tenth frame.
	s := collect(t, src, func(s *seen) bool { return s.ops >= 10 })
	if s.ops != 10 {
		t.Errorf("read %d frames through the filter, want exactly the 10 to port 9999 (no ARP, no ICMP, no 9998)", s.ops)
	}
	p, ok := s.udp["keep"]
	if !ok || len(s.udp) != 1 {
		t.Fatalf("payloads %v, want all truncated to \"keep\"", keys(s.udp))
	}
	if p.DstPort != 9999 || p.WireLen != 14+20+8+6 {
		t.Errorf("kept %d (wire %d)", p.DstPort, p.WireLen)
	}
}

func keys(m map[string]decode.Packet) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLiveFanoutSplitsFlows(t *testing.T) {
	nsA, nsB := vethPair(t)
	var id [2]byte
	rand.Read(id[:])
	fo := &Fanout{ID: uint16(id[0])<<8 | uint16(id[1]), Mode: FanoutHash}
	srcs := []Source{openIn(t, nsB, LiveOptions{Fanout: fo}), openIn(t, nsB, LiveOptions{Fanout: fo})}
	const flows, per = 32, 4
	conns := senders(t, nsA, flows, 9999)
	for round := range per {
		for i, c := range conns {
			c.send(t, "f%02d-%d", i, round)
		}
	}
	// Read both sockets concurrently until every datagram is seen.
	var mu sync.Mutex
	owner := map[string]int{} // payload -> socket
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for k, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := decode.NewDecoder(decode.Options{})
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, ts, wl, link, err := src.ReadPacket()
				if err != nil {
					if errors.Is(err, ErrTimeout) {
						continue
					}
					return
				}
				var p decode.Packet
				if d.Decode(data, link, ts, wl, &p) == nil && p.IsUDP() && p.DstPort == 9999 {
					mu.Lock()
					if prev, dup := owner[string(p.Payload)]; dup {
						t.Errorf("%q delivered to sockets %d and %d", p.Payload, prev, k)
					}
					owner[string(p.Payload)] = k
					mu.Unlock()
				}
			}
		}()
	}
	guard := time.Now().Add(10 * time.Second)
	for time.Now().Before(guard) {
		mu.Lock()
		n := len(owner)
		mu.Unlock()
		if n == flows*per {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(owner) != flows*per {
		t.Fatalf("captured %d of %d datagrams across the group", len(owner), flows*per)
	}
	count := [2]int{}
	for i := range flows {
		first := owner[fmt.Sprintf("f%02d-0", i)]
		for round := 1; round < per; round++ {
			if owner[fmt.Sprintf("f%02d-%d", i, round)] != first {
				t.Errorf("flow %d split across sockets", i)
			}
		}
		count[first]++
	}
	if count[0] == 0 || count[1] == 0 {
		t.Errorf("flows per socket %v: fanout did not share the load", count)
	}
}

func TestLiveCloseUnblocksReader(t *testing.T) {
	_, nsB := vethPair(t)
	src := openIn(t, nsB, LiveOptions{PollTimeout: time.Hour}) // only Close ends this wait
	errc := make(chan error, 1)
	go func() {
		for {
			_, _, _, _, err := src.ReadPacket()
			if !errors.Is(err, ErrTimeout) && err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the reader block in poll
	src.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked reader got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock the reader")
	}
	if _, err := src.Stats(); err != nil {
		t.Errorf("Stats after Close: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenLiveErrors(t *testing.T) {
	if _, err := OpenLive("zp-no-such-if0", LiveOptions{}); err == nil || !strings.Contains(err.Error(), `interface "zp-no-such-if0"`) {
		t.Errorf("missing interface: %v", err)
	}
	if err := InNamespace("zp-no-such-ns", func() error { return nil }); err == nil || !strings.Contains(err.Error(), "ip netns add") {
		t.Errorf("missing namespace: %v", err)
	}
}

// TestLiveAnyDevice captures on every interface of namespace B; each frame
// carries the link type of the interface it came from (veth: Ethernet).
func TestLiveAnyDevice(t *testing.T) {
	nsA, nsB := vethPair(t)
	var src Source
	if err := InNamespace(nsB, func() (err error) {
		src, err = OpenLive("any", LiveOptions{PollTimeout: 50 * time.Millisecond, BlockTimeout: 10 * time.Millisecond, RingSizeMB: 2})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if src.Name() != "any" {
		t.Errorf("name %q", src.Name())
	}
	conn := senders(t, nsA, 1, 7000)[0]
	for i := range 5 {
		conn.send(t, "any-%d", i)
	}
	s := collect(t, src, func(s *seen) bool { return len(s.udp) == 5 })
	for i := range 5 {
		if p, ok := s.udp[fmt.Sprintf("any-%d", i)]; !ok || p.DstPort != 7000 {
			t.Errorf("datagram %d: %v %+v", i, ok, p)
		}
	}
}

// A Close from another goroutine while the reader holds a frame must not unmap
// the ring under it (the engine copies a held frame after a blocking send):
// the frame stays readable until the reader comes back.
func TestLiveCloseWhileHoldingFrame(t *testing.T) {
	nsA, nsB := vethPair(t)
	src := openIn(t, nsB, LiveOptions{})
	s := senders(t, nsA, 1, 9)
	var frame []byte
	for deadline := time.Now().Add(5 * time.Second); frame == nil && time.Now().Before(deadline); {
		s[0].send(t, "hold-me")
		data, _, _, _, err := src.ReadPacket()
		if err == nil && bytes.Contains(data, []byte("hold-me")) {
			frame = data
		}
	}
	if frame == nil {
		t.Fatal("no frame captured")
	}
	done := make(chan struct{})
	go func() { src.Close(); close(done) }()
	<-done
	time.Sleep(300 * time.Millisecond)
	// This faulted (unexpected fault address) when Close unmapped the ring.
	if !bytes.Contains(frame, []byte("hold-me")) {
		t.Fatal("held frame changed after Close")
	}
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadPacket after Close = %v, want ErrClosed", err)
	}
}
