package testgen_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

var (
	cli4 = netip.MustParseAddrPort("10.0.0.2:40000")
	srv4 = netip.MustParseAddrPort("170.114.1.1:443")
	cli6 = netip.MustParseAddrPort("[2001:db8::2]:40000")
	srv6 = netip.MustParseAddrPort("[2620:123:2000::1]:443")
)

// decode parses a frame with gopacket and fails on any decode error or
// (unless wrapped) any bad checksum.
func decode(t *testing.T, data []byte, checkSums bool) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode error: %v\n%s", el.Error(), p.Dump())
	}
	if checkSums {
		// Checksummed L4 layers need their (innermost) network layer.
		var nl gopacket.NetworkLayer
		for _, l := range p.Layers() {
			switch v := l.(type) {
			case *layers.IPv4:
				nl = v
			case *layers.IPv6:
				nl = v
			case *layers.TCP:
				v.SetNetworkLayerForChecksum(nl)
			case *layers.UDP:
				v.SetNetworkLayerForChecksum(nl)
			case *layers.ICMPv6:
				v.SetNetworkLayerForChecksum(nl)
			}
		}
		err, bad := p.VerifyChecksums()
		if err != nil || len(bad) > 0 {
			t.Fatalf("checksums: %v %+v\n%s", err, bad, p.Dump())
		}
	}
	return p
}

type seg struct {
	dir      testgen.Dir
	flags    string
	seq, ack uint32
	n        int
	ttl      uint8
}

func tcpSegs(t *testing.T, pkts []testgen.Packet, client netip.AddrPort) []seg {
	t.Helper()
	var out []seg
	for _, pk := range pkts {
		p := decode(t, pk.Data, true)
		tl, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			continue
		}
		s := seg{seq: tl.Seq, ack: tl.Ack, n: len(tl.Payload)}
		if uint16(tl.SrcPort) != client.Port() {
			s.dir = testgen.ServerToClient
		}
		for _, f := range []struct {
			on bool
			c  string
		}{{tl.SYN, "S"}, {tl.ACK, "A"}, {tl.PSH, "P"}, {tl.FIN, "F"}, {tl.RST, "R"}} {
			if f.on {
				s.flags += f.c
			}
		}
		if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			s.ttl = ip4.TTL
		} else if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			s.ttl = ip6.HopLimit
		}
		out = append(out, s)
	}
	return out
}

// checkContinuity asserts every segment starts where its side's previous one
// ended and acknowledges no more than the peer sent.
func checkContinuity(t *testing.T, segs []seg) {
	t.Helper()
	var next, sent [2]uint32
	var seen [2]bool
	for i, s := range segs {
		d := s.dir
		if seen[d] && s.seq != next[d] && s.flags != "R" && s.flags != "RA" {
			t.Fatalf("segment %d (%s %s): seq %d, want %d", i, d, s.flags, s.seq, next[d])
		}
		adv := uint32(s.n)
		if bytes.ContainsAny([]byte(s.flags), "SF") {
			adv++
		}
		seen[d], next[d] = true, s.seq+adv
		sent[d] = next[d]
		if bytes.Contains([]byte(s.flags), []byte("A")) && seen[d^1] && s.ack != sent[d^1] && s.ack-sent[d^1] < 1<<31 {
			t.Fatalf("segment %d (%s %s): ack %d beyond peer's %d", i, d, s.flags, s.ack, sent[d^1])
		}
	}
}

