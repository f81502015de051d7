package flow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func tcp(src, dst string, sport, dport uint16, flags uint8, at time.Duration) *decode.Packet {
	return &decode.Packet{
		Time: t0.Add(at), IPVersion: 4, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: decode.ProtoTCP, SrcPort: sport, DstPort: dport, TCPFlags: flags, TTL: 64,
	}
}

func udp(src, dst string, sport, dport uint16, at time.Duration, payload int) *decode.Packet {
	return &decode.Packet{
		Time: t0.Add(at), IPVersion: 4, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: decode.ProtoUDP, SrcPort: sport, DstPort: dport, Payload: make([]byte, payload),
	}
}

type expiry struct {
	client string
	why    ExpireReason
}

func record(into *[]expiry) func(*Flow, time.Time, ExpireReason) {
	return func(f *Flow, _ time.Time, why ExpireReason) {
		*into = append(*into, expiry{f.Client().String(), why})
	}
}

func TestOrientationAndState(t *testing.T) {
	const c, s = "10.0.0.2", "3.7.35.10"
	tests := []struct {
		name       string
		pkts       []*decode.Packet
		wantClient string
		wantState  TCPState
		wantSyns   uint16
	}{
		{"handshake", []*decode.Packet{
			tcp(c, s, 50000, 443, decode.TCPSyn, 0),
			tcp(s, c, 443, 50000, decode.TCPSyn|decode.TCPAck, time.Millisecond),
			tcp(c, s, 50000, 443, decode.TCPAck, 2*time.Millisecond),
		}, c + ":50000", TCPEstablished, 1},
		{"syn retransmitted, no answer", []*decode.Packet{
			tcp(c, s, 50000, 8801, decode.TCPSyn, 0),
			tcp(c, s, 50000, 8801, decode.TCPSyn, time.Second),
			tcp(c, s, 50000, 8801, decode.TCPSyn, 3*time.Second),
		}, c + ":50000", TCPSynSent, 3},
		{"mirror copies of one SYN are not retransmissions", []*decode.Packet{
			tcp(c, s, 50000, 8801, decode.TCPSyn, 0),
			tcp(c, s, 50000, 8801, decode.TCPSyn, 10*time.Microsecond),
			tcp(c, s, 50000, 8801, decode.TCPSyn, time.Second),
			tcp(c, s, 50000, 8801, decode.TCPSyn, time.Second+20*time.Microsecond),
		}, c + ":50000", TCPSynSent, 2},
		{"first packet is the SYN-ACK (SYN not captured)", []*decode.Packet{
			tcp(s, c, 443, 50000, decode.TCPSyn|decode.TCPAck, 0),
		}, c + ":50000", TCPSynReceived, 0},
		{"mid-stream pickup: server port decides", []*decode.Packet{
			tcp(s, c, 8801, 50000, decode.TCPAck|decode.TCPPsh, 0),
			tcp(c, s, 50000, 8801, decode.TCPAck, time.Millisecond),
		}, c + ":50000", TCPEstablished, 0},
		{"refused", []*decode.Packet{
			tcp(c, s, 50000, 8802, decode.TCPSyn, 0),
			tcp(s, c, 8802, 50000, decode.TCPRst|decode.TCPAck, time.Millisecond),
		}, c + ":50000", TCPReset, 1},
		{"fin both ways", []*decode.Packet{
			tcp(c, s, 50000, 443, decode.TCPSyn, 0),
			tcp(s, c, 443, 50000, decode.TCPSyn|decode.TCPAck, time.Millisecond),
			tcp(c, s, 50000, 443, decode.TCPAck|decode.TCPFin, 2*time.Millisecond),
			tcp(s, c, 443, 50000, decode.TCPAck|decode.TCPFin, 3*time.Millisecond),
		}, c + ":50000", TCPClosed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable(DefaultConfig(), nil)
			var f *Flow
			for _, p := range tt.pkts {
				f, _, _ = tab.Packet(p)
			}
			if tab.Len() != 1 {
				t.Fatalf("table holds %d flows, want 1", tab.Len())
			}
			if f.Client().String() != tt.wantClient {
				t.Errorf("client = %s, want %s", f.Client(), tt.wantClient)
			}
			if f.TCP != tt.wantState {
				t.Errorf("state = %s, want %s", f.TCP, tt.wantState)
			}
			if f.SynCount != tt.wantSyns {
				t.Errorf("syns = %d, want %d", f.SynCount, tt.wantSyns)
			}
		})
	}
}

