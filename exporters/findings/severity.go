package findings

import "github.com/zoomprobe/zoomprobe/finding"

// Severity says how bad a group is, with the alert rules' words
// (deploy/prometheus/zoomprobe-rules.yml): critical, Zoom users cannot
// connect or see certificate warnings; warning, degraded or at risk.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
)

func (s Severity) rank() int {
	if s == Critical {
		return 0
	}
	return 1
}

// SeverityOf follows the alert that covers the kind and reason: blocked
// UDP media is a warning (Zoom falls back to TCP), so are answers lost on
// one client host's side (ZoomAnswersLostOnClientHost), a blocked TCP port is
// critical; clock skew is critical only past the critical offset.
func SeverityOf(kind finding.Kind, reason finding.Reason, transport string) Severity {
	switch kind {
	case finding.KindTLSInterception, finding.KindCertRejected, finding.KindConnectionReset,
		finding.KindProxyDenial, finding.KindDNSFiltered:
		return Critical
	case finding.KindBlockedConnection:
		if transport == "udp" || reason == finding.ReasonUDPNoAnswer || reason == finding.ReasonClientSideDrop {
			return Warning
		}
		return Critical
	case finding.KindClockSkew:
		if reason == finding.ReasonClockSkewCritical {
			return Critical
		}
	}
	return Warning
}

// kindTitles name the kinds for people.
var kindTitles = map[finding.Kind]string{
	finding.KindTLSInterception:    "TLS interception",
	finding.KindTLSSuspected:       "TLS interception suspected",
	finding.KindCertRejected:       "Certificate rejected by clients",
	finding.KindBlockedConnection:  "Blocked connection",
	finding.KindConnectionReset:    "Connection reset",
	finding.KindUDPFallback:        "UDP blocked, fell back to TCP",
	finding.KindProxyDenial:        "Proxy denial",
	finding.KindCaptivePortal:      "Captive portal",
	finding.KindDNSFiltered:        "DNS filtering",
	finding.KindClockSkew:          "Clock skew",
	finding.KindProbeFailure:       "Active check failing",
	finding.KindCertificateProblem: "Certificate problem",
}

// KindTitle is the kind in words; an unknown kind is shown as it is.
func KindTitle(k finding.Kind) string {
	if t, ok := kindTitles[k]; ok {
		return t
	}
	return string(k)
}
