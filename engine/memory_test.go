package engine

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

// heapBytes is the live heap after a full collection.
func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryPerFlow measures what one live flow costs in a worker, by kind
// of flow, and checks the flow table's own share against its documented
// cost (docs/architecture.md, "Memory per worker"). What the analyzers add
// on top is reported (go test -v -run MemoryPerFlow ./engine/), not judged
// here: their state is theirs to bound.
func TestMemoryPerFlow(t *testing.T) {
	const n = 16 * 1024 // whole slab chunks
	zoomServer := netip.MustParseAddr(zc)
	other := netip.MustParseAddr("192.0.2.80")
	kinds := []struct {
		name    string
		packets func(i int) []decode.Packet
		// tableOnly: no analyzer keeps state for this kind, so the whole
		// cost is the table's.
		tableOnly bool
	}{
		{"udp, unwatched, answered", func(i int) []decode.Packet {
			c := clientAddr(i)
			return []decode.Packet{udpPkt(c, other, 40000, 5000), udpPkt(other, c, 5000, 40000)}
		}, true},
		{"udp to zoom 8801, answered", func(i int) []decode.Packet {
			c := clientAddr(i)
			return []decode.Packet{udpPkt(c, zoomServer, 40000, 8801), udpPkt(zoomServer, c, 8801, 40000)}
		}, false},
		{"tcp to zoom 443, syn and syn-ack only", func(i int) []decode.Packet {
			c := clientAddr(i)
			return []decode.Packet{tcpPkt(c, zoomServer, 40000, 443, decode.TCPSyn), tcpPkt(zoomServer, c, 443, 40000, decode.TCPSyn|decode.TCPAck)}
		}, false},
		{"tcp, unwatched, syn and syn-ack only", func(i int) []decode.Packet {
			c := clientAddr(i)
			return []decode.Packet{tcpPkt(c, other, 40000, 443, decode.TCPSyn), tcpPkt(other, c, 443, 40000, decode.TCPSyn|decode.TCPAck)}
		}, false},
	}
	for _, k := range kinds {
		cfg := config.Default()
		cfg.Capture.Workers = 1
		cfg.Flows.MaxFlows = n
		e, err := New(Options{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		w := e.workers[0]
		base := heapBytes()
		for i := range n {
			for _, p := range k.packets(i) {
				w.handle(&p)
			}
		}
		per := float64(heapBytes()-base) / n
		if w.table.Len() != n {
			t.Fatalf("%s: table holds %d flows, want %d", k.name, w.table.Len(), n)
		}
		table := flow.FlowBytes + flow.LinkBytesPerFlow
		t.Logf("%-40s %6.0f B per flow (table %d B, analyzers %+.0f B; index %d B per max_flows, allocated up front)",
			k.name, per, table, per-float64(table), flow.IndexBytesPerFlow)
		if k.tableOnly && per > float64(table)+16 {
			t.Errorf("%s: %.0f B per flow, the table documents %d B", k.name, per, table)
		}
		runtime.KeepAlive(e)
	}
}

func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 30, byte(i >> 8), byte(i)})
}

func udpPkt(src, dst netip.Addr, sport, dport uint16) decode.Packet {
	return decode.Packet{Time: t0, IPVersion: 4, Src: src, Dst: dst, Proto: decode.ProtoUDP, SrcPort: sport, DstPort: dport, TTL: 64, Payload: []byte("0123456789")}
}

func tcpPkt(src, dst netip.Addr, sport, dport uint16, flags uint8) decode.Packet {
	return decode.Packet{Time: t0.Add(time.Millisecond), IPVersion: 4, Src: src, Dst: dst, Proto: decode.ProtoTCP, SrcPort: sport, DstPort: dport, TTL: 64, TCPFlags: flags, Window: 64240}
}

// TestOneByteSegmentFlood: 20,000 TCP flows to a Zoom server, each sending
// sixteen one-byte segments spread over the first 60 KB of its stream and
// in reverse order (the evasion pattern that made reassembly windows as big
// as the highest offset on every flow: 2.6 GB before the budgets). The live
// heap stays within 100 MB above the idle engine while the flows live, the
// refusals are counted, and the memory returns once the flows end.
func TestOneByteSegmentFlood(t *testing.T) {
	const (
		flows    = 20000
		segments = 16
		spread   = 4000 // stream bytes between two segments
	)
	cfg := config.Default()
	cfg.Capture.Workers = 1
	reg := prometheus.NewRegistry()
	e, err := New(Options{Config: cfg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	server := netip.MustParseAddr(zc)
	one := []byte{0x16}
	base := heapBytes()
	at := t0
	for i := range flows {
		c := netip.AddrFrom4([4]byte{10, 40, byte(i >> 8), byte(i)})
		isn := uint32(i) * 7919
		syn := tcpPkt(c, server, 40000, 443, decode.TCPSyn)
		syn.Seq, syn.Time = isn, at
		w.handle(&syn)
		synAck := tcpPkt(server, c, 443, 40000, decode.TCPSyn|decode.TCPAck)
		synAck.Seq, synAck.Ack, synAck.Time = 5000, isn+1, at
		w.handle(&synAck)
		for k := segments - 1; k >= 0; k-- {
			p := tcpPkt(c, server, 40000, 443, decode.TCPAck|decode.TCPPsh)
			p.Seq, p.Ack, p.Time, p.Payload = isn+1+uint32(k*spread), 5001, at, one
			w.handle(&p)
		}
		at = at.Add(100 * time.Microsecond)
	}
	live := heapBytes()
	if w.table.Len() != flows {
		t.Fatalf("table holds %d flows, want %d", w.table.Len(), flows)
	}
	grew := int64(live) - int64(base)
	w.flush(at)
	after := int64(heapBytes()) - int64(base)
	refused := gatherSum(t, reg, "zoomprobe_tls_reassembly_budget_refused_bytes_total")
	helloRefused := gatherSum(t, reg, "zoomprobe_identity_client_hello_refused_total")
	t.Logf("%d flows of %d one-byte segments: %.1f MB above idle while live (%.0f B per flow), %.1f MB after they ended; TLS budget refused %.0f bytes, identity refused %.0f hellos",
		flows, segments, float64(grew)/1e6, float64(grew)/flows, float64(after)/1e6, refused, helloRefused)
	if grew > 100e6 {
		t.Errorf("live heap grew %.1f MB, want at most 100 MB", float64(grew)/1e6)
	}
	if refused == 0 {
		t.Error("the reassembly budget refused nothing: the flood did not reach it")
	}
	// What stays is the flow table's slab (never shrinks) and the bounded
	// pools; every byte the budgets held is back.
	if slab := int64(flows * (flow.FlowBytes + flow.LinkBytesPerFlow)); after > slab+8e6 {
		t.Errorf("%.1f MB still held after the flows ended, want at most the slab (%.1f MB) + 8 MB", float64(after)/1e6, float64(slab)/1e6)
	}
	runtime.KeepAlive(e)
}

// gatherSum is the sum of a metric family's samples.
func gatherSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
