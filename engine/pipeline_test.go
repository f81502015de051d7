package engine

import (
	"context"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// dnsFrame builds a DNS query from client to 192.0.2.53 for name, or the
// response telling client that name is addr.
func dnsFrame(t testing.TB, name string, addr netip.Addr, id uint16, response bool) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 2}, DstMAC: []byte{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 60, Protocol: layers.IPProtocolUDP, SrcIP: []byte{192, 0, 2, 53}, DstIP: netip.MustParseAddr(client).AsSlice()}
	u := &layers.UDP{SrcPort: 53, DstPort: layers.UDPPort(30000 + id%20000)}
	d := &layers.DNS{ID: id, QR: true, RD: true, RA: true, ResponseCode: layers.DNSResponseCodeNoErr,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
		Answers:   []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 300, IP: addr.AsSlice()}}}
	if !response {
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		u.SrcPort, u.DstPort = u.DstPort, u.SrcPort
		d.QR, d.RA, d.Answers = false, false, nil
	}
	u.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, u, d); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// sliceSource is a capture file held in memory.
type sliceSource struct {
	frames []stamped
	i      int
}

func (s *sliceSource) Name() string                  { return "memory" }
func (s *sliceSource) LinkType() decode.LinkType     { return decode.LinkEthernet }
func (s *sliceSource) Stats() (capture.Stats, error) { return capture.Stats{}, nil }
func (s *sliceSource) Close() error                  { return nil }
func (s *sliceSource) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	if s.i == len(s.frames) {
		return nil, time.Time{}, 0, 0, io.EOF
	}
	f := s.frames[s.i]
	s.i++
	return f.data, t0.Add(f.at), len(f.data), decode.LinkEthernet, nil
}

