package reach

import (
	"encoding/binary"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

func (a *Analyzer) udpPacket(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	var h uint32
	if d == flow.ToServer && !s.lost.progress {
		h = payloadHash(p.Payload) // read by udpRequest only until the client shows progress
	}
	a.udpDatagram(f, s, p, d, h, mediaLike(p.Payload))
}

// mediaLike: Zoom media, type 0x05 with the 8-byte outer header.
func mediaLike(b []byte) bool { return len(b) >= 8 && b[0] == 0x05 }

// udpDatagram is the analysis of a datagram, from what it reads of the
// payload (its hash, whether it looks like media) so a held datagram
// (rec) replays the same.
func (a *Analyzer) udpDatagram(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir, hash uint32, media bool) {
	if d == flow.ToServer {
		if s.first.IsZero() {
			s.first = at(p.Time)
		}
		s.lastClient = at(p.Time)
		s.datagrams++
		// Zoom media only follows an answered set-up: the capture missed the
		// answer, the path works.
		if s.datagrams > 1 && media {
			s.clientMedia = true
		}
		if !s.answered && !s.reported && s.datagrams > earlyUDPUnanswered && p.Time.Sub(s.first.T()) >= a.cfg.UDPAnswerWindow {
			a.udpJudge(f, s, p.Time)
		}
		a.udpRequest(f, s, p, hash)
		return
	}
	if !s.answered {
		s.answered, s.answerTime = true, at(p.Time)
	}
	s.lost.noteAnswer(p.Time)
}

// udpRequest sorts a client datagram after an answer passed the probe: a
// repeat of an earlier datagram (STUN and Zoom's set-up retry with the same
// transaction or session id) says the client did not get it; anything new
// (the set-up's next step, media, a new transaction) says it did. The port is
// marked open on the first such sign, or when the flow ends without a verdict.
func (a *Analyzer) udpRequest(f *flow.Flow, s *state, p *decode.Packet, h uint32) {
	l := &s.lost
	if l.progress {
		return // the client got an answer: nothing later changes that
	}
	if !s.answered {
		l.noteRequest(h)
		return
	}
	if !l.hasRequest(h) {
		l.noteRequest(h)
		l.progress = true
		if !s.openMarked {
			a.udpAnswered(f, s)
		}
		return
	}
	if since(p.Time, l.lastAnswer) >= crossingSlack && since(p.Time, l.lastRepeat) >= copyWindow {
		l.dataRetries++
		l.lastRetry = p.Time.UnixNano()
	}
	l.lastRepeat = p.Time.UnixNano()
}

// payloadHash mixes a datagram's length and first 32 bytes: enough
// to tell a retry (same transaction or session id) from the next message.
func payloadHash(b []byte) uint32 {
	// Eight bytes a step: a byte-wise FNV of 32 bytes was a chain of 34
	// multiplications, 7% of analyze's time on a media-heavy capture.
	h := uint64(len(b)) * 0x9E3779B97F4A7C15
	w := b[:min(len(b), 32)]
	for ; len(w) >= 8; w = w[8:] {
		h = (h ^ binary.LittleEndian.Uint64(w)) * 0xff51afd7ed558ccd
	}
	for _, c := range w {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return uint32(h ^ h>>32)
}

func (l *lostAnswers) noteRequest(h uint32) {
	if l.hasRequest(h) {
		return
	}
	l.requests[l.requestsNext] = h
	l.requestsNext = (l.requestsNext + 1) % uint8(len(l.requests))
	if int(l.requestsFilled) < len(l.requests) {
		l.requestsFilled++
	}
}

func (l *lostAnswers) hasRequest(h uint32) bool {
	for i := 0; i < int(l.requestsFilled); i++ {
		if l.requests[i] == h {
			return true
		}
	}
	return false
}

// udpAnswersLost: answers passed the probe, the client repeated its request
// client_drop_min_retries times after them and never moved on.
func (a *Analyzer) udpAnswersLost(f *flow.Flow, s *state) bool {
	l := &s.lost
	return f.Watched() && zoom.IsMediaPort(f.ServerPort()) && !l.progress && !s.clientMedia &&
		l.dataRetries >= uint16(a.cfg.ClientDropMinRetries)
}

func (a *Analyzer) udpAnswered(f *flow.Flow, s *state) {
	if !f.Watched() {
		return
	}
	s.openMarked = true
	a.m.matrix.set(f.Service(), f.Proto, f.ServerPort(), StatusOpen, s.answerTime.T())
	// Only an answer on the media ports proves UDP media works: a site can
	// let STUN (3478/3479) through and still block 8801-8810.
	if zoom.IsMediaDataPort(f.ServerPort()) {
		a.sh.udpAnswered(f.Client().Addr(), s.answerTime.T())
	}
}

func (a *Analyzer) udpExpire(f *flow.Flow, s *state, now time.Time) {
	if s.answered {
		if a.udpAnswersLost(f, s) {
			a.udpLost(f, s)
		} else if !s.openMarked {
			a.udpAnswered(f, s)
		}
		return
	}
	if !s.reported && (s.icmpSeen() || now.Sub(s.first.T()) >= a.cfg.UDPAnswerWindow) {
		a.udpJudge(f, s, now)
	}
}

// udpJudge gives the verdict on an unanswered media flow whose window passed.
func (a *Analyzer) udpJudge(f *flow.Flow, s *state, now time.Time) {
	if !f.Watched() || !zoom.IsMediaPort(f.ServerPort()) || s.clientMedia || s.first.IsZero() {
		return
	}
	if !s.icmpSeen() && s.datagrams < minUDPDatagrams {
		return
	}
	s.reported = true
	reason := finding.ReasonUDPNoAnswer
	ev := map[string]any{"datagrams": s.datagrams, "waited_seconds": now.Sub(s.first.T()).Seconds()}
	if s.icmpSeen() {
		reason = s.inc.icmp.reason
		ev = icmpEvidence(&s.inc.icmp, s.inc.icmpCount)
		ev["datagrams"] = s.datagrams
	}
	fb, servers := a.sh.udpFailed(f.Client().Addr(), f.Server().Addr(), f.Service(), f.ServerPort(), s.first.T(), reason, a.cfg.FallbackWindow)
	ev["failed_udp_servers"] = servers
	a.blocked(f, f.Service(), reason, s.first.T(), ev, "")
	if fb != nil {
		a.emitFallback(fb)
	}
}

func (a *Analyzer) emitFallback(fb *fallback) {
	a.m.fallbacks.WithLabelValues(fb.udpService.String()).Inc()
	us, rem := texts(finding.ReasonUDPFallback)
	ff := fb.tcpFlow
	a.emit(finding.Finding{
		Time: fb.time, Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback,
		Service: fb.tcpService.String(), Flow: &ff, Confidence: fb.confidence(),
		UserSees: us, Remediation: rem,
		Evidence: map[string]any{
			"udp_server": addrString(fb.udpServer), "udp_port": int(fb.udpPort), "udp_failure": string(fb.udpReason),
			"udp_service": fb.udpService.String(), "tcp_port": int(ff.ServerPort), "same_server": fb.udpServer == ff.Server,
		},
	}, nil)
}

func (fb *fallback) confidence() string {
	if fb.udpServer == fb.tcpFlow.Server {
		return "high"
	}
	return "medium"
}

// udpLost reports UDP answers lost on the client's side; media then falls
// back to TCP as after any UDP failure, so the fallback join is told.
func (a *Analyzer) udpLost(f *flow.Flow, s *state) {
	l := &s.lost
	ev := map[string]any{"lost": "udp_answers", "client_retries_after_answers": int(l.dataRetries), "datagrams": s.datagrams}
	fb, servers := a.sh.udpFailed(f.Client().Addr(), f.Server().Addr(), f.Service(), f.ServerPort(), s.first.T(), finding.ReasonClientSideDrop, a.cfg.FallbackWindow)
	ev["failed_udp_servers"] = servers
	a.clientSideDrop(f, f.Service(), l, ev, "")
	if fb != nil {
		a.emitFallback(fb)
	}
}
