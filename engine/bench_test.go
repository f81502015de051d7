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
