package decode

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func FuzzDecode(f *testing.F) {
	inner := innerTCP(f)
	seeds := []struct {
		link  LinkType
		frame []byte
	}{
		{LinkEthernet, frameIPv4TCP(f)},
		{LinkEthernet, frameIPv4TCPTimestamps(f)},
		{LinkEthernet, frameIPv6UDP(f)},
		{LinkEthernet, frameERSPAN2(f, inner)},
		{LinkEthernet, frameERSPAN3(f, 0, true, inner)},
		{LinkEthernet, frameERSPAN3(f, 2, false, inner[14:])},
		{LinkEthernet, frameVXLAN(f, 4789, inner)},
		{LinkEthernet, icmpQuoting(f, 3, 13)},
		{LinkEthernet, icmp6TooBig(f)},
		{LinkEthernet, serialize(f, eth(layers.EthernetTypeIPv4), ip4(tunA4, tunB4, layers.IPProtocolGRE),
			&layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging, KeyPresent: true}, gopacket.Payload(inner))},
		{LinkEthernet, serialize(f, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4}, gopacket.Payload(inner[14:]))},
		{LinkLinuxSLL, sll1(0x0800, inner[14:])},
		{LinkLinuxSLL2, sll2(0x86dd, frameIPv6UDP(f)[14:])},
		{LinkRaw, inner[14:]},
		{LinkNull, append([]byte{2, 0, 0, 0}, inner[14:]...)},
		// EtherType 0xFFFF over an IPv4 packet: gopacket reads raw IP, we do not.
		{LinkEthernet, append(append(append([]byte(nil), inner[:12]...), 0xff, 0xff), inner[14:]...)},
		// Carrier and provider tunnels.
		{LinkEthernet, frameMPLS(f, 2, inner[14:])},
		{LinkEthernet, frameMPLS(f, 1, append([]byte{0, 0, 0, 0}, inner...))},
		{LinkEthernet, framePPPoE(f, layers.PPPTypeIPv4, inner[14:])},
		{LinkEthernet, framePPPoE(f, layers.PPPTypeIPv6, frameIPv6UDP(f)[14:])},
		{LinkEthernet, frameGTPU(f, 2152, &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: 1}, inner[14:])},
		{LinkEthernet, frameGTPU(f, 2152, &layers.GTPv1U{Version: 1, ProtocolType: 1, MessageType: 0xff, TEID: 2, SequenceNumberFlag: true,
			GTPExtensionHeaders: []layers.GTPExtensionHeader{{Type: 0x85, Content: []byte{0x10, 0x09}}}}, inner[14:])},
		{LinkEthernet, frameGeneve(f, layers.EthernetTypeTransparentEthernetBridging,
			[]*layers.GeneveOption{{Class: 0x0102, Type: 0x80, Data: []byte{1, 2, 3, 4}}}, inner)},
		{LinkEthernet, frameGeneve(f, layers.EthernetTypeIPv6, nil, frameIPv6UDP(f)[14:])},
	}
	for _, s := range seeds {
		f.Add(uint16(s.link), s.frame)
	}
	d := NewDecoder(Options{Decapsulate: true, VXLANPorts: []uint16{4789}, GenevePorts: []uint16{6081}, GTPUPorts: []uint16{2152}})
	plain := NewDecoder(Options{})
	oracle := newOracle()
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
		if LinkType(link) == LinkEthernet {
			oracle.check(t, plain, data)
		}
		var p, again Packet
		err := d.Decode(data, LinkType(link), ts0, len(data), &p)
		err2 := d.Decode(data, LinkType(link), ts0, len(data), &again)
		if err != err2 || !reflect.DeepEqual(p, again) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			var de *Error
			if !errors.Is(err, ErrNotIP) && !errors.As(err, &de) {
				t.Fatalf("error of unexpected type %T: %v", err, err)
			}
			if de != nil && !inList(de.Layer) {
				t.Fatalf("layer %q not in ErrorLayers", de.Layer)
			}
			return
		}
		if p.IPVersion != 4 && p.IPVersion != 6 {
			t.Fatalf("decoded without an IP version: %+v", p)
		}
		if cs := p.TCPChecksum(); cs > ChecksumOffloaded || cs != ChecksumUnknown && !p.IsTCP() {
			t.Fatalf("checksum state %d for protocol %d", cs, p.Proto)
		}
		if p.Src.Is4() != (p.IPVersion == 4) {
			t.Fatalf("address family %v does not match version %d", p.Src, p.IPVersion)
		}
		if len(p.Payload) > 0 && !within(p.Payload, data) {
			t.Fatalf("payload does not point into the frame")
		}
		if p.ICMP.Quoted && !p.IsICMP() {
			t.Fatalf("quoted header on a non-ICMP packet")
		}
	})
}

