package decode

import "testing"

func benchFrames(tb testing.TB) []struct {
	name  string
	frame []byte
} {
	return []struct {
		name  string
		frame []byte
	}{
		{"ipv4-tcp", frameIPv4TCP(tb)},
		{"ipv6-udp", frameIPv6UDP(tb)},
		{"erspan3-ipv4-tcp", frameERSPAN3(tb, 0, true, innerTCP(tb))},
		{"vxlan-ipv4-tcp", frameVXLAN(tb, 4789, innerTCP(tb))},
	}
}

func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	for _, bf := range benchFrames(b) {
		b.Run(bf.name, func(b *testing.B) {
			var p Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(bf.frame)))
			for b.Loop() {
				if err := d.Decode(bf.frame, LinkEthernet, ts0, len(bf.frame), &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeAllocatesNothing holds the hot path to zero allocations, errors included.
func TestDecodeAllocatesNothing(t *testing.T) {
	d := NewDecoder(Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	frames := benchFrames(t)
	frames = append(frames, struct {
		name  string
		frame []byte
	}{"truncated", frameIPv4TCP(t)[:30]}, struct {
		name  string
		frame []byte
	}{"icmp", icmp6TooBig(t)})
	var p Packet
	for _, bf := range frames {
		if n := testing.AllocsPerRun(200, func() { _ = d.Decode(bf.frame, LinkEthernet, ts0, len(bf.frame), &p) }); n != 0 {
			t.Errorf("%s: %.1f allocations per packet, want 0", bf.name, n)
		}
	}
}
