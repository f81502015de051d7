package testgen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Wrap is an encapsulation mirror ports and taps put around the frames.
type Wrap string

const (
	WrapNone    Wrap = "none"
	WrapVLAN    Wrap = "vlan"    // 802.1Q tag, VLAN 100
	WrapQinQ    Wrap = "qinq"    // 802.1ad S-tag 200 + 802.1Q C-tag 100
	WrapERSPAN2 Wrap = "erspan2" // IPv4 / GRE (seq, 0x88be) / ERSPAN type II (session 17) / frame
	WrapERSPAN3 Wrap = "erspan3" // IPv4 / GRE (seq, 0x22eb) / ERSPAN type III (session 17) / frame
	WrapVXLAN   Wrap = "vxlan"   // IPv4 / UDP 4789 / VXLAN (VNI 4242) / frame
	WrapGRE     Wrap = "gre"     // IPv4 / GRE (0x6558, transparent Ethernet bridging, as gretap) / frame
	WrapMPLS    Wrap = "mpls"    // MPLS L3VPN: transport label 1001, VPN label 2002 (bottom), then the IP packet
	WrapPPPoE   Wrap = "pppoe"   // PPPoE session 0x0042 / PPP (IPv4 or IPv6) / IP packet, as on a DSL access link
	WrapGTPU    Wrap = "gtpu"    // IPv4 / UDP 2152 / GTP-U G-PDU (TEID 0x1234, PDU session container) / IP packet
	WrapGeneve  Wrap = "geneve"  // IPv4 / UDP 6081 / Geneve (VNI 4242, one option) / frame
)

// Wraps lists every encapsulation, WrapNone first.
func Wraps() []Wrap {
	return []Wrap{WrapNone, WrapVLAN, WrapQinQ, WrapERSPAN2, WrapERSPAN3, WrapVXLAN, WrapGRE, WrapMPLS, WrapPPPoE, WrapGTPU, WrapGeneve}
}

// ParseWrap checks a wrap name.
func ParseWrap(s string) (Wrap, error) {
	for _, w := range Wraps() {
		if string(w) == s {
			return w, nil
		}
	}
	names := make([]string, 0, len(Wraps()))
	for _, w := range Wraps() {
		names = append(names, string(w))
	}
	return "", fmt.Errorf("testgen: unknown wrap %q (want one of %s)", s, strings.Join(names, ", "))
}

// Encapsulation constants the tests and the decoder agree on.
const (
	WrapVLANID        = 100
	WrapOuterVLANID   = 200
	WrapERSPANSession = 17
	WrapVXLANVNI      = 4242
	EtherTypeERSPAN3  = 0x22eb
	WrapMPLSTransport = 1001
	WrapMPLSVPN       = 2002
	WrapPPPoESession  = 0x0042
	WrapGTPUTEID      = 0x1234
	WrapGeneveVNI     = 4242
)

// CarriesIP reports whether the wrap carries the frame's IP packet rather
// than the whole Ethernet frame.
func (w Wrap) CarriesIP() bool { return w == WrapMPLS || w == WrapPPPoE || w == WrapGTPU }

// Mirror tunnel end points (TEST-NET-1): the switch that mirrors and the
// collector zoomprobe runs on.
var (
	MirrorSource    = netip.MustParseAddr("192.0.2.1")
	MirrorCollector = netip.MustParseAddr("192.0.2.2")
)

// Wrapper encapsulates frames one by one (so it works on streams), keeping
// the GRE sequence and outer IP ID counters.
type Wrapper struct {
	kind Wrap
	seq  uint32
	ipid uint16
	buf  gopacket.SerializeBuffer
}

// NewWrapper returns a wrapper for kind.
func NewWrapper(kind Wrap) *Wrapper {
	return &Wrapper{kind: kind, buf: gopacket.NewSerializeBuffer(), ipid: 0x4d00}
}