// Each flow here is named only by the DNS answer (to a query seen) captured
// a microsecond before its SYN (its address is outside Zoom's ranges), and the pairs fall
// across batch boundaries. With several decoders, the answer must still be
// recorded before any worker sees the SYN; with every worker reading the
// file (readers 0, up to sharedReadWorkers), before its worker sees it.
func TestFileDecodersKeepDNSOrder(t *testing.T) {
	const flows = 1500
	var frames []stamped
	for i := range flows {
		addr := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		at := time.Duration(i) * 50 * time.Microsecond
		frames = append(frames,
			stamped{at - 10*time.Microsecond, dnsFrame(t, "us04web.zoom.us", addr, uint16(i), false)},
			stamped{at, dnsFrame(t, "us04web.zoom.us", addr, uint16(i), true)},
			stamped{at + time.Microsecond, frame(t, client, addr.String(), uint16(20000+i), 443, "S", 64)})
	}
	// each: every worker reads the file, whatever the CPUs here.
	for _, c := range []struct {
		workers, readers int
		each             bool
	}{{1, 0, false}, {2, 0, false}, {2, 0, true}, {4, 0, true}, {2, 1, false}, {2, 2, false}, {3, 5, false}, {sharedReadWorkers + 1, 0, false}} {
		cfg := config.Default()
		cfg.Capture.Workers, cfg.Capture.Readers = c.workers, c.readers
		var named, tcp atomic.Int64
		e, err := New(Options{Config: cfg, OnFlowEnd: func(f *flow.Flow, _ flow.ExpireReason) {
			if f.Proto == decode.ProtoTCP {
				tcp.Add(1)
				if f.Service() != zoom.ServiceNone {
					named.Add(1)
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		in := Input{Label: "file", Open: func() (capture.Source, error) { return &sliceSource{frames: frames}, nil }}
		run := e.Run
		if c.each {
			run = func(ctx context.Context, ins []Input) error { return e.runFileEach(ctx, ins[0]) }
		}
		if err := run(context.Background(), []Input{in}); err != nil {
			t.Fatal(err)
		}
		if tcp.Load() != flows || named.Load() != flows {
			t.Errorf("workers %d readers %d each %v: %d of %d TCP flows named by their DNS answer (%d flows seen)", c.workers, c.readers, c.each, named.Load(), flows, tcp.Load())
		}
	}
}

// Once the pipeline runs, packets allocate nothing: a file ten times longer
// costs the same number of allocations (the engine's fixed set-up), with
// every worker reading the file (readers 0), with one decoder (batches
// decoded by the reader) and with several.
func TestPipelineSteadyStateAllocatesNothing(t *testing.T) {
	var pattern []stamped
	for i := range 64 {
		pattern = append(pattern, stamped{0, frame(t, client, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), 5000, 6000, "", 64)})
	}
	frames := func(n int) []stamped {
		out := make([]stamped, n)
		for i := range out {
			out[i] = stamped{time.Duration(i) * time.Millisecond, pattern[i%len(pattern)].data}
		}
		return out
	}
	short, long := frames(3000), frames(30000)
	for _, readers := range []int{0, 1, 2} {
		mallocs := func(fr []stamped) uint64 {
			cfg := config.Default()
			cfg.Capture.Workers, cfg.Capture.Readers = 2, readers
			e, err := New(Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			in := Input{Label: "file", Open: func() (capture.Source, error) { return &sliceSource{frames: fr}, nil }}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if err := e.Run(context.Background(), []Input{in}); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			return after.Mallocs - before.Mallocs
		}
		mallocs(short) // first use of lazily built tables
		s, l := mallocs(short), mallocs(long)
		// 27,000 more packets, 105 more batches: a few allocations of slack for the runtime itself.
		if l > s+16 {
			t.Errorf("readers %d: %d allocations for 3,000 packets, %d for 30,000: the steady state allocates", readers, s, l)
		}
	}
}

// A reader's frames reach zoomprobe_packets_total within publishFrames
// frames or publishEvery of packet time, and all of them when it stops.
func TestFrameCountLagIsBounded(t *testing.T) {
	st := &sourceStats{}
	c := frameCount{st: st}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c.frame(at(0)) // the first frame: nothing published before it
	if got := st.packets.Load(); got != 1 {
		t.Fatalf("after the first frame: %d published, want 1", got)
	}
	for i := range publishFrames - 1 {
		c.frame(at(1 + i))
	}
	if got := st.packets.Load(); got != 1 {
		t.Fatalf("%d frames within a second: %d published, want 1 (the first)", publishFrames-1, got)
	}
	c.frame(at(100))
	if got := st.packets.Load(); got != 1+publishFrames {
		t.Fatalf("after %d frames: %d published", publishFrames, got)
	}
	c.frame(at(200))
	c.frame(at(1200)) // a second of packet time since the last publish
	if got, last := st.packets.Load(), st.lastPacket.Load(); got != 3+publishFrames || last != at(1200).UnixNano() {
		t.Fatalf("a second later: %d published (want %d), last %d", got, 3+publishFrames, last)
	}
	c.frame(at(1300))
	c.publish() // idle source, or the reader stops
	if got := st.packets.Load(); got != 4+publishFrames {
		t.Fatalf("after publish: %d, want %d", got, 4+publishFrames)
	}
}

// gatedSource is a sliceSource that, before handing out frame i, runs
// gates[i] (once): the frames before it have been handled.
type gatedSource struct {
	sliceSource
	gates map[int]func()
}

func (s *gatedSource) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	if g := s.gates[s.i]; g != nil {
		delete(s.gates, s.i)
		g()
	}
	return s.sliceSource.ReadPacket()
}

// With every worker reading the file, each reader learns names into a cache
// only its own worker reads. Here an address is answered for one Zoom name,
// then for another, then worker 0's flow to it starts: its name is the
// second. The readers are interleaved the way two cores may run them: reader
// 0 reads both answers and stops before the SYN, reader 1 (behind) reads the
// first answer again, then reader 0 goes on. With one shared cache reader
// 1's late copy of the first answer replaced the second, and the flow took
// the older name: which name a flow got depended on thread timing.
func TestSharedReadersKeepTheirNames(t *testing.T) {
	cfg := config.Default()
	cfg.Capture.Workers = 2
	var names []string
	e, err := New(Options{Config: cfg, OnFlowEnd: func(f *flow.Flow, _ flow.ExpireReason) {
		if f.Proto == decode.ProtoTCP {
			names = append(names, f.Name())
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	var syn []byte
	var addr netip.Addr
	for i := range 256 { // a server address whose flow lands on worker 0
		addr = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
		syn = frame(t, client, addr.String(), 20000, 443, "S", 64)
		var p decode.Packet
		if err := e.newDecoder().Decode(syn, decode.LinkEthernet, t0, len(syn), &p); err != nil {
			t.Fatal(err)
		}
		if shard(&p, 2) == 0 {
			break
		}
	}
	frames := []stamped{
		{0, dnsFrame(t, "us04web.zoom.us", addr, 1, false)},
		{time.Microsecond, dnsFrame(t, "us04web.zoom.us", addr, 1, true)},
		{time.Millisecond, dnsFrame(t, "zoom.us", addr, 2, false)},
		{time.Millisecond + time.Microsecond, dnsFrame(t, "zoom.us", addr, 2, true)},
		{2 * time.Millisecond, syn},
	}
	ahead, behind, synDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	// Reader 0 handles both answers, then waits before the SYN; reader 1
	// starts then, handles the first answer, and waits while reader 0
	// handles the SYN.
	src0 := &gatedSource{sliceSource{frames: frames}, map[int]func(){4: func() { close(ahead); <-behind }, 5: func() { close(synDone) }}}
	src1 := &gatedSource{sliceSource{frames: frames}, map[int]func(){0: func() { <-ahead }, 2: func() { close(behind); <-synDone }}}
	in0 := Input{Label: "file", Open: func() (capture.Source, error) { return src0, nil }}
	in1 := Input{Label: "file", Open: func() (capture.Source, error) { return src1, nil }}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, in := range []Input{in0, in1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.readShare(context.Background(), in, i, e.workers[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.workers[0].flush(time.Time{})
	if len(names) != 1 || names[0] != "zoom.us" {
		t.Errorf("worker 0's flow was named %q, want the answer just before it, zoom.us", names)
	}
}
