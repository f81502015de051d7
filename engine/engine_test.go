package engine

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	client = "10.1.1.2"
	zc     = "170.114.10.85" // in Zoom's ranges
)

// frame builds an Ethernet/IPv4/TCP or UDP frame.
func frame(t testing.TB, src, dst string, sport, dport uint16, tcpFlags string, ttl uint8) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, SrcIP: netip.MustParseAddr(src).AsSlice(), DstIP: netip.MustParseAddr(dst).AsSlice()}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	if tcpFlags == "" {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		u.SetNetworkLayerForChecksum(ip)
		gopacket.SerializeLayers(buf, opts, eth, ip, u, gopacket.Payload("noise"))
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 64240}
		for _, c := range tcpFlags {
			switch c {
			case 'S':
				tc.SYN = true
			case 'A':
				tc.ACK = true
			}
		}
		tc.SetNetworkLayerForChecksum(ip)
		gopacket.SerializeLayers(buf, opts, eth, ip, tc)
	}
	return append([]byte(nil), buf.Bytes()...)
}

type stamped struct {
	at   time.Duration
	data []byte
}

// fakeLive replays frames as a live source would: each at its time, scaled
// down 1000 times, then ErrTimeout until closed.
// replaySpeedup is how much faster than packet time a fakeLive replays.
// Each input has its own reader goroutine: a slower replay leaves the
// scheduler of a busy machine a wide margin (30 s of packet time, the
// embryonic timeout, is 1.5 s of wall time) before one input runs ahead of
// another further than a live capture ever would.
const replaySpeedup = 20

type fakeLive struct {
	mu      sync.Mutex
	frames  []stamped
	start   time.Time
	closed  bool
	drained chan struct{} // closed once every frame was read
}

func (s *fakeLive) Name() string              { return "fake" }
func (s *fakeLive) LinkType() decode.LinkType { return decode.LinkEthernet }
func (s *fakeLive) Stats() (capture.Stats, error) {
	return capture.Stats{}, nil
}
func (s *fakeLive) Close() error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }
func (s *fakeLive) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, time.Time{}, 0, 0, io.EOF
	}
	if s.start.IsZero() {
		s.start = time.Now()
	}
	if len(s.frames) == 0 {
		if s.drained != nil {
			close(s.drained)
			s.drained = nil
		}
		time.Sleep(time.Millisecond)
		return nil, time.Time{}, 0, 0, capture.ErrTimeout
	}
	f := s.frames[0]
	if wait := time.Until(s.start.Add(f.at / replaySpeedup)); wait > 0 {
		time.Sleep(wait)
	}
	s.frames = s.frames[1:]
	return f.data, t0.Add(f.at), len(f.data), decode.LinkEthernet, nil
}

func runEngine(t *testing.T, workers int, inputs ...[]stamped) []finding.Finding {
	t.Helper()
	cfg := config.Default()
	cfg.Capture.Workers = workers
	var mu sync.Mutex
	var got []finding.Finding
	e, err := New(Options{Config: cfg, Sink: finding.SinkFunc(func(f finding.Finding) { mu.Lock(); got = append(got, f); mu.Unlock() })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ins []Input
	var drained []chan struct{}
	for _, frames := range inputs {
		src := &fakeLive{frames: frames, drained: make(chan struct{})}
		drained = append(drained, src.drained)
		ins = append(ins, Input{Label: "fake", Live: true, Open: func() (capture.Source, error) { return src, nil }})
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, ins) }()
	// Every frame read, then a moment for the readers' last batches.
	for _, d := range drained {
		<-d
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return got
}

// One TAP port per direction: the SYN arrives on input A, its SYN-ACK on
// input B, which carries other traffic too. B's open batch must reach the
// worker before A's packets carry its clock past the embryonic timeout.
func TestTwoInputsNoFalseDrop(t *testing.T) {
	dec := decode.NewDecoder(decode.Options{})
	workerOf := func(data []byte) int {
		var p decode.Packet
		if err := dec.Decode(data, decode.LinkEthernet, t0, len(data), &p); err != nil {
			t.Fatal(err)
		}
		return shard(&p, 2)
	}
	syn := frame(t, client, zc, 40000, 443, "S", 64)
	synWorker := workerOf(syn)
	// noise picks, for each input, flows that land on the wanted worker.
	noise := func(src string, toSynWorker bool, n int) [][]byte {
		var out [][]byte
		for i := 1; len(out) < n; i++ {
			f := frame(t, src, netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)}).String(), uint16(1000+i), 53, "", 64)
			if (workerOf(f) == synWorker) == toSynWorker {
				out = append(out, f)
			}
		}
		return out
	}
	a := []stamped{{0, syn}, {time.Second, syn}} // first SYN and its retransmission
	b := []stamped{{1050 * time.Millisecond, frame(t, zc, client, 443, 40000, "SA", 52)}}
	// A's noise moves the SYN's worker's clock (a full batch every 25.6 s of
	// packet time); B's noise goes to the other worker, so B's batch holding
	// the SYN-ACK never fills and B is never idle long enough for a tick.
	for i, f := range noise("10.9.9.9", true, 600) {
		a = append(a, stamped{time.Second + time.Duration(i+1)*100*time.Millisecond, f})
	}
	for i, f := range noise("10.8.8.8", false, 600) {
		b = append(b, stamped{time.Second + time.Duration(i+1)*100*time.Millisecond + 51*time.Millisecond, f})
	}
	for _, f := range runEngine(t, 2, a, b) {
		t.Errorf("false finding: %s %s %+v", f.Kind, f.Reason, f.Evidence)
	}
}