func TestUDPOrientation(t *testing.T) {
	tab := NewTable(DefaultConfig(), nil)
	// The answer from the DNS server is captured first.
	f, d, _ := tab.Packet(udp("192.0.2.53", "10.0.0.2", 53, 40000, 0, 80))
	if f.Client().Addr().String() != "10.0.0.2" || d != ToClient {
		t.Fatalf("client = %s dir = %d, want 10.0.0.2 and ToClient", f.Client(), d)
	}
	f, d, _ = tab.Packet(udp("10.0.0.2", "3.7.35.10", 52000, 8801, 0, 100))
	if f.ServerPort() != 8801 || d != ToServer {
		t.Fatalf("server = %s dir = %d, want port 8801 and ToServer", f.Server(), d)
	}
}

func TestTimeoutsByClass(t *testing.T) {
	cfg := Config{MaxFlows: 100, EmbryonicTimeout: 5 * time.Second, TCPTimeout: time.Minute, UDPTimeout: 30 * time.Second, ClosedTimeout: 2 * time.Second}
	var got []expiry
	tab := NewTable(cfg, record(&got))
	tab.Packet(tcp("10.0.0.1", "3.7.35.10", 40001, 443, decode.TCPSyn, 0)) // embryonic
	tab.Packet(tcp("10.0.0.2", "3.7.35.10", 40002, 443, decode.TCPSyn, 0)) // becomes established
	tab.Packet(tcp("3.7.35.10", "10.0.0.2", 443, 40002, decode.TCPSyn|decode.TCPAck, 0))
	tab.Packet(tcp("10.0.0.2", "3.7.35.10", 40002, 443, decode.TCPAck, 0))
	tab.Packet(udp("10.0.0.3", "3.7.35.10", 40003, 8801, 0, 50)) // answered UDP
	tab.Packet(udp("3.7.35.10", "10.0.0.3", 8801, 40003, 0, 50))
	tab.Packet(tcp("10.0.0.4", "3.7.35.10", 40004, 443, decode.TCPSyn, 0)) // refused: closed class
	tab.Packet(tcp("3.7.35.10", "10.0.0.4", 443, 40004, decode.TCPRst|decode.TCPAck, 0))

	steps := []struct {
		at   time.Duration
		want []string
	}{
		{time.Second, nil},
		{3 * time.Second, []string{"10.0.0.4:40004"}},
		{6 * time.Second, []string{"10.0.0.1:40001"}},
		{31 * time.Second, []string{"10.0.0.3:40003"}},
		{61 * time.Second, []string{"10.0.0.2:40002"}},
	}
	for _, s := range steps {
		got = got[:0]
		tab.Advance(t0.Add(s.at))
		if len(got) != len(s.want) {
			t.Fatalf("at %s expired %v, want %v", s.at, got, s.want)
		}
		for i := range got {
			if got[i].client != s.want[i] || got[i].why != ExpireIdle {
				t.Errorf("at %s expired %v, want %v (idle)", s.at, got[i], s.want[i])
			}
		}
	}
	if tab.Len() != 0 {
		t.Errorf("%d flows left", tab.Len())
	}
}

func TestEvictsOldestWhenFull(t *testing.T) {
	var got []expiry
	tab := NewTable(Config{MaxFlows: 3, EmbryonicTimeout: time.Hour, TCPTimeout: time.Hour, UDPTimeout: time.Hour, ClosedTimeout: time.Hour}, record(&got))
	for i := range 3 {
		tab.Packet(udp("10.0.0.1", "3.7.35.10", uint16(40000+i), 8801, time.Duration(i)*time.Second, 10))
	}
	tab.Packet(udp("10.0.0.1", "3.7.35.10", 40000, 8801, 5*time.Second, 10)) // refresh the oldest
	tab.Packet(udp("10.0.0.1", "3.7.35.10", 40009, 8801, 6*time.Second, 10)) // must evict 40001
	if len(got) != 1 || got[0].client != "10.0.0.1:40001" || got[0].why != ExpireEvicted {
		t.Fatalf("evicted %v, want 10.0.0.1:40001", got)
	}
	if tab.Evicted != 1 || tab.Len() != 3 {
		t.Fatalf("evicted=%d len=%d", tab.Evicted, tab.Len())
	}
}