func TestTCPConn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cli, srv netip.AddrPort
		mss      int
	}{{"ipv4", cli4, srv4, 1460}, {"ipv6", cli6, srv6, 1440}} {
		t.Run(tc.name, func(t *testing.T) {
			g := testgen.New(1, testgen.DefaultStart)
			c := g.TCPConn(tc.cli, tc.srv, testgen.TCPOptions{})
			c.Send(testgen.ClientToServer, make([]byte, 300))
			c.Send(testgen.ServerToClient, make([]byte, 5000))
			c.Send(testgen.ClientToServer, make([]byte, 10))
			c.Close()
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			segs := tcpSegs(t, g.Packets(), tc.cli)
			checkContinuity(t, segs)
			want := []string{"S", "SA", "A", "AP", "A", "A", "A", "A", "AP", "AP", "AF", "AF", "A"}
			// 5000 bytes: 4 segments with the client's delayed ACK after the 2nd; the
			// client's next data acknowledges the rest.
			var got []string
			for _, s := range segs {
				got = append(got, s.flags)
			}
			if len(got) != len(want) {
				t.Fatalf("flags %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("flags %v, want %v", got, want)
				}
			}
			if segs[0].ack != 0 || segs[1].ack != segs[0].seq+1 || segs[2].ack != segs[1].seq+1 {
				t.Fatalf("handshake seq/ack wrong: %+v", segs[:3])
			}
			for _, s := range segs {
				if s.n > tc.mss {
					t.Fatalf("segment of %d bytes exceeds MSS %d", s.n, tc.mss)
				}
				wantTTL := uint8(64)
				if s.dir == testgen.ServerToClient {
					wantTTL = 52
				}
				if s.ttl != wantTTL {
					t.Fatalf("%s TTL %d, want %d", s.dir, s.ttl, wantTTL)
				}
			}
			// Time advances by about an RTT from SYN to SYN-ACK.
			pk := g.Packets()
			if rtt := pk[1].Time.Sub(pk[0].Time); rtt < 20*time.Millisecond || rtt > 30*time.Millisecond {
				t.Fatalf("SYN to SYN-ACK took %v, want about %v", rtt, testgen.DefaultRTT)
			}
			for i := 1; i < len(pk); i++ {
				if pk[i].Time.Before(pk[i-1].Time) {
					t.Fatalf("packet %d goes back in time", i)
				}
			}
		})
	}
}

func TestResetRetransmitDropSwap(t *testing.T) {
	g := testgen.New(7, testgen.DefaultStart)
	c := g.NewTCP(cli4, srv4, testgen.TCPOptions{})
	c.SYN()
	g.Advance(time.Second)
	c.SYN() // retransmission
	c.Reset(testgen.ServerToClient, testgen.ResetOptions{})
	segs := tcpSegs(t, g.Packets(), cli4)
	if len(segs) != 3 || segs[0].seq != segs[1].seq || segs[2].flags != "AR" || segs[2].seq != 0 || segs[2].ack != segs[0].seq+1 {
		t.Fatalf("SYN, SYN, RST-ACK expected: %+v", segs)
	}

	// Injected RST with overrides.
	g = testgen.New(7, testgen.DefaultStart)
	c = g.TCPConn(cli4, srv4, testgen.TCPOptions{})
	c.Send(testgen.ClientToServer, []byte("hello"))
	rst := c.Reset(testgen.ServerToClient, testgen.ResetOptions{TTL: 64, IPID: testgen.U16(c.LastIPID(testgen.ClientToServer)), Payload: []byte("x")})
	p := decode(t, rst.Data, true)
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip.TTL != 64 || ip.Id != c.LastIPID(testgen.ClientToServer) || len(p.Layer(layers.LayerTypeTCP).LayerPayload()) != 1 {
		t.Fatalf("RST overrides not applied: ttl %d id %d", ip.TTL, ip.Id)
	}

	// Retransmission repeats the last segment; DropNext and SwapNext.
	g = testgen.New(7, testgen.DefaultStart)
	c = g.TCPConn(cli4, srv4, testgen.TCPOptions{})
	c.Send(testgen.ClientToServer, []byte("abc"))
	c.Retransmit(testgen.ClientToServer)
	g.DropNext(1)
	c.Send(testgen.ServerToClient, []byte("dropped"))
	c.Send(testgen.ClientToServer, []byte("after"))
	segs = tcpSegs(t, g.Packets(), cli4)
	if segs[3].seq != segs[4].seq || segs[3].n != 3 || segs[4].n != 3 {
		t.Fatalf("retransmission: %+v", segs[3:5])
	}
	if g.Dropped() != 1 || len(segs) != 6 {
		t.Fatalf("dropped %d, %d segments left", g.Dropped(), len(segs))
	}
	// The dropped segment still moved the server's sequence: the client acks it.
	if last := segs[len(segs)-1]; last.n != 5 || last.ack != segs[1].seq+1+7 {
		t.Fatalf("client ack %d does not cover the dropped 7 bytes", last.ack)
	}

	// SwapNext writes the next two packets in reverse order, times kept.
	u := g.UDP(netip.MustParseAddrPort("10.0.0.2:5353"), netip.MustParseAddrPort("10.0.0.3:53"), testgen.UDPOptions{})
	g.SwapNext()
	first := u.Send(testgen.ClientToServer, []byte("first"))
	second := u.Send(testgen.ClientToServer, []byte("second!"))
	pk := g.Packets()
	if !bytes.Equal(pk[len(pk)-2].Data, second.Data) || !bytes.Equal(pk[len(pk)-1].Data, first.Data) || !pk[len(pk)-1].Time.Before(pk[len(pk)-2].Time) {
		t.Fatalf("SwapNext did not reorder")
	}
}

