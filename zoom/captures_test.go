package zoom

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/config"
)

// Public captures shared for development (see ../shared/captures/README.md);
// the tests skip when they are absent.
const capturesDir = "../../shared/captures/"

type capPacket struct {
	proto            uint8
	src, dst         netip.Addr
	srcPort, dstPort uint16
	payload          []byte
}

func readCapture(t *testing.T, name string) []capPacket {
	t.Helper()
	f, err := os.Open(capturesDir + name)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not present", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src gopacket.PacketDataSource
	var lt layers.LinkType
	if r, err := pcapgo.NewReader(f); err == nil {
		src, lt = r, r.LinkType()
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		src, lt = r, r.LinkType()
	}
	var out []capPacket
	for {
		data, _, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, lt, gopacket.Default)
		var cp capPacket
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			cp.src, _ = netip.AddrFromSlice(ip.SrcIP)
			cp.dst, _ = netip.AddrFromSlice(ip.DstIP)
		case *layers.IPv6:
			cp.src, _ = netip.AddrFromSlice(ip.SrcIP)
			cp.dst, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		switch l4 := p.TransportLayer().(type) {
		case *layers.TCP:
			cp.proto, cp.srcPort, cp.dstPort, cp.payload = ProtoTCP, uint16(l4.SrcPort), uint16(l4.DstPort), l4.Payload
		case *layers.UDP:
			cp.proto, cp.srcPort, cp.dstPort, cp.payload = ProtoUDP, uint16(l4.SrcPort), uint16(l4.DstPort), l4.Payload
		default:
			continue
		}
		out = append(out, cp)
	}
	return out
}

// clientHelloSNI pulls the server name out of a TLS ClientHello held whole
// in one segment (enough for these captures).
func clientHelloSNI(b []byte) string {
	if len(b) < 9 || b[0] != 0x16 || b[5] != 0x01 {
		return ""
	}
	b = b[9:]        // record header + handshake header
	if len(b) < 35 { // version + random + session id length
		return ""
	}
	b = b[34:]
	skip := func(n int) bool {
		if len(b) < n {
			return false
		}
		b = b[n:]
		return true
	}
	if !skip(1+int(b[0])) || len(b) < 2 || !skip(2+int(binary.BigEndian.Uint16(b))) || len(b) < 1 || !skip(1+int(b[0])) || len(b) < 2 {
		return ""
	}
	b = b[2:]
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return ""
		}
		if typ == 0 && n >= 5 {
			e := b[4 : 4+n]
			l := int(binary.BigEndian.Uint16(e[3:]))
			if e[2] == 0 && len(e) >= 5+l {
				return string(e[5 : 5+l])
			}
		}
		b = b[4+n:]
	}
	return ""
}

func TestCaptureZoomDesktop(t *testing.T) {
	pkts := readCapture(t, "ndpi-zoom2.pcap")
	c := NewClassifier(DefaultRanges(), config.WatchConfig{})
	server := netip.MustParseAddr("144.195.73.154")
	if s, ok := DefaultRanges().Lookup(server); !ok || s != ServiceOther {
		t.Fatalf("%s not in Zoom's ranges: %v %v", server, s, ok)
	}
	kinds := map[MediaKind]int{}
	var sni string
	var udp, parsed, audioPT int
	for _, p := range pkts {
		srv, port := p.dst, p.dstPort
		if p.srcPort == 8801 || p.srcPort == 443 {
			srv, port = p.src, p.srcPort
		}
		if srv != server {
			t.Fatalf("unexpected server %s", srv)
		}
		if p.proto == ProtoTCP {
			if s := clientHelloSNI(p.payload); s != "" {
				sni = s
			}
			continue
		}
		udp++
		if got := c.Classify(ProtoUDP, srv, port, ""); got != ServiceMedia {
			t.Fatalf("UDP %s:%d classified %v", srv, port, got)
		}
		mi, ok := ParseMedia(p.payload)
		if ok {
			parsed++
			kinds[mi.Kind]++
			if mi.Relayed && (mi.Dir == DirToZoom) != (p.dst == server) {
				t.Errorf("direction byte says %v for a packet to %s", mi.Dir, p.dst)
			}
			if mi.Kind == MediaAudio && (mi.RTP.PayloadType == 112 || mi.RTP.PayloadType == 99) {
				audioPT++
			}
		}
	}
	if sni != "zoomsjccv154mmr.sjc.zoom.us" {
		t.Fatalf("SNI %q", sni)
	}
	if got := c.Classify(ProtoTCP, server, 443, sni); got != ServiceMediaRouter {
		t.Errorf("TLS flow classified %v", got)
	}
	// set-up, its answer, audio and RTCP must all be seen; the 03/04 session
	// packets after the set-up are the only ones not recognised.
	for _, k := range []MediaKind{MediaSetup, MediaSetupAck, MediaAudio, MediaRTCP, MediaOther} {
		if kinds[k] == 0 {
			t.Errorf("no %v packet recognised (%v)", k, kinds)
		}
	}
	// Zoom's audio through a server uses RTP payload types 99/112 (one
	// client packet in this capture carries 98).
	if audioPT < kinds[MediaAudio]*9/10 {
		t.Errorf("only %d of %d audio packets carry RTP payload type 99 or 112: wrong RTP offset?", audioPT, kinds[MediaAudio])
	}
	if parsed < udp*8/10 {
		t.Errorf("recognised %d of %d UDP packets", parsed, udp)
	}
	t.Logf("%d UDP packets, %d recognised: %v", udp, parsed, kinds)
}

func TestCaptureZoomWebClient(t *testing.T) {
	pkts := readCapture(t, "ndpi-stun_zoom.pcapng")
	c := NewClassifier(DefaultRanges(), config.WatchConfig{})
	server := netip.MustParseAddr("134.224.90.111")
	var requests, successes int
	for _, p := range pkts {
		srv, port := p.dst, p.dstPort
		if p.srcPort == 8801 {
			srv, port = p.src, p.srcPort
		}
		if srv != server || p.proto != ProtoUDP {
			t.Fatalf("unexpected flow to %s", srv)
		}
		if got := c.Classify(ProtoUDP, srv, port, ""); got != ServiceMedia {
			t.Fatalf("classified %v", got)
		}
		si, ok := ParseSTUN(p.payload)
		if !ok {
			if p.payload[0] < 20 || p.payload[0] > 63 { // RFC 7983: DTLS is the rest
				t.Errorf("payload %x is neither STUN nor DTLS", p.payload[:4])
			}
			continue
		}
		if si.Zoom {
			t.Error("the web client's STUN parsed as Zoom's dialect")
		}
		switch si.Kind {
		case STUNRequest:
			requests++
			if p.dst != server || !si.HasIntegrity || !si.HasFingerprint {
				t.Errorf("request %+v", si)
			}
		case STUNSuccess:
			successes++
			if p.src != server || !si.Mapped.IsValid() || !si.Mapped.Addr().IsGlobalUnicast() {
				t.Errorf("success %+v", si)
			}
		}
	}
	if requests == 0 || successes == 0 {
		t.Errorf("requests %d, successes %d", requests, successes)
	}
}
