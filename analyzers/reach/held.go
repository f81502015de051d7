package reach

import (
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

// rec is what reach keeps per flow. Most flows never need the full state: a
// TCP flow that only did SYN and SYN-ACK, a UDP flow of one datagram each
// way, a flow whose identity is not known yet. Their first packet each way
// is held instead, and replayed into a full state when something needs one:
// another packet, an ICMP error about the flow, the verdict of a watched
// flow. Only packets whose analysis touches nothing but the flow's own state
// are held, so the replay gives the state and the verdicts the packets would
// have given at once. A held packet is rebuilt from what the flow already
// keeps (its first packet's time, each direction's first TTL and ISN) and
// the few fields below; hold checks the flow has them right.
type rec struct {
	full      *state  // nil until needed
	t         instant // time of the held server packet
	a         uint32  // TCP: the SYN-ACK's acknowledgement number; UDP: payloadHash of the client's datagram
	ipid      [2]uint16
	flags     [2]uint8 // TCP flags; UDP: 1 when the client's datagram looks like Zoom media
	held      uint8    // 1<<d: the first packet of direction d is held
	ipVersion uint8
	boxSides  uint8 // 1<<analyzers.BoxSide of each input the flow's packets came from
}

func heldBit(d flow.Dir) uint8 { return 1 << (d & 1) }

// hold keeps p for a later replay when its analysis is local to the flow's
// state and the flow keeps what the replay needs: the flow's first packet
// when it is a client SYN or a client datagram, the first server packet when
// it is the first SYN-ACK or a datagram. TCP: no port matrix, no shared
// record, no verdict moves for them; UDP: a verdict or an open port needs
// more client datagrams than are held.
func (r *rec) hold(f *flow.Flow, p *decode.Packet, d flow.Dir) bool {
	if r.held != 0 && p.IPVersion != r.ipVersion || f.Packets[d] != 1 || len(p.Payload) > 0 && f.Proto == decode.ProtoTCP {
		return false // not the first packet this way, or one the record cannot hold
	}
	if d == flow.ToServer && (f.Packets[flow.ToClient] != 0 || at(f.First()) != at(p.Time)) {
		return false // the client's packet is held only as the flow's first: its time is the flow's
	}
	if p.TTL != f.FirstTTL[d] {
		return false
	}
	switch f.Proto {
	case decode.ProtoTCP:
		want := uint8(decode.TCPSyn)
		if d == flow.ToClient {
			want |= decode.TCPAck
		}
		if isn, ok := f.ISN(d); !ok || isn != p.Seq || p.TCPFlags&(decode.TCPSyn|decode.TCPAck|decode.TCPRst) != want {
			return false
		}
		r.ipid[d], r.flags[d] = p.IPID, p.TCPFlags
		if d == flow.ToClient {
			r.a, r.t = p.Ack, at(p.Time)
		}
	case decode.ProtoUDP:
		if d == flow.ToServer {
			r.a = payloadHash(p.Payload)
			if mediaLike(p.Payload) {
				r.flags[d] = 1
			}
		} else {
			r.t = at(p.Time)
		}
	default:
		return false
	}
	r.held |= heldBit(d)
	r.ipVersion = p.IPVersion
	return true
}

// replay runs the held packets, client's first, through the analysis of s.
func (a *Analyzer) replay(f *flow.Flow, r *rec, s *state) {
	for _, d := range [2]flow.Dir{flow.ToServer, flow.ToClient} {
		if r.held&heldBit(d) == 0 {
			continue
		}
		p := decode.Packet{IPVersion: r.ipVersion, Proto: f.Proto, TTL: f.FirstTTL[d], IPID: r.ipid[d]}
		p.Time = f.First()
		if d == flow.ToClient {
			p.Time = r.t.T()
		}
		switch f.Proto {
		case decode.ProtoTCP:
			p.Seq, _ = f.ISN(d)
			p.TCPFlags = r.flags[d]
			if d == flow.ToClient {
				p.Ack = r.a
			}
			a.tcpPacket(f, s, &p, d)
		case decode.ProtoUDP:
			a.udpDatagram(f, s, &p, d, r.a, r.flags[flow.ToServer] != 0)
		}
	}
	r.held = 0
}