func TestICMPUnreachableQuotes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cli, srv   netip.AddrPort
		router     netip.Addr
		typ, code  uint8
		inner      gopacket.LayerType
		bodyOffset int
	}{
		{"v4", netip.MustParseAddrPort("10.0.0.2:5000"), netip.MustParseAddrPort("144.195.1.1:8801"), netip.MustParseAddr("10.0.0.1"), 3, 13, layers.LayerTypeICMPv4, 0},
		{"v6", netip.MustParseAddrPort("[2001:db8::2]:5000"), netip.MustParseAddrPort("[2620:123:2000::1]:8801"), netip.MustParseAddr("2001:db8::1"), 1, 1, layers.LayerTypeICMPv6, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testgen.New(3, testgen.DefaultStart)
			u := g.UDP(tc.cli, tc.srv, testgen.UDPOptions{})
			q := u.Send(testgen.ClientToServer, testgen.ZoomSetupRequest([16]byte{1, 2, 3}))
			e := g.ICMPUnreachable(tc.router, q, testgen.UnreachAdminProhibited, 64)
			p := decode(t, e.Data, true)
			var typ, code uint8
			var body []byte
			switch l := p.Layer(tc.inner).(type) {
			case *layers.ICMPv4:
				typ, code, body = l.TypeCode.Type(), l.TypeCode.Code(), l.Payload
			case *layers.ICMPv6:
				typ, code, body = l.TypeCode.Type(), l.TypeCode.Code(), l.Payload
			default:
				t.Fatalf("no ICMP layer:\n%s", p.Dump())
			}
			if typ != tc.typ || code != tc.code {
				t.Fatalf("type/code %d/%d, want %d/%d", typ, code, tc.typ, tc.code)
			}
			if !bytes.Equal(body[tc.bodyOffset:], q.Data[14:]) {
				t.Fatalf("ICMP does not quote the whole datagram")
			}
			src := p.NetworkLayer().NetworkFlow().Src().String()
			dst := p.NetworkLayer().NetworkFlow().Dst().String()
			if src != tc.router.String() || dst != tc.cli.Addr().String() {
				t.Fatalf("ICMP %s -> %s", src, dst)
			}
		})
	}
}

