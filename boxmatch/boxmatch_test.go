package boxmatch

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
)

var (
	t0      = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	natAddr = netip.MustParseAddr("198.51.100.7")
)

func boxCfg() config.BoxConfig {
	return config.BoxConfig{Name: "fw1", Window: 2 * time.Second, TableBytes: 1 << 20, MinDrops: 2}
}

// nat is what a NAT with sequence randomisation makes of a packet on its
// outside: the client's address and port change, sequence and
// acknowledgement numbers are shifted; the rest survives.
func nat(p decode.Packet, delay time.Duration) decode.Packet {
	const port, shift = 61001, 0x55555555
	p.Time = p.Time.Add(delay)
	p.TTL--
	if p.SrcPort != 8801 && p.SrcPort != 8802 && p.SrcPort != 443 {
		p.Src, p.SrcPort, p.Seq = natAddr, port, p.Seq+shift
	} else {
		p.Dst, p.DstPort, p.Ack = natAddr, port, p.Ack+shift
	}
	return p
}

type recorder struct{ v []Verdict }

func (r *recorder) on(v Verdict) { r.v = append(r.v, v) }

func newBox(t *testing.T, cfg config.BoxConfig) (*Matcher, *recorder, *Metrics) {
	t.Helper()
	r := &recorder{}
	m := NewMetrics()
	return New(cfg, m, r.on), r, m
}

func packets(m *Metrics, result string) int {
	return int(testutil.ToFloat64(m.packets.WithLabelValues("fw1", result)))
}

// A connection through the NAT, each packet seen on both sides: all matched,
// no verdict, whichever side is read first.
func TestMatchedAcrossNAT(t *testing.T) {
	x, r, m := newBox(t, boxCfg())
	c := newTCP("10.0.0.5:50000", "170.114.0.10:443")
	in := []decode.Packet{c.SYN(t0), c.SYNACK(t0.Add(30 * time.Millisecond)), c.ACK(t0.Add(31*time.Millisecond), true),
		c.Data(t0.Add(32*time.Millisecond), true, []byte("hello zoom")), c.Data(t0.Add(60*time.Millisecond), false, []byte("welcome"))}
	for i, p := range in {
		toServer := p.DstPort == 443
		if toServer {
			x.Observe(Inside, &p, true, 1)
			o := nat(p, time.Millisecond)
			x.Observe(Outside, &o, true, 1)
		} else {
			// The answer: outside first, then inside; for one, the inside
			// reader runs ahead of the outside one.
			o := nat(p, -time.Millisecond)
			if i == 4 {
				x.Observe(Inside, &p, false, 1)
				x.Observe(Outside, &o, false, 1)
			} else {
				x.Observe(Outside, &o, false, 1)
				x.Observe(Inside, &p, false, 1)
			}
		}
	}
	x.Flush()
	if got := packets(m, ResultMatched); got != len(in) || len(r.v) != 0 {
		t.Errorf("matched %d of %d, verdicts %+v", got, len(in), r.v)
	}
}

// SYNs seen inside and never outside: the box dropped the client's packets.
// The verdict waits for min_drops and for both sides to pass the window.
func TestDroppedOutbound(t *testing.T) {
	x, r, m := newBox(t, boxCfg())
	c := newTCP("10.0.0.5:50000", "170.114.0.10:8801")
	for _, d := range []time.Duration{0, time.Second, 3 * time.Second} {
		p := c.SYN(t0.Add(d))
		x.Observe(Inside, &p, true, 3)
	}
	// The outside reader lags: nothing is judged, however far the inside ran.
	x.Seen(Inside, t0.Add(10*time.Second))
	x.Seen(Outside, t0.Add(2500*time.Millisecond))
	if len(r.v) != 0 {
		t.Fatalf("a verdict on one dropped SYN: %+v", r.v)
	}
	x.Seen(Outside, t0.Add(3*time.Second+time.Millisecond))
	if len(r.v) != 1 {
		t.Fatalf("verdicts %+v", r.v)
	}
	v := r.v[0]
	if v.Kind != VerdictDroppedOutbound || v.Box != "fw1" || v.SeenOn != Inside || v.Client != c.client || v.Server != c.server ||
		v.Packets != 2 || !v.SYNOnly || v.Service != 3 || !v.Time.Equal(t0) || v.Proto != decode.ProtoTCP {
		t.Errorf("verdict %+v", v)
	}
	x.Flush()
	if len(r.v) != 1 || packets(m, ResultDroppedOutbound) != 3 {
		t.Errorf("after flush: %d verdicts, %d dropped", len(r.v), packets(m, ResultDroppedOutbound))
	}
}