// A lone packet stamped a year ahead must not expire every flow as idle.
func TestFutureTimestampIsAnOutlier(t *testing.T) {
	in := []stamped{
		{0, frame(t, client, zc, 40001, 443, "S", 64)},
		{time.Second, frame(t, client, zc, 40001, 443, "S", 64)},
		{365 * 24 * time.Hour, frame(t, "10.9.9.9", "192.0.2.9", 1234, 53, "", 64)},
		{1020 * time.Millisecond, frame(t, zc, client, 443, 40001, "SA", 52)},
		{1021 * time.Millisecond, frame(t, client, zc, 40001, 443, "A", 64)},
	}
	c := packetClock{}
	for _, s := range in {
		c.observe(t0.Add(s.at))
	}
	if !c.now.Equal(t0.Add(1021 * time.Millisecond)) {
		t.Fatalf("clock = %s, want the last real packet", c.now)
	}
	// Whole path, single worker: no finding.
	cfg := config.Default()
	cfg.Capture.Workers = 1
	var got []finding.Finding
	e, _ := New(Options{Config: cfg, Sink: finding.SinkFunc(func(f finding.Finding) { got = append(got, f) })})
	w := e.workers[0]
	dec := decode.NewDecoder(decode.Options{})
	for _, s := range in {
		var p decode.Packet
		if err := dec.Decode(s.data, decode.LinkEthernet, t0.Add(s.at), len(s.data), &p); err != nil {
			t.Fatal(err)
		}
		w.handle(&p)
	}
	w.flush(time.Time{})
	for _, f := range got {
		t.Errorf("false finding: %s %s %+v", f.Kind, f.Reason, f.Evidence)
	}
}

func TestClockFollowsConfirmedJumps(t *testing.T) {
	c := packetClock{}
	c.observe(t0)
	for i := 0; i < jumpConfirm-1; i++ {
		if s := c.observe(t0.Add(time.Hour)); s != clockOutlier {
			t.Fatalf("packet %d of a jump: %v, want outlier", i, s)
		}
	}
	if s := c.observe(t0.Add(time.Hour)); s != clockForward || !c.now.Equal(t0.Add(time.Hour)) {
		t.Fatalf("confirmed jump: %v now %s", s, c.now)
	}
	for i := 0; i < jumpConfirm-1; i++ {
		c.observe(t0)
	}
	if s := c.observe(t0); s != clockBack {
		t.Fatalf("confirmed step back: %v", s)
	}
	if s := c.observe(t0.Add(-time.Millisecond)); s != clockSame {
		t.Fatalf("µs-level reordering moved the clock: %v", s)
	}
}

// A stamp whose Unix nanoseconds overflow (a corrupt pcapng record in year
// 2500, or before 1970) never becomes the clock, however many agree.
func TestClockIgnoresStampsOutOfRange(t *testing.T) {
	c := packetClock{}
	c.observe(t0)
	for _, bad := range []time.Time{time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-5, 0)} {
		for range 2 * jumpConfirm {
			if s := c.observe(bad); s != clockOutlier {
				t.Fatalf("%s: %v, want outlier", bad, s)
			}
		}
		if !c.now.Equal(t0) {
			t.Fatalf("clock moved to %s", c.now)
		}
	}
}
