package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	aCli4   = netip.MustParseAddr("10.1.2.3")
	aSrv4   = netip.MustParseAddr("170.114.52.2")
	aTunA   = netip.MustParseAddr("192.0.2.1")
	aTunB   = netip.MustParseAddr("192.0.2.2")
	aCli6   = netip.MustParseAddr("2001:db8::10")
	aSrv6   = netip.MustParseAddr("2001:db8:1::20")
	aRouter = netip.MustParseAddr("198.51.100.7")
	ts0     = time.Unix(1700000000, 123456000)
)

// want4TCP is the decode of innerTCP with the given encapsulation.
func want4TCP(encap uint16, vlan uint16) Packet {
	return Packet{Encap: encap, VLAN: vlan, IPVersion: 4, Src: aCli4, Dst: aSrv4, TTL: 61, IPID: 0x1234,
		Proto: ProtoTCP, SrcPort: 50123, DstPort: 443, TCPFlags: TCPSyn, Seq: 1000, Window: 64240}
}

func TestDecode(t *testing.T) {
	inner := innerTCP(t)
	innerIPv4 := inner[14:]
	dot1q := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		ip4(cli4, srv4, layers.IPProtocolTCP), tcpSyn(), payload)
	qinq := serialize(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4}, ip4(cli4, srv4, layers.IPProtocolTCP), tcpSyn(), payload)
	tagged6 := serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 33, Type: layers.EthernetTypeIPv6},
		ip6(cli6, srv6, layers.IPProtocolUDP), udp(50000, 8801), payload)

	ipOpts := ip4(cli4, srv4, layers.IPProtocolTCP)
	ipOpts.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	withIPOpts := serialize(t, eth(layers.EthernetTypeIPv4), ipOpts, tcpSyn(), payload)

	// 60-byte minimum frame: the Ethernet padding must not become payload.
	padded := serialize(t, eth(layers.EthernetTypeIPv4), ip4(cli4, srv4, layers.IPProtocolUDP), udp(1000, 53), gopacket.Payload("ab"))
	padded = append(padded, make([]byte, 60-len(padded))...)

	frag := ip4(cli4, srv4, layers.IPProtocolUDP)
	frag.FragOffset = 185
	laterFrag := serialize(t, eth(layers.EthernetTypeIPv4), frag, gopacket.Payload("rest of the datagram"))
	first := ip4(cli4, srv4, layers.IPProtocolUDP)
	first.Flags = layers.IPv4MoreFragments
	firstFrag := serialize(t, eth(layers.EthernetTypeIPv4), first, udp(40000, 3478), payload)

	// IPv6 with hop-by-hop (8), routing (type 4-ish, 24 bytes) and destination options (8) before UDP.
	ext := []byte{
		43, 0, 5, 2, 0, 0, 0, 0, // hop-by-hop -> routing, router alert + PadN
		60, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // routing -> dest opts
		17, 0, 1, 4, 0, 0, 0, 0, // dest opts -> UDP
	}
	udpHdr := serialize(t, udp(50000, 8801), payload)
	binary.BigEndian.PutUint16(udpHdr[4:], uint16(len(udpHdr)))
	v6ext := serialize(t, eth(layers.EthernetTypeIPv6), ip6(cli6, srv6, 0), gopacket.Payload(append(append([]byte{}, ext...), udpHdr...)))
	v6first := serialize(t, eth(layers.EthernetTypeIPv6), ip6(cli6, srv6, layers.IPProtocolIPv6Fragment),
		&layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, MoreFragments: true, Identification: 7}, gopacket.Payload(udpHdr))
	v6later := serialize(t, eth(layers.EthernetTypeIPv6), ip6(cli6, srv6, layers.IPProtocolIPv6Fragment),
		&layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: 100, Identification: 7}, gopacket.Payload(udpHdr))

	greIP := serialize(t, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeIPv4, KeyPresent: true, Key: 5}, gopacket.Payload(innerIPv4))
	greTEB := serialize(t, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging, ChecksumPresent: true}, gopacket.Payload(inner))
	pptp := serialize(t, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: 0x880b, Version: 1, KeyPresent: true}, gopacket.Payload(innerIPv4))
	erspanI := serialize(t, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeERSPAN}, gopacket.Payload(inner))
	innerTagged6 := tagged6

	arp := serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: cli4,
		DstHwAddress: make([]byte, 6), DstProtAddress: srv4})
	lldp := serialize(t, eth(layers.EthernetTypeLinkLayerDiscovery), gopacket.Payload(make([]byte, 40)))

	nestedGRE := innerIPv4 // GRE in IP in GRE ... deeper than MaxEncapDepth
	for range MaxEncapDepth + 1 {
		nestedGRE = serialize(t, ip4(tunA4, tunB4, layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, gopacket.Payload(nestedGRE))
	}

	tooManyTags := eth(layers.EthernetTypeDot1Q)
	tagLayers := []gopacket.SerializableLayer{tooManyTags}
	for range MaxVLANTags + 1 {
		tagLayers = append(tagLayers, &layers.Dot1Q{VLANIdentifier: 1, Type: layers.EthernetTypeDot1Q})
	}
	manyTags := serialize(t, tagLayers...)

	badDoff := append([]byte(nil), inner...)
	badDoff[14+20+12] = 4 << 4

	badVXLAN := frameVXLAN(t, 4789, inner)
	badVXLAN[14+20+8] = 0 // clear the I flag

	// Carrier and provider tunnels.
	inner6 := frameIPv6UDP(t)
	pwCW := append([]byte{0, 0, 0, 0}, inner...) // Ethernet pseudowire: control word, then the frame
	mplsGRE := serialize(t, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeMPLSUnicast}, &layers.MPLS{Label: 16, TTL: 64, StackBottom: true}, gopacket.Payload(innerIPv4))
	pppoeCompressed := serialize(t, eth(layers.EthernetTypePPPoESession),
		&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 7}, gopacket.Payload(append([]byte{0x21}, innerIPv4...)))
	pppoeBadVersion := framePPPoE(t, layers.PPPTypeIPv4, innerIPv4)
	pppoeBadVersion[14] = 0x21
	gtpPlain := &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: 0x1001}
	gtpExt := &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: 0x1002, SequenceNumberFlag: true, SequenceNumber: 9,
		GTPExtensionHeaders: []layers.GTPExtensionHeader{{Type: 0x85, Content: []byte{0x10, 0x09}}, {Type: 0x40, Content: []byte{1, 2, 3, 4, 5, 6}}}}
	gtpEcho := &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 1, TEID: 0}
	gtpExtCut := frameGTPU(t, 2152, gtpExt, innerIPv4)[:14+20+8+12+2]
	geneveOpts := []*layers.GeneveOption{{Class: 0x0102, Type: 0x80, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}
	geneveBadVersion := frameGeneve(t, layers.EthernetTypeTransparentEthernetBridging, nil, inner)
	geneveBadVersion[14+20+8] |= 0x40

	w6 := Packet{IPVersion: 6, Src: aCli6, Dst: aSrv6, TTL: 57, Proto: ProtoUDP, SrcPort: 50000, DstPort: 8801}
	tagged := func(p Packet, encap uint16, vlan uint16) Packet { p.Encap, p.VLAN = encap, vlan; return p }

	decap := Options{Decapsulate: true, VXLANPorts: []uint16{4789, 8472}, GenevePorts: []uint16{6081}, GTPUPorts: []uint16{2152}}
	cases := []struct {
		name    string
		opts    Options
		link    LinkType
		frame   []byte
		want    Packet
		payload string
		err     string // Error.Layer, or "notip"
	}{
		{name: "ipv4 tcp", opts: decap, link: LinkEthernet, frame: frameIPv4TCP(t), want: want4TCP(0, 0), payload: "zoom-payload"},
		{name: "ipv4 options", opts: decap, link: LinkEthernet, frame: withIPOpts, want: want4TCP(0, 0), payload: "zoom-payload"},
		{name: "ipv6 udp", opts: decap, link: LinkEthernet, frame: frameIPv6UDP(t), want: w6, payload: "zoom-payload"},
		{name: "ethernet padding trimmed", opts: decap, link: LinkEthernet, frame: padded, payload: "ab",
			want: Packet{IPVersion: 4, Src: aCli4, Dst: aSrv4, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, SrcPort: 1000, DstPort: 53}},
		{name: "802.1Q", opts: decap, link: LinkEthernet, frame: dot1q, want: want4TCP(EncapVLAN, 100), payload: "zoom-payload"},
		{name: "QinQ innermost vlan", opts: decap, link: LinkEthernet, frame: qinq, want: want4TCP(EncapVLAN|EncapQinQ, 20), payload: "zoom-payload"},
		{name: "later ipv4 fragment", opts: decap, link: LinkEthernet, frame: laterFrag,
			want: Packet{IPVersion: 4, Src: aCli4, Dst: aSrv4, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, Fragment: true}},
		{name: "first ipv4 fragment has ports", opts: decap, link: LinkEthernet, frame: firstFrag, payload: "zoom-payload",
			want: Packet{IPVersion: 4, Src: aCli4, Dst: aSrv4, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, SrcPort: 40000, DstPort: 3478}},
		{name: "ipv6 extension headers", opts: decap, link: LinkEthernet, frame: v6ext, want: w6, payload: "zoom-payload"},
		{name: "ipv6 first fragment", opts: decap, link: LinkEthernet, frame: v6first, want: w6, payload: "zoom-payload"},
		{name: "ipv6 later fragment", opts: decap, link: LinkEthernet, frame: v6later,
			want: Packet{IPVersion: 6, Src: aCli6, Dst: aSrv6, TTL: 57, Proto: ProtoUDP, Fragment: true}},
		{name: "gre ip", opts: decap, link: LinkEthernet, frame: greIP, want: want4TCP(EncapGRE, 0), payload: "zoom-payload"},
		{name: "gre teb", opts: decap, link: LinkEthernet, frame: greTEB, want: want4TCP(EncapGRE, 0), payload: "zoom-payload"},
		{name: "gre not decapsulated", opts: Options{}, link: LinkEthernet, frame: greIP,
			want: Packet{IPVersion: 4, Src: aTunA, Dst: aTunB, TTL: 61, IPID: 0x1234, Proto: 47}},
		{name: "pptp gre stays outer", opts: decap, link: LinkEthernet, frame: pptp,
			want: Packet{IPVersion: 4, Src: aTunA, Dst: aTunB, TTL: 61, IPID: 0x1234, Proto: 47}},
		{name: "erspan type I", opts: decap, link: LinkEthernet, frame: erspanI, want: want4TCP(EncapGRE|EncapERSPAN, 0), payload: "zoom-payload"},
		{name: "erspan type II", opts: decap, link: LinkEthernet, frame: frameERSPAN2(t, inner), want: want4TCP(EncapGRE|EncapERSPAN, 200), payload: "zoom-payload"},
		{name: "erspan type II tagged ipv6", opts: decap, link: LinkEthernet, frame: frameERSPAN2(t, innerTagged6),
			want: tagged(w6, EncapGRE|EncapERSPAN|EncapVLAN, 33), payload: "zoom-payload"},
		{name: "erspan type III", opts: decap, link: LinkEthernet, frame: frameERSPAN3(t, 0, false, inner), want: want4TCP(EncapGRE|EncapERSPAN, 300), payload: "zoom-payload"},
		{name: "erspan type III platform subheader", opts: decap, link: LinkEthernet, frame: frameERSPAN3(t, 0, true, inner), want: want4TCP(EncapGRE|EncapERSPAN, 300), payload: "zoom-payload"},
		{name: "erspan type III raw ip", opts: decap, link: LinkEthernet, frame: frameERSPAN3(t, 2, true, innerIPv4), want: want4TCP(EncapGRE|EncapERSPAN, 300), payload: "zoom-payload"},
		{name: "vxlan", opts: decap, link: LinkEthernet, frame: frameVXLAN(t, 4789, inner), want: want4TCP(EncapVXLAN, 0), payload: "zoom-payload"},
		{name: "vxlan second port", opts: decap, link: LinkEthernet, frame: frameVXLAN(t, 8472, inner), want: want4TCP(EncapVXLAN, 0), payload: "zoom-payload"},
		{name: "vxlan port not configured", opts: Options{Decapsulate: true, VXLANPorts: []uint16{8472}}, link: LinkEthernet, frame: frameVXLAN(t, 4789, inner),
			want: Packet{IPVersion: 4, Src: aTunA, Dst: aTunB, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, SrcPort: 49152, DstPort: 4789}, payload: string(frameVXLAN(t, 4789, inner)[42:])},
		{name: "mpls one label", opts: decap, link: LinkEthernet, frame: frameMPLS(t, 1, innerIPv4), want: want4TCP(EncapMPLS, 0), payload: "zoom-payload"},
		{name: "mpls label stack ipv6", opts: decap, link: LinkEthernet, frame: frameMPLS(t, 3, inner6[14:]), want: tagged(w6, EncapMPLS, 0), payload: "zoom-payload"},
		{name: "mpls peeled without decapsulation", opts: Options{}, link: LinkEthernet, frame: frameMPLS(t, 2, innerIPv4), want: want4TCP(EncapMPLS, 0), payload: "zoom-payload"},
		{name: "mpls ethernet pseudowire", opts: decap, link: LinkEthernet, frame: frameMPLS(t, 2, pwCW), want: want4TCP(EncapMPLS, 0), payload: "zoom-payload"},
		{name: "mpls in gre", opts: decap, link: LinkEthernet, frame: mplsGRE, want: want4TCP(EncapGRE|EncapMPLS, 0), payload: "zoom-payload"},
		{name: "pppoe ipv4", opts: decap, link: LinkEthernet, frame: framePPPoE(t, layers.PPPTypeIPv4, innerIPv4), want: want4TCP(EncapPPPoE, 0), payload: "zoom-payload"},
		{name: "pppoe ipv6", opts: decap, link: LinkEthernet, frame: framePPPoE(t, layers.PPPTypeIPv6, inner6[14:]), want: tagged(w6, EncapPPPoE, 0), payload: "zoom-payload"},
		{name: "pppoe compressed protocol field", opts: decap, link: LinkEthernet, frame: pppoeCompressed, want: want4TCP(EncapPPPoE, 0), payload: "zoom-payload"},
		{name: "gtp-u", opts: decap, link: LinkEthernet, frame: frameGTPU(t, 2152, gtpPlain, innerIPv4), want: want4TCP(EncapGTPU, 0), payload: "zoom-payload"},
		{name: "gtp-u sequence and extension headers", opts: decap, link: LinkEthernet, frame: frameGTPU(t, 2152, gtpExt, inner6[14:]), want: tagged(w6, EncapGTPU, 0), payload: "zoom-payload"},
		{name: "gtp-u echo stays udp", opts: decap, link: LinkEthernet, frame: frameGTPU(t, 2152, gtpEcho, nil),
			want: Packet{IPVersion: 4, Src: aTunA, Dst: aTunB, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, SrcPort: 2152, DstPort: 2152}, payload: string(frameGTPU(t, 2152, gtpEcho, nil)[42:50])},
		{name: "gtp-u not decapsulated", opts: Options{}, link: LinkEthernet, frame: frameGTPU(t, 2152, gtpPlain, innerIPv4),
			want: Packet{IPVersion: 4, Src: aTunA, Dst: aTunB, TTL: 61, IPID: 0x1234, Proto: ProtoUDP, SrcPort: 2152, DstPort: 2152}, payload: string(frameGTPU(t, 2152, gtpPlain, innerIPv4)[42:])},
		{name: "geneve ethernet with options", opts: decap, link: LinkEthernet, frame: frameGeneve(t, layers.EthernetTypeTransparentEthernetBridging, geneveOpts, inner), want: want4TCP(EncapGeneve, 0), payload: "zoom-payload"},
		{name: "geneve ipv4", opts: decap, link: LinkEthernet, frame: frameGeneve(t, layers.EthernetTypeIPv4, nil, innerIPv4), want: want4TCP(EncapGeneve, 0), payload: "zoom-payload"},
		{name: "icmp unreachable quotes tcp", opts: decap, link: LinkEthernet, frame: icmpQuoting(t, 3, 13),
			want: Packet{IPVersion: 4, Src: aRouter, Dst: aCli4, TTL: 61, IPID: 0x1234, Proto: ProtoICMP,
				ICMP: ICMP{Type: 3, Code: 13, Quoted: true, QProto: ProtoTCP, QSrc: aCli4, QDst: aSrv4, QSrcPort: 50123, QDstPort: 443, QSeq: 1000, QIPID: 0x1234}},
			payload: string(icmpQuoting(t, 3, 13)[42:])},
		{name: "icmp time exceeded", opts: decap, link: LinkEthernet, frame: icmpQuoting(t, 11, 0),
			want: Packet{IPVersion: 4, Src: aRouter, Dst: aCli4, TTL: 61, IPID: 0x1234, Proto: ProtoICMP,
				ICMP: ICMP{Type: 11, Code: 0, Quoted: true, QProto: ProtoTCP, QSrc: aCli4, QDst: aSrv4, QSrcPort: 50123, QDstPort: 443, QSeq: 1000, QIPID: 0x1234}},
			payload: string(icmpQuoting(t, 11, 0)[42:])},
		{name: "icmp echo quotes nothing", opts: decap, link: LinkEthernet, frame: icmpQuoting(t, 8, 0),
			want:    Packet{IPVersion: 4, Src: aRouter, Dst: aCli4, TTL: 61, IPID: 0x1234, Proto: ProtoICMP, ICMP: ICMP{Type: 8}},
			payload: string(icmpQuoting(t, 8, 0)[42:])},
		{name: "icmpv6 packet too big", opts: decap, link: LinkEthernet, frame: icmp6TooBig(t),
			want: Packet{IPVersion: 6, Src: aSrv6, Dst: aCli6, TTL: 57, Proto: ProtoICMPv6,
				ICMP: ICMP{Type: 2, Quoted: true, QProto: ProtoTCP, QSrc: aCli6, QDst: aSrv6, QSrcPort: 50123, QDstPort: 443, QSeq: 1000}},
			payload: string(icmp6TooBig(t)[62:])},
		{name: "sll v1", opts: decap, link: LinkLinuxSLL, frame: sll1(0x0800, innerIPv4), want: want4TCP(0, 0), payload: "zoom-payload"},
		{name: "sll v2", opts: decap, link: LinkLinuxSLL2, frame: sll2(0x0800, innerIPv4), want: want4TCP(0, 0), payload: "zoom-payload"},
		{name: "sll v2 vlan", opts: decap, link: LinkLinuxSLL2, frame: sll2(0x8100, append([]byte{0, 7, 0x08, 0}, innerIPv4...)), want: want4TCP(EncapVLAN, 7), payload: "zoom-payload"},
		{name: "raw ipv4", opts: decap, link: LinkRaw, frame: innerIPv4, want: want4TCP(0, 0), payload: "zoom-payload"},
		{name: "raw ipv6", opts: decap, link: LinkIPv6, frame: frameIPv6UDP(t)[14:], want: w6, payload: "zoom-payload"},
		{name: "bsd null", opts: decap, link: LinkNull, frame: append([]byte{2, 0, 0, 0}, innerIPv4...), want: want4TCP(0, 0), payload: "zoom-payload"},

		{name: "arp is not ip", opts: decap, link: LinkEthernet, frame: arp, err: "notip"},
		{name: "lldp is not ip", opts: decap, link: LinkEthernet, frame: lldp, err: "notip"},
		{name: "sll arp is not ip", opts: decap, link: LinkLinuxSLL, frame: sll1(0x0806, make([]byte, 28)), err: "notip"},
		{name: "unknown link", opts: decap, link: LinkType(147), frame: innerIPv4, err: LayerUnsupported},
		{name: "short ethernet", opts: decap, link: LinkEthernet, frame: inner[:10], err: LayerEthernet},
		{name: "short sll", opts: decap, link: LinkLinuxSLL2, frame: make([]byte, 12), err: LayerLink},
		{name: "truncated vlan", opts: decap, link: LinkEthernet, frame: dot1q[:16], err: LayerVLAN},
		{name: "too many vlan tags", opts: decap, link: LinkEthernet, frame: manyTags, err: LayerVLAN},
		{name: "truncated ipv4", opts: decap, link: LinkEthernet, frame: inner[:14+19], err: LayerIPv4},
		{name: "truncated ipv6", opts: decap, link: LinkEthernet, frame: frameIPv6UDP(t)[:14+39], err: LayerIPv6},
		{name: "truncated ipv6 ext", opts: decap, link: LinkEthernet, frame: v6ext[:14+40+12], err: LayerIPv6},
		{name: "truncated tcp", opts: decap, link: LinkEthernet, frame: inner[:14+20+19], err: LayerTCP},
		{name: "tcp options cut by snaplen", opts: decap, link: LinkEthernet, frame: inner[:14+20+22], want: want4TCP(0, 0)},
		{name: "tcp data offset below 20", opts: decap, link: LinkEthernet, frame: badDoff, err: LayerTCP},
		{name: "truncated udp", opts: decap, link: LinkEthernet, frame: frameIPv6UDP(t)[:14+40+7], err: LayerUDP},
		{name: "truncated gre", opts: decap, link: LinkEthernet, frame: greIP[:14+20+6], err: LayerGRE},
		{name: "too many tunnels", opts: decap, link: LinkRaw, frame: nestedGRE, err: LayerGRE},
		{name: "truncated erspan", opts: decap, link: LinkEthernet, frame: frameERSPAN3(t, 0, true, inner)[:14+20+8+14], err: LayerERSPAN},
		{name: "erspan III bad frame type", opts: decap, link: LinkEthernet, frame: frameERSPAN3(t, 5, false, inner), err: LayerERSPAN},
		{name: "vxlan without I flag", opts: decap, link: LinkEthernet, frame: badVXLAN, err: LayerVXLAN},
		{name: "truncated mpls stack", opts: decap, link: LinkEthernet, frame: frameMPLS(t, 3, innerIPv4)[:14+6], err: LayerMPLS},
		{name: "mpls stack without bottom", opts: decap, link: LinkEthernet, frame: frameMPLS(t, MaxMPLSLabels+1, innerIPv4), err: LayerMPLS},
		{name: "mpls payload not ip", opts: decap, link: LinkEthernet, frame: frameMPLS(t, 1, []byte{0x90, 1, 2, 3, 4}), err: LayerMPLS},
		{name: "pppoe bad version", opts: decap, link: LinkEthernet, frame: pppoeBadVersion, err: LayerPPPoE},
		{name: "pppoe lcp is not ip", opts: decap, link: LinkEthernet, frame: framePPPoE(t, layers.PPPType(0xc021), []byte{1, 1, 0, 4}), err: "notip"},
		{name: "pppoe discovery is not ip", opts: decap, link: LinkEthernet, frame: serialize(t, eth(layers.EthernetTypePPPoEDiscovery), gopacket.Payload(make([]byte, 20))), err: "notip"},
		{name: "truncated gtp-u extension", opts: decap, link: LinkEthernet, frame: gtpExtCut, err: LayerGTPU},
		{name: "truncated geneve options", opts: decap, link: LinkEthernet, frame: frameGeneve(t, layers.EthernetTypeTransparentEthernetBridging, geneveOpts, nil)[:14+20+8+10], err: LayerGeneve},
		{name: "geneve bad version", opts: decap, link: LinkEthernet, frame: geneveBadVersion, err: LayerGeneve},
		{name: "truncated icmp", opts: decap, link: LinkEthernet, frame: icmpQuoting(t, 3, 1)[:14+20+5], err: LayerICMP},
		{name: "truncated inner frame", opts: decap, link: LinkEthernet, frame: frameVXLAN(t, 4789, inner)[:14+20+8+8+14+10], err: LayerIPv4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.opts)
			var got Packet
			got.Payload = []byte("stale") // Decode must overwrite everything
			got.ICMP.Quoted = true
			err := d.Decode(tc.frame, tc.link, ts0, len(tc.frame)+4, &got)
			if tc.err != "" {
				var de *Error
				switch {
				case tc.err == "notip" && errors.Is(err, ErrNotIP):
				case errors.As(err, &de) && de.Layer == tc.err:
				default:
					t.Fatalf("err = %v, want layer %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if string(got.Payload) != tc.payload {
				t.Errorf("payload = %q, want %q", got.Payload, tc.payload)
			}
			tc.want.Time, tc.want.WireLen = ts0, len(tc.frame)+4
			if &got.Frame[0] != &tc.frame[0] || len(got.Frame) != len(tc.frame) || got.Link != tc.link {
				t.Errorf("Frame/Link are not the frame decoded and its link type")
			}
			if off, ok := got.PayloadOffset(); !ok || string(tc.frame[off:off+len(got.Payload)]) != string(got.Payload) {
				t.Errorf("PayloadOffset = %d, %v: not where the payload lies in the frame", off, ok)
			}
			got.Frame, got.Link = nil, 0
			got.Payload = nil
			got.csum = tcpChecksum{} // TestTCPChecksum covers it
			if !reflect.DeepEqual(got, withoutPayload(tc.want)) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func withoutPayload(p Packet) Packet { p.Payload = nil; return p }

func TestErrorLayersCoverErrors(t *testing.T) {
	known := map[string]bool{}
	for _, l := range ErrorLayers {
		known[l] = true
	}
	for _, e := range []*Error{errLinkUnsupported, errLinkTrunc, errEthTrunc, errVLANTrunc, errVLANTooMany, errGRETrunc,
		errGRETooDeep, errERSPANTrunc, errERSPANVersion, errERSPANFrame, errVXLANTrunc, errVXLANFlags, errVXLANTooDeep,
		errIPv4Trunc, errIPv4Version, errIPv4IHL, errIPv4Length, errIPv6Trunc, errIPv6Version, errIPv6ExtTrunc,
		errIPv6ExtTooMany, errRawVersion, errTCPTrunc, errTCPOffset, errUDPTrunc, errICMPTrunc,
		errMPLSTrunc, errMPLSTooMany, errMPLSPayload, errPPPoETrunc, errPPPoEVersion, errGTPUTrunc, errGTPUExtTooMany,
		errGTPUTooDeep, errGeneveTrunc, errGeneveVersion, errGeneveTooDeep} {
		if !known[e.Layer] {
			t.Errorf("%v: layer %q is not in ErrorLayers", e, e.Layer)
		}
	}
}

// TestAgainstGopacket cross-checks addresses and ports with gopacket's own
// decoder on the plain frames.
func TestAgainstGopacket(t *testing.T) {
	d := NewDecoder(Options{})
	for _, frame := range [][]byte{frameIPv4TCP(t), frameIPv6UDP(t), icmpQuoting(t, 3, 3)} {
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		var p Packet
		if err := d.Decode(frame, LinkEthernet, ts0, len(frame), &p); err != nil {
			t.Fatal(err)
		}
		net := pkt.NetworkLayer().NetworkFlow()
		if p.Src.String() != net.Src().String() || p.Dst.String() != net.Dst().String() {
			t.Errorf("addresses %v>%v, gopacket %v", p.Src, p.Dst, net)
		}
		if tl := pkt.TransportLayer(); tl != nil {
			tf := tl.TransportFlow()
			if binary.BigEndian.Uint16(tf.Src().Raw()) != p.SrcPort || binary.BigEndian.Uint16(tf.Dst().Raw()) != p.DstPort {
				t.Errorf("ports %d>%d, gopacket %v", p.SrcPort, p.DstPort, tf)
			}
			if !bytes.Equal(tl.LayerPayload(), p.Payload) {
				t.Errorf("payload %q, gopacket %q", p.Payload, tl.LayerPayload())
			}
		}
	}
}

func TestLinkTypeNames(t *testing.T) {
	for _, tc := range []struct {
		l    LinkType
		name string
		ok   bool
	}{{LinkEthernet, "EN10MB", true}, {LinkLinuxSLL2, "LINUX_SLL2", true}, {LinkRaw, "RAW", true}, {LinkType(147), "LINKTYPE_147", false}} {
		if tc.l.String() != tc.name || tc.l.Supported() != tc.ok {
			t.Errorf("%d: %q %v, want %q %v", tc.l, tc.l.String(), tc.l.Supported(), tc.name, tc.ok)
		}
		if tc.ok && LinkType(layers.LinkType(tc.l)) != tc.l {
			t.Errorf("%v differs from the pcap number", tc.l)
		}
	}
}

// A payload that is not inside the frame has no offset: the evidence
// recorder then keeps nothing rather than the wrong bytes.
func TestPayloadOffsetOutsideFrame(t *testing.T) {
	frame := make([]byte, 64)
	other := make([]byte, 16)
	for _, tc := range []struct {
		name string
		p    Packet
		off  int
		ok   bool
	}{
		{"no frame", Packet{Payload: other}, 0, false},
		{"payload elsewhere", Packet{Frame: frame, Payload: other}, 0, false},
		{"payload past the frame", Packet{Frame: frame[:40], Payload: frame[32:48]}, 0, false},
		{"inside", Packet{Frame: frame, Payload: frame[54:60]}, 54, true},
		{"empty payload", Packet{Frame: frame}, 64, true},
	} {
		if off, ok := tc.p.PayloadOffset(); off != tc.off || ok != tc.ok {
			t.Errorf("%s: PayloadOffset = %d, %v; want %d, %v", tc.name, off, ok, tc.off, tc.ok)
		}
	}
}
func TestTCPTimestamps(t *testing.T) {
	d := NewDecoder(Options{})
	var p Packet
	if err := d.Decode(frameIPv4TCPTimestamps(t), LinkEthernet, ts0, 0, &p); err != nil {
		t.Fatal(err)
	}
	if !p.HasTimestamps || p.TSval != 0x01020304 || p.TSecr != 0xa0b0c0d0 {
		t.Errorf("timestamps %v %#x %#x", p.HasTimestamps, p.TSval, p.TSecr)
	}
	if err := d.Decode(frameIPv4TCP(t), LinkEthernet, ts0, 0, &p); err != nil || p.HasTimestamps {
		t.Errorf("a SYN without the option: %v %v", err, p.HasTimestamps)
	}
	// Malformed lists: a length past the end, a length under 2, a short
	// timestamp option. None is read, none panics.
	for _, opts := range [][]byte{{8, 12, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 0, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8}, {8, 6, 1, 2, 3, 4}, {8}} {
		var q Packet
		tcpTimestamps(opts, &q)
		if q.HasTimestamps {
			t.Errorf("%x: read timestamps %d %d", opts, q.TSval, q.TSecr)
		}
	}
}

// A later fragment inside a tunnel has no TCP checksum of its own: the outer
// header's sum must not be taken for it (found by FuzzDecode).
func TestTunnelledFragmentHasNoChecksum(t *testing.T) {
	frag := ip4(cli4, srv4, layers.IPProtocolTCP)
	frag.FragOffset = 100
	inner := serialize(t, eth(layers.EthernetTypeIPv4), frag, payload)
	d := NewDecoder(Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	var p Packet
	if err := d.Decode(frameVXLAN(t, 4789, inner), LinkEthernet, ts0, 0, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Fragment || p.TCPChecksum() != ChecksumUnknown {
		t.Errorf("fragment %v, checksum state %d", p.Fragment, p.TCPChecksum())
	}
}