func TestDNS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		l     testgen.DNSLookup
		rcode layers.DNSResponseCode
		want  []string
	}{
		{"a", testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.80")}}, layers.DNSResponseCodeNoErr, []string{"198.51.100.80"}},
		{"aaaa-cname", testgen.DNSLookup{Name: "www.zoom.us", CNAME: "zoom.us", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::80")}}, layers.DNSResponseCodeNoErr, []string{"zoom.us", "2001:db8::80"}},
		{"sinkhole", testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{netip.IPv4Unspecified()}}, layers.DNSResponseCodeNoErr, []string{"0.0.0.0"}},
		{"nxdomain", testgen.DNSLookup{Name: "zoom.us", RCode: dnsmessage.RCodeNameError}, layers.DNSResponseCodeNXDomain, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testgen.New(5, testgen.DefaultStart)
			q, r := g.DNS(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.53"), tc.l)
			qd := decode(t, q.Data, true).Layer(layers.LayerTypeDNS).(*layers.DNS)
			rd := decode(t, r.Data, true).Layer(layers.LayerTypeDNS).(*layers.DNS)
			if qd.QR || !rd.QR || qd.ID != rd.ID || string(qd.Questions[0].Name) != tc.l.Name {
				t.Fatalf("query/response mismatch")
			}
			if rd.ResponseCode != tc.rcode {
				t.Fatalf("rcode %v, want %v", rd.ResponseCode, tc.rcode)
			}
			var got []string
			for _, a := range rd.Answers {
				if a.Type == layers.DNSTypeCNAME {
					got = append(got, string(a.CNAME))
				} else {
					got = append(got, a.IP.String())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("answers %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("answers %v, want %v", got, tc.want)
				}
			}
			if tc.rcode == layers.DNSResponseCodeNXDomain && (len(rd.Authorities) != 1 || rd.Authorities[0].Type != layers.DNSTypeSOA) {
				t.Fatalf("NXDOMAIN without SOA")
			}
		})
	}
}

func TestZoomUDPFormats(t *testing.T) {
	id := [16]byte{9, 8, 7}
	req, resp := testgen.ZoomSetupRequest(id), testgen.ZoomSetupResponse(id)
	if !bytes.Equal(req[:3], []byte{1, 0, 2}) || !bytes.Equal(resp[:3], []byte{2, 0, 2}) || !bytes.Equal(req[3:], id[:]) || !bytes.Equal(resp[3:], id[:]) {
		t.Fatalf("set-up bytes: % x / % x", req, resp)
	}
	m := testgen.ZoomMedia(0x1234, 0xdeadbeef, testgen.ZoomDirFromZoom, testgen.ZoomAudioInner(112, 7, 960, 42, []byte{1, 2}))
	if m[0] != 5 || binary.BigEndian.Uint16(m[1:3]) != 0x1234 || binary.BigEndian.Uint32(m[3:7]) != 0xdeadbeef || m[7] != 4 {
		t.Fatalf("outer header % x", m[:8])
	}
	inner := m[8:]
	if inner[0] != 0x0f || inner[19] != 0x80 || inner[20] != 112 || binary.BigEndian.Uint16(inner[21:23]) != 7 {
		t.Fatalf("audio inner % x", inner[:24])
	}
	v := testgen.ZoomVideoInner(3, 1800, 43, 17, 3, true, []byte{0})
	if v[0] != 0x10 || v[20] != 2 || binary.BigEndian.Uint16(v[21:23]) != 17 || v[23] != 3 || v[24] != 0x80 || v[25] != 0x80|98 {
		t.Fatalf("video inner % x", v[:26])
	}
	tx := [16]byte{0xaa}
	sr := testgen.ZoomSTUNRequest(tx)
	if len(sr) != 44 || binary.BigEndian.Uint16(sr[0:2]) != 1 || binary.BigEndian.Uint16(sr[2:4]) != 24 || binary.BigEndian.Uint16(sr[20:22]) != 0x0101 || string(sr[24:43]) != "1234567890123456789" {
		t.Fatalf("STUN request % x", sr)
	}
	sa := testgen.ZoomSTUNResponse(tx, [4]byte{203, 0, 113, 40}, 5000)
	if binary.BigEndian.Uint16(sa[0:2]) != 2 || binary.BigEndian.Uint16(sa[20:22]) != 0x0103 || !bytes.Equal(sa[len(sa)-4:], []byte{203, 0, 113, 40}) || int(binary.BigEndian.Uint16(sa[2:4])) != len(sa)-20 {
		t.Fatalf("STUN response % x", sa)
	}

	// A session: set-up first, then media with rising outer sequence per direction.
	g := testgen.New(11, testgen.DefaultStart)
	u := g.UDP(netip.MustParseAddrPort("10.0.0.2:50000"), netip.MustParseAddrPort("144.195.1.1:8801"), testgen.UDPOptions{})
	g.ZoomUDPMedia(u, testgen.ZoomMediaOptions{AudioPackets: 10, VideoFrames: 2, PacketsPerFrame: 2})
	pk := g.Packets()
	want := 4 + 2*10 + 2*2*2
	if len(pk) != want {
		t.Fatalf("%d packets, want %d", len(pk), want)
	}
	var lastSeq [2]uint16
	for i, p := range pk {
		d := decode(t, p.Data, true)
		pl := d.Layer(layers.LayerTypeUDP).LayerPayload()
		if i == 0 && pl[0] != 1 || i == 1 && pl[0] != 2 {
			t.Fatalf("packet %d starts % x", i, pl[:3])
		}
		if i < 4 {
			continue
		}
		dir := 0
		if pl[7] == testgen.ZoomDirFromZoom {
			dir = 1
		}
		if pl[0] != 5 || (pl[8] != 0x0f && pl[8] != 0x10) {
			t.Fatalf("packet %d not media: % x", i, pl[:10])
		}
		seq := binary.BigEndian.Uint16(pl[1:3])
		if seq != lastSeq[dir]+1 {
			t.Fatalf("packet %d: outer seq %d after %d", i, seq, lastSeq[dir])
		}
		lastSeq[dir] = seq
	}
}

func TestWrappers(t *testing.T) {
	s, err := testgen.Build("syn-refused", testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range testgen.Wraps() {
		t.Run(string(w), func(t *testing.T) {
			wrapped, err := testgen.WrapAll(w, s.Packets)
			if err != nil {
				t.Fatal(err)
			}
			for i, wp := range wrapped {
				p := decode(t, wp.Data, w == testgen.WrapNone)
				var inner []byte
				switch w {
				case testgen.WrapNone:
					inner = wp.Data
				case testgen.WrapVLAN, testgen.WrapQinQ:
					var ids []uint16
					for _, l := range p.Layers() {
						if q, ok := l.(*layers.Dot1Q); ok {
							ids = append(ids, q.VLANIdentifier)
						}
					}
					want := []uint16{testgen.WrapVLANID}
					if w == testgen.WrapQinQ {
						want = []uint16{testgen.WrapOuterVLANID, testgen.WrapVLANID}
						if et := binary.BigEndian.Uint16(wp.Data[12:14]); et != 0x88a8 {
							t.Fatalf("QinQ outer TPID %#x", et)
						}
					}
					if len(ids) != len(want) || ids[0] != want[0] || ids[len(ids)-1] != want[len(want)-1] {
						t.Fatalf("VLAN ids %v, want %v", ids, want)
					}
					inner = append(append([]byte(nil), wp.Data[:12]...), wp.Data[12+4*len(want):]...)
				case testgen.WrapERSPAN2:
					gre := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
					e := p.Layer(layers.LayerTypeERSPANII).(*layers.ERSPANII)
					if !gre.SeqPresent || gre.Seq != uint32(i) || e.SessionID != testgen.WrapERSPANSession {
						t.Fatalf("GRE seq %d ERSPAN session %d", gre.Seq, e.SessionID)
					}
					inner = e.Payload
				case testgen.WrapERSPAN3:
					gre := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
					if gre.Protocol != testgen.EtherTypeERSPAN3 || !gre.SeqPresent {
						t.Fatalf("GRE protocol %#x", uint16(gre.Protocol))
					}
					h := gre.Payload
					if h[0]>>4 != 2 || binary.BigEndian.Uint16(h[2:4])&0x3ff != testgen.WrapERSPANSession || h[11]&1 != 0 {
						t.Fatalf("ERSPAN III header % x", h[:12])
					}
					inner = h[12:]
				case testgen.WrapVXLAN:
					udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
					vx := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
					if udp.DstPort != 4789 || vx.VNI != testgen.WrapVXLANVNI || !vx.ValidIDFlag {
						t.Fatalf("VXLAN port %d VNI %d", udp.DstPort, vx.VNI)
					}
					inner = vx.Payload
				case testgen.WrapGRE:
					gre := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
					if gre.Protocol != layers.EthernetTypeTransparentEthernetBridging {
						t.Fatalf("GRE protocol %#x", uint16(gre.Protocol))
					}
					inner = gre.Payload
				case testgen.WrapMPLS:
					var labels []uint32
					for _, l := range p.Layers() {
						if m, ok := l.(*layers.MPLS); ok {
							labels = append(labels, m.Label)
							inner = m.Payload
						}
					}
					if len(labels) != 2 || labels[0] != testgen.WrapMPLSTransport || labels[1] != testgen.WrapMPLSVPN {
						t.Fatalf("MPLS labels %v", labels)
					}
				case testgen.WrapPPPoE:
					pe := p.Layer(layers.LayerTypePPPoE).(*layers.PPPoE)
					ppp := p.Layer(layers.LayerTypePPP).(*layers.PPP)
					if pe.SessionId != testgen.WrapPPPoESession || pe.Code != layers.PPPoECodeSession || ppp.PPPType != layers.PPPTypeIPv4 {
						t.Fatalf("PPPoE session %#x code %v PPP %v", pe.SessionId, pe.Code, ppp.PPPType)
					}
					inner = ppp.Payload
				case testgen.WrapGTPU:
					g := p.Layer(layers.LayerTypeGTPv1U).(*layers.GTPv1U)
					if g.TEID != testgen.WrapGTPUTEID || g.MessageType != 0xff || len(g.GTPExtensionHeaders) != 1 {
						t.Fatalf("GTP-U TEID %#x type %d extensions %d", g.TEID, g.MessageType, len(g.GTPExtensionHeaders))
					}
					inner = g.Payload
				case testgen.WrapGeneve:
					gn := p.Layer(layers.LayerTypeGeneve).(*layers.Geneve)
					if gn.VNI != testgen.WrapGeneveVNI || gn.Protocol != layers.EthernetTypeTransparentEthernetBridging || len(gn.Options) != 1 {
						t.Fatalf("Geneve VNI %d protocol %#x options %d", gn.VNI, uint16(gn.Protocol), len(gn.Options))
					}
					inner = gn.Payload
				}
				if w.CarriesIP() {
					// The tunnel carries the IP packet: compare it, and give it back its Ethernet header.
					if !bytes.Equal(inner, s.Packets[i].Data[14:]) {
						t.Fatalf("packet %d: inner IP packet differs from the original", i)
					}
					inner = s.Packets[i].Data
				}
				if !bytes.Equal(inner, s.Packets[i].Data) {
					t.Fatalf("packet %d: inner frame differs from the original", i)
				}
				decode(t, inner, true)
				if p.TransportLayer() == nil && w != testgen.WrapERSPAN3 {
					t.Fatalf("gopacket did not reach the transport layer through %s", w)
				}
				if !wp.Time.Equal(s.Packets[i].Time) {
					t.Fatalf("wrapping changed the time")
				}
			}
		})
	}
}

func TestScenariosDecodeAndDeterminism(t *testing.T) {
	for _, info := range testgen.List() {
		for _, v6 := range []bool{false, true} {
			name := info.Name
			if v6 {
				name += "/ipv6"
			}
			t.Run(name, func(t *testing.T) {
				p := testgen.Params{IPv6: v6}
				a, err := testgen.Build(info.Name, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Packets) == 0 || (len(a.Flows) == 0 && len(a.Findings) == 0) {
					t.Fatalf("empty scenario")
				}
				if !a.Deterministic {
					t.Fatalf("scenario recorded TLS live: its transcripts are missing from tlscache/; run go generate ./testgen")
				}
				for i, pk := range a.Packets {
					d := decode(t, pk.Data, true)
					nl := d.NetworkLayer()
					if nl == nil {
						t.Fatalf("packet %d has no network layer", i)
					}
					if _, is4 := nl.(*layers.IPv4); is4 == v6 && d.Layer(layers.LayerTypeICMPv4) == nil {
						t.Fatalf("packet %d: wrong IP version", i)
					}
				}
				for _, f := range a.Flows {
					if f.Client.Addr().Is4() == v6 {
						t.Fatalf("flow %v uses the wrong plan", f)
					}
				}
				b, err := testgen.Build(info.Name, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Packets) != len(b.Packets) {
					t.Fatalf("two runs: %d and %d packets", len(a.Packets), len(b.Packets))
				}
				for i := range a.Packets {
					same := bytes.Equal(a.Packets[i].Data, b.Packets[i].Data)
					if !a.Packets[i].Time.Equal(b.Packets[i].Time) || len(a.Packets[i].Data) != len(b.Packets[i].Data) {
						t.Fatalf("packet %d: structure differs between runs", i)
					}
					if !same {
						t.Fatalf("packet %d differs between runs of a deterministic scenario", i)
					}
				}
			})
		}
	}
}

// handshakes walks a TLS byte stream and returns the handshake messages
// (type, body) found in plaintext records.
func handshakes(t *testing.T, stream []byte) (msgs [][]byte, alerts [][2]byte) {
	t.Helper()
	var hs []byte
	for off := 0; off+5 <= len(stream); {
		typ, n := stream[off], int(binary.BigEndian.Uint16(stream[off+3:off+5]))
		if off+5+n > len(stream) {
			t.Fatalf("truncated TLS record at %d", off)
		}
		body := stream[off+5 : off+5+n]
		switch typ {
		case 22:
			hs = append(hs, body...)
		case 21:
			if n == 2 {
				alerts = append(alerts, [2]byte{body[0], body[1]})
			}
		case 20:
			// ChangeCipherSpec: what follows is encrypted.
			off = len(stream)
			continue
		case 23:
		default:
			t.Fatalf("record type %d at %d is not TLS", typ, off)
		}
		off += 5 + n
	}
	for len(hs) >= 4 {
		n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if 4+n > len(hs) {
			break
		}
		msgs = append(msgs, hs[:4+n])
		hs = hs[4+n:]
	}
	return msgs, alerts
}

// streams reassembles each direction's TCP payload of the flow.
func streams(t *testing.T, pkts []testgen.Packet, f testgen.ExpectedFlow) (c2s, s2c []byte) {
	t.Helper()
	for _, pk := range pkts {
		p := decode(t, pk.Data, true)
		tl, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			continue
		}
		src := p.NetworkLayer().NetworkFlow().Src().String()
		switch {
		case src == f.Client.Addr().String() && uint16(tl.SrcPort) == f.Client.Port():
			c2s = append(c2s, tl.Payload...)
		case src == f.Server.Addr().String() && uint16(tl.SrcPort) == f.Server.Port() && uint16(tl.DstPort) == f.Client.Port():
			s2c = append(s2c, tl.Payload...)
		}
	}
	return c2s, s2c
}

func certsOf(t *testing.T, msg []byte) []*x509.Certificate {
	t.Helper()
	body := msg[4:]
	total := int(body[0])<<16 | int(body[1])<<8 | int(body[2])
	body = body[3 : 3+total]
	var out []*x509.Certificate
	for len(body) >= 3 {
		n := int(body[0])<<16 | int(body[1])<<8 | int(body[2])
		c, err := x509.ParseCertificate(body[3 : 3+n])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
		body = body[3+n:]
	}
	return out
}

func TestTLSScenarios(t *testing.T) {
	pki, err := testgen.TestPKI()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scenario   string
		sni        string
		issuer     string
		verifyErr  bool // against the Zoom roots
		alert      byte
		serverName string
	}{
		{"zoom-clean", testgen.NameZC, "DigiCert Global G2 TLS RSA SHA256 2020 CA1", false, 0, ""},
		{"tls-fortigate", testgen.NameZC, "FortiGate CA", true, 0, ""},
		{"tls-unknown-ca", testgen.NameZC, "Gateway Authentication", true, 0, ""},
		{"tls-expired", testgen.NameZC, "DigiCert Global G2 TLS RSA SHA256 2020 CA1", true, 0, ""},
		{"tls-wrong-host", testgen.NameZC, "zoomprobe Test Public CA", true, 0, ""},
		{"tls-client-alert", testgen.NameZC, "Gateway Authentication", true, testgen.AlertUnknownCA, ""},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			s, err := testgen.Build(tc.scenario, testgen.Params{})
			if err != nil {
				t.Fatal(err)
			}
			var flow *testgen.ExpectedFlow
			for i := range s.Flows {
				if s.Flows[i].SNI == tc.sni && s.Flows[i].Server.Port() == 443 {
					flow = &s.Flows[i]
					break
				}
			}
			if flow == nil {
				t.Fatalf("no flow with SNI %s", tc.sni)
			}
			c2s, s2c := streams(t, s.Packets, *flow)
			cmsgs, calerts := handshakes(t, c2s)
			if len(cmsgs) == 0 || cmsgs[0][0] != 1 || !bytes.Contains(cmsgs[0], []byte(tc.sni)) {
				t.Fatalf("first client message is not a ClientHello for %s", tc.sni)
			}
			smsgs, _ := handshakes(t, s2c)
			var chain []*x509.Certificate
			for _, m := range smsgs {
				if m[0] == 11 {
					chain = certsOf(t, m)
				}
			}
			if len(smsgs) == 0 || smsgs[0][0] != 2 || chain == nil {
				t.Fatalf("server flight lacks ServerHello or Certificate")
			}
			if chain[0].Issuer.CommonName != tc.issuer {
				t.Fatalf("issuer %q, want %q", chain[0].Issuer.CommonName, tc.issuer)
			}
			for i := range chain {
				if !chain[i].Equal(flow.Chain[i]) {
					t.Fatalf("chain on the wire differs from the expected flow's chain at %d", i)
				}
			}
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			_, verr := chain[0].Verify(x509.VerifyOptions{Roots: pki.ZoomRoots(), Intermediates: inter, DNSName: tc.sni, CurrentTime: s.Packets[0].Time})
			if (verr != nil) != tc.verifyErr {
				t.Fatalf("verify against Zoom roots: %v (want error: %v)", verr, tc.verifyErr)
			}
			if tc.alert != 0 && (len(calerts) != 1 || calerts[0] != [2]byte{2, tc.alert}) {
				t.Fatalf("client alerts %v, want fatal %d", calerts, tc.alert)
			}
			if len(s.Findings) == 0 && tc.scenario != "zoom-clean" {
				t.Fatalf("no expected finding")
			}
		})
	}
}

