package engine

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

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