// UDP answers seen outside and never inside: the box dropped Zoom's answers.
func TestDroppedInbound(t *testing.T) {
	x, r, _ := newBox(t, boxCfg())
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	for i := range 3 {
		ts := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		q := c.Data(ts, true, []byte{1, 2, 3, byte(i)})
		x.Observe(Inside, &q, true, 2)
		o := nat(q, time.Millisecond)
		x.Observe(Outside, &o, true, 2)
		a := nat(c.Data(ts.Add(20*time.Millisecond), false, []byte{9, 9, byte(i)}), 0)
		x.Observe(Outside, &a, false, 2)
	}
	x.Flush()
	if len(r.v) != 1 || r.v[0].Kind != VerdictDroppedInbound || r.v[0].SeenOn != Outside || r.v[0].Client.Addr() != natAddr || r.v[0].Packets != 2 {
		t.Fatalf("verdicts %+v", r.v)
	}
}

// A SYN the box refuses with a reset: the SYN never leaves, the reset is
// seen only inside.
func TestResetByBox(t *testing.T) {
	x, r, m := newBox(t, boxCfg())
	c := newTCP("10.0.0.5:50000", "170.114.0.10:8802")
	for i := range 2 {
		ts := t0.Add(time.Duration(i) * time.Second)
		p := c.SYN(ts)
		x.Observe(Inside, &p, true, 3)
		rst := c.RST(ts.Add(time.Millisecond), false)
		x.Observe(Inside, &rst, false, 3)
	}
	x.Flush()
	if len(r.v) != 1 || r.v[0].Kind != VerdictResetByBox || !r.v[0].SYNOnly {
		t.Fatalf("verdicts %+v", r.v)
	}
	if packets(m, ResultMadeByBox) != 2 || packets(m, ResultDroppedOutbound) != 2 {
		t.Errorf("made %d dropped %d", packets(m, ResultMadeByBox), packets(m, ResultDroppedOutbound))
	}
}

// An ICMP error the box made: seen inside only, quoting the client's packet.
// One from a router beyond the box passes both sides and is matched.
func TestICMPByBox(t *testing.T) {
	x, r, m := newBox(t, boxCfg())
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	for i := range 2 {
		ts := t0.Add(time.Duration(i) * time.Second)
		q := c.Data(ts, true, []byte{1, byte(i)})
		x.Observe(Inside, &q, true, 2)
		u := unreachable(ts.Add(time.Millisecond), "10.0.0.1", 13, q)
		x.Observe(Inside, &u, false, 2)
	}
	beyond := newUDP("10.0.0.6:50000", "170.114.0.11:8801")
	q := beyond.Data(t0, true, []byte{7})
	x.Observe(Inside, &q, true, 2)
	o := nat(q, time.Millisecond)
	x.Observe(Outside, &o, true, 2)
	uo := unreachable(t0.Add(20*time.Millisecond), "203.0.113.1", 13, o)
	x.Observe(Outside, &uo, false, 2)
	ui := unreachable(t0.Add(21*time.Millisecond), "203.0.113.1", 13, q)
	x.Observe(Inside, &ui, false, 2)
	x.Flush()
	if len(r.v) != 1 || r.v[0].Kind != VerdictICMPByBox || r.v[0].ICMPCode != 13 || r.v[0].ICMPSender != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("verdicts %+v", r.v)
	}
	if got := packets(m, ResultMatched); got != 2 {
		t.Errorf("matched %d, want the datagram and the router's error", got)
	}
}

