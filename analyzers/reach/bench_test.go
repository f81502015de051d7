package reach_test

import (
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
)

// BenchmarkPacketEstablished is the per-packet path: data both ways on an
// established, watched TLS flow.
func BenchmarkPacketEstablished(b *testing.B) {
	e := newEnv(b)
	c := reachtest.NewTCP(client+":40001", mmr+":443")
	e.h.Feed(handshake(c, 0)...)
	e.h.Feed(c.Data(at(30*time.Millisecond), true, reachtest.ClientHello("zoomfrn99mmr.zoom.us")))
	rec := append([]byte{0x17, 0x03, 0x03, 0x05, 0x00}, make([]byte, 1280)...)
	ps := []decode.Packet{c.Data(at(time.Second), false, rec), c.ACK(at(time.Second), true), c.Data(at(time.Second), true, rec)}
	f, _ := e.h.Table.Find(decode.ProtoTCP, ps[0].Src, ps[0].Dst, ps[0].SrcPort, ps[0].DstPort)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := &ps[i%3]
		e.a.Packet(f, p, f.DirOf(p.Src, p.SrcPort))
	}
}

// BenchmarkPacketUDPMedia is the per-packet path of an answered Zoom media
// flow: each client datagram is hashed and looked up among the client's
// earlier ones (client-side drop detection).
func BenchmarkPacketUDPMedia(b *testing.B) {
	e := newEnv(b)
	u := reachtest.NewUDP(client+":40001", mmr+":8801")
	setup := append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...)
	e.h.Feed(u.Data(at(0), true, setup), u.Data(at(20*time.Millisecond), false, append([]byte{0x02}, setup[1:]...)))
	var ps [4]decode.Packet
	for i := range ps {
		media := append([]byte{0x05, 0x00, byte(i), 0, 0, 0, 1, 0}, make([]byte, 200)...)
		ps[i] = u.Data(at(time.Second), i%2 == 0, media)
	}
	f, _ := e.h.Table.Find(decode.ProtoUDP, ps[0].Src, ps[0].Dst, ps[0].SrcPort, ps[0].DstPort)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := &ps[i%4]
		e.a.Packet(f, p, f.DirOf(p.Src, p.SrcPort))
	}
}

// BenchmarkFlowLifecycle is a whole short flow (handshake, data, close,
// expiry) with state recycled: steady state allocates nothing in the analyzer.
func BenchmarkFlowLifecycle(b *testing.B) {
	e := newEnv(b)
	rec := append([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, make([]byte, 64)...)
	c := reachtest.NewTCP(client+":40001", mmr+":443")
	ps := append(handshake(c, 0), c.Data(at(30*time.Millisecond), true, rec), c.Data(at(40*time.Millisecond), false, rec),
		c.FIN(at(50*time.Millisecond), true), c.FIN(at(60*time.Millisecond), false))
	cur := make([]decode.Packet, len(ps))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		off := time.Duration(i) * time.Minute
		copy(cur, ps)
		for j := range cur {
			cur[j].Time = cur[j].Time.Add(off)
		}
		e.h.Feed(cur...)
		e.h.FlushAt(at(off + time.Second))
	}
}

// FuzzICMP feeds ICMP errors with arbitrary type, code, sender and quoted
// header against flows in every state; nothing may panic, and each flow gives
// at most one blocked or reset finding.
func FuzzICMP(f *testing.F) {
	f.Add(uint8(3), uint8(13), uint32(0), uint16(0), byte(0), true)
	f.Add(uint8(1), uint8(1), uint32(1<<31), uint16(1), byte(1), false)
	f.Add(uint8(3), uint8(4), uint32(7), uint16(0xffff), byte(2), true)
	f.Add(uint8(11), uint8(0), uint32(0), uint16(0), byte(3), true)
	f.Fuzz(func(t *testing.T, typ, code uint8, seqDelta uint32, portDelta uint16, state byte, v4 bool) {
		e := newEnv(t)
		cli, srv, sender := client+":40001", mmr+":8801", router
		if !v4 {
			cli, srv, sender = "["+client6+"]:40001", "["+mmr6+"]:8801", "2001:db8:10::1"
		}
		var c *reachtest.Conn
		var q decode.Packet
		var ps []decode.Packet
		switch state % 4 {
		case 0: // SYN only
			c = reachtest.NewTCP(cli, srv)
			q = c.SYN(at(0))
			ps = []decode.Packet{q}
		case 1: // established
			c = reachtest.NewTCP(cli, srv)
			ps = handshake(c, 0)
			q = c.Data(at(time.Second), true, []byte("abc"))
			ps = append(ps, q)
		case 2: // UDP
			c = reachtest.NewUDP(cli, srv)
			q = c.Data(at(0), true, []byte{1, 0, 2})
			ps = []decode.Packet{q}
		default: // reply direction quoted
			c = reachtest.NewTCP(cli, srv)
			ps = handshake(c, 0)
			q = ps[1]
		}
		q.Seq += seqDelta
		q.DstPort += portDelta
		icmp := reachtest.Unreachable(at(2*time.Second), sender, 64, code, q)
		icmp.ICMP.Type = typ
		ps = append(ps, icmp, icmp)
		e.h.Feed(ps...)
		e.h.FlushAt(at(time.Minute))
		if n := len(e.sink.All()); n > 1 {
			t.Fatalf("%d findings for one flow: %v", n, summary(e.sink.All()))
		}
	})
}