func TestFindQuoted(t *testing.T) {
	tab := NewTable(DefaultConfig(), nil)
	tab.Packet(udp("10.0.0.2", "3.7.35.10", 52000, 8801, 0, 100))
	f, d := tab.Find(decode.ProtoUDP, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("3.7.35.10"), 52000, 8801)
	if f == nil || d != ToServer {
		t.Fatalf("Find = %v, %d", f, d)
	}
	if f, _ := tab.Find(decode.ProtoTCP, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("3.7.35.10"), 52000, 8801); f != nil {
		t.Fatal("Find matched the wrong protocol")
	}
}

func TestFlushAndRecycle(t *testing.T) {
	var got []expiry
	tab := NewTable(DefaultConfig(), record(&got))
	tab.Packet(tcp("10.0.0.1", "3.7.35.10", 40001, 443, decode.TCPSyn, 0))
	tab.Flush(t0.Add(time.Second))
	if len(got) != 1 || got[0].why != ExpireFlush || tab.Len() != 0 {
		t.Fatalf("flush: %v, len %d", got, tab.Len())
	}
	f, _, created := tab.Packet(udp("10.0.0.9", "3.7.35.10", 40009, 8801, 0, 1))
	if !created || f.SynCount != 0 || f.Proto != decode.ProtoUDP || f.ext[0] != nil {
		t.Fatalf("recycled flow kept old state: %+v", f)
	}
}

func BenchmarkTablePacket(b *testing.B) {
	tab := NewTable(DefaultConfig(), nil)
	pkts := make([]*decode.Packet, 1024)
	for i := range pkts {
		pkts[i] = udp("10.0.0.1", "3.7.35.10", uint16(20000+i%256), 8801, time.Duration(i)*time.Millisecond, 200)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tab.Packet(pkts[i%len(pkts)])
	}
}

// TestIndexMatchesReference drives a table with a deterministic random mix
// and checks after every step that five-tuples find exactly the flow a plain
// map says is live.
//   - crowded: a small table (many hash collisions, constant eviction and
//     expiry, so backward-shift deletion runs all the time);
//   - growing: an index that starts at 4 slots and moves one old slot per
//     packet while it doubles, so lookups, inserts, evictions and expiry meet
//     entries in both indexes, and a doubling comes before the last one has
//     moved.
func TestIndexMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name               string
		maxFlows, universe int
		firstSlots, move   int
		checks             int // tuples Find checks per step (0: all)
		gapMS              int // packet time between steps: up to this many ms
	}{
		{"crowded", 48, 160, 4, moveSlotsPerPacket, 0, 300},
		{"growing", 2048, 6000, 4, 1, 64, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkIndex(t, Config{MaxFlows: c.maxFlows, EmbryonicTimeout: 3 * time.Second, TCPTimeout: 20 * time.Second, UDPTimeout: 10 * time.Second, ClosedTimeout: time.Second},
				c.universe, c.firstSlots, c.move, c.checks, c.gapMS)
		})
	}
}

