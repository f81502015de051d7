package decode

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frames for the tests, fuzz seeds and benchmarks, built with gopacket so
// they are what a real stack would put on the wire.

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}

	cli4   = net.IP{10, 1, 2, 3}
	srv4   = net.IP{170, 114, 52, 2}
	tunA4  = net.IP{192, 0, 2, 1}
	tunB4  = net.IP{192, 0, 2, 2}
	cli6   = net.ParseIP("2001:db8::10")
	srv6   = net.ParseIP("2001:db8:1::20")
	router = net.IP{198, 51, 100, 7}
)

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: t}
}

func ip4(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 61, Id: 0x1234, SrcIP: src, DstIP: dst, Protocol: proto}
}

func ip6(src, dst net.IP, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 57, SrcIP: src, DstIP: dst, NextHeader: next}
}

func tcpSyn() *layers.TCP {
	return &layers.TCP{SrcPort: 50123, DstPort: 443, Seq: 1000, Ack: 0, SYN: true, Window: 64240,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}}
}

func udp(sport, dport layers.UDPPort) *layers.UDP { return &layers.UDP{SrcPort: sport, DstPort: dport} }

var payload = gopacket.Payload("zoom-payload")

// innerTCP is the Ethernet/IPv4/TCP frame most tunnels carry in the tests.
func innerTCP(tb testing.TB) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(cli4, srv4, layers.IPProtocolTCP), tcpSyn(), payload)
}

func frameIPv4TCP(tb testing.TB) []byte { return innerTCP(tb) }

func frameIPv6UDP(tb testing.TB) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv6), ip6(cli6, srv6, layers.IPProtocolUDP), udp(50000, 8801), payload)
}

// erspan3Header is a type III header; platform adds the 8-byte subheader (O flag).
func erspan3Header(frameType uint8, platform bool) []byte {
	h := make([]byte, 12, 20)
	binary.BigEndian.PutUint16(h[0:], 2<<12|300) // version 2 (type III), VLAN 300
	binary.BigEndian.PutUint16(h[2:], 0x0042)    // session 66
	binary.BigEndian.PutUint32(h[4:], 0xdeadbeef)
	h[10] = frameType << 2
	if platform {
		h[11] |= 1
		h = append(h, 0x08, 0, 0, 0, 0, 0, 0, 0)
	}
	return h
}

func frameERSPAN3(tb testing.TB, frameType uint8, platform bool, inner []byte) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: 0x22eb, SeqPresent: true, Seq: 9},
		gopacket.Payload(append(erspan3Header(frameType, platform), inner...)))
}

func frameERSPAN2(tb testing.TB, inner []byte) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeERSPAN, SeqPresent: true, Seq: 7},
		&layers.ERSPANII{Version: 1, VLANIdentifier: 200, SessionID: 5},
		gopacket.Payload(inner))
}

func frameVXLAN(tb testing.TB, port layers.UDPPort, inner []byte) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolUDP),
		udp(49152, port), &layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(inner))
}

// icmpQuoting builds an ICMPv4 error quoting the first 28 bytes of an IPv4/TCP packet.
func icmpQuoting(tb testing.TB, typ, code uint8) []byte {
	orig := serialize(tb, ip4(cli4, srv4, layers.IPProtocolTCP), tcpSyn())
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(router, cli4, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, gopacket.Payload(orig[:28]))
}

// icmp6TooBig builds an ICMPv6 packet-too-big quoting an IPv6/TCP packet.
func icmp6TooBig(tb testing.TB) []byte {
	orig := serialize(tb, ip6(cli6, srv6, layers.IPProtocolTCP), tcpSyn())
	body := append([]byte{0, 0, 0x05, 0x00}, orig[:48]...) // MTU 1280, then the quote
	return serialize(tb, eth(layers.EthernetTypeIPv6), ip6(srv6, cli6, layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}, gopacket.Payload(body))
}

// sll1 and sll2 prefix an IPv4 packet with Linux cooked headers.
func sll1(proto uint16, l3 []byte) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], 0) // to us
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], macA)
	binary.BigEndian.PutUint16(h[14:], proto)
	return append(h, l3...)
}

func sll2(proto uint16, l3 []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], proto)
	binary.BigEndian.PutUint32(h[4:], 3) // ifindex
	binary.BigEndian.PutUint16(h[8:], 1)
	h[11] = 6
	copy(h[12:], macA)
	return append(h, l3...)
}

// Carrier and provider tunnels, built with gopacket's own layers.

func frameMPLS(tb testing.TB, labels int, inner []byte) []byte {
	ls := []gopacket.SerializableLayer{eth(layers.EthernetTypeMPLSUnicast)}
	for i := range labels {
		ls = append(ls, &layers.MPLS{Label: uint32(100 + i), TTL: 64, StackBottom: i == labels-1})
	}
	return serialize(tb, append(ls, gopacket.Payload(inner))...)
}

func framePPPoE(tb testing.TB, pppType layers.PPPType, inner []byte) []byte {
	return serialize(tb, eth(layers.EthernetTypePPPoESession),
		&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 0x0042},
		&layers.PPP{PPPType: pppType}, gopacket.Payload(inner))
}

func frameGTPU(tb testing.TB, port layers.UDPPort, gtp *layers.GTPv1U, inner []byte) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolUDP),
		udp(port, port), gtp, gopacket.Payload(inner))
}

func frameGeneve(tb testing.TB, proto layers.EthernetType, opts []*layers.GeneveOption, inner []byte) []byte {
	gn := &layers.Geneve{Version: 0, Protocol: proto, VNI: 4242, Options: opts}
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolUDP),
		udp(49152, 6081), gn, gopacket.Payload(inner))
}

// tcpSynTS is a SYN with the timestamp option after SACK-permitted, as
// Linux sends it.
func tcpSynTS(tsval, tsecr uint32) *layers.TCP {
	t := tcpSyn()
	ts := make([]byte, 8)
	binary.BigEndian.PutUint32(ts, tsval)
	binary.BigEndian.PutUint32(ts[4:], tsecr)
	t.Options = append(t.Options,
		layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts})
	return t
}

func frameIPv4TCPTimestamps(tb testing.TB) []byte {
	return serialize(tb, eth(layers.EthernetTypeIPv4), ip4(cli4, srv4, layers.IPProtocolTCP), tcpSynTS(0x01020304, 0xa0b0c0d0), payload)
}
