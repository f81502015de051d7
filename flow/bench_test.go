package flow

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// nthFlow rewrites p as a packet of the i-th synthetic flow: client
// 10.x.y.z:port to a server in 3.7.0.0/16 on 8801, one flow per (client, port).
func nthFlow(p *decode.Packet, i int, at time.Time) {
	c := uint32(0x0a000000) | uint32(i>>4)
	p.Src = netip.AddrFrom4([4]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
	p.Dst = netip.AddrFrom4([4]byte{3, 7, byte(i >> 8), byte(i)})
	p.SrcPort = uint16(40000 + i&15)
	p.DstPort = 8801
	p.Time = at
}

// filledTable holds n answered UDP flows.
func filledTable(b *testing.B, n int) (*Table, *decode.Packet) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.MaxFlows = n
	cfg.UDPTimeout, cfg.EmbryonicTimeout = time.Hour, time.Hour
	tab := NewTable(cfg, nil)
	p := &decode.Packet{IPVersion: 4, Proto: decode.ProtoUDP, TTL: 64, Payload: make([]byte, 100)}
	for i := range n {
		nthFlow(p, i, t0)
		tab.Packet(p)
	}
	if tab.Len() != n {
		b.Fatalf("table holds %d flows, want %d", tab.Len(), n)
	}
	return tab, p
}

// activeFlows is how many flows carry the packets in the "active"
// benchmarks: on a real link most live flows are idle (waiting for their
// timeout) while a few thousand carry the traffic. They are spread over the
// whole table, so they share no cache lines by construction.
const activeFlows = 1 << 10

// scatter maps the i-th lookup to a flow of an n-flow table: one of
// `active` flows drawn at random from all n (a mixing hash, not a
// multiplication, whose low bits would pick each slot position within a slab
// chunk exactly once: a pattern of addresses real traffic does not make).
func scatter(i, active, n int) int {
	x := uint64(i&(active-1)) + 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return int(x^x>>31) & (n - 1)
}

// BenchmarkTableFind is a lookup of a live flow (what an ICMP error does).
// active: lookups go to activeFlows flows among n live ones; scattered: to
// all n in a cache-hostile order (every lookup a cache and TLB miss: this
// measures the machine's memory latency more than the table). One op is one
// lookup.
func BenchmarkTableFind(b *testing.B) {
	for _, c := range []struct {
		name      string
		n, active int
	}{
		{"flows=1k", 1 << 10, activeFlows},
		{"flows=1M/active=1k", 1 << 20, activeFlows},
		{"flows=1M/scattered", 1 << 20, 1 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			tab, p := filledTable(b, c.n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				nthFlow(p, scatter(i, c.active, c.n), t0)
				if f, _ := tab.Find(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort); f == nil {
					b.Fatal("live flow not found")
				}
			}
		})
	}
}

// BenchmarkTableLive is the table's per-packet cost (lookup, counters, LRU
// move) with n live flows, as BenchmarkTableFind. One op is one packet.
func BenchmarkTableLive(b *testing.B) {
	for _, c := range []struct {
		name      string
		n, active int
	}{
		{"flows=1k", 1 << 10, activeFlows},
		{"flows=2M/active=1k", 1 << 21, activeFlows},
		{"flows=2M/scattered", 1 << 21, 1 << 21},
	} {
		b.Run(c.name, func(b *testing.B) {
			tab, p := filledTable(b, c.n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				nthFlow(p, scatter(i, c.active, c.n), t0.Add(time.Duration(i)))
				tab.Packet(p)
			}
		})
	}
}

// BenchmarkTableChurn creates a flow per packet in a full table: every
// packet evicts the least recently seen flow. One op is one packet.
func BenchmarkTableChurn(b *testing.B) {
	const n = 1 << 16
	tab, p := filledTable(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		nthFlow(p, n+i, t0.Add(time.Duration(i)))
		tab.Packet(p)
	}
}

// BenchmarkTableFill fills an empty table of n flows, one new flow per
// packet, as a busy link does after a start or reload: the index doubles
// (moved a few slots per packet) and chunks are added. One op is one packet;
// worst-µs is the slowest single packet, what a capture ring must absorb
// (the links slice and a doubling index once copied at once: 60 ms at 1M).
func BenchmarkTableFill(b *testing.B) {
	for _, n := range []int{1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.MaxFlows = n
			cfg.UDPTimeout, cfg.EmbryonicTimeout = time.Hour, time.Hour
			p := &decode.Packet{IPVersion: 4, Proto: decode.ProtoUDP, TTL: 64, Payload: make([]byte, 100)}
			var tab *Table
			var worst time.Duration
			for i := 0; b.Loop(); i++ {
				if i%n == 0 {
					b.StopTimer()
					tab = NewTable(cfg, nil)
					b.StartTimer()
				}
				nthFlow(p, i%n, t0)
				start := time.Now()
				tab.Packet(p)
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds()), "worst-µs")
		})
	}
}

var sinkHash uint32

// BenchmarkHashOf is the flow key and hash of an IPv4 packet (every packet
// pays them).
func BenchmarkHashOf(b *testing.B) {
	clients := make([]netip.Addr, 1024)
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 7})
	}
	server := netip.MustParseAddr("170.114.52.2")
	tab := NewTable(DefaultConfig(), nil)
	for i := 0; b.Loop(); i++ {
		var k key
		k.set(decode.ProtoUDP, clients[i&1023], server, uint16(i), 8801)
		sinkHash += tab.hash(&k)
	}
}