// WrapAll wraps every packet.
func WrapAll(kind Wrap, pkts []Packet) ([]Packet, error) {
	w := NewWrapper(kind)
	out := make([]Packet, len(pkts))
	for i, p := range pkts {
		var err error
		if out[i], err = w.Wrap(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Wrap returns p encapsulated (p itself for WrapNone).
func (w *Wrapper) Wrap(p Packet) (Packet, error) {
	if len(p.Data) < 14 {
		return p, fmt.Errorf("testgen: wrap: frame of %d bytes", len(p.Data))
	}
	switch w.kind {
	case WrapNone, "":
		return p, nil
	case WrapVLAN:
		return Packet{Time: p.Time, Data: insertTags(p.Data, 0x8100, WrapVLANID)}, nil
	case WrapQinQ:
		return Packet{Time: p.Time, Data: insertTags(p.Data, 0x88a8, WrapOuterVLANID, 0x8100, WrapVLANID)}, nil
	case WrapMPLS, WrapPPPoE:
		return w.wrapLink(p)
	}
	w.seq++
	w.ipid++
	outerEth := &layers.Ethernet{SrcMAC: MAC(MirrorSource), DstMAC: MAC(MirrorCollector), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 62, Id: w.ipid, SrcIP: MirrorSource.AsSlice(), DstIP: MirrorCollector.AsSlice()}
	var ls []gopacket.SerializableLayer
	switch w.kind {
	case WrapERSPAN2:
		ip.Protocol = layers.IPProtocolGRE
		ls = []gopacket.SerializableLayer{
			&layers.GRE{SeqPresent: true, Seq: w.seq - 1, Protocol: layers.EthernetTypeERSPAN},
			&layers.ERSPANII{Version: layers.ERSPANIIVersion, SessionID: WrapERSPANSession, Index: 1},
			gopacket.Payload(p.Data),
		}
	case WrapERSPAN3:
		ip.Protocol = layers.IPProtocolGRE
		ls = []gopacket.SerializableLayer{
			&layers.GRE{SeqPresent: true, Seq: w.seq - 1, Protocol: layers.EthernetType(EtherTypeERSPAN3)},
			gopacket.Payload(append(erspan3Header(p), p.Data...)),
		}
	case WrapVXLAN:
		ip.Protocol = layers.IPProtocolUDP
		ip.Flags = layers.IPv4DontFragment
		// The source port is a hash of the inner flow, as VTEPs do (RFC 7348).
		sport := 49152 + uint16(binary.BigEndian.Uint32(p.Data[len(p.Data)/2:len(p.Data)/2+4])%16384)
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 4789}
		udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{udp, &layers.VXLAN{ValidIDFlag: true, VNI: WrapVXLANVNI}, gopacket.Payload(p.Data)}
	case WrapGRE:
		ip.Protocol = layers.IPProtocolGRE
		ls = []gopacket.SerializableLayer{&layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging}, gopacket.Payload(p.Data)}
	case WrapGTPU:
		ipPkt, _, err := innerIP(p)
		if err != nil {
			return p, err
		}
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 2152, DstPort: 2152}
		udp.SetNetworkLayerForChecksum(ip)
		// A 5G N3 G-PDU: sequence number and a PDU session container
		// (type 0x85: uplink, QFI 9).
		gtp := &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: WrapGTPUTEID, SequenceNumberFlag: true,
			SequenceNumber: uint16(w.seq), GTPExtensionHeaders: []layers.GTPExtensionHeader{{Type: 0x85, Content: []byte{0x10, 0x09}}}}
		ls = []gopacket.SerializableLayer{udp, gtp, gopacket.Payload(ipPkt)}
	case WrapGeneve:
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: 49152, DstPort: 6081}
		udp.SetNetworkLayerForChecksum(ip)
		gn := &layers.Geneve{Protocol: layers.EthernetTypeTransparentEthernetBridging, VNI: WrapGeneveVNI,
			Options: []*layers.GeneveOption{{Class: 0x0103, Type: 0x80, Data: []byte{0, 0, 0, 1}}}}
		ls = []gopacket.SerializableLayer{udp, gn, gopacket.Payload(p.Data)}
	default:
		return p, fmt.Errorf("testgen: unknown wrap %q", w.kind)
	}
	all := append([]gopacket.SerializableLayer{outerEth, ip}, ls...)
	if err := gopacket.SerializeLayers(w.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		return p, fmt.Errorf("testgen: wrap %s: %w", w.kind, err)
	}
	return Packet{Time: p.Time, Data: append([]byte(nil), w.buf.Bytes()...)}, nil
}

