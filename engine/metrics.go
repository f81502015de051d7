package engine

import (
	"errors"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// metrics reads the readers' and workers' atomic counters at scrape time, so
// the per-packet path only does atomic adds.
type metrics struct {
	e         *Engine
	mu        sync.Mutex
	sources   map[string]*sourceStats
	decodeErr *prometheus.CounterVec
	analyzers []*analyzerHealth // the running set's, in analyzers.Order; guarded by mu

	packets, dropped, up, lastPacket   *prometheus.Desc
	flows, active, evictions, zoomPkts *prometheus.Desc
	analyzerUp, analyzerPanics         *prometheus.Desc
	dnsUnmatched, dnsEvictions         *prometheus.Desc
	ownPackets, ownRefused             *prometheus.Desc
}

func newMetrics(e *Engine) *metrics {
	m := &metrics{
		e:       e,
		sources: map[string]*sourceStats{},
		decodeErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_decode_errors_total", Help: "Frames that could not be decoded, by the layer that failed.",
		}, []string{"layer"}),
		packets:    prometheus.NewDesc("zoomprobe_packets_total", "Frames read from the capture source.", []string{"interface"}, nil),
		dropped:    prometheus.NewDesc("zoomprobe_capture_dropped_packets_total", "Frames the kernel dropped before zoomprobe read them.", []string{"interface"}, nil),
		up:         prometheus.NewDesc("zoomprobe_capture_up", "1 while the capture source is open.", []string{"interface"}, nil),
		lastPacket: prometheus.NewDesc("zoomprobe_last_packet_timestamp_seconds", "Capture timestamp of the last frame read.", []string{"interface"}, nil),
		flows:      prometheus.NewDesc("zoomprobe_flows_total", "Flows that ended, by the service they were identified as.", []string{"service", "transport"}, nil),
		active:     prometheus.NewDesc("zoomprobe_active_flows", "Flows held in the flow tables.", []string{"service", "transport"}, nil),
		evictions:  prometheus.NewDesc("zoomprobe_flow_evictions_total", "Flows evicted because a flow table was full (flows.max_flows).", nil, nil),
		zoomPkts:   prometheus.NewDesc("zoomprobe_zoom_packets_total", "Packets of Zoom (or watched) flows, by service.", []string{"service"}, nil),
		analyzerUp: prometheus.NewDesc("zoomprobe_analyzer_up",
			"1 for each analyzer that initialised and runs without fault; 0 once it panicked (it still sees the other flows).", []string{"analyzer"}, nil),
		analyzerPanics: prometheus.NewDesc("zoomprobe_analyzer_panics_total",
			"Panics recovered at the analyzer boundary; each drops the flow from that analyzer.", []string{"analyzer"}, nil),
		dnsUnmatched: prometheus.NewDesc("zoomprobe_dns_unmatched_answers_total",
			"DNS answers for Zoom or watched names ignored because they matched no query seen (client, ports, ID, question, zoom.dns_answer_window), by why.", []string{"reason"}, nil),
		ownPackets: prometheus.NewDesc("zoomprobe_probe_own_packets_total",
			"Packets of zoomprobe's own active checks (or ICMP errors quoting them) kept from the passive analyzers.", nil, nil),
		ownRefused: prometheus.NewDesc("zoomprobe_probe_sockets_unregistered_total",
			"Active-check sockets the own-flows registry could not hold (probes.max_own_sockets): their packets reached the passive analyzers.", nil, nil),
		dnsEvictions: prometheus.NewDesc("zoomprobe_dns_pending_query_evictions_total",
			"DNS queries dropped from the pending-query table before their answer because it was full (zoom.dns_query_table_bytes).", nil, nil),
	}
	for _, l := range decode.ErrorLayers {
		m.decodeErr.WithLabelValues(l)
	}
	return m
}

func (m *metrics) source(label string) *sourceStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sources[label]
	if s == nil {
		s = &sourceStats{}
		s.setReaders(1)
		m.sources[label] = s
	}
	return s
}

func (m *metrics) setAnalyzers(health []*analyzerHealth) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.analyzers = health
}

func (m *metrics) decodeError(err error) {
	var de *decode.Error
	switch {
	case errors.Is(err, decode.ErrNotIP):
		return // ARP, LLDP...: not an error
	case errors.As(err, &de):
		m.decodeErr.WithLabelValues(de.Layer).Inc()
	default:
		m.decodeErr.WithLabelValues("unsupported").Inc()
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.decodeErr.Describe(ch)
	for _, d := range []*prometheus.Desc{m.packets, m.dropped, m.up, m.lastPacket, m.flows, m.active, m.evictions, m.zoomPkts, m.analyzerUp, m.analyzerPanics, m.dnsUnmatched, m.dnsEvictions, m.ownPackets, m.ownRefused} {
		ch <- d
	}
}

var transports = [numTransports]string{"tcp", "udp"}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.decodeErr.Collect(ch)
	m.mu.Lock()
	labels := make([]string, 0, len(m.sources))
	for l := range m.sources {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		s := m.sources[l]
		ch <- prometheus.MustNewConstMetric(m.packets, prometheus.CounterValue, float64(s.packets.Load()), l)
		ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(s.dropped()), l)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, float64(s.up()), l)
		if ts := s.lastPacket.Load(); ts != 0 {
			ch <- prometheus.MustNewConstMetric(m.lastPacket, prometheus.GaugeValue, float64(ts)/1e9, l)
		}
	}
	m.mu.Unlock()

	var flows, zp [16][numTransports]float64
	var active [16][numTransports]float64
	var ev float64
	for _, w := range m.e.workers {
		for s := range zoomServices {
			for t := range numTransports {
				flows[s][t] += float64(w.stats.flows[s][t].Load())
				active[s][t] += float64(w.stats.active[s][t].Load())
			}
			zp[s][0] += float64(w.stats.zoomPackets[s].Load())
		}
		ev += float64(w.stats.evictions.Load())
	}
	for _, svc := range zoom.Services() {
		for t, tn := range transports {
			ch <- prometheus.MustNewConstMetric(m.flows, prometheus.CounterValue, flows[svc][t], svc.String(), tn)
			ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, active[svc][t], svc.String(), tn)
		}
		if svc != zoom.ServiceNone {
			ch <- prometheus.MustNewConstMetric(m.zoomPkts, prometheus.CounterValue, zp[svc][0], svc.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(m.evictions, prometheus.CounterValue, ev)
	m.mu.Lock()
	health := m.analyzers
	m.mu.Unlock()
	for _, a := range health {
		panics := a.panics.Load()
		up := 1.0
		if panics > 0 {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(m.analyzerUp, prometheus.GaugeValue, up, a.name)
		ch <- prometheus.MustNewConstMetric(m.analyzerPanics, prometheus.CounterValue, float64(panics), a.name)
	}
	q := m.e.queries
	for r, name := range unmatchedReasonNames {
		ch <- prometheus.MustNewConstMetric(m.dnsUnmatched, prometheus.CounterValue, float64(q.unmatched[r].Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(m.dnsEvictions, prometheus.CounterValue, float64(q.evictions.Load()))
	ch <- prometheus.MustNewConstMetric(m.ownPackets, prometheus.CounterValue, float64(m.e.ownPackets.Load()))
	var refused uint64
	if m.e.own != nil {
		refused = m.e.own.Refused()
	}
	ch <- prometheus.MustNewConstMetric(m.ownRefused, prometheus.CounterValue, float64(refused))
}
