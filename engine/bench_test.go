package engine

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// BenchmarkPacketPath is the per-packet hot path: decode, DNS snooping, flow
// table, identity and every registered analyzer, over a realistic mix (Zoom
// media, TLS, STUN, DNS, background) held in memory. One op is one packet.
// cpu-ns/op is the worker thread's CPU time per packet, which a loaded
// machine does not inflate the way it does ns/op.
func BenchmarkPacketPath(b *testing.B) {
	e, frames := benchSetup(b, config.Default(), 1)
	w := e.workers[0]
	runtime.LockOSThread() // one thread does all the work: its CPU time is the cost
	defer runtime.UnlockOSThread()
	threadTimed = true
	defer func() { threadTimed = false }()
	benchLoop(b, e, frames, w.handle)
}

// threadTimed: the running benchmark has locked its OS thread, and benchLoop
// reports cpu-ns/op.
var threadTimed bool

// BenchmarkPacketPathLiveFlows is BenchmarkPacketPath while the worker's
// table also holds n idle flows (a large link's long tail): the per-packet
// cost should not grow with the table. One op is one packet.
func BenchmarkPacketPathLiveFlows(b *testing.B) {
	for _, n := range []int{1 << 10, 2 << 20} {
		name := fmt.Sprintf("flows=%dk", n>>10)
		if n >= 1<<20 {
			name = fmt.Sprintf("flows=%dM", n>>20)
		}
		b.Run(name, func(b *testing.B) {
			cfg := config.Default()
			cfg.Flows.MaxFlows = n + 1<<16
			cfg.Flows.EmbryonicTimeout, cfg.Flows.UDPTimeout, cfg.Flows.TCPTimeout = 24*time.Hour, 24*time.Hour, 24*time.Hour
			e, frames := benchSetup(b, cfg, 1)
			w := e.workers[0]
			p := decode.Packet{Time: frames[0].Time, IPVersion: 4, Proto: decode.ProtoUDP, DstPort: 5000, TTL: 64}
			for i := range n {
				p.Src = netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
				p.Dst = netip.AddrFrom4([4]byte{198, 51, 100, byte(i >> 16)})
				p.SrcPort = uint16(1024 + i>>24)
				w.handle(&p)
			}
			if got := w.table.Len(); got < n {
				b.Fatalf("table holds %d flows, want %d", got, n)
			}
			benchLoop(b, e, frames, w.handle)
		})
	}
}

// benchSetup makes an engine and a realistic mix of frames held in memory.
func benchSetup(b *testing.B, cfg *config.Config, workers int) (*Engine, []testgen.Packet) {
	frames := largeFrames(b, testgen.LargeOptions{})
	cfg.Capture.Workers = workers
	e, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	return e, frames
}

