package evidence

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

var (
	client = netip.MustParseAddrPort("10.0.0.2:50000")
	server = netip.MustParseAddrPort("198.51.100.7:443")
	t0     = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
)

// conn builds real frames of one TCP or UDP conversation and decodes them
// with zoomprobe's decoder, as the engine does.
type conn struct {
	t      testing.TB
	f      flow.Flow
	dec    decode.Decoder
	n      int
	frames [][]byte
}

func newConn(t testing.TB, proto uint8, c, s netip.AddrPort) *conn {
	return &conn{t: t, f: *flow.New(proto, c, s, time.Time{})}
}

func (c *conn) frame(d flow.Dir, flags uint8, payload []byte) []byte {
	src, dst := c.f.Client(), c.f.Server()
	if d == flow.ToClient {
		src, dst = dst, src
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	var l4 gopacket.SerializableLayer
	if c.f.Proto == decode.ProtoTCP {
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: uint32(1000 + c.n*1500), Window: 64240,
			SYN: flags&decode.TCPSyn != 0, ACK: flags&decode.TCPAck != 0, RST: flags&decode.TCPRst != 0, FIN: flags&decode.TCPFin != 0, PSH: len(payload) > 0}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else {
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// send shows r one packet of the conversation, as a worker does.
func (c *conn) send(r *Recorder, d flow.Dir, flags uint8, payload []byte) *decode.Packet {
	fr := c.frame(d, flags, payload)
	c.frames = append(c.frames, fr)
	var p decode.Packet
	if err := c.dec.Decode(fr, decode.LinkEthernet, t0.Add(time.Duration(c.n)*time.Millisecond), len(fr), &p); err != nil {
		c.t.Fatal(err)
	}
	c.n++
	c.f.Packets[d]++
	r.Packet(&c.f, &p, d)
	return &p
}

func record(typ byte, n int) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	return append(b, bytes.Repeat([]byte{typ}, n)...)
}

func testRecorder(buffer int) *Recorder {
	return NewRecorder(Config{BufferBytes: buffer, MaxPackets: 32, MaxBytes: 32 << 10}, nil)
}

const (
	hdrLen   = 14 + 20 + 20 // Ethernet, IPv4, TCP without options
	minFrame = 60           // a bare TCP header's frame, padded to Ethernet's minimum
)

// A handshake is kept whole across chunks; application data is cut to its
// headers, even when it shares a segment with a handshake record.
func TestRecorderKeepsHandshakeNotApplicationData(t *testing.T) {
	r := testRecorder(64 << 10)
	c := newConn(t, decode.ProtoTCP, client, server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	c.send(r, flow.ToClient, decode.TCPSyn|decode.TCPAck, nil)
	c.send(r, flow.ToServer, decode.TCPAck, nil)
	hello := record(0x16, 600)
	c.send(r, flow.ToServer, decode.TCPAck, hello)
	flight := record(0x16, 2900) // split over two segments
	c.send(r, flow.ToClient, decode.TCPAck, flight[:1460])
	c.send(r, flow.ToClient, decode.TCPAck, flight[1460:])
	mixed := append(record(0x14, 1), record(0x17, 100)...) // ChangeCipherSpec, then data
	c.send(r, flow.ToServer, decode.TCPAck, mixed)
	c.send(r, flow.ToServer, decode.TCPAck, record(0x15, 2)) // an encrypted alert after data: not kept either
	pkts, st := r.Packets(&c.f)
	if st != (Status{}) {
		t.Errorf("status %+v", st)
	}
	want := []int{minFrame, minFrame, minFrame, hdrLen + len(hello), hdrLen + 1460, hdrLen + len(flight) - 1460, hdrLen + 6, hdrLen}
	if len(pkts) != len(want) {
		t.Fatalf("%d packets, want %d", len(pkts), len(want))
	}
	for i, p := range pkts {
		if len(p.Data) != want[i] {
			t.Errorf("packet %d: %d bytes kept, want %d", i, len(p.Data), want[i])
		}
		if !bytes.Equal(p.Data, c.frames[i][:len(p.Data)]) {
			t.Errorf("packet %d: bytes differ from the frame", i)
		}
		if p.WireLen != len(c.frames[i]) || p.Link != decode.LinkEthernet || !p.Time.Equal(t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Errorf("packet %d: wire %d link %v time %v", i, p.WireLen, p.Link, p.Time)
		}
		if bytes.Contains(p.Data, []byte{0x17, 0x17, 0x17}) {
			t.Errorf("packet %d keeps application data", i)
		}
	}
	if r.InUse() < 2*ChunkSize {
		t.Errorf("pool in use %d: the chain should span chunks", r.InUse())
	}
	r.Release(&c.f)
	if r.InUse() != 0 || c.f.Evidence != 0 {
		t.Errorf("after release: %d bytes in use, handle %d", r.InUse(), c.f.Evidence)
	}
}

// Once a flow carries data both ways its handshake is let go; a later reset
// is still kept.
func TestRecorderSettles(t *testing.T) {
	r := testRecorder(64 << 10)
	c := newConn(t, decode.ProtoTCP, client, server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	c.send(r, flow.ToServer, decode.TCPAck, record(0x16, 300))
	for range 3 {
		c.send(r, flow.ToServer, decode.TCPAck, record(0x17, 50))
		c.send(r, flow.ToClient, decode.TCPAck, record(0x17, 50))
	}
	if r.InUse() != 0 {
		t.Errorf("settled flow holds %d bytes", r.InUse())
	}
	c.send(r, flow.ToClient, decode.TCPAck, record(0x17, 50))
	c.send(r, flow.ToClient, decode.TCPRst, nil)
	pkts, st := r.Packets(&c.f)
	if !st.Settled || len(pkts) != 1 || len(pkts[0].Data) != minFrame {
		t.Fatalf("after settling: %d packets, status %+v", len(pkts), st)
	}
	r.Release(&c.f)
	if r.InUse() != 0 {
		t.Errorf("%d bytes in use after release", r.InUse())
	}
}

// The per-flow packet cap leaves room for the resets and ICMP errors that
// come last.
func TestRecorderCapsKeepControlPackets(t *testing.T) {
	r := testRecorder(256 << 10)
	c := newConn(t, decode.ProtoTCP, client, server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	for range 60 {
		c.send(r, flow.ToServer, decode.TCPAck, nil)
	}
	c.send(r, flow.ToClient, decode.TCPRst|decode.TCPAck, nil)
	pkts, st := r.Packets(&c.f)
	if !st.Capped {
		t.Error("not marked capped")
	}
	if len(pkts) != 32-reservePackets+1 {
		t.Errorf("%d packets, want %d", len(pkts), 32-reservePackets+1)
	}
	var last decode.Packet
	var dec decode.Decoder
	if err := dec.Decode(pkts[len(pkts)-1].Data, decode.LinkEthernet, t0, 0, &last); err != nil || last.TCPFlags&decode.TCPRst == 0 {
		t.Errorf("last packet kept is not the reset (%v)", err)
	}
	if r.stats.Capped.Load() == 0 {
		t.Error("capped packets not counted")
	}
	// Bytes: a handshake larger than the cap is cut, the reset still fits.
	r2 := NewRecorder(Config{BufferBytes: 256 << 10, MaxPackets: 32, MaxBytes: 4096}, nil)
	c2 := newConn(t, decode.ProtoTCP, client, server)
	for range 4 {
		c2.send(r2, flow.ToClient, decode.TCPAck, record(0x16, 1400))
	}
	c2.send(r2, flow.ToClient, decode.TCPRst, nil)
	pkts, st = r2.Packets(&c2.f)
	total := 0
	for _, p := range pkts {
		total += recHeader + len(p.Data)
	}
	if !st.Capped || total > 4096 || len(pkts) < 2 {
		t.Errorf("byte cap: %d packets, %d bytes, status %+v", len(pkts), total, st)
	}
}

// A full pool costs the new flow its evidence, counted; the chunks come back
// when the flows end.
func TestRecorderPoolExhausted(t *testing.T) {
	r := testRecorder(2 * ChunkSize)
	a := newConn(t, decode.ProtoTCP, client, server)
	a.send(r, flow.ToServer, decode.TCPAck, record(0x16, 800)) // two chunks
	b := newConn(t, decode.ProtoTCP, netip.MustParseAddrPort("10.0.0.3:50001"), server)
	b.send(r, flow.ToServer, decode.TCPSyn, nil)
	if r.stats.PoolExhausted.Load() != 1 {
		t.Errorf("exhausted = %d", r.stats.PoolExhausted.Load())
	}
	if pkts, st := r.Packets(&b.f); len(pkts) != 0 {
		t.Errorf("flow b kept %d packets with a full pool (%+v)", len(pkts), st)
	}
	a.send(r, flow.ToServer, decode.TCPAck, record(0x16, 800))
	if _, st := r.Packets(&a.f); !st.PoolExhausted {
		t.Error("flow a not marked incomplete")
	}
	if got := r.stats.PoolBytes.Load(); got != 2*ChunkSize {
		t.Errorf("pool_bytes %d", got)
	}
	r.Release(&a.f)
	r.Release(&b.f)
	if r.InUse() != 0 || r.stats.PoolBytes.Load() != 0 {
		t.Errorf("in use %d, stats %d after release", r.InUse(), r.stats.PoolBytes.Load())
	}
	c := newConn(t, decode.ProtoTCP, netip.MustParseAddrPort("10.0.0.4:50002"), server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	if pkts, _ := r.Packets(&c.f); len(pkts) != 1 {
		t.Errorf("after release a new flow kept %d packets", len(pkts))
	}
}

// DNS messages are kept whole; other UDP payload is not kept.
func TestRecorderUDP(t *testing.T) {
	r := testRecorder(64 << 10)
	dns := newConn(t, decode.ProtoUDP, client, netip.MustParseAddrPort("10.0.0.53:53"))
	q := append([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, "\x04zoom\x02us\x00\x00\x01\x00\x01"...)
	dns.send(r, flow.ToServer, 0, q)
	pkts, _ := r.Packets(&dns.f)
	if len(pkts) != 1 || len(pkts[0].Data) != 14+20+8+len(q) {
		t.Fatalf("DNS query not kept whole")
	}
	media := newConn(t, decode.ProtoUDP, client, netip.MustParseAddrPort("198.51.100.7:8801"))
	media.send(r, flow.ToServer, 0, bytes.Repeat([]byte{9}, 500))
	pkts, _ = r.Packets(&media.f)
	if len(pkts) != 1 || len(pkts[0].Data) != 14+20+8 {
		t.Fatalf("media payload kept")
	}
	for range 2 * udpSettlePackets {
		media.send(r, flow.ToServer, 0, []byte{1})
		media.send(r, flow.ToClient, 0, []byte{1})
	}
	r.Release(&dns.f)
	if r.InUse() != 0 {
		t.Errorf("answered media flow still holds %d bytes", r.InUse())
	}
}

// An ICMP error keeps its headers and the quoted header, not what follows.
func TestRecorderICMP(t *testing.T) {
	r := testRecorder(64 << 10)
	c := newConn(t, decode.ProtoTCP, client, server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	quoted := c.frames[0][14:] // the SYN's IP packet
	quoted = append(quoted, bytes.Repeat([]byte{0xee}, 200)...)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 60, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{192, 0, 2, 1}, DstIP: client.Addr().AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 13)}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, icmp, gopacket.Payload(quoted)); err != nil {
		t.Fatal(err)
	}
	var p decode.Packet
	if err := c.dec.Decode(buf.Bytes(), decode.LinkEthernet, t0, len(buf.Bytes()), &p); err != nil || !p.ICMP.Quoted {
		t.Fatalf("decode: %v", err)
	}
	r.ICMP(&c.f, &p)
	pkts, _ := r.Packets(&c.f)
	if len(pkts) != 2 || len(pkts[1].Data) != 14+20+8+20+8 {
		t.Fatalf("ICMP kept as %d packets, last %d bytes", len(pkts), len(pkts[len(pkts)-1].Data))
	}
}

// The packet path allocates nothing, whether it keeps, cuts or drops.
func TestRecorderAllocatesNothing(t *testing.T) {
	r := testRecorder(1 << 20)
	c := newConn(t, decode.ProtoTCP, client, server)
	var pkts []decode.Packet
	for i, pl := range [][]byte{nil, record(0x16, 600), record(0x17, 400), nil} {
		fr := c.frame(flow.Dir(i%2), decode.TCPAck, pl)
		var p decode.Packet
		if err := c.dec.Decode(fr, decode.LinkEthernet, t0, len(fr), &p); err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	base := flow.New(decode.ProtoTCP, client, server, time.Time{})
	allocs := testing.AllocsPerRun(200, func() {
		f := *base
		for i := range pkts {
			r.Packet(&f, &pkts[i], flow.Dir(i%2))
		}
		r.Release(&f)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per flow", allocs)
	}
}