func inList(layer string) bool {
	for _, l := range ErrorLayers {
		if l == layer {
			return true
		}
	}
	return false
}

// within reports whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	s, b := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

// oracle is gopacket's own DecodingLayerParser over plain Ethernet/IP/TCP-UDP:
// where it decodes a frame completely, we must agree on addresses and ports.
type oracle struct {
	eth     layers.Ethernet
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	pl      gopacket.Payload
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

func newOracle() *oracle {
	o := &oracle{}
	o.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &o.eth, &o.ip4, &o.ip6, &o.tcp, &o.udp, &o.pl)
	o.parser.IgnoreUnsupported = true
	return o
}

func (o *oracle) check(t *testing.T, d *Decoder, data []byte) {
	if err := o.parser.DecodeLayers(data, &o.decoded); err != nil || len(o.decoded) < 3 {
		return
	}
	// gopacket reads EtherType 0xFFFF as "raw IP" (its own convention, not a
	// registered EtherType): real frames never carry it, so we rightly call
	// such a frame not IP, and there is nothing to compare.
	if o.eth.EthernetType == layers.EthernetTypeRaw {
		return
	}
	var src, dst string
	var ttl uint8
	switch o.decoded[1] {
	case layers.LayerTypeIPv4:
		if o.ip4.FragOffset != 0 || o.ip4.Version != 4 { // gopacket does not check the version
			return
		}
		src, dst, ttl = o.ip4.SrcIP.String(), o.ip4.DstIP.String(), o.ip4.TTL
	case layers.LayerTypeIPv6:
		if o.ip6.Version != 6 {
			return
		}
		src, dst, ttl = o.ip6.SrcIP.String(), o.ip6.DstIP.String(), o.ip6.HopLimit
	default:
		return
	}
	var sport, dport uint16
	var ts []byte // the timestamp option's data, as gopacket read it
	switch o.decoded[2] {
	case layers.LayerTypeTCP:
		sport, dport = uint16(o.tcp.SrcPort), uint16(o.tcp.DstPort)
		for _, opt := range o.tcp.Options {
			if opt.OptionType == layers.TCPOptionKindTimestamps {
				if opt.OptionLength == 10 {
					ts = opt.OptionData
				}
				break
			}
		}
	case layers.LayerTypeUDP:
		sport, dport = uint16(o.udp.SrcPort), uint16(o.udp.DstPort)
	default:
		return
	}
	var p Packet
	if err := d.Decode(data, LinkEthernet, ts0, len(data), &p); err != nil {
		t.Fatalf("gopacket decodes %v, we fail: %v", o.decoded, err)
	}
	if p.Src.String() != src || p.Dst.String() != dst || p.TTL != ttl || p.SrcPort != sport || p.DstPort != dport {
		t.Fatalf("we decode %v:%d > %v:%d ttl %d, gopacket %s:%d > %s:%d ttl %d",
			p.Src, p.SrcPort, p.Dst, p.DstPort, p.TTL, src, sport, dst, dport, ttl)
	}
	if o.decoded[2] == layers.LayerTypeTCP {
		if (len(ts) == 8) != p.HasTimestamps || p.HasTimestamps && (p.TSval != be32(ts) || p.TSecr != be32(ts[4:])) {
			t.Fatalf("TCP timestamps: we decode %v %d %d, gopacket %x", p.HasTimestamps, p.TSval, p.TSecr, ts)
		}
	}
}
