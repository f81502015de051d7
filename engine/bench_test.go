package engine

import (
	"testing"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/testgen"
)

// BenchmarkPacketPath is the per-packet hot path: decode, DNS snooping, flow
// table, identity and every registered analyzer, over a realistic mix (Zoom
// media, TLS, STUN, DNS, background) held in memory. One op is one packet.
func BenchmarkPacketPath(b *testing.B) {
	var frames []testgen.Packet
	if _, err := testgen.Large(100000, testgen.LargeOptions{}, func(p testgen.Packet) error {
		frames = append(frames, p)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Capture.Workers = 1
	e, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	w := e.workers[0]
	dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	sn := &snooper{classifier: e.classifier, names: e.names}
	var p decode.Packet
	run := func(fr testgen.Packet) {
		if dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &p) == nil {
			sn.observe(&p)
			w.handle(&p)
		}
	}
	// Warm up: the flow table and analyzer pools reach their working size, as
	// they do within seconds of a live start.
	for _, fr := range frames {
		run(fr)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(frames[i%len(frames)])
	}
}

// BenchmarkDispatchPath is the path live capture and multi-worker analysis
// take: decode and snoop in the reader, copy into a batch, hand it to a worker
// goroutine over a channel, analysis there. One op is one packet.
func BenchmarkDispatchPath(b *testing.B) {
	var frames []testgen.Packet
	if _, err := testgen.Large(100000, testgen.LargeOptions{}, func(p testgen.Packet) error {
		frames = append(frames, p)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Capture.Workers = 2
	e, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
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
	dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	sn := &snooper{classifier: e.classifier, names: e.names}
	var p decode.Packet
	run := func(fr testgen.Packet) {
		if dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &p) == nil {
			sn.observe(&p)
			d.add(&p)
		}
	}
	for _, fr := range frames {
		run(fr)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(frames[i%len(frames)])
	}
	d.flushAll()
	b.StopTimer()
	for _, c := range chans {
		close(c)
	}
	for range chans {
		<-done
	}
}
