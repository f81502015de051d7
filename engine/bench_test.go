package engine

import (
	"runtime"
	"testing"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/testgen"
)

// BenchmarkPacketPath is the per-packet hot path: decode, DNS snooping, flow
// table, identity and every registered analyzer, over a realistic mix (Zoom
// media, TLS, STUN, DNS, background) held in memory. One op is one packet.
// cpu-ns/op is the benchmark thread's CPU time per packet, which a loaded
// machine does not inflate the way it does ns/op.
func BenchmarkPacketPath(b *testing.B) {
	e, frames := benchSetup(b, 1)
	w := e.workers[0]
	runtime.LockOSThread() // one thread does all the work: its CPU time is the cost
	defer runtime.UnlockOSThread()
	benchLoop(b, e, frames, w.handle, true)
}

// benchSetup makes an engine and a realistic mix of frames held in memory.
func benchSetup(b *testing.B, workers int) (*Engine, []testgen.Packet) {
	var frames []testgen.Packet
	if _, err := testgen.Large(100000, testgen.LargeOptions{}, func(p testgen.Packet) error {
		frames = append(frames, p)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Capture.Workers = workers
	e, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	return e, frames
}

// benchLoop decodes and snoops each frame as a reader does and hands it to
// next. A first pass warms up: the flow table and analyzer pools reach their
// working size, as they do within seconds of a live start. With threadTime,
// the caller has locked its OS thread and cpu-ns/op is reported.
func benchLoop(b *testing.B, e *Engine, frames []testgen.Packet, next func(*decode.Packet), threadTime bool) {
	dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	sn := e.newSnooper()
	var p decode.Packet
	run := func(fr testgen.Packet) {
		if dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &p) == nil {
			sn.observe(&p)
			next(&p)
		}
	}
	for _, fr := range frames {
		run(fr)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := threadCPU()
	for i := 0; b.Loop(); i++ {
		run(frames[i%len(frames)])
	}
	if threadTime && cpu != 0 {
		b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDispatchPath is the path live capture and multi-worker analysis
// take: decode and snoop in the reader, copy into a batch, hand it to a worker
// goroutine over a channel, analysis there. One op is one packet.
func BenchmarkDispatchPath(b *testing.B) {
	e, frames := benchSetup(b, 2)
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
	benchLoop(b, e, frames, d.add, false)
	d.flushAll()
	b.StopTimer()
	for _, c := range chans {
		close(c)
	}
	for range chans {
		<-done
	}
}
