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
	}
	for _, s := range seeds {
		f.Add(uint16(s.link), s.frame)
	}
	d := NewDecoder(Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
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