// insertTags inserts VLAN tags (pairs of TPID, VLAN ID) after the MACs.
func insertTags(frame []byte, tags ...uint16) []byte {
	out := make([]byte, 0, len(frame)+2*len(tags))
	out = append(out, frame[:12]...)
	for i := 0; i+1 < len(tags); i += 2 {
		out = binary.BigEndian.AppendUint16(out, tags[i])
		out = binary.BigEndian.AppendUint16(out, tags[i+1]&0x0fff)
	}
	return append(out, frame[12:]...)
}

// erspan3Header builds the 12-byte ERSPAN type III header: version 2, VLAN 0,
// COS 0, BSO 0, T 0, session; a 32-bit timestamp in 100 µs units (Gra 00);
// SGT 0, P 0, FT 0 (Ethernet frame), hardware id 1, D 0 (ingress), O 0 (no
// platform sub-header).
func erspan3Header(p Packet) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint16(h[0:2], 2<<12)
	binary.BigEndian.PutUint16(h[2:4], WrapERSPANSession&0x3ff)
	binary.BigEndian.PutUint32(h[4:8], uint32(p.Time.UnixMicro()/100))
	binary.BigEndian.PutUint16(h[10:12], 1<<4)
	return h
}

// innerIP returns the IP packet of an untagged Ethernet frame and its EtherType.
func innerIP(p Packet) ([]byte, layers.EthernetType, error) {
	et := layers.EthernetType(binary.BigEndian.Uint16(p.Data[12:14]))
	if et != layers.EthernetTypeIPv4 && et != layers.EthernetTypeIPv6 {
		return nil, 0, fmt.Errorf("testgen: wrap: frame carries EtherType %#04x, not IP", uint16(et))
	}
	return p.Data[14:], et, nil
}

// wrapLink replaces the frame's EtherType with link framing that carries the
// IP packet: an MPLS label stack or a PPPoE session.
func (w *Wrapper) wrapLink(p Packet) (Packet, error) {
	ipPkt, et, err := innerIP(p)
	if err != nil {
		return p, err
	}
	eth := &layers.Ethernet{SrcMAC: p.Data[6:12], DstMAC: p.Data[0:6]}
	var ls []gopacket.SerializableLayer
	if w.kind == WrapMPLS {
		eth.EthernetType = layers.EthernetTypeMPLSUnicast
		ls = []gopacket.SerializableLayer{eth,
			&layers.MPLS{Label: WrapMPLSTransport, TTL: 254},
			&layers.MPLS{Label: WrapMPLSVPN, TTL: 254, StackBottom: true}}
	} else {
		eth.EthernetType = layers.EthernetTypePPPoESession
		ppp := layers.PPPTypeIPv4
		if et == layers.EthernetTypeIPv6 {
			ppp = layers.PPPTypeIPv6
		}
		ls = []gopacket.SerializableLayer{eth,
			&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: WrapPPPoESession},
			&layers.PPP{PPPType: ppp}}
	}
	if err := gopacket.SerializeLayers(w.buf, gopacket.SerializeOptions{FixLengths: true}, append(ls, gopacket.Payload(ipPkt))...); err != nil {
		return p, fmt.Errorf("testgen: wrap %s: %w", w.kind, err)
	}
	return Packet{Time: p.Time, Data: append([]byte(nil), w.buf.Bytes()...)}, nil
}
