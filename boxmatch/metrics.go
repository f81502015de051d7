package boxmatch

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the zoomprobe_box_* series of an engine's boxes. The box
// label's values come from the configuration (names checked by config), so
// they are bounded by it.
type Metrics struct {
	packets   *prometheus.CounterVec
	verdicts  *prometheus.CounterVec
	evictions *prometheus.CounterVec
	bytes     *prometheus.GaugeVec

	mu      sync.Mutex
	counter map[[2]string]prometheus.Counter // resolved once: the packet path does no label lookup
}

// NewMetrics makes the collectors; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_box_packets_total",
			Help: "Zoom packets seen on one side of a box (capture.boxes), by what became of them: matched on the other side; dropped_outbound (a client's packet never left); dropped_inbound (Zoom's packet never came in); made_by_box (a reset or ICMP error seen only inside); inside_only, outside_only (not through the box); evicted (table full, not judged).",
		}, []string{"box", "result"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_box_verdicts_total",
			Help: "Conversations a box blocked (min_drops of their packets dropped or answered by the box), by verdict: dropped_outbound, dropped_inbound, reset_by_box, icmp_by_box.",
		}, []string{"box", "verdict"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_box_conversation_evictions_total",
			Help: "Conversations with dropped packets forgotten before a verdict because the box's conversation table was full.",
		}, []string{"box"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zoomprobe_box_table_bytes",
			Help: "Memory of a box's matching table (capture.boxes[].table_bytes, allocated at start).",
		}, []string{"box"}),
		counter: map[[2]string]prometheus.Counter{},
	}
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.packets, m.verdicts, m.evictions, m.bytes}
}

// box creates a box's series up front, so dashboards and increase() see
// zeros from the start.
func (m *Metrics) box(name string, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range Results {
		m.counter[[2]string{name, r}] = m.packets.WithLabelValues(name, r)
	}
	for _, v := range Verdicts {
		m.verdicts.WithLabelValues(name, v)
	}
	m.evictions.WithLabelValues(name)
	m.bytes.WithLabelValues(name).Set(float64(bytes))
}

// count is called with the matcher's lock held; the map is written only
// by box, before the matcher runs.
func (m *Metrics) count(box, result string) { m.counter[[2]string{box, result}].Inc() }

func (m *Metrics) verdict(box, kind string) { m.verdicts.WithLabelValues(box, kind).Inc() }

func (m *Metrics) evicted(box string) { m.evictions.WithLabelValues(box).Inc() }
