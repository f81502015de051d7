package tls

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/finding"
	ptls "github.com/zoomprobe/zoomprobe/proto/tls"
	"github.com/zoomprobe/zoomprobe/zoom"
)

type metrics struct {
	handshakes    *prometheus.CounterVec
	interceptions *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	notAfter      *prometheus.GaugeVec
	limits        *prometheus.CounterVec
	suppressed    prometheus.Counter
	serverAlerts  *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	badChecksum   prometheus.Counter // skipped{reason="bad_checksum"}, resolved once
	conflicts     *prometheus.CounterVec
	refused       prometheus.Counter
	overBudget    prometheus.Counter
}

// filteringAlerts are the alerts firewalls answer a ClientHello with when
// they filter by SNI instead of resetting (pre-created series).
var filteringAlerts = []uint8{ptls.AlertHandshakeFailure, ptls.AlertAccessDenied, ptls.AlertProtocolVersion, ptls.AlertInternalError, ptls.AlertUnrecognizedName}

func newMetrics() *metrics {
	m := &metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_handshakes_total",
			Help: "TLS handshakes to watched servers by negotiated version and certificate verdict (a finding reason; ssl_cert_not_observable for TLS 1.3 and resumption).",
		}, []string{"service", "version", "verdict"}),
		interceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_interceptions_total",
			Help: "Handshakes whose certificate chain is not Zoom's (unknown or unexpected issuer, self-signed, wrong host name or purpose, a named interception product), and TLS 1.3 fingerprint drift (reason tls_fingerprint_drift), by product.",
		}, []string{"service", "reason", "product"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_client_alerts_total",
			Help: "Plaintext TLS alerts sent by clients of watched servers during the handshake, by alert name.",
		}, []string{"service", "alert"}),
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zoomprobe_tls_certificate_not_after_seconds",
			Help: "Earliest not-after date (Unix seconds) among leaf certificates served for the service, valid or not.",
		}, []string{"service"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_handshakes_incomplete_total",
			Help: "Handshakes the TLS analyzer could not follow to the end, by why: cap (tls.max_handshake_bytes reached), budget (the worker's tls.reassembly_budget_bytes spent), gap (bytes missing at flow end), malformed.",
		}, []string{"reason"}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_tls_findings_suppressed_total",
			Help: "TLS findings not emitted because the same (server, leaf fingerprint) already gave one within tls.dedup_window.",
		}),
		serverAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_server_alerts_total",
			Help: "Plaintext TLS alerts a server (or a box in its place) answered a ClientHello with, before any ServerHello, for every TCP flow, by service (none: not Zoom) and alert name.",
		}, []string{"service", "alert"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_segments_skipped_total",
			Help: "TCP segments the TLS reassembly ignored, by reason: bad_checksum (the receiver dropped it too).",
		}, []string{"reason"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_tls_overlap_conflicts_total",
			Help: "TCP segments of a TLS handshake whose bytes disagree with an earlier copy of the same stream positions (injection or evasion), by service.",
		}, []string{"service"}),
		overBudget: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_tls_reassembly_budget_refused_bytes_total",
			Help: "Handshake bytes the TLS reassembly refused because the worker's flows together already held tls.reassembly_budget_bytes (also counted in zoomprobe_tls_reassembly_refused_bytes_total).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_tls_reassembly_refused_bytes_total",
			Help: "Handshake bytes the TLS reassembly refused because a direction already held tls.max_handshake_bytes.",
		}),
	}
	for _, s := range zoom.Services() {
		if !s.IsZoom() {
			continue
		}
		for _, v := range []uint16{ptls.VersionTLS12, ptls.VersionTLS13} {
			m.handshakes.WithLabelValues(s.String(), ptls.VersionName(v), string(finding.ReasonOK))
		}
		m.handshakes.WithLabelValues(s.String(), "tls1.3", string(finding.ReasonCertNotObservable))
		// Alert rules take increase() of these: a series born at its first
		// event would hide that event. (Interception products are open-ended
		// and cannot all be made ahead; the rule also catches new series.)
		for _, desc := range []uint8{42, 43, 44, 45, 46, 48} { // certificate alerts, RFC 8446 6.2
			m.alerts.WithLabelValues(s.String(), ptls.AlertName(desc))
		}
		m.interceptions.WithLabelValues(s.String(), string(finding.ReasonFingerprintDrift), "unknown")
		for _, desc := range filteringAlerts {
			m.serverAlerts.WithLabelValues(s.String(), ptls.AlertName(desc))
		}
		m.conflicts.WithLabelValues(s.String())
	}
	m.badChecksum = m.skipped.WithLabelValues("bad_checksum")
	for _, r := range []string{"cap", "budget", "gap", "malformed"} {
		m.limits.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.handshakes, m.interceptions, m.alerts, m.notAfter, m.limits, m.suppressed,
		m.serverAlerts, m.skipped, m.conflicts, m.refused, m.overBudget}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range m.collectors() {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// seriesCache holds the counter series one worker's handshakes land in,
// each resolved once: WithLabelValues hashes every label value under the
// vector's lock, and a TLS-heavy link counts a handshake series per
// handshake (2% of the per-packet cost). One cache per worker, so no lock;
// its label values are bounded sets (services, versions, verdicts, products
// under metrics.max_product_labels), and so is the cache: past
// maxCachedSeries the vector is asked each time.
type seriesCache map[seriesKey]prometheus.Counter

type seriesKey struct {
	vec     *prometheus.CounterVec
	a, b, c string
}

const maxCachedSeries = 512

// counter is vec's series for the three label values a, b, c.
func (sc seriesCache) counter(vec *prometheus.CounterVec, a, b, c string) prometheus.Counter {
	k := seriesKey{vec, a, b, c}
	if s, ok := sc[k]; ok {
		return s
	}
	s := vec.WithLabelValues(a, b, c)
	if len(sc) < maxCachedSeries {
		sc[k] = s
	}
	return s
}

func (m *metrics) handshake(sc seriesCache, svc zoom.Service, version uint16, verdict finding.Reason) {
	sc.counter(m.handshakes, svc.String(), ptls.VersionName(version), string(verdict)).Inc()
}
