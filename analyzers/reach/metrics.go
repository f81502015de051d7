package reach

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Port matrix statuses (values of the status label of zoomprobe_port_status).
const (
	StatusOpen           = "open"
	StatusDropped        = "dropped"
	StatusRefused        = "refused"
	StatusICMPProhibited = "icmp_prohibited"
	StatusReset          = "reset"
	StatusNotSeen        = "not_seen"
)

// Statuses lists the status label values in a fixed order.
var Statuses = []string{StatusOpen, StatusDropped, StatusRefused, StatusICMPProhibited, StatusReset, StatusNotSeen}

type metrics struct {
	blocked      *prometheus.CounterVec
	resets       *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	notJudged    *prometheus.CounterVec
	icmpMismatch prometheus.Counter
	matrix       *portMatrix
}

func newMetrics() *metrics {
	m := &metrics{
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_blocked_connections_total",
			Help: "Connections to Zoom that did not get through, by reason (generic_timeout_error: SYN dropped; connection_refused; icmp_*; udp_no_answer; client_side_drop) and where (beyond_probe: between the probe and Zoom; client_host: Zoom's answers passed the probe and were lost before the client; between_capture_points: a box captured on both sides, capture.boxes, blocked them).",
		}, []string{"service", "transport", "port", "reason", "where"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_connection_resets_total",
			Help: "TCP resets of Zoom connections by phase (syn, after_client_hello, handshake, established) and judged origin (server, middlebox, unknown).",
		}, []string{"service", "phase", "origin"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_udp_fallbacks_total",
			Help: "Zoom UDP media failures followed by a TCP connection from the same client (media over TCP), by the service whose UDP failed.",
		}, []string{"service"}),
		notJudged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_reach_unanswered_syn_not_judged_total",
			Help: "Unanswered Zoom SYNs given no verdict, by why (capture_gap, too_short, abandoned, happy_eyeballs).",
		}, []string{"why"}),
		icmpMismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_reach_icmp_mismatched_total",
			Help: "ICMP errors quoting a Zoom flow's ports but a sequence number it never sent (stale or forged), ignored.",
		}),
		matrix: newPortMatrix(),
	}
	for _, s := range zoom.Services() {
		if s.IsZoom() {
			m.fallbacks.WithLabelValues(s.String())
		}
	}
	for _, w := range []string{"capture_gap", "too_short", "abandoned", "happy_eyeballs"} {
		m.notJudged.WithLabelValues(w)
	}
	// The alerts take increase() of these: a series born at its first event
	// would hide that event, so the cells of Zoom's port matrix start at 0.
	icmp := []finding.Reason{finding.ReasonICMPAdminProhibited, finding.ReasonICMPPortUnreachable,
		finding.ReasonICMPHostUnreachable, finding.ReasonICMPNetUnreachable, finding.ReasonICMPUnreachable}
	for _, c := range coreCells {
		reasons := append([]finding.Reason{finding.ReasonTimeout, finding.ReasonConnectionRefused}, icmp...)
		transport := "tcp"
		if c.proto == decode.ProtoUDP {
			reasons, transport = append([]finding.Reason{finding.ReasonUDPNoAnswer}, icmp...), "udp"
		}
		for _, r := range reasons {
			m.blocked.WithLabelValues(c.svc.String(), transport, c.port, string(r), WhereBeyondProbe)
		}
		m.blocked.WithLabelValues(c.svc.String(), transport, c.port, string(finding.ReasonClientSideDrop), WhereClientHost)
	}
	for _, s := range []zoom.Service{zoom.ServiceWeb, zoom.ServiceZoneController, zoom.ServiceMediaRouter} {
		for _, phase := range []string{PhaseSYN, PhaseAfterClientHello, PhaseHandshake, PhaseEstablished} {
			for _, origin := range []string{OriginMiddlebox, OriginServer, OriginUnknown} {
				m.resets.WithLabelValues(s.String(), phase, origin)
			}
		}
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.blocked, m.resets, m.fallbacks, m.notJudged, m.icmpMismatch, m.matrix}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range m.collectors() {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Collectors returns the analyzer's metrics, to register (standalone use).
func (a *Analyzer) Collectors() []prometheus.Collector { return a.m.collectors() }

func statusOf(r finding.Reason) string {
	switch r {
	case finding.ReasonConnectionRefused, finding.ReasonICMPPortUnreachable:
		return StatusRefused
	case finding.ReasonICMPAdminProhibited:
		return StatusICMPProhibited
	case finding.ReasonConnectionReset, finding.ReasonSNIFiltering:
		return StatusReset
	}
	return StatusDropped // timeout, udp_no_answer, host/net/other unreachable
}

type cellKey struct {
	svc   zoom.Service
	proto uint8
	port  string
}

type cell struct {
	status string
	t      time.Time
}

// portMatrix is the latest verdict per (service, transport, port), judged on
// packet time: a verdict about an older event never overwrites a newer one.
type portMatrix struct {
	mu    sync.Mutex
	cells map[cellKey]cell
	desc  *prometheus.Desc
}

// coreCells are shown as not_seen until traffic says otherwise, so a
// dashboard draws Zoom's whole port matrix from the start.
var coreCells = []cellKey{
	{zoom.ServiceWeb, decode.ProtoTCP, "443"},
	{zoom.ServiceZoneController, decode.ProtoTCP, "443"},
	{zoom.ServiceMediaRouter, decode.ProtoTCP, "443"},
	{zoom.ServiceMediaRouter, decode.ProtoTCP, "8801"},
	{zoom.ServiceMediaRouter, decode.ProtoTCP, "8802"},
	{zoom.ServiceMedia, decode.ProtoUDP, "3478"},
	{zoom.ServiceMedia, decode.ProtoUDP, "3479"},
	{zoom.ServiceMedia, decode.ProtoUDP, "8801"},
	{zoom.ServiceMedia, decode.ProtoUDP, "8802"},
	{zoom.ServiceMedia, decode.ProtoUDP, "8803"},
}

func newPortMatrix() *portMatrix {
	pm := &portMatrix{
		cells: map[cellKey]cell{},
		desc: prometheus.NewDesc("zoomprobe_port_status",
			"Latest reachability verdict per Zoom service, transport and port: 1 for the current status, 0 for the others.",
			[]string{"service", "transport", "port", "status"}, nil),
	}
	for _, k := range coreCells {
		pm.cells[k] = cell{status: StatusNotSeen}
	}
	return pm
}

func (pm *portMatrix) set(svc zoom.Service, proto uint8, port uint16, status string, t time.Time) {
	if svc == zoom.ServiceNone {
		return
	}
	k := cellKey{svc, proto, zoom.PortLabel(proto, port)}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if c, ok := pm.cells[k]; ok && c.status != StatusNotSeen && t.Before(c.t) {
		return
	}
	pm.cells[k] = cell{status: status, t: t}
}

// Status returns the current status of a cell (tests, reports).
func (a *Analyzer) PortStatus(svc zoom.Service, proto uint8, port uint16) string {
	pm := a.m.matrix
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if c, ok := pm.cells[cellKey{svc, proto, zoom.PortLabel(proto, port)}]; ok {
		return c.status
	}
	return StatusNotSeen
}

func (pm *portMatrix) Describe(ch chan<- *prometheus.Desc) { ch <- pm.desc }

func (pm *portMatrix) Collect(ch chan<- prometheus.Metric) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	for k, c := range pm.cells {
		for _, s := range Statuses {
			v := 0.0
			if s == c.status {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(pm.desc, prometheus.GaugeValue, v, k.svc.String(), flow.TransportName(k.proto), k.port, s)
		}
	}
}
