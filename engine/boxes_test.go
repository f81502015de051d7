package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
)

// When both ends of a packet could be servers (the box's outside address
// inside a watched network), the port says which one is.
func TestTowardServerPort(t *testing.T) {
	for _, c := range []struct {
		proto        uint8
		sport, dport uint16
		want         bool
	}{
		{decode.ProtoTCP, 51842, 443, true},
		{decode.ProtoTCP, 443, 51842, false},
		{decode.ProtoUDP, 22752, 8801, true},
		{decode.ProtoUDP, 8801, 1500, false},  // a NAT port below Zoom's: Zoom's port still wins
		{decode.ProtoTCP, 50000, 40000, true}, // neither known: the lower port
	} {
		if got := towardServerPort(c.proto, c.sport, c.dport); got != c.want {
			t.Errorf("%d %d>%d: toward server %v, want %v", c.proto, c.sport, c.dport, got, c.want)
		}
	}
}

// A box side's reader adds no allocation per packet: the matcher and the
// classification of both ends.
func TestBoxReaderAllocatesNothing(t *testing.T) {
	cfg := config.Default()
	cfg.Capture.Workers = 1
	cfg.Capture.Interfaces = []string{"in0", "out0"}
	box := config.BoxConfig{Name: "fw1", Inside: "in0", Outside: "out0"}
	box.SetDefaults()
	cfg.Capture.Boxes = []config.BoxConfig{box}
	reg := prometheus.NewRegistry()
	e, err := New(Options{Config: cfg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	in, out := e.boxes.byLabel["in0"], e.boxes.byLabel["out0"]
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	p := decode.Packet{Time: t0, IPVersion: 4, Proto: decode.ProtoUDP, Src: netip.MustParseAddr("10.0.0.5"), SrcPort: 50000,
		Dst: netip.MustParseAddr("170.114.10.85"), DstPort: 8801, Payload: []byte("zoom set-up 0123456789")}
	o := p
	o.Src, o.SrcPort = netip.MustParseAddr("198.51.100.7"), 61001
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		i++
		p.Time = t0.Add(time.Duration(i) * time.Millisecond)
		o.Time = p.Time.Add(time.Microsecond)
		e.boxObserve(in, &p)
		e.boxObserve(out, &o)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet pair", allocs)
	}
	// The pairs were Zoom packets, and matched.
	mfs, _ := reg.Gather()
	matched := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "zoomprobe_box_packets_total" && l.GetName() == "result" && l.GetValue() == "matched" {
					matched = m.GetCounter().GetValue()
				}
			}
		}
	}
	if matched < 2000 {
		t.Errorf("%v pairs matched", matched)
	}
}
