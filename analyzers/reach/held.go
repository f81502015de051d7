package reach

import (
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

// rec is what reach keeps per flow. Most flows never need the full state
// (about 400 bytes): a TCP flow that only did SYN and SYN-ACK, a UDP flow of
// one datagram each way, a flow whose identity is not known yet. Their first
// packets are held here, as the few fields the analysis reads, and replayed
// into a full state when something needs one: a packet that is not held,
// an ICMP error about the flow, the verdict of a watched flow. Only packets
// whose analysis touches nothing but the flow's own state are held, so the
// replay, later, gives the state and the verdicts the packets would have
// given at once.
type rec struct {
	full      *state // nil until needed
	held      [maxHeld]heldPacket
	n         uint8 // packets held
	ipVersion uint8 // of the held packets
	boxSides  uint8 // 1<<analyzers.BoxSide of each input the flow's packets came from
}

// maxHeld: a handshake's SYN and SYN-ACK, a datagram and its answer; rec
// stays within 64 bytes.
const maxHeld = 2

// heldPacket is what the analysis reads of a held packet.
type heldPacket struct {
	time  instant
	seq   uint32 // TCP: sequence number; UDP: payloadHash of the datagram
	ack   uint32
	ipid  uint16
	ttl   uint8
	flags uint8 // TCP flags; UDP: 1 when the datagram looks like Zoom media
	dir   flow.Dir
}

// hold keeps p for a later replay when its analysis is local to the flow's
// state: a client SYN or a server SYN-ACK without payload (TCP: no port
// matrix, no shared record, no verdict moves for them), a client datagram
// before any answer or an answer (UDP: a verdict or an open port needs more
// datagrams than are held).
func (r *rec) hold(proto uint8, p *decode.Packet, d flow.Dir) bool {
	if r.n == maxHeld || r.n > 0 && p.IPVersion != r.ipVersion {
		return false
	}
	h := heldPacket{time: at(p.Time), ttl: p.TTL, ipid: p.IPID, dir: d}
	switch proto {
	case decode.ProtoTCP:
		want := uint8(decode.TCPSyn)
		if d == flow.ToClient {
			want |= decode.TCPAck
		}
		if len(p.Payload) > 0 || p.TCPFlags&(decode.TCPSyn|decode.TCPAck|decode.TCPRst) != want {
			return false
		}
		h.seq, h.ack, h.flags = p.Seq, p.Ack, p.TCPFlags
	case decode.ProtoUDP:
		if d == flow.ToServer && r.answerHeld() {
			return false // a datagram after an answer may open the port
		}
		h.seq = payloadHash(p.Payload)
		if mediaLike(p.Payload) {
			h.flags = 1
		}
	default:
		return false
	}
	r.held[r.n] = h
	r.n++
	r.ipVersion = p.IPVersion
	return true
}

func (r *rec) answerHeld() bool {
	for i := range r.n {
		if r.held[i].dir == flow.ToClient {
			return true
		}
	}
	return false
}

// packet rebuilds the fields of a held packet that the analysis reads.
func (h *heldPacket) packet(proto, ipVersion uint8) decode.Packet {
	p := decode.Packet{Time: h.time.T(), IPVersion: ipVersion, Proto: proto, TTL: h.ttl, IPID: h.ipid, Seq: h.seq, Ack: h.ack}
	if proto == decode.ProtoTCP {
		p.TCPFlags = h.flags
	}
	return p
}
