package reach_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers/reach"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
)

// FuzzHeldReplay feeds the same packets to an analyzer that holds a flow's
// first packets and to one that makes the full state at once: every finding,
// with its whole evidence, and every metric must be the same. ops picks each
// packet (SYN, SYN-ACK, ACK, ClientHello, server data, resets, ICMP errors;
// UDP datagrams both ways), its spacing and its variations.
func FuzzHeldReplay(f *testing.F) {
	f.Add([]byte{0, 1}, false, true)                                   // SYN, SYN-ACK: held, judged at the end
	f.Add([]byte{0, 1, 2, 3, 6}, false, false)                         // SNI learnt, forged reset copying the SYN's IP ID
	f.Add([]byte{0, 1, 0x20, 0x40, 0x60}, false, true)                 // SYN-ACK then SYNs: client-side drop
	f.Add([]byte{0, 0x21, 0x45, 0x61}, false, true)                    // retries, reset to the SYN
	f.Add([]byte{0, 0x1f, 0x27}, false, true)                          // SYN-ACK acknowledging another SYN, ICMP
	f.Add([]byte{0, 4, 0x20, 0x40, 0x60}, true, true)                  // UDP: answer then the same request again
	f.Add([]byte{0, 0x20, 0x47}, true, true)                           // UDP: unanswered, ICMP
	f.Add([]byte{4, 0, 0x21, 0x42}, true, false)                       // UDP: the server's datagram first
	f.Add([]byte{1, 0, 2, 3, 5, 0x80, 0xa1, 0xc3, 0xe6}, false, false) // SYN-ACK first, then everything
	f.Fuzz(func(t *testing.T, ops []byte, udp, zoomRange bool) {
		if len(ops) > 24 {
			ops = ops[:24]
		}
		ps := heldReplayPackets(ops, udp, zoomRange)
		held, whole := newEnv(t), newEnv(t)
		reach.HoldNone(whole.a)
		for _, e := range []*env{held, whole} {
			e.h.Feed(append([]decode.Packet(nil), ps...)...)
			e.h.FlushAt(at(10 * time.Minute))
		}
		if a, b := renderFindings(held), renderFindings(whole); a != b {
			t.Fatalf("findings differ with held packets:\n%s\nwithout:\n%s", a, b)
		}
		if a, b := renderMetrics(t, held), renderMetrics(t, whole); a != b {
			t.Fatalf("metrics differ with held packets:\n%s\nwithout:\n%s", a, b)
		}
	})
}

func heldReplayPackets(ops []byte, udp, zoomRange bool) []decode.Packet {
	server := webFront
	if zoomRange {
		server = mmr
	}
	var c *reachtest.Conn
	if udp {
		c = reachtest.NewUDP(client+":40001", server+":8801")
	} else {
		c = reachtest.NewTCP(client+":40001", server+":443")
	}
	hello := reachtest.ClientHello("www.zoom.us")
	serverHello := append([]byte{0x16, 0x03, 0x03, 0x00, 0x5a, 0x02}, make([]byte, 0x59)...)
	var ps []decode.Packet
	var first, last decode.Packet // the client's first and latest packet
	var now time.Duration
	for i, op := range ops {
		now += time.Duration(op>>5)*400*time.Millisecond + time.Millisecond
		t := at(now)
		var p decode.Packet
		if udp {
			switch op & 7 {
			case 0, 1:
				p = c.Data(t, true, []byte{0x01, 0x00, 0x02, byte(op >> 5 & 1)}) // a request, sometimes again
			case 2:
				p = c.Data(t, true, []byte{0x05, 0x10, 0x01, 0, 0, 0, 0, 0, byte(i)}) // media
			case 3:
				p = c.Data(t, true, []byte{0x03, byte(i)}) // something new
			case 4, 5, 6:
				p = c.Data(t, false, []byte{0x02, byte(i)})
			case 7:
				p = reachtest.Unreachable(t, router, 64, 3+op>>3&7, last)
			}
		} else {
			switch op & 7 {
			case 0:
				p = c.SYN(t)
			case 1:
				p = c.SYNACK(t)
				if op&0x08 != 0 {
					p.Ack++ // not an answer to this SYN
				}
				if op&0x10 != 0 {
					p.TTL--
				}
			case 2:
				p = c.ACK(t, true)
			case 3:
				p = c.Data(t, true, hello)
			case 4:
				p = c.Data(t, false, serverHello)
			case 5:
				p = c.RST(t, op&0x08 != 0)
			case 6:
				p = c.Forged(t, op&0x08 != 0, 64, first.IPID, nil)
			case 7:
				p = reachtest.Unreachable(t, router, 64, 3+op>>3&3*3, last)
			}
		}
		if p.IsTCP() || p.IsUDP() {
			if p.Src == c.Client.Addr() {
				if first.Time.IsZero() {
					first = p
				}
				last = p
			}
		}
		ps = append(ps, p)
	}
	return ps
}

func renderFindings(e *env) string {
	var b strings.Builder
	for _, f := range e.sink.All() {
		fmt.Fprintf(&b, "%s %s %s %s %s %s %s %v", f.Time.Format(time.RFC3339Nano), f.Kind, f.Reason, f.Service, f.SNI, f.Confidence, f.Remediation, f.Evidence)
		if f.Flow != nil {
			fmt.Fprintf(&b, " %+v", *f.Flow)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func renderMetrics(t *testing.T, e *env) string {
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(gather(t, e.reg, mf.GetName()))
	}
	return b.String()
}
