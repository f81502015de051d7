package reach

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Phases of a connection when it was reset (metric label values).
const (
	PhaseSYN              = "syn"
	PhaseAfterClientHello = "after_client_hello"
	PhaseHandshake        = "handshake"
	PhaseEstablished      = "established"
)

// Origins of a reset (metric label values).
const (
	OriginServer    = "server"
	OriginMiddlebox = "middlebox"
	OriginUnknown   = "unknown"
)

type icmpRecord struct {
	seen   bool
	time   instant
	sender netip.Addr
	typ    uint8
	code   uint8
	ttl    uint8
	reason finding.Reason
}

type rstRecord struct {
	seen        bool
	time        instant
	ttl         uint8
	ipid        uint16
	seq         uint32
	payload     int
	phase       string
	afterClose  bool // a FIN had been seen: an ordinary close
	copiedIPID  bool // IP ID equal to one of the client's recent packets
	ipidKnown   bool // the server's IP ID sequence was known at the reset
	ipidInSeq   bool
	racedAnswer bool // the server's answer passed the probe before this reset to the ClientHello
}

// instant is a packet time as Unix nanoseconds (0: never), 8 bytes where a
// time.Time takes 24: the state is made for every watched flow.
type instant int64

func at(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

// T is the instant as a time (the zero time for 0).
func (i instant) T() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// IsZero reports whether the instant was never set.
func (i instant) IsZero() bool { return i == 0 }

// incident is what a flow's resets and ICMP errors leave, made at the first
// one (most flows have none); recycled through Analyzer.freeInc.
type incident struct {
	icmp            icmpRecord
	icmpCount       int
	rst             rstRecord
	rstToClient     int
	rstSeqs         [2]uint32 // first two distinct reset sequence numbers (bursts)
	rstDistinct     uint8
	rstToServer     bool
	rstToServerTime instant
	rstToServerTTL  uint8
	afterRst        bool // a genuine server packet came after the reset
	afterRstTTL     uint8
	synAfterRst     bool // the client tried again on the same ports: later answers are not a race
}

func (s *state) rstSeen() bool  { return s.inc != nil && s.inc.rst.seen }
func (s *state) icmpSeen() bool { return s.inc != nil && s.inc.icmp.seen }

// state is one flow's full memory (rec holds it); recycled through Analyzer.free.
type state struct {
	// UDP and TCP.
	first, lastClient instant
	answered          bool // the server sent something (TCP: SYN-ACK or data)
	answerTime        instant
	openMarked        bool // port matrix told and fallback join done for this flow
	reported          bool

	// UDP.
	datagrams   int
	clientMedia bool // client sent Zoom media: the set-up was answered even if the capture missed it

	// TCP, client side.
	synSeen           bool
	synFirst, synLast instant
	isn               uint32
	clientTTL         uint8
	clientIPID        [4]uint16 // the client's last IP IDs, a ring
	clientIPIDNext    uint8     // ring slot written next
	clientIPIDFilled  uint8     // slots in use (at most 4): no counter to wrap
	ackWithoutSynAck  bool      // the client ACKed a SYN-ACK the capture missed
	clientPayload     bool
	clientHello       bool
	helloAck          uint32 // the ClientHello's ACK: the server's sequence number when it was sent
	tlsFlow           bool
	cliRec, srvRec    recordWalk // TLS record boundaries each way, to tell application data from a continuation
	appData           bool
	serverPayload     bool
	srvTTLMin         uint8
	srvTTLMax         uint8
	srvIPIDLast       uint16
	srvIPIDn          uint8  // IP IDs seen from the server, saturating at 2
	srvNext           uint32 // server's next sequence number
	srvNextKnown      bool
	synAckTTL         uint8
	inc               *incident // resets and ICMP errors; nil until the first

	lost lostAnswers // answers that passed the probe and what the client did after them
}

// lostAnswers is what tells answers lost between the probe and the client
// (its own firewall or security software) from a lossy path and from
// asymmetric routing: Zoom's answers passed the probe toward the client, the
// client repeated what they answered, and nothing it sent shows it received one.
// Instants are Unix nanoseconds (0: not yet), to keep the per-flow state small.
type lostAnswers struct {
	firstAnswer, lastAnswer int64
	serverDataFirst         int64
	lastRetry, lastRepeat   int64
	requests                [4]uint32 // hashes of the client's distinct datagrams (UDP), a ring
	serverISN               uint32
	serverSent              uint32 // end of what the server sent, relative to its ISN (1: the SYN-ACK)
	clientAcked             uint32 // highest acknowledgement of the client, relative to the server's ISN (0: none)
	clientSent              uint32 // end of what the client sent, relative to its ISN (1: the SYN)
	answers                 uint16 // server packets toward the client that answer something (SYN-ACK, data; UDP: datagrams)
	serverRetransmits       uint16 // the server repeating answers nobody acknowledged (TCP)
	synRetries              uint16 // client SYNs after a SYN-ACK acknowledging the SYN passed the probe
	dataRetries             uint16 // client segments repeated after server data passed the probe (TCP); requests repeated after a reply (UDP)
	requestsNext            uint8
	requestsFilled          uint8
	synAckSeen              bool
	serverAckedUnseen       bool // the server acknowledged client bytes the probe never saw: the client reaches it another way
	progress                bool // UDP: the client sent something new after an answer (it received one)
}

// since is how long after the instant n (Unix nanoseconds, 0: never) t is.
func since(t time.Time, n int64) time.Duration { return time.Duration(t.UnixNano() - n) }

// stamp renders the instant n for evidence.
func stamp(n int64) string { return time.Unix(0, n).UTC().Format(time.RFC3339Nano) }

// copyWindow: the same packet seen again this soon is a mirror copy (SPAN of
// both directions), not a retransmission; retransmission timers start at 200 ms.
const copyWindow = 50 * time.Millisecond

// crossingSlack: a request sent this soon after its answer passed the probe
// may have left before the answer reached the client.
const crossingSlack = 10 * time.Millisecond

func (s *state) noteClientIPID(id uint16) {
	s.clientIPID[s.clientIPIDNext] = id
	s.clientIPIDNext = (s.clientIPIDNext + 1) % uint8(len(s.clientIPID))
	if int(s.clientIPIDFilled) < len(s.clientIPID) {
		s.clientIPIDFilled++
	}
}

func (s *state) isClientIPID(id uint16) bool {
	if id == 0 {
		return false
	}
	for i := 0; i < int(s.clientIPIDFilled); i++ {
		if s.clientIPID[i] == id {
			return true
		}
	}
	return false
}

func (s *state) noteServerTTL(ttl uint8) {
	if s.srvTTLMin == 0 || ttl < s.srvTTLMin {
		s.srvTTLMin = ttl
	}
	if ttl > s.srvTTLMax {
		s.srvTTLMax = ttl
	}
}

func (a *Analyzer) tcpPacket(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	fl := p.TCPFlags
	if d == flow.ToServer {
		if fl&decode.TCPRst == 0 { // a reset toward the server may be forged: keep the client's own marks
			s.clientTTL = p.TTL
			if p.IPVersion == 4 {
				s.noteClientIPID(p.IPID)
			}
		}
		switch {
		case fl&decode.TCPRst != 0:
			if x := a.incident(s); !x.rstToServer {
				x.rstToServer, x.rstToServerTime, x.rstToServerTTL = true, at(p.Time), p.TTL
			}
			return
		case fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn:
			if !s.synSeen {
				s.synSeen, s.synFirst, s.isn = true, at(p.Time), p.Seq
				s.first = at(p.Time)
				s.lost.clientSent = 1
			} else if l := &s.lost; l.synAckSeen && p.Seq == s.isn && p.Time.Sub(s.synLast.T()) >= copyWindow && since(p.Time, l.firstAnswer) >= crossingSlack {
				l.synRetries++ // the SYN-ACK passed the probe, the client asks again
				l.lastRetry = p.Time.UnixNano()
			}
			if s.rstSeen() {
				s.inc.synAfterRst = true
			}
			s.synLast = at(p.Time)
			return
		}
		if s.synSeen && !s.answered && fl&decode.TCPAck != 0 {
			s.ackWithoutSynAck = true
		}
		if s.synSeen && s.lost.clientAcked <= 1 { // past that the client got server data: nothing to judge
			a.clientProgress(f, s, p)
		}
		if len(p.Payload) > 0 {
			a.clientData(f, s, p.Payload, p.Seq, p.Ack)
		}
		return
	}

	// Server to client.
	if fl&decode.TCPRst != 0 {
		a.resetToClient(f, s, p)
		return
	}
	if x := s.inc; x != nil && x.rst.seen && !x.synAfterRst && p.Time.Sub(x.rst.time.T()) <= raceWindow {
		x.afterRst = true
		if x.afterRstTTL == 0 {
			x.afterRstTTL = p.TTL
		}
	}
	s.noteServerTTL(p.TTL)
	if p.IPVersion == 4 && p.IPID != 0 {
		s.srvIPIDLast = p.IPID
		if s.srvIPIDn < 2 { // only ">= 2" is asked: saturate, never wrap
			s.srvIPIDn++
		}
	}
	next := p.Seq + uint32(len(p.Payload))
	if fl&(decode.TCPSyn|decode.TCPFin) != 0 {
		next++
	}
	if !s.srvNextKnown || int32(next-s.srvNext) > 0 {
		s.srvNext, s.srvNextKnown = next, true
	}
	if fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn|decode.TCPAck && s.synAckTTL == 0 {
		s.synAckTTL = p.TTL
	}
	if !s.answered {
		s.answered, s.answerTime = true, at(p.Time)
	}
	if len(p.Payload) > 0 {
		if !s.serverPayload {
			s.srvRec.start(p.Seq, p.Payload)
		}
		s.serverPayload = true
		if s.tlsFlow && s.srvRec.appData(p.Seq, p.Payload) || !s.tlsFlow && s.clientPayload {
			s.appData = true
		}
	}
	if s.synSeen && s.lost.clientAcked <= 1 {
		s.serverAnswer(p)
	}
	// The port is open once the client shows it got the answer (its ACK);
	// until then the answer may be lost on the client's side of the probe.
	// Flows picked up after their SYN, or whose client ACK the probe does not
	// see, are marked when they end.
	if !s.openMarked && s.lost.clientAcked > 0 {
		a.tcpAnswered(f, s)
	}
}

// serverAnswer notes a server packet toward the client for the
// client-side-drop judgement: SYN-ACKs and data the client has to acknowledge.
func (s *state) serverAnswer(p *decode.Packet) {
	l := &s.lost
	fl := p.TCPFlags
	if fl&decode.TCPAck != 0 && l.synAckSeen && int32(p.Ack-s.isn-l.clientSent) > 0 {
		l.serverAckedUnseen = true
	}
	if fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn|decode.TCPAck {
		if p.Ack != s.isn+1 {
			return // not an answer to this SYN
		}
		if !l.synAckSeen {
			l.synAckSeen, l.serverISN, l.serverSent = true, p.Seq, 1
			l.noteAnswer(p.Time)
			return
		}
		if p.Seq == l.serverISN && l.clientAcked == 0 && since(p.Time, l.lastAnswer) >= copyWindow {
			l.serverRetransmits++
			l.noteAnswer(p.Time)
		}
		return
	}
	if !l.synAckSeen || len(p.Payload) == 0 {
		return
	}
	end := p.Seq + uint32(len(p.Payload)) - l.serverISN
	if int32(end) <= 0 || end > 1<<30 {
		return // not in this connection's sequence space
	}
	if l.serverDataFirst == 0 {
		l.serverDataFirst = p.Time.UnixNano()
	}
	if end <= l.serverSent {
		if int32(l.clientAcked-end) < 0 && since(p.Time, l.lastAnswer) >= copyWindow {
			l.serverRetransmits++ // nobody acknowledged it
			l.noteAnswer(p.Time)
		}
		return
	}
	l.serverSent = end
	l.noteAnswer(p.Time)
}

func (l *lostAnswers) noteAnswer(t time.Time) {
	if l.answers == 0 {
		l.firstAnswer = t.UnixNano()
	}
	if l.answers < 1<<15 {
		l.answers++
	}
	l.lastAnswer = t.UnixNano()
}

// clientProgress reads a client segment after the SYN: its acknowledgement
// (what it received of the server's answers) and whether it repeats data it
// sent before, after server data it never acknowledged passed the probe.
func (a *Analyzer) clientProgress(f *flow.Flow, s *state, p *decode.Packet) {
	l := &s.lost
	if p.TCPFlags&decode.TCPAck != 0 && l.synAckSeen {
		if rel := p.Ack - l.serverISN; int32(rel) > 0 && rel <= l.serverSent && rel > l.clientAcked {
			l.clientAcked = rel
			if !s.openMarked && s.answered {
				a.tcpAnswered(f, s)
			}
		}
	}
	if len(p.Payload) == 0 {
		return
	}
	end := p.Seq + uint32(len(p.Payload)) - s.isn
	if int32(end) <= 0 || end > 1<<30 {
		return
	}
	if end > l.clientSent {
		l.clientSent = end
		return
	}
	// A repeat of data already sent: a retransmission, or a mirror copy.
	if l.serverDataFirst != 0 && l.clientAcked <= 1 && since(p.Time, l.serverDataFirst) >= crossingSlack && since(p.Time, l.lastRepeat) >= copyWindow {
		l.dataRetries++
		l.lastRetry = p.Time.UnixNano()
	}
	l.lastRepeat = p.Time.UnixNano()
}

// clientData looks at client payload: the ClientHello (its name is the
// identity stage's) and the first application data.
func (a *Analyzer) clientData(f *flow.Flow, s *state, b []byte, seq, ack uint32) {
	if !s.clientPayload {
		s.clientPayload = true
		if isClientHello(b) {
			s.tlsFlow, s.clientHello, s.helloAck = true, true, ack
			s.cliRec.start(seq, b)
			s.cliRec.appData(seq, b)
		} else if s.serverPayload {
			s.appData = true
		}
		return
	}
	if s.tlsFlow && s.cliRec.appData(seq, b) {
		s.appData = true
	}
}

// recordWalk follows TLS record headers through one direction's segments in
// order, so application data is recognised by a record's type, never by the
// first byte of a segment that continues a handshake message (a ClientHello
// or a certificate chain spans several segments, any of which may start
// with 0x17). It loses track, and then sees nothing, at a gap or a header
// split across segments.
type recordWalk struct {
	next  uint32 // sequence number of the next record header
	known bool
}

// start begins the walk at a segment that opens with a TLS record header.
func (w *recordWalk) start(seq uint32, b []byte) {
	w.next, w.known = seq, len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03
}

// appData walks the record headers that start in this segment and reports
// whether one is application data.
func (w *recordWalk) appData(seq uint32, b []byte) bool {
	if !w.known {
		return false
	}
	off := int(int32(w.next - seq))
	switch {
	case off < 0: // a segment the walk never saw: boundaries unknown from here
		w.known = false
		return false
	case off >= len(b): // a retransmission, or the record goes on past this segment
		return false
	}
	found := false
	for off+5 <= len(b) {
		if b[off] == 0x17 {
			found = true
		}
		off += 5 + int(binary.BigEndian.Uint16(b[off+3:]))
	}
	if off < len(b) { // a header split across segments
		w.known = false
		return found
	}
	w.next = seq + uint32(off)
	return found
}

// tcpAnswered runs once per flow when the server answered and the flow is
// watched: the port is open, the client's success is remembered for the Happy
// Eyeballs check and the fallback join, and the server's TTL for judging
// resets on later flows.
func (a *Analyzer) tcpAnswered(f *flow.Flow, s *state) {
	if !f.Watched() || !s.synSeen {
		return // identity may come later (the SNI); tried again on the next server packet
	}
	s.openMarked = true
	t := s.answerTime
	a.m.matrix.set(f.Service(), f.Proto, f.ServerPort(), StatusOpen, t.T())
	fb := a.sh.tcpAnswered(f.Client().Addr(), f.Server().Addr(), f.Service(), f.ServerPort(), s.synFirst.T(), t.T(), s.synAckTTL, analyzers.FlowOf(f), a.cfg.FallbackWindow)
	if fb != nil {
		a.emitFallback(fb)
	}
}

func (a *Analyzer) resetToClient(f *flow.Flow, s *state, p *decode.Packet) {
	x := a.incident(s)
	x.rstToClient++
	if x.rstDistinct < 2 && (x.rstDistinct == 0 || x.rstSeqs[0] != p.Seq) {
		x.rstSeqs[x.rstDistinct] = p.Seq
		x.rstDistinct++
	}
	if x.rst.seen {
		return
	}
	if !s.answered {
		// A reset to a SYN acknowledges it; anything else is not about this connection.
		if !s.synSeen || p.TCPFlags&decode.TCPAck != 0 && p.Ack != s.isn+1 {
			return
		}
	} else if s.srvNextKnown && !seqWithin(p.Seq+rstSeqSlack, s.srvNext, 2*rstSeqSlack) {
		return // far outside the window: the client would ignore it
	}
	r := &x.rst
	r.seen, r.time, r.ttl, r.ipid, r.seq, r.payload = true, at(p.Time), p.TTL, p.IPID, p.Seq, len(p.Payload)
	r.afterClose = f.FinSeen(flow.ToServer) || f.FinSeen(flow.ToClient)
	if p.IPVersion == 4 {
		r.copiedIPID = s.isClientIPID(p.IPID)
		if s.srvIPIDn >= 2 && p.IPID != 0 { // 0: a stack that leaves DF packets unnumbered, no evidence
			r.ipidKnown = true
			r.ipidInSeq = p.IPID-s.srvIPIDLast <= ipidStep
		}
	}
	switch {
	case !s.answered && s.synSeen:
		r.phase = PhaseSYN
	case s.appData || !s.synSeen && s.clientPayload && s.serverPayload:
		r.phase = PhaseEstablished
	case s.clientHello && !s.serverPayload:
		r.phase = PhaseAfterClientHello
	case s.clientHello && p.Seq == s.helloAck:
		// The reset's sequence number is where the server stood when the
		// ClientHello left: its sender answered the ClientHello without
		// having sent the server's answer, which passed first. A race an
		// on-path injector lost by a hair; it is judged like one that won.
		r.phase, r.racedAnswer = PhaseAfterClientHello, true
	default:
		r.phase = PhaseHandshake
	}
}

// resetScore weighs the evidence that a reset was not sent by the server.
// Positive points to a middlebox; each observation is listed for the finding.
func (a *Analyzer) resetScore(f *flow.Flow, s *state) (score int, ev map[string]any, refTTL uint8) {
	x := s.inc
	r := &x.rst
	ev = map[string]any{"rst_ttl": int(r.ttl), "phase": r.phase}
	lo, hi := s.srvTTLMin, s.srvTTLMax
	if lo == 0 {
		if t, ok := a.sh.serverTTL(f.Server().Addr()); ok {
			lo, hi = t, t
			ev["server_ttl_source"] = "earlier_flow"
		}
	}
	if lo != 0 {
		refTTL = lo
		ev["server_ttl"] = int(lo)
		if r.ttl < lo || r.ttl > hi {
			score += 2
			ev["ttl_mismatch"] = true
		} else {
			score -= 2
		}
	}
	if f.Client().Addr().Is4() {
		ev["rst_ip_id"] = int(r.ipid)
		if r.copiedIPID {
			score += 2
			ev["ip_id_copied_from_client"] = true
		} else if r.ipidKnown {
			if r.ipidInSeq {
				score--
			} else {
				score++
				ev["ip_id_out_of_sequence"] = true
			}
		}
	}
	if x.afterRst {
		score += 3
		ev["genuine_packet_after_rst"] = true
	}
	if r.racedAnswer {
		score += 2 // a server that had answered would reset at its new sequence number
		ev["rst_seq_before_server_answer"] = true
	}
	if r.payload > 0 {
		score += 2
		ev["rst_payload_bytes"] = r.payload
	}
	if x.rstToServer && absDur(x.rstToServerTime.T().Sub(r.time.T())) <= bothEndsWindow && x.rstToServerTTL != s.clientTTL {
		score += 2
		ev["reset_to_both_ends"] = true
	}
	if x.rstDistinct > 1 {
		score++
		ev["rst_burst"] = x.rstToClient
	}
	ev["score"] = score
	return score, ev, refTTL
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (a *Analyzer) origin(score int, known bool) string {
	switch {
	case score >= a.cfg.ResetMiddleboxScore:
		return OriginMiddlebox
	case known && score <= -2:
		return OriginServer
	}
	return OriginUnknown
}

func (a *Analyzer) tcpExpire(f *flow.Flow, s *state, now time.Time) {
	lost := !s.rstSeen() && s.answered && a.tcpAnswersLost(s)
	if !s.openMarked && s.answered && !lost {
		a.tcpAnswered(f, s) // identity learnt late, or the client's ACK not seen
	}
	// The identity stage read the ClientHello's name, even one cut off
	// by the reset after its first segment. A name learnt from DNS is not
	// what the client sent: emit puts it in the evidence instead.
	sni := sentName(f)
	svc := f.Service()
	if svc == zoom.ServiceNone {
		return
	}
	switch {
	case lost:
		a.clientSideDrop(f, svc, &s.lost, a.tcpLostEvidence(s), sni)
	case s.rstSeen():
		a.judgeReset(f, s, svc, sni)
	case s.icmpSeen() && !s.answered:
		x := s.inc
		a.blocked(f, svc, x.icmp.reason, x.icmp.time.T(), icmpEvidence(&x.icmp, x.icmpCount), sni)
	case s.synSeen && !s.answered && f.Packets[flow.ToClient] == 0:
		a.judgeDrop(f, s, svc, now, sni)
	}
}

func (a *Analyzer) judgeDrop(f *flow.Flow, s *state, svc zoom.Service, now time.Time, sni string) {
	waited := now.Sub(s.synFirst.T())
	switch {
	case s.ackWithoutSynAck || s.clientPayload:
		a.m.notJudged.WithLabelValues("capture_gap").Inc()
		return // the client saw an answer the capture missed
	case waited < a.cfg.SYNTimeout:
		a.m.notJudged.WithLabelValues("too_short").Inc()
		return
	case int(f.SynCount) < a.cfg.SYNMinAttempts:
		a.m.notJudged.WithLabelValues("abandoned").Inc()
		return
	case a.sh.answeredNear(f.Client().Addr(), svc, f.ServerPort(), s.synFirst.T().Add(-a.cfg.HappyEyeballsWindow), s.synLast.T().Add(a.cfg.HappyEyeballsWindow)):
		a.m.notJudged.WithLabelValues("happy_eyeballs").Inc()
		return
	}
	ev := map[string]any{"syn_attempts": int(f.SynCount), "waited_seconds": waited.Seconds(), "verdict": "dropped"}
	a.blocked(f, svc, finding.ReasonTimeout, s.synFirst.T(), ev, sni)
}

func (a *Analyzer) judgeReset(f *flow.Flow, s *state, svc zoom.Service, sni string) {
	r := &s.inc.rst
	if r.afterClose {
		return // server reset after a FIN: an ordinary close
	}
	if a.leftToBox(f, WhereBeyondProbe) {
		return
	}
	score, ev, ref := a.resetScore(f, s)
	org := a.origin(score, ref != 0 || r.ipidKnown)
	ev["origin"] = org
	a.m.resets.WithLabelValues(svc.String(), r.phase, org).Inc()
	if r.phase == PhaseSYN && !s.inc.afterRst {
		ev["syn_attempts"] = int(f.SynCount)
		a.blocked(f, svc, finding.ReasonConnectionRefused, r.time.T(), ev, sni)
		return
	}
	if org == OriginServer && r.phase == PhaseEstablished {
		return // the server closed an established connection: counted, not a finding
	}
	reason := finding.ReasonConnectionReset
	if r.phase == PhaseAfterClientHello && zoom.IsZoomName(sni) && org != OriginServer {
		reason = finding.ReasonSNIFiltering
	}
	conf := "medium"
	switch org {
	case OriginMiddlebox:
		conf = "high"
	case OriginServer:
		conf = "low"
	}
	a.m.matrix.set(svc, f.Proto, f.ServerPort(), StatusReset, r.time.T())
	ev["where"] = WhereBeyondProbe // the reset passed the probe toward the client
	us, rem := texts(reason)
	a.emit(finding.Finding{
		Time: r.time.T(), Kind: finding.KindConnectionReset, Reason: reason, Service: svc.String(), SNI: sni,
		Confidence: conf, UserSees: us, Remediation: rem, Evidence: ev,
	}, f)
}

// blocked gives a blocked_connection finding, counts it and updates the port matrix.
func (a *Analyzer) blocked(f *flow.Flow, svc zoom.Service, reason finding.Reason, t time.Time, ev map[string]any, sni string) {
	port := f.ServerPort()
	where := WhereBeyondProbe
	if reason == finding.ReasonClientSideDrop {
		where = WhereClientHost
	}
	if a.leftToBox(f, where) {
		return
	}
	if where == WhereBeyondProbe {
		// The port matrix is the site's view: one host's own firewall does
		// not close a port for everyone.
		a.m.matrix.set(svc, f.Proto, port, statusOf(reason), t)
	}
	ev["where"] = where
	a.m.blocked.WithLabelValues(svc.String(), f.Transport(), zoom.PortLabel(f.Proto, port), string(reason), where).Inc()
	us, rem := texts(reason)
	conf := "high"
	if reason == finding.ReasonUDPNoAnswer || reason == finding.ReasonICMPUnreachable {
		conf = "medium"
	}
	x := finding.Finding{
		Time: t, Kind: finding.KindBlockedConnection, Reason: reason, Service: svc.String(), SNI: sni,
		Confidence: conf, UserSees: us, Remediation: rem, Evidence: ev,
	}
	if s, ok := ev["icmp_sender"].(string); ok {
		x.Remediation += " The blocking hop is " + s + "."
	}
	a.emit(x, f)
}

func icmpEvidence(r *icmpRecord, count int) map[string]any {
	return map[string]any{
		"icmp_sender": addrString(r.sender), "icmp_type": int(r.typ), "icmp_code": int(r.code),
		"ttl": int(r.ttl), "icmp_count": count,
	}
}

// tcpAnswersLost reports whether the server's SYN-ACK, or its first data,
// passed the probe and was lost before the client: the client repeated its
// SYN (or its data) at least client_drop_min_retries times after the answer
// and never acknowledged it. An acknowledgement of any answer (a lossy path:
// a later copy got through) or a server acknowledging client bytes the probe
// never saw (the client's packets take another way) clears it; a client that
// stays silent after the answer (its packets go another way, or it gave up)
// is no evidence either.
func (a *Analyzer) tcpAnswersLost(s *state) bool {
	l := &s.lost
	if !l.synAckSeen || l.serverAckedUnseen || s.ackWithoutSynAck {
		return false
	}
	min := uint16(a.cfg.ClientDropMinRetries)
	switch {
	case l.clientAcked == 0:
		return l.synRetries >= min
	case l.clientAcked == 1 && l.serverDataFirst != 0:
		return l.dataRetries >= min
	}
	return false
}

func (a *Analyzer) tcpLostEvidence(s *state) map[string]any {
	l := &s.lost
	ev := map[string]any{"server_retransmits": int(l.serverRetransmits)}
	if l.clientAcked == 0 {
		ev["lost"] = "syn_ack"
		ev["syn_retransmits_after_synack"] = int(l.synRetries)
	} else {
		ev["lost"] = "server_data"
		if s.tlsFlow {
			ev["lost"] = "server_hello"
		}
		ev["client_retransmits_after_answer"] = int(l.dataRetries)
	}
	return ev
}

// clientSideDrop gives the verdict on answers lost between the probe and the
// client. The port matrix is left alone: the network passed the answers.
func (a *Analyzer) clientSideDrop(f *flow.Flow, svc zoom.Service, l *lostAnswers, ev map[string]any, sni string) {
	ev["answers_passed_probe"] = int(l.answers)
	ev["first_answer"] = stamp(l.firstAnswer)
	ev["last_answer"] = stamp(l.lastAnswer)
	ev["last_client_retry"] = stamp(l.lastRetry)
	a.blocked(f, svc, finding.ReasonClientSideDrop, time.Unix(0, l.firstAnswer).UTC(), ev, sni)
}

// isClientHello reports whether b starts a TLS handshake record holding a ClientHello.
func isClientHello(b []byte) bool {
	return len(b) >= 6 && b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x01
}