func checkIndex(t *testing.T, cfg Config, universeSize, firstSlots, moveStep, checks, gapMS int) {
	live := map[Key]*Flow{}
	tab := newTable(cfg, func(f *Flow, _ time.Time, _ ExpireReason) {
		k := f.Key()
		if live[k] != f {
			t.Fatalf("expired %v, which the reference does not hold", k)
		}
		delete(live, k)
	}, firstSlots, moveStep)
	type tuple struct {
		proto        uint8
		a, b         netip.Addr
		aport, bport uint16
	}
	var universe []tuple
	for i := range universeSize {
		proto := uint8(decode.ProtoUDP)
		if i%3 == 0 {
			proto = decode.ProtoTCP
		}
		a := netip.AddrFrom4([4]byte{10, 0, byte(i / 7 >> 8), byte(i % 7)})
		switch {
		case i%5 == 0:
			a = netip.MustParseAddr("2001:db8::1")
		case i%4 == 0:
			// The same 16 bytes as a's IPv4 form, but IPv6: another flow.
			a = netip.AddrFrom16(a.As16())
		}
		universe = append(universe, tuple{proto, a, netip.AddrFrom4([4]byte{3, 7, 35, byte(i % 11)}), uint16(40000 + i%13 + i/1001*16), 8801})
	}
	rng := uint64(1)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	var at time.Duration
	flags := []uint8{decode.TCPSyn, decode.TCPSyn | decode.TCPAck, decode.TCPAck, decode.TCPFin | decode.TCPAck, decode.TCPRst}
	moving := 0
	for step := range 20000 {
		at += time.Duration(next(gapMS)) * time.Millisecond
		u := universe[next(len(universe))]
		src, dst, sport, dport := u.a, u.b, u.aport, u.bport
		if next(2) == 0 {
			src, dst, sport, dport = dst, src, dport, sport
		}
		p := &decode.Packet{Time: t0.Add(at), Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Proto: u.proto, TCPFlags: flags[next(len(flags))]}
		if next(50) == 0 {
			tab.Advance(p.Time)
		}
		f, _, created := tab.Packet(p)
		k, _ := KeyOf(u.proto, src, dst, sport, dport)
		if created {
			if live[k] != nil {
				t.Fatalf("step %d: created %v again while live", step, k)
			}
			live[k] = f
		} else if live[k] != f {
			t.Fatalf("step %d: packet found %p for %v, reference has %p", step, f, k, live[k])
		}
		if tab.Len() != len(live) || tab.Len() > cfg.MaxFlows {
			t.Fatalf("step %d: table holds %d, reference %d", step, tab.Len(), len(live))
		}
		if tab.old != nil {
			moving++
		}
		if n := indexEntries(tab); n != tab.Len() {
			t.Fatalf("step %d: the indexes hold %d entries for %d flows", step, n, tab.Len())
		}
		n := checks
		if n == 0 || step == 19999 {
			n = len(universe)
		}
		for i := range n {
			v := universe[i]
			if n < len(universe) {
				v = universe[next(len(universe))]
			}
			got, d := tab.Find(v.proto, v.a, v.b, v.aport, v.bport)
			k, _ := KeyOf(v.proto, v.a, v.b, v.aport, v.bport)
			if got != live[k] {
				t.Fatalf("step %d: Find(%v) = %p, reference %p", step, k, got, live[k])
			}
			if got != nil && (got.Client() == netip.AddrPortFrom(v.a, v.aport)) != (d == ToServer) {
				t.Fatalf("step %d: Find(%v) says direction %d, client is %v", step, k, d, got.Client())
			}
		}
	}
	if tab.Evicted == 0 {
		t.Fatal("the mix never filled the table: eviction untested")
	}
	if len(tab.slots) != indexSlots(cfg.MaxFlows) {
		t.Fatalf("index has %d slots at a full table, want %d", len(tab.slots), indexSlots(cfg.MaxFlows))
	}
	t.Logf("%d of 20000 steps while the index was moving", moving)
}

// indexEntries counts the entries of both indexes: one per flow, or an
// ended flow's entry stayed behind.
func indexEntries(tab *Table) int {
	n := 0
	for _, s := range tab.slots {
		if s != 0 {
			n++
		}
	}
	for _, s := range tab.old {
		if uint32(s) != 0 {
			n++
		}
	}
	return n
}