func TestZoomCleanFlows(t *testing.T) {
	s, err := testgen.ZoomClean(testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Findings) != 0 {
		t.Fatalf("clean scenario expects findings")
	}
	// Every expected flow has packets in both directions (UDP one-way syslog aside).
	for _, f := range s.Flows {
		var dirs [2]int
		for _, pk := range s.Packets {
			p := decode(t, pk.Data, true)
			tp := p.TransportLayer()
			if tp == nil {
				continue
			}
			nf, tf := p.NetworkLayer().NetworkFlow(), tp.TransportFlow()
			if nf.Src().String() == f.Client.Addr().String() && tf.Src().String() == itoa(f.Client.Port()) && nf.Dst().String() == f.Server.Addr().String() && tf.Dst().String() == itoa(f.Server.Port()) {
				dirs[0]++
			}
			if nf.Dst().String() == f.Client.Addr().String() && tf.Dst().String() == itoa(f.Client.Port()) && nf.Src().String() == f.Server.Addr().String() {
				dirs[1]++
			}
		}
		if dirs[0] == 0 || (dirs[1] == 0 && f.Server.Port() != 514) {
			t.Fatalf("flow %s %v -> %v: packets %v", f.Transport, f.Client, f.Server, dirs)
		}
	}
	// The TLS 1.3 web flow negotiated 1.3 and the zone controller 1.2.
	vers := map[string]uint16{}
	for _, f := range s.Flows {
		if f.SNI != "" {
			vers[f.SNI+"/"+itoa(f.Server.Port())] = f.TLSVersion
		}
	}
	if vers[testgen.NameWeb+"/443"] != tls.VersionTLS13 || vers[testgen.NameZC+"/443"] != tls.VersionTLS12 || vers[testgen.NameMMR+"/8801"] != tls.VersionTLS12 {
		t.Fatalf("TLS versions %v", vers)
	}
}

func itoa(p uint16) string {
	return string(binary.BigEndian.AppendUint16(nil, p)[:0]) + func() string {
		b := []byte{}
		if p == 0 {
			return "0"
		}
		for p > 0 {
			b = append([]byte{byte('0' + p%10)}, b...)
			p /= 10
		}
		return string(b)
	}()
}

func TestPKIDeterministic(t *testing.T) {
	pki, err := testgen.TestPKI()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testgen.ChainZoom, []string{"*.zoom.us"}, testgen.LeafNotBefore, testgen.LeafNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	// Certificates come from fixed Ed25519 seeds: their fingerprints are stable.
	t1 := testgen.RecordTLS
	tr, err := t1(testgen.TLSSpec{ServerName: "zoomfr85zc.zoom.us", Version: tls.VersionTLS12, Names: []string{"*.zoom.us"}})
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(tr.Chain[0].Raw) != sha256.Sum256(leaf.Leaf.Raw) {
		t.Fatal("same leaf spec gave two certificates")
	}
	if pki.ZoomRoot.Cert.Subject.CommonName != "DigiCert Global Root G2" || pki.FortiGate.Cert.Subject.Organization[0] != "Fortinet" {
		t.Fatal("CA names changed")
	}
}
