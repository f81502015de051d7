package reach

import (
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
	time   time.Time
	sender netip.Addr
	typ    uint8
	code   uint8
	ttl    uint8
	reason finding.Reason
}

type rstRecord struct {
	seen        bool
	time        time.Time
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

// state is one flow's memory; recycled through Analyzer.free.
type state struct {
	// UDP and TCP.
	first, lastClient time.Time
	answered          bool // the server sent something (TCP: SYN-ACK or data)
	answerTime        time.Time
	openMarked        bool // port matrix told and fallback join done for this flow
	reported          bool
	icmp              icmpRecord
	icmpCount         int

	// UDP.
	datagrams   int
	clientMedia bool // client sent Zoom media: the set-up was answered even if the capture missed it

	// TCP, client side.
	synSeen           bool
	synFirst, synLast time.Time
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
	appData           bool
	serverPayload     bool
	sni               string // parsed here only when f.Name is empty
	srvTTLMin         uint8
	srvTTLMax         uint8
	srvIPIDLast       uint16
	srvIPIDn          uint8  // IP IDs seen from the server, saturating at 2
	srvNext           uint32 // server's next sequence number
	srvNextKnown      bool
	synAckTTL         uint8
	rst               rstRecord
	rstToClient       int
	rstSeqs           [2]uint32 // first two distinct reset sequence numbers (bursts)
	rstDistinct       uint8
	rstToServer       bool
	rstToServerTime   time.Time
	rstToServerTTL    uint8
	afterRst          bool // a genuine server packet came after the reset
	afterRstTTL       uint8
	synAfterRst       bool // the client tried again on the same ports: later answers are not a race
}

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
			if !s.rstToServer {
				s.rstToServer, s.rstToServerTime, s.rstToServerTTL = true, p.Time, p.TTL
			}
			return
		case fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn:
			if !s.synSeen {
				s.synSeen, s.synFirst, s.isn = true, p.Time, p.Seq
				s.first = p.Time
			}
			if s.rst.seen {
				s.synAfterRst = true
			}
			s.synLast = p.Time
			return
		}
		if s.synSeen && !s.answered && fl&decode.TCPAck != 0 {
			s.ackWithoutSynAck = true
		}
		if len(p.Payload) > 0 {
			a.clientData(f, s, p.Payload, p.Ack)
		}
		return
	}

	// Server to client.
	if fl&decode.TCPRst != 0 {
		a.resetToClient(f, s, p)
		return
	}
	if s.rst.seen && !s.synAfterRst && p.Time.Sub(s.rst.time) <= raceWindow {
		s.afterRst = true
		if s.afterRstTTL == 0 {
			s.afterRstTTL = p.TTL
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
		s.answered, s.answerTime = true, p.Time
	}
	if len(p.Payload) > 0 {
		s.serverPayload = true
		if s.tlsFlow && p.Payload[0] == 0x17 || !s.tlsFlow && s.clientPayload {
			s.appData = true
		}
	}
	if !s.openMarked {
		a.tcpAnswered(f, s)
	}
}

// clientData looks at client payload: the ClientHello (and its SNI when no
// other analyzer named the flow) and the first application data.
func (a *Analyzer) clientData(f *flow.Flow, s *state, b []byte, ack uint32) {
	if !s.clientPayload {
		s.clientPayload = true
		if isClientHello(b) {
			s.tlsFlow, s.clientHello, s.helloAck = true, true, ack
			if f.Name == "" {
				if sni := parseSNI(b); len(sni) > 0 && zoom.IsZoomNameBytes(sni) {
					s.sni = string(sni) // once per flow, only for a Zoom name
				}
			}
		} else if s.serverPayload {
			s.appData = true
		}
		return
	}
	if s.tlsFlow && b[0] == 0x17 {
		s.appData = true
	}
}

// tcpAnswered runs once per flow when the server answered and the flow is
// watched: the port is open, the client's success is remembered for the Happy
// Eyeballs check and the fallback join, and the server's TTL for judging
// resets on later flows.
func (a *Analyzer) tcpAnswered(f *flow.Flow, s *state) {
	if !f.Watched() || !s.synSeen {
		return // identity may come later (TLS analyzer); tried again on the next server packet
	}
	s.openMarked = true
	t := s.answerTime
	a.m.matrix.set(f.Service, f.Proto, f.Server.Port(), StatusOpen, t)
	fb := a.sh.tcpAnswered(f.Client.Addr(), f.Server.Addr(), f.Service, f.Server.Port(), s.synFirst, t, s.synAckTTL, analyzers.FindingFlow(f), a.cfg.FallbackWindow)
	if fb != nil {
		a.emitFallback(fb)
	}
}

