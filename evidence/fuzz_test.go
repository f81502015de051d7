package evidence

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

// FuzzRecorder drives a small recorder with hostile packet sequences: four
// flows (TCP and UDP, DNS among them), any flags, any payload, releases and
// ICMP errors. Nothing panics, the pool and the per-flow caps hold, what is
// kept is the start of a frame that was sent, and every chunk comes back.
func FuzzRecorder(f *testing.F) {
	f.Add([]byte{0x02, 0, 0x12, 0, 0x10, 5, 0x16, 3, 3, 0, 1, 0x11, 6, 0x17, 3, 3, 0, 1, 9})
	f.Add(bytes.Repeat([]byte{0x30, 40}, 60))
	f.Add([]byte{0x44, 12, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x4c, 0, 0xff})
	f.Fuzz(func(t *testing.T, prog []byte) {
		cfg := Config{BufferBytes: 8 * ChunkSize, MaxPackets: 8, MaxBytes: 2048}
		r := NewRecorder(cfg, nil)
		flows := [4]flow.Flow{
			*flow.New(decode.ProtoTCP, client, server, time.Time{}),
			*flow.New(decode.ProtoTCP, netip.MustParseAddrPort("10.0.0.3:40000"), netip.MustParseAddrPort("10.0.0.8:3128"), time.Time{}),
			*flow.New(decode.ProtoUDP, client, netip.MustParseAddrPort("10.0.0.53:53"), time.Time{}),
			*flow.New(decode.ProtoUDP, client, netip.MustParseAddrPort("198.51.100.7:8801"), time.Time{}),
		}
		sent := [4][][]byte{}
		var dec decode.Decoder
		for len(prog) >= 2 {
			op, n := prog[0], int(prog[1])
			prog = prog[2:]
			n = min(n, len(prog))
			payload := prog[:n]
			prog = prog[n:]
			i := int(op>>6) & 3
			fl := &flows[i]
			d := flow.Dir(op >> 5 & 1)
			if op&0x1f == 0x1f {
				r.Release(fl)
				sent[i] = nil
				continue
			}
			fr := fuzzFrame(fl, d, op&0x1f, payload)
			var p decode.Packet
			if dec.Decode(fr, decode.LinkEthernet, t0, len(fr), &p) != nil {
				continue
			}
			sent[i] = append(sent[i], fr)
			fl.Packets[d]++
			if op&0x18 == 0x18 {
				r.ICMP(fl, &p) // not an ICMP packet: must not matter
			} else {
				r.Packet(fl, &p, d)
			}
			if r.InUse() > cfg.BufferBytes {
				t.Fatalf("pool in use %d > %d", r.InUse(), cfg.BufferBytes)
			}
		}
		for i := range flows {
			pkts, _ := r.Packets(&flows[i])
			total := 0
			for _, p := range pkts {
				total += recHeader + len(p.Data)
				if !prefixOfOne(p.Data, sent[i]) {
					t.Fatalf("flow %d keeps bytes it was not sent", i)
				}
			}
			if len(pkts) > cfg.MaxPackets || total > cfg.MaxBytes {
				t.Fatalf("flow %d: %d packets, %d bytes", i, len(pkts), total)
			}
			r.Release(&flows[i])
		}
		if r.InUse() != 0 || r.stats.PoolBytes.Load() != 0 {
			t.Fatalf("%d bytes in use after every flow ended", r.InUse())
		}
	})
}

func prefixOfOne(b []byte, frames [][]byte) bool {
	for _, f := range frames {
		if bytes.HasPrefix(f, b) {
			return true
		}
	}
	return false
}

// fuzzFrame builds Ethernet, IPv4 and TCP or UDP around payload by hand
// (checksums are not checked by the decoder's callers here).
func fuzzFrame(f *flow.Flow, d flow.Dir, flags uint8, payload []byte) []byte {
	src, dst := f.Client(), f.Server()
	if d == flow.ToClient {
		src, dst = dst, src
	}
	l4 := 8
	if f.Proto == decode.ProtoTCP {
		l4 = 20
	}
	b := make([]byte, 14+20+l4, 14+20+l4+len(payload))
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4+len(payload)))
	ip[8], ip[9] = 64, f.Proto
	s, t := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], t[:])
	l := ip[20:]
	binary.BigEndian.PutUint16(l[0:], src.Port())
	binary.BigEndian.PutUint16(l[2:], dst.Port())
	if f.Proto == decode.ProtoTCP {
		l[12] = 5 << 4
		l[13] = flags & 0x17
	} else {
		binary.BigEndian.PutUint16(l[4:], uint16(8+len(payload)))
	}
	return append(b, payload...)
}