// match_ip_id: a box that rewrites the IP ID then matches nothing; without
// it, the same packets match.
func TestMatchIPID(t *testing.T) {
	for _, match := range []bool{false, true} {
		cfg := boxCfg()
		cfg.MatchIPID = match
		x, r, m := newBox(t, cfg)
		c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
		for i := range 3 {
			q := c.Data(t0.Add(time.Duration(i)*time.Second), true, []byte{1, byte(i)})
			x.Observe(Inside, &q, true, 2)
			o := nat(q, time.Millisecond)
			o.IPID ^= 0x8000
			x.Observe(Outside, &o, true, 2)
		}
		x.Flush()
		if match != (len(r.v) == 1) || match != (packets(m, ResultMatched) == 0) {
			t.Errorf("match_ip_id %v: verdicts %+v, matched %d", match, r.v, packets(m, ResultMatched))
		}
	}
}

// A full table gives up its oldest packet (counted), never grows, and the
// memory stays within table_bytes.
func TestTableBound(t *testing.T) {
	cfg := boxCfg()
	cfg.TableBytes = 64 << 10
	x, r, m := newBox(t, cfg)
	if x.TableBytes() > cfg.TableBytes {
		t.Fatalf("table %d bytes, bound %d", x.TableBytes(), cfg.TableBytes)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("fw1")); int(got) != x.TableBytes() {
		t.Errorf("zoomprobe_box_table_bytes %v, table %d", got, x.TableBytes())
	}
	n := len(x.ring)
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	for i := range 2 * n {
		q := c.Data(t0.Add(time.Duration(i)*time.Microsecond), true, []byte{byte(i), byte(i >> 8)})
		x.Observe(Inside, &q, true, 2)
	}
	if packets(m, ResultEvicted) != n || len(x.ring) != n || len(r.v) != 0 {
		t.Errorf("evicted %d of %d, ring %d, verdicts %d", packets(m, ResultEvicted), 2*n, len(x.ring), len(r.v))
	}
}

// The sizes table_bytes is divided by are the real ones.
func TestEntrySizes(t *testing.T) {
	if s := int(unsafe.Sizeof(entry{})) + 4; s != entryBytes {
		t.Errorf("entry takes %d bytes, entryBytes says %d", s, entryBytes)
	}
	if s := int(unsafe.Sizeof(conv{})) + 4; s != convBytes {
		t.Errorf("conv takes %d bytes, convBytes says %d", s, convBytes)
	}
}

// Conversations beyond the table's share are replaced oldest first, counted.
func TestConversationEviction(t *testing.T) {
	cfg := boxCfg()
	cfg.TableBytes = 64 << 10
	cfg.MinDrops = 100
	x, _, m := newBox(t, cfg)
	nc := len(x.convs)
	for i := range nc + 5 {
		c := newUDP(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5000).String(), "170.114.0.10:8801")
		q := c.Data(t0, true, []byte{1})
		x.Observe(Inside, &q, true, 2)
	}
	x.Flush()
	if got := testutil.ToFloat64(m.evictions.WithLabelValues("fw1")); got != 5 {
		t.Errorf("evictions %v, want 5", got)
	}
}

