package identity

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	refusedBytes  = iota // the ClientHello outgrew zoom.max_client_hello_bytes
	refusedBudget        // the worker's zoom.client_hello_budget_bytes was spent
	numRefused
)

var refusedReasons = [numRefused]string{"max_bytes", "budget"}

// Metrics are the stage's counters, shared by every worker's stage; the
// per-packet path only does atomic adds.
type Metrics struct {
	refused [numRefused]atomic.Uint64
	desc    *prometheus.Desc
}

// NewMetrics makes the counters; register them with a registry.
func NewMetrics() *Metrics {
	return &Metrics{desc: prometheus.NewDesc("zoomprobe_identity_client_hello_refused_total",
		"ClientHellos the identity stage stopped reading before their server_name, by reason: max_bytes (over zoom.max_client_hello_bytes), budget (the worker's zoom.client_hello_budget_bytes spent by ClientHellos arriving at once).",
		[]string{"reason"}, nil)}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for i, r := range refusedReasons {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.refused[i].Load()), r)
	}
}

// Refused returns the count for a reason ("max_bytes").
func (m *Metrics) Refused(reason string) uint64 {
	for i, r := range refusedReasons {
		if r == reason {
			return m.refused[i].Load()
		}
	}
	return 0
}
