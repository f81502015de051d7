package decode

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcpDataFrame is a checksummed Ethernet/IP/TCP frame carrying data, and the
// offset of its TCP header.
func tcpDataFrame(tb testing.TB, v6 bool, data []byte) ([]byte, int) {
	tb.Helper()
	t := &layers.TCP{SrcPort: 443, DstPort: 50123, Seq: 77, Ack: 1001, ACK: true, PSH: true, Window: 509}
	var ip gopacket.SerializableLayer
	var et layers.EthernetType
	l4 := 14 + 20
	if v6 {
		x := ip6(srv6, cli6, layers.IPProtocolTCP)
		_ = t.SetNetworkLayerForChecksum(x)
		ip, et, l4 = x, layers.EthernetTypeIPv6, 14+40
	} else {
		x := ip4(srv4, cli4, layers.IPProtocolTCP)
		_ = t.SetNetworkLayerForChecksum(x)
		ip, et = x, layers.EthernetTypeIPv4
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth(et), ip, t, gopacket.Payload(data)); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...), l4
}

// partialChecksum writes what a sending host's stack leaves for its NIC: the
// folded pseudo-header sum (Linux tcp_v4_send_check, CHECKSUM_PARTIAL).
func partialChecksum(frame []byte, l4 int, v6 bool) {
	var s uint64
	if v6 {
		s = sum16(frame[14+8 : 14+40])
	} else {
		s = sum16(frame[14+12 : 14+20])
	}
	tcpLen := int(binary.BigEndian.Uint16(frame[14+2:])) - 20 // IPv4 total length less its header
	if v6 {
		tcpLen = int(binary.BigEndian.Uint16(frame[14+4:]))
	}
	s += 6 + uint64(tcpLen)
	binary.BigEndian.PutUint16(frame[l4+16:], fold(s))
}

func TestTCPChecksum(t *testing.T) {
	d := NewDecoder(Options{})
	for _, v6 := range []bool{false, true} {
		for _, n := range []int{0, 1, 7, 64, 1201} { // odd lengths pad the last word
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*31 + 7)
			}
			check := func(name string, frame []byte, want ChecksumState) {
				t.Helper()
				var p Packet
				if err := d.Decode(frame, LinkEthernet, ts0, len(frame), &p); err != nil {
					t.Fatal(err)
				}
				if got := p.TCPChecksum(); got != want {
					t.Errorf("v6=%v %d bytes, %s: %v, want %v", v6, n, name, got, want)
				}
			}
			frame, l4 := tcpDataFrame(t, v6, data)
			check("as sent", frame, ChecksumGood)
			if n > 0 {
				last := l4 + 20 + n - 1 // the frame may carry Ethernet padding after it
				bad := append([]byte(nil), frame...)
				bad[last] ^= 0x40
				check("payload byte flipped", bad, ChecksumBad)
				check("cut by the snap length", frame[:last], ChecksumUnknown)
			}
			bad := append([]byte(nil), frame...)
			bad[l4+16] ^= 1
			check("checksum field flipped", bad, ChecksumBad)
			off := append([]byte(nil), frame...)
			partialChecksum(off, l4, v6)
			check("offloaded (pseudo-header sum only)", off, ChecksumOffloaded)
		}
	}
	// Ethernet padding after a short IPv4 packet is not summed.
	frame, _ := tcpDataFrame(t, false, []byte("ab"))
	padded := append(append([]byte(nil), frame...), 0xee, 0xee, 0xee, 0xee)
	var p Packet
	if err := d.Decode(padded, LinkEthernet, ts0, len(padded), &p); err != nil || p.TCPChecksum() != ChecksumGood {
		t.Errorf("padded frame: %v %v", err, p.TCPChecksum())
	}
	// A packet not made by Decode (tests, synthetic) says nothing.
	if (&Packet{Proto: ProtoTCP, Payload: []byte("x")}).TCPChecksum() != ChecksumUnknown {
		t.Error("zero packet")
	}
}

func TestTCPChecksumAllocatesNothing(t *testing.T) {
	frame, _ := tcpDataFrame(t, false, make([]byte, 1400))
	d := NewDecoder(Options{})
	var p Packet
	if n := testing.AllocsPerRun(200, func() {
		_ = d.Decode(frame, LinkEthernet, ts0, len(frame), &p)
		_ = p.TCPChecksum()
	}); n != 0 {
		t.Errorf("%.1f allocations", n)
	}
}

func BenchmarkTCPChecksum(b *testing.B) {
	frame, _ := tcpDataFrame(b, false, make([]byte, 1448))
	d := NewDecoder(Options{})
	var p Packet
	if err := d.Decode(frame, LinkEthernet, ts0, len(frame), &p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	for b.Loop() {
		if p.TCPChecksum() != ChecksumGood {
			b.Fatal("bad")
		}
	}
}

// TestSum16MatchesReference: the word-at-a-time sum equals a plain sum of
// big-endian 16-bit words (modulo 0xffff, where ones' complement arithmetic
// lives) for every length up to 200, every start alignment, and inputs that
// carry on every add (all 0xff).
func TestSum16MatchesReference(t *testing.T) {
	ref := func(b []byte) uint64 {
		var s uint64
		for i := 0; i+1 < len(b); i += 2 {
			s += uint64(b[i])<<8 | uint64(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint64(b[len(b)-1]) << 8
		}
		return s % 0xffff
	}
	buf := make([]byte, 208)
	rng := uint32(1)
	for _, fill := range []string{"random", "0xff", "zero"} {
		for i := range buf {
			switch fill {
			case "random":
				rng = rng*1664525 + 1013904223
				buf[i] = byte(rng >> 24)
			case "0xff":
				buf[i] = 0xff
			default:
				buf[i] = 0
			}
		}
		for start := range 8 {
			for n := 0; n <= 200; n++ {
				b := buf[start : start+n]
				if got, want := sum16(b)%0xffff, ref(b); got != want {
					t.Fatalf("%s, start %d, %d bytes: sum %#x, want %#x", fill, start, n, got, want)
				}
			}
		}
	}
}
