package reach

import (
	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/boxmatch"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Box sides a flow's packets were captured on (rec.boxSides bits).
const (
	onBoxInside  uint8 = 1 << analyzers.BoxInside
	onBoxOutside uint8 = 1 << analyzers.BoxOutside
)

// leftToBox reports whether a verdict on f belongs to the box matcher
// (package boxmatch) rather than to this flow, so one block gives one
// finding. A flow captured inside a box saw only the box: a block beyond
// the probe there is the box's (its verdict names it) or beyond the box
// (the outside flow's verdict). A flow captured outside whose answers were
// lost toward the client lost them in the box or behind it: the box's
// verdict, or the inside flow's, says which.
func (a *Analyzer) leftToBox(f *flow.Flow, where string) bool {
	r := a.ext.Get(f)
	if r == nil {
		return false
	}
	return where == WhereBeyondProbe && r.boxSides&onBoxInside != 0 ||
		where == WhereClientHost && r.boxSides&onBoxOutside != 0
}

// boxVerdicts turns a box's verdicts into findings. It runs in reader
// goroutines, so it touches only what is safe to share (sink, metrics,
// port matrix).
type boxVerdicts struct {
	m    *metrics
	sink finding.Sink
}

func (b *boxVerdicts) verdict(v boxmatch.Verdict) {
	svc := zoom.Service(v.Service)
	kind, reason := finding.KindBlockedConnection, finding.ReasonTimeout
	switch v.Kind {
	case boxmatch.VerdictDroppedOutbound, boxmatch.VerdictDroppedInbound:
		if v.Proto == decode.ProtoUDP {
			reason = finding.ReasonUDPNoAnswer
		}
	case boxmatch.VerdictResetByBox:
		reason = finding.ReasonConnectionRefused
		if !v.SYNOnly {
			kind, reason = finding.KindConnectionReset, finding.ReasonConnectionReset
		}
	case boxmatch.VerdictICMPByBox:
		icmp := decode.ProtoICMP
		if !v.Server.Addr().Is4() {
			icmp = decode.ProtoICMPv6
		}
		r, ok := unreachableReason(icmp, v.ICMPType, v.ICMPCode)
		if !ok {
			r = finding.ReasonICMPUnreachable
		}
		reason = r
	}
	transport := flow.TransportName(v.Proto)
	port := v.Server.Port()
	missing := boxmatch.Outside
	if v.SeenOn == boxmatch.Outside {
		missing = boxmatch.Inside
	}
	ev := map[string]any{
		"where": WhereBetweenCapturePoints, "box": v.Box, "box_verdict": v.Kind,
		"seen_on": v.SeenOn.String(), "missing_on": missing.String(), "packets": v.Packets,
		"first": stamp(v.Time.UnixNano()), "last": stamp(v.Last.UnixNano()), "matched_on": v.MatchedOn,
	}
	if v.Kind == boxmatch.VerdictResetByBox || v.Kind == boxmatch.VerdictICMPByBox {
		ev["missing_on"] = "outside (made by the box)"
	}
	if v.Kind == boxmatch.VerdictICMPByBox {
		ev["icmp_sender"], ev["icmp_type"], ev["icmp_code"] = addrString(v.ICMPSender), int(v.ICMPType), int(v.ICMPCode)
	}
	b.m.blocked.WithLabelValues(svc.String(), transport, zoom.PortLabel(v.Proto, port), string(reason), WhereBetweenCapturePoints).Inc()
	// The box blocks this port for every client behind it: the site's view.
	b.m.matrix.set(svc, v.Proto, port, statusOf(reason), v.Time)
	us, _ := texts(reason)
	b.sink.Emit(finding.Finding{
		Time: v.Time, Kind: kind, Reason: reason, Service: svc.String(), Source: Name, Confidence: "high",
		UserSees: us, Remediation: boxRemediation(v), Evidence: ev,
		Flow: &finding.Flow{Transport: transport, Client: v.Client.Addr(), ClientPort: v.Client.Port(),
			Server: v.Server.Addr(), ServerPort: port},
	})
}

// boxRemediation names the box and what it did.
func boxRemediation(v boxmatch.Verdict) string {
	what := "drops Zoom packets from the clients: they reach its inside and never leave on its outside"
	switch v.Kind {
	case boxmatch.VerdictDroppedInbound:
		what = "drops Zoom's answers: they reach its outside and never leave on its inside"
	case boxmatch.VerdictResetByBox:
		what = "resets Zoom connections itself: the reset is seen on its inside only, the connection never reached its outside"
	case boxmatch.VerdictICMPByBox:
		what = "rejects Zoom traffic itself with an ICMP error seen on its inside only"
	}
	return "Blocked by " + v.Box + " (between the probe's two capture points): it " + what +
		". Allow Zoom's ranges (Zoom.txt, ZoomMeetings.txt) on TCP 443, 8801, 8802 and UDP 3478, 3479, 8801-8810, and the return traffic, in " +
		v.Box + "'s rules; check its application control, IPS and session limits."
}

// registerBoxVerdicts is called by Init when the engine has boxes.
func registerBoxVerdicts(env analyzers.Env, m *metrics, sink finding.Sink, cfg *config.Config) {
	if env.OnBoxVerdict == nil || cfg == nil || len(cfg.Capture.Boxes) == 0 {
		return
	}
	b := &boxVerdicts{m: m, sink: sink}
	env.OnBoxVerdict(b.verdict)
}