// Observe allocates nothing: a matched pair, and a drop with its verdict.
func TestObserveAllocatesNothing(t *testing.T) {
	x, _, _ := newBox(t, boxCfg())
	c := newTCP("10.0.0.5:50000", "170.114.0.10:443")
	in := c.Data(t0, true, []byte("0123456789abcdef"))
	out := nat(in, time.Millisecond)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		in.Time, out.Time = t0.Add(time.Duration(i)*time.Millisecond), t0.Add(time.Duration(i)*time.Millisecond+time.Microsecond)
		x.Observe(Inside, &in, true, 1)
		x.Observe(Outside, &out, true, 1)
		if i%3 == 0 {
			x.Observe(Inside, &in, true, 1) // never seen outside: dropped later
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per pair", allocs)
	}
}

// Two readers, one per side, each as fast as it goes (files): Wait keeps
// them within a window of each other, so a small table holds everything
// waiting and every packet is matched.
func TestTwoReadersApart(t *testing.T) {
	cfg := boxCfg()
	cfg.TableBytes = 256 << 10
	x, r, m := newBox(t, cfg)
	const n = 20000 // 200 s of packet time at 100 packets a second
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	var in, out []decode.Packet
	for i := range n {
		p := c.Data(t0.Add(time.Duration(i)*10*time.Millisecond), i%2 == 0, []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		in = append(in, p)
		out = append(out, nat(p, 0))
	}
	var wg sync.WaitGroup
	for side, ps := range [][]decode.Packet{in, out} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ps {
				p := &ps[i]
				x.Seen(Side(side), p.Time)
				x.Wait(context.Background(), Side(side), p.Time)
				x.Observe(Side(side), p, p.DstPort == 8801, 2)
			}
			x.Done(Side(side))
		}()
	}
	wg.Wait()
	x.Flush()
	if packets(m, ResultMatched) != n || packets(m, ResultEvicted) != 0 || len(r.v) != 0 {
		t.Errorf("matched %d of %d, evicted %d, verdicts %d (table of %d)", packets(m, ResultMatched), n,
			packets(m, ResultEvicted), len(r.v), len(x.ring))
	}
}

// The heap a box takes is its table_bytes, measured: New allocates the
// whole table, and a full table of traffic adds nothing.
func TestMemoryBound(t *testing.T) {
	cfg := boxCfg()
	cfg.TableBytes = 8 << 20
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	x := New(cfg, nil, nil)
	made := heap()
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	for i := range 2 * len(x.ring) {
		q := c.Data(t0.Add(time.Duration(i)*time.Microsecond), true, []byte{byte(i), byte(i >> 8), byte(i >> 16)})
		x.Observe(Inside, &q, true, 2)
	}
	after := heap()
	runtime.KeepAlive(x)
	grown := int64(made) - int64(before)
	t.Logf("table_bytes %d: heap +%d at New, +%d after %d packets", cfg.TableBytes, grown, int64(after)-int64(made), 2*len(x.ring))
	if grown > int64(cfg.TableBytes)+64<<10 || grown < int64(cfg.TableBytes)*9/10 {
		t.Errorf("New took %d bytes of heap for table_bytes %d", grown, cfg.TableBytes)
	}
	if int64(after)-int64(made) > 256<<10 {
		t.Errorf("a full table of traffic grew the heap by %d bytes", int64(after)-int64(made))
	}
}

// Verdicts are handed over after the lock is released: a slow receiver
// (the event log) never holds up the other side's reader.
func TestVerdictOutsideLock(t *testing.T) {
	var x *Matcher
	calls := 0
	x = New(boxCfg(), nil, func(Verdict) {
		calls++
		if !x.mu.TryLock() {
			t.Error("verdict handed over with the matcher locked")
			return
		}
		x.mu.Unlock()
	})
	c := newTCP("10.0.0.5:50000", "170.114.0.10:8801")
	for i := range 3 {
		p := c.SYN(t0.Add(time.Duration(i) * time.Second))
		x.Observe(Inside, &p, true, 3)
	}
	x.Seen(Outside, t0.Add(10*time.Second))
	x.Seen(Inside, t0.Add(10*time.Second))
	if calls != 1 {
		t.Errorf("%d verdicts, want 1", calls)
	}
}

