package evidence

import "github.com/prometheus/client_golang/prometheus"

// PoolMetrics exports the recorders' pools of one engine.
type PoolMetrics struct {
	stats                              []*Stats
	inUse, capacity, exhausted, capped *prometheus.Desc
}

// NewPoolMetrics collects from stats, one per worker.
func NewPoolMetrics(stats []*Stats) *PoolMetrics {
	return &PoolMetrics{stats: stats,
		inUse:     prometheus.NewDesc("zoomprobe_evidence_pool_bytes", "Bytes of the evidence buffers holding packets of undecided flows, all workers.", nil, nil),
		capacity:  prometheus.NewDesc("zoomprobe_evidence_pool_capacity_bytes", "Bytes of the evidence buffers allocated, all workers (evidence.max_buffer_bytes each).", nil, nil),
		exhausted: prometheus.NewDesc("zoomprobe_evidence_pool_exhausted_total", "Packets not kept as evidence because the worker's evidence buffer was full.", nil, nil),
		capped:    prometheus.NewDesc("zoomprobe_evidence_flow_capped_total", "Packets not kept as evidence because their flow reached evidence.max_packets_per_flow or max_bytes_per_flow.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *PoolMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.inUse
	ch <- m.capacity
	ch <- m.exhausted
	ch <- m.capped
}

// Collect implements prometheus.Collector.
func (m *PoolMetrics) Collect(ch chan<- prometheus.Metric) {
	var inUse, capacity int64
	var exhausted, capped uint64
	for _, s := range m.stats {
		inUse += s.PoolBytes.Load()
		capacity += s.PoolCapacity.Load()
		exhausted += s.PoolExhausted.Load()
		capped += s.Capped.Load()
	}
	ch <- prometheus.MustNewConstMetric(m.inUse, prometheus.GaugeValue, float64(inUse))
	ch <- prometheus.MustNewConstMetric(m.capacity, prometheus.GaugeValue, float64(capacity))
	ch <- prometheus.MustNewConstMetric(m.exhausted, prometheus.CounterValue, float64(exhausted))
	ch <- prometheus.MustNewConstMetric(m.capped, prometheus.CounterValue, float64(capped))
}