func (a *Analyzer) resetToClient(f *flow.Flow, s *state, p *decode.Packet) {
	s.rstToClient++
	if s.rstDistinct < 2 && (s.rstDistinct == 0 || s.rstSeqs[0] != p.Seq) {
		s.rstSeqs[s.rstDistinct] = p.Seq
		s.rstDistinct++
	}
	if s.rst.seen {
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
	r := &s.rst
	r.seen, r.time, r.ttl, r.ipid, r.seq, r.payload = true, p.Time, p.TTL, p.IPID, p.Seq, len(p.Payload)
	r.afterClose = f.FinSeen[flow.ToServer] || f.FinSeen[flow.ToClient]
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
	r := &s.rst
	ev = map[string]any{"rst_ttl": int(r.ttl), "phase": r.phase}
	lo, hi := s.srvTTLMin, s.srvTTLMax
	if lo == 0 {
		if t, ok := a.sh.serverTTL(f.Server.Addr()); ok {
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
	if f.Client.Addr().Is4() {
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
	if s.afterRst {
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
	if s.rstToServer && absDur(s.rstToServerTime.Sub(r.time)) <= bothEndsWindow && s.rstToServerTTL != s.clientTTL {
		score += 2
		ev["reset_to_both_ends"] = true
	}
	if s.rstDistinct > 1 {
		score++
		ev["rst_burst"] = s.rstToClient
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
	if !s.openMarked && s.answered {
		a.tcpAnswered(f, s) // identity learnt after the last server packet
	}
	sni := f.Name
	if sni == "" {
		sni = s.sni
	}
	svc := serviceOf(f, sni)
	if svc == zoom.ServiceNone {
		return
	}
	switch {
	case s.rst.seen:
		a.judgeReset(f, s, svc, sni)
	case s.icmp.seen && !s.answered:
		a.blocked(f, svc, s.icmp.reason, s.icmp.time, icmpEvidence(&s.icmp, s.icmpCount), sni)
	case s.synSeen && !s.answered && f.Packets[flow.ToClient] == 0:
		a.judgeDrop(f, s, svc, now, sni)
	}
}

func (a *Analyzer) judgeDrop(f *flow.Flow, s *state, svc zoom.Service, now time.Time, sni string) {
	waited := now.Sub(s.synFirst)
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
	case a.sh.answeredNear(f.Client.Addr(), svc, f.Server.Port(), s.synFirst.Add(-a.cfg.HappyEyeballsWindow), s.synLast.Add(a.cfg.HappyEyeballsWindow)):
		a.m.notJudged.WithLabelValues("happy_eyeballs").Inc()
		return
	}
	ev := map[string]any{"syn_attempts": int(f.SynCount), "waited_seconds": waited.Seconds(), "verdict": "dropped"}
	a.blocked(f, svc, finding.ReasonTimeout, s.synFirst, ev, sni)
}

func (a *Analyzer) judgeReset(f *flow.Flow, s *state, svc zoom.Service, sni string) {
	r := &s.rst
	if r.afterClose {
		return // server reset after a FIN: an ordinary close
	}
	score, ev, ref := a.resetScore(f, s)
	org := a.origin(score, ref != 0 || s.rst.ipidKnown)
	ev["origin"] = org
	a.m.resets.WithLabelValues(svc.String(), r.phase, org).Inc()
	if r.phase == PhaseSYN && !s.afterRst {
		ev["syn_attempts"] = int(f.SynCount)
		a.blocked(f, svc, finding.ReasonConnectionRefused, r.time, ev, sni)
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
	a.m.matrix.set(svc, f.Proto, f.Server.Port(), StatusReset, r.time)
	us, rem := texts(reason)
	a.emit(finding.Finding{
		Time: r.time, Kind: finding.KindConnectionReset, Reason: reason, Service: svc.String(), SNI: sni,
		Confidence: conf, UserSees: us, Remediation: rem, Evidence: ev,
	}, f)
}

// blocked gives a blocked_connection finding, counts it and updates the port matrix.
func (a *Analyzer) blocked(f *flow.Flow, svc zoom.Service, reason finding.Reason, t time.Time, ev map[string]any, sni string) {
	port := f.Server.Port()
	a.m.blocked.WithLabelValues(svc.String(), f.Transport(), portLabel(f.Proto, port), string(reason)).Inc()
	a.m.matrix.set(svc, f.Proto, port, statusOf(reason), t)
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