// TestIndexGrowsWithFlowsHeld: the index of a table allowed 65,536 flows
// starts at 8 KiB and doubles as flows arrive, staying at most half full;
// flows that leave do not make it grow again.
func TestIndexGrowsWithFlowsHeld(t *testing.T) {
	cfg := Config{MaxFlows: 1 << 16, EmbryonicTimeout: time.Second, TCPTimeout: time.Hour, UDPTimeout: time.Hour, ClosedTimeout: time.Hour}
	tab := NewTable(cfg, nil)
	if len(tab.slots) != firstIndexSlots {
		t.Fatalf("new table: %d index slots, want %d", len(tab.slots), firstIndexSlots)
	}
	p := &decode.Packet{IPVersion: 4, Proto: decode.ProtoUDP}
	for round := range 3 {
		for i := range 5000 {
			nthFlow(p, i, t0.Add(time.Duration(round)*time.Hour))
			if _, _, created := tab.Packet(p); !created {
				t.Fatalf("round %d: flow %d found before it was made", round, i)
			}
			if 2*tab.Len() > len(tab.slots) {
				t.Fatalf("round %d: %d flows in %d slots: more than half full", round, tab.Len(), len(tab.slots))
			}
		}
		if len(tab.slots) != 16384 {
			t.Fatalf("round %d: 5,000 flows in %d slots, want 16384", round, len(tab.slots))
		}
		for i := range 5000 {
			nthFlow(p, i, t0)
			if f, _ := tab.Find(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort); f == nil {
				t.Fatalf("round %d: flow %d lost when the index grew", round, i)
			}
		}
		tab.Advance(t0.Add(time.Duration(round)*time.Hour + time.Minute)) // every flow is embryonic: all expire
		if tab.Len() != 0 {
			t.Fatalf("round %d: %d flows left after their timeout", round, tab.Len())
		}
	}
}

// TestHashResistsChosenTuples: the flow hash is keyed, so tuples a sender
// picks to collide under an unkeyed symmetric hash (one address to itself
// with ports of one sum, a port change offset by address bits) spread like
// any others, and each direction of a flow hashes alike.
func TestHashResistsChosenTuples(t *testing.T) {
	tab := NewTable(DefaultConfig(), nil)
	a := netip.MustParseAddr("2001:db8::1")
	seen := map[uint32]bool{}
	var n int
	add := func(src, dst netip.Addr, sport, dport uint16) {
		var k, r key
		k.set(decode.ProtoUDP, src, dst, sport, dport)
		r.set(decode.ProtoUDP, dst, src, dport, sport)
		h := tab.hash(&k)
		if h != tab.hash(&r) {
			t.Fatalf("%v:%d-%v:%d hashes differently each way", src, sport, dst, dport)
		}
		seen[h] = true
		n++
	}
	for p := range uint16(2048) {
		add(a, a, 1000+p, 9000-p) // one address, ports of one sum
		b := a.As16()
		b[6], b[7] = byte(p>>8), byte(p) // address bits where a weak hash puts the port
		add(netip.AddrFrom16(b), a, 443-p, 8801)
	}
	// 4,096 random 32-bit values collide about once in 500 draws; 8 would
	// mean structure.
	if len(seen) < n-8 {
		t.Fatalf("%d chosen tuples gave only %d distinct hashes", n, len(seen))
	}
}

// TestFlowsStayPutAndNoAllocation: a *Flow handed out stays the same flow
// while the table grows past several chunks, and once the table has reached
// its size, creating and evicting flows allocates nothing.
func TestFlowsStayPutAndNoAllocation(t *testing.T) {
	const n = 3*chunkFlows + 5
	tab := NewTable(Config{MaxFlows: n, EmbryonicTimeout: time.Hour, TCPTimeout: time.Hour, UDPTimeout: time.Hour, ClosedTimeout: time.Hour}, nil)
	first, _, _ := tab.Packet(udp("10.0.0.1", "3.7.35.10", 1, 8801, 0, 1))
	p := udp("10.0.0.1", "3.7.35.10", 1, 8801, 0, 1)
	for i := 2; i <= n; i++ {
		p.Src = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		p.Time = t0.Add(time.Duration(i))
		tab.Packet(p)
	}
	if f, _ := tab.Find(decode.ProtoUDP, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("3.7.35.10"), 1, 8801); f != first {
		t.Fatalf("the first flow moved or vanished: %p, was %p", f, first)
	}
	i := n
	allocs := testing.AllocsPerRun(5000, func() {
		i++
		p.Src = netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		p.Time = t0.Add(time.Duration(i))
		tab.Packet(p) // a new flow: evicts the oldest
	})
	if allocs != 0 || tab.Len() != n {
		t.Fatalf("%.1f allocations per new flow in a full table, len %d", allocs, tab.Len())
	}
}