// Packets the capture of one side dropped are not the box's drops: a side
// that reports its drop counter holds judgement back until the counter has
// been read past a packet's window, and an unmatched packet whose copy the
// other side may have lost is counted as capture_loss, with no verdict.
func TestCaptureLossIsNotTheBoxs(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name         string
		outsideDrops uint64 // the outside counter after the SYNs
		insideDrops  uint64 // the inside counter after the SYNs (the side that saw them)
		wantVerdicts int
		wantResult   string
	}{
		{"no capture loss: the box dropped them", 7, 3, 1, ResultDroppedOutbound},
		{"the outside capture lost packets meanwhile", 9, 3, 0, ResultCaptureLoss},
		{"loss on the side that saw them does not excuse the box", 7, 5, 1, ResultDroppedOutbound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, r, m := newBox(t, boxCfg())
			x.CaptureDrops(Inside, at(0), 3)
			x.CaptureDrops(Outside, at(0), 7) // drops before the SYNs: not counted against them
			synsInside(x, at(100), at(1100), at(3100))
			x.Seen(Inside, at(9000))
			x.Seen(Outside, at(9000))
			if len(r.v) != 0 {
				t.Fatalf("judged before the outside counter was read past the window: %+v", r.v)
			}
			x.CaptureDrops(Inside, at(6000), tc.insideDrops)
			x.CaptureDrops(Outside, at(6000), tc.outsideDrops)
			if len(r.v) != tc.wantVerdicts {
				t.Fatalf("%d verdicts, want %d: %+v", len(r.v), tc.wantVerdicts, r.v)
			}
			x.Flush()
			if n := packets(m, tc.wantResult); n != 3 {
				t.Errorf("%s = %d, want 3 (dropped_outbound %d, capture_loss %d)", tc.wantResult, n,
					packets(m, ResultDroppedOutbound), packets(m, ResultCaptureLoss))
			}
		})
	}
	t.Run("a counter that cannot be read", func(t *testing.T) {
		x, r, m := newBox(t, boxCfg())
		x.CaptureDrops(Inside, at(0), 0)
		x.CaptureDrops(Outside, at(0), 0)
		synsInside(x, at(100), at(1100))
		x.Seen(Inside, at(9000))
		x.Seen(Outside, at(9000))
		x.CaptureDrops(Inside, at(6000), 0)
		x.CaptureUnknown(Outside, at(6000)) // judged, not blamed on the box
		if len(r.v) != 0 || packets(m, ResultCaptureLoss) != 2 {
			t.Fatalf("verdicts %+v, capture_loss %d", r.v, packets(m, ResultCaptureLoss))
		}
	})
	t.Run("loss long before the packet's window", func(t *testing.T) {
		x, r, m := newBox(t, boxCfg())
		x.CaptureDrops(Inside, at(0), 0)
		x.CaptureDrops(Outside, at(0), 0)
		x.CaptureDrops(Outside, at(1000), 40) // lost in (0 s, 1 s]
		x.CaptureDrops(Outside, at(2000), 40)
		x.CaptureDrops(Outside, at(30000), 40)
		x.CaptureDrops(Inside, at(30000), 0)
		synsInside(x, at(10000), at(11000))
		x.Seen(Inside, at(20000))
		x.Seen(Outside, at(20000))
		if len(r.v) != 1 || packets(m, ResultCaptureLoss) != 0 {
			t.Fatalf("verdicts %+v, capture_loss %d", r.v, packets(m, ResultCaptureLoss))
		}
	})
}

// synsInside shows the box a client's SYNs on its inside, none outside.
func synsInside(x *Matcher, ts ...time.Time) {
	c := newTCP("10.0.0.5:50000", "170.114.0.10:8801")
	for _, t := range ts {
		p := c.SYN(t)
		x.Observe(Inside, &p, true, 3)
	}
}
