package reach

import (
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

func (a *Analyzer) udpPacket(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	if d == flow.ToServer {
		if s.first.IsZero() {
			s.first = p.Time
		}
		s.lastClient = p.Time
		s.datagrams++
		// Zoom media (type 0x05 with the 8-byte outer header) only follows an
		// answered set-up: the capture missed the answer, the path works.
		if s.datagrams > 1 && len(p.Payload) >= 8 && p.Payload[0] == 0x05 {
			s.clientMedia = true
		}
		if !s.answered && !s.reported && s.datagrams > earlyUDPUnanswered && p.Time.Sub(s.first) >= a.cfg.UDPAnswerWindow {
			a.udpJudge(f, s, p.Time)
		}
		return
	}
	if !s.answered {
		s.answered, s.answerTime = true, p.Time
	}
	if !s.openMarked {
		a.udpAnswered(f, s)
	}
}

func (a *Analyzer) udpAnswered(f *flow.Flow, s *state) {
	if !f.Watched() {
		return
	}
	s.openMarked = true
	a.m.matrix.set(f.Service(), f.Proto, f.Server.Port(), StatusOpen, s.answerTime)
	// Only an answer on the media ports proves UDP media works: a site can
	// let STUN (3478/3479) through and still block 8801-8810.
	if zoom.IsMediaDataPort(f.Server.Port()) {
		a.sh.udpAnswered(f.Client.Addr(), s.answerTime)
	}
}

func (a *Analyzer) udpExpire(f *flow.Flow, s *state, now time.Time) {
	if s.answered {
		if !s.openMarked {
			a.udpAnswered(f, s)
		}
		return
	}
	if !s.reported && (s.icmp.seen || now.Sub(s.first) >= a.cfg.UDPAnswerWindow) {
		a.udpJudge(f, s, now)
	}
}

// udpJudge gives the verdict on an unanswered media flow whose window passed.
func (a *Analyzer) udpJudge(f *flow.Flow, s *state, now time.Time) {
	if !f.Watched() || !zoom.IsMediaPort(f.Server.Port()) || s.clientMedia || s.first.IsZero() {
		return
	}
	if !s.icmp.seen && s.datagrams < minUDPDatagrams {
		return
	}
	s.reported = true
	reason := finding.ReasonUDPNoAnswer
	ev := map[string]any{"datagrams": s.datagrams, "waited_seconds": now.Sub(s.first).Seconds()}
	if s.icmp.seen {
		reason = s.icmp.reason
		ev = icmpEvidence(&s.icmp, s.icmpCount)
		ev["datagrams"] = s.datagrams
	}
	fb, servers := a.sh.udpFailed(f.Client.Addr(), f.Server.Addr(), f.Service(), f.Server.Port(), s.first, reason, a.cfg.FallbackWindow)
	ev["failed_udp_servers"] = servers
	a.blocked(f, f.Service(), reason, s.first, ev, f.Name())
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