// largeFrames is testgen's large mix of 100,000 frames, held back to back
// in one buffer in capture order as a file reader's buffer or a capture ring
// holds them: the hardware prefetcher streams them. (Frames in separate
// allocations made every frame a cache miss, and more so the larger they
// are: a quarter of the TLS-heavy mix's time went to the first byte read.)
func largeFrames(b *testing.B, o testgen.LargeOptions) []testgen.Packet {
	b.Helper()
	var frames []testgen.Packet
	total := 0
	if _, err := testgen.Large(100000, o, func(p testgen.Packet) error {
		frames = append(frames, p)
		total += len(p.Data)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, total)
	for i := range frames {
		off := len(buf)
		buf = append(buf, frames[i].Data...)
		frames[i].Data = buf[off:len(buf):len(buf)]
	}
	return frames
}

// wrapped returns the i-th frame of an endless replay of frames: each pass
// is shifted past the previous one, so packet time keeps moving forward.
func wrapped(frames []testgen.Packet, i int) ([]byte, time.Time) {
	span := frames[len(frames)-1].Time.Sub(frames[0].Time) + time.Second
	fr := frames[i%len(frames)]
	return fr.Data, fr.Time.Add(time.Duration(i/len(frames)) * span)
}

// benchLoop decodes and snoops each frame as a reader does and hands it to
// next. Each frame is first copied into one reused buffer, as pcapgo's
// reader copies it out of its file buffer (and a ring's frame was just
// written by the kernel): the decoder finds it in cache, as it does in
// analyze. A first pass warms up: the flow table and analyzer pools reach
// their working size, as they do within seconds of a live start.
func benchLoop(b *testing.B, e *Engine, frames []testgen.Packet, next func(*decode.Packet)) {
	dec := e.newDecoder()
	sn := e.newSnooper()
	var p decode.Packet
	buf := make([]byte, 0, 1<<16)
	run := func(i int) {
		frame, ts := wrapped(frames, i)
		data := append(buf[:0], frame...)
		if dec.Decode(data, decode.LinkEthernet, ts, len(data), &p) == nil {
			sn.observe(&p)
			next(&p)
		}
	}
	i := 0
	for ; i < len(frames); i++ {
		run(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := threadCPU()
	for ; b.Loop(); i++ {
		run(i)
	}
	if threadTimed && cpu != 0 {
		b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// memSource replays frames n times over, as a capture file would.
type memSource struct {
	frames []testgen.Packet
	i, n   int
}

func (s *memSource) Name() string                  { return "memory" }
func (s *memSource) LinkType() decode.LinkType     { return decode.LinkEthernet }
func (s *memSource) Stats() (capture.Stats, error) { return capture.Stats{}, nil }
func (s *memSource) Close() error                  { return nil }
func (s *memSource) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	if s.i >= s.n {
		return nil, time.Time{}, 0, 0, io.EOF
	}
	data, ts := wrapped(s.frames, s.i)
	s.i++
	return data, ts, len(data), decode.LinkEthernet, nil
}

// BenchmarkFile runs the whole engine over a capture held in memory: one
// reader, the decoders, the workers (with one worker, the direct path). One
// op is one packet; compare workers=1 and workers=2 within one run.
func BenchmarkFile(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e, frames := benchSetup(b, config.Default(), workers)
			b.ReportAllocs()
			b.ResetTimer()
			in := Input{Label: "file", Open: func() (capture.Source, error) { return &memSource{frames: frames, n: b.N}, nil }}
			if err := e.Run(context.Background(), []Input{in}); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkDispatchPath is the path live capture and multi-worker analysis
// take: decode and snoop in the reader, copy into a batch, hand it to a worker
// goroutine over a channel, analysis there. One op is one packet.
func BenchmarkDispatchPath(b *testing.B) {
	e, frames := benchSetup(b, config.Default(), 2)
	pool := newBatchPool(len(e.workers) * 8)
	chans := make([]chan *batch, len(e.workers))
	done := make(chan struct{})
	for i, w := range e.workers {
		chans[i] = make(chan *batch, 8)
		go func() {
			for bt := range chans[i] {
				for j := range bt.pkts {
					w.handle(&bt.pkts[j])
				}
				pool.put(bt)
			}
			done <- struct{}{}
		}()
	}
	d := newDispatcher(chans, pool)
	benchLoop(b, e, frames, d.add)
	d.flushAll()
	b.StopTimer()
	for _, c := range chans {
		close(c)
	}
	for range chans {
		<-done
	}
}

// BenchmarkShard is the per-packet cost of picking a worker (IPv4 and IPv6).
func BenchmarkShard(b *testing.B) {
	ps := []decode.Packet{
		{IPVersion: 4, Proto: decode.ProtoTCP, Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr("170.114.10.9")},
		{IPVersion: 6, Proto: decode.ProtoUDP, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8:113::9")},
	}
	n := 0
	for i := range b.N {
		n += shard(&ps[i&1], 4)
	}
	if n < 0 {
		b.Fatal(n)
	}
}

// BenchmarkPacketPathEvidence is BenchmarkPacketPath without and with the
// evidence recorder, in one run: the difference is what keeping evidence
// adds per packet. It also reports the pool held per flow being recorded.
func BenchmarkPacketPathEvidence(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("evidence=%v", on), func(b *testing.B) {
			var frames []testgen.Packet
			if _, err := testgen.Large(100000, testgen.LargeOptions{}, func(p testgen.Packet) error {
				frames = append(frames, p)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			cfg := config.Default()
			cfg.Capture.Workers = 1
			o := Options{Config: cfg}
			if on {
				d, err := evidence.OpenDir(evidence.DirConfig{Path: b.TempDir(), MaxBytes: 1 << 30, Retention: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				o.Evidence = d
			}
			e, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			w := e.workers[0]
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			threadTimed = true
			defer func() { threadTimed = false }()
			benchLoop(b, e, frames, w.handle)
			if w.rec != nil {
				recorded := 0
				w.table.Each(func(f *flow.Flow) {
					if f.Evidence != 0 && f.Evidence < ^uint32(0)-1 {
						recorded++
					}
				})
				if recorded > 0 {
					b.ReportMetric(float64(w.rec.InUse())/float64(recorded), "pool-B/recorded-flow")
				}
				b.ReportMetric(float64(recorded), "recorded-flows")
			}
		})
	}
}

// BenchmarkTLSShare is BenchmarkPacketPath over mixes whose packets are
// mostly UDP media (a small TLS share) or mostly TLS handshakes and their
// data: with the verdict cache and lazily made TLS state, the cost per packet
// should grow little with the TLS share (issue 13: at most 1.5× from 2% to
// 85%). Compare cpu-ns/op of the two within one run; tls-% is the share of
// packets that belong to TCP port 443 connections. Each mix also has a
// "read" case: only the copy of each frame that reading it costs (as the
// read floor of scripts/bench.sh), which grows with the frame sizes, not with
// the work; analyze minus read is the analysis alone.
func BenchmarkTLSShare(b *testing.B) {
	for _, c := range []struct {
		name     string
		sessions float64 // TLS sessions, chosen for the packet share in the name
	}{{"tls=2%", 0.25}, {"tls=85%", 0.995}} {
		b.Run(c.name, func(b *testing.B) {
			frames := largeFrames(b, testgen.LargeOptions{TLSSessions: c.sessions})
			cfg := config.Default()
			cfg.Capture.Workers = 1
			e, err := New(Options{Config: cfg})
			if err != nil {
				b.Fatal(err)
			}
			share := tlsShare(b, e, frames)
			threadTimed = true
			defer func() { threadTimed = false }()
			// Each sub-benchmark runs on its own goroutine: lock it to its
			// thread there, or the thread's CPU clock measures nothing.
			b.Run("analyze", func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				created := e.workers[0].table.Created
				benchLoop(b, e, frames, e.workers[0].handle)
				b.ReportMetric(share, "tls-%")
				// New flows per 1,000 packets: short TLS sessions make many
				// more than media calls, and each costs its set-up and expiry.
				b.ReportMetric(float64(e.workers[0].table.Created-created)*1000/float64(b.N), "flows/kpkt")
			})
			b.Run("read", func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				readLoop(b, frames)
			})
		})
	}
}

var sinkByte byte

// readLoop is benchLoop's frame copy alone: what reading the frames costs.
func readLoop(b *testing.B, frames []testgen.Packet) {
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	cpu := threadCPU()
	for i := 0; b.Loop(); i++ {
		frame, _ := wrapped(frames, i)
		buf = append(buf[:0], frame...)
		sinkByte += buf[len(buf)-1]
	}
	if threadTimed && cpu != 0 {
		b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// tlsShare is the percentage of frames on TCP port 443.
func tlsShare(b *testing.B, e *Engine, frames []testgen.Packet) float64 {
	dec := e.newDecoder()
	var p decode.Packet
	n := 0
	for _, fr := range frames {
		if dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &p) == nil && p.Proto == decode.ProtoTCP && (p.SrcPort == 443 || p.DstPort == 443) {
			n++
		}
	}
	if len(frames) == 0 {
		b.Fatal("no frames")
	}
	return 100 * float64(n) / float64(len(frames))
}
