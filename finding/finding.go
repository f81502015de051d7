// Package finding holds the one type that carries every verdict zoomprobe gives.
// Analyzers and probes produce findings; exporters consume them. Nothing else
// crosses between those two sides.
package finding

import (
	"net/netip"
	"time"
)

// Kind is what broke, as the event log and `analyze --format json` write it.
type Kind string

const (
	KindTLSInterception    Kind = "tls_interception"
	KindTLSSuspected       Kind = "tls_interception_suspected"
	KindCertRejected       Kind = "cert_rejected_by_client"
	KindBlockedConnection  Kind = "blocked_connection"
	KindConnectionReset    Kind = "connection_reset"
	KindUDPFallback        Kind = "udp_fallback"
	KindProxyDenial        Kind = "proxy_denial"
	KindCaptivePortal      Kind = "captive_portal"
	KindDNSFiltered        Kind = "dns_filtered"
	KindClockSkew          Kind = "clock_skew"
	KindProbeFailure       Kind = "probe_failure"
	KindCertificateProblem Kind = "certificate_problem"
)

// Flow names the conversation a finding is about. Client addresses appear
// here and in the event log, never in metric labels.
type Flow struct {
	Transport  string     `json:"transport"` // "tcp" or "udp"
	Client     netip.Addr `json:"client"`
	ClientPort uint16     `json:"client_port"`
	Server     netip.Addr `json:"server"`
	ServerPort uint16     `json:"server_port"`
}

// Finding is one verdict with the evidence behind it.
type Finding struct {
	Time    time.Time `json:"time"`           // packet time for passive findings, wall time for probes
	Site    string    `json:"site,omitempty"` // the probe's site (config site:), set by the daemon
	Kind    Kind      `json:"kind"`
	Reason  Reason    `json:"reason"`
	Source  string    `json:"source"`            // analyzer or probe that produced it
	Service string    `json:"service,omitempty"` // zoom.Service name
	Flow    *Flow     `json:"flow,omitempty"`
	SNI     string    `json:"sni,omitempty"`
	// ZoomRoomsCode is the untrusted-certificate code a Zoom Room would show
	// (1-7, 100); 0 when none applies.
	ZoomRoomsCode int    `json:"zoom_rooms_code,omitempty"`
	Product       string `json:"product,omitempty"`    // interception product or proxy, when named
	Confidence    string `json:"confidence,omitempty"` // "high", "medium", "low"
	UserSees      string `json:"user_sees"`
	Remediation   string `json:"remediation"`
	// Evidence holds the observations behind the verdict (issuer, fingerprints,
	// TTLs, ICMP sender...). Keys are snake_case and documented per analyzer.
	Evidence map[string]any `json:"evidence,omitempty"`
}

// Sink receives findings. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Finding)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Finding)

func (f SinkFunc) Emit(x Finding) { f(x) }

// Discard drops findings.
var Discard Sink = SinkFunc(func(Finding) {})
