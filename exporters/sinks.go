// Package exporters turns findings into what operators read: metrics here,
// the event log in eventlog/, reports in report/, the HTTP endpoint in web/.
package exporters

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/finding"
)

// Tee sends each finding to every non-nil sink.
func Tee(sinks ...finding.Sink) finding.Sink {
	var live []finding.Sink
	for _, s := range sinks {
		if s != nil {
			live = append(live, s)
		}
	}
	return finding.SinkFunc(func(f finding.Finding) {
		for _, s := range live {
			s.Emit(f)
		}
	})
}

// Counter counts findings in zoomprobe_findings_total{kind,reason}. Both
// labels come from closed vocabularies, so the series are bounded.
type Counter struct{ vec *prometheus.CounterVec }

// NewCounter registers the counter on reg.
func NewCounter(reg prometheus.Registerer) (*Counter, error) {
	c := &Counter{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zoomprobe_findings_total",
		Help: "Findings reported, by kind and reason (details in the event log).",
	}, []string{"kind", "reason"})}
	if err := reg.Register(c.vec); err != nil {
		return nil, err
	}
	// Series an alert rule takes increase() of start at 0, so the first event counts.
	c.vec.WithLabelValues(string(finding.KindConnectionReset), string(finding.ReasonSNIFiltering))
	return c, nil
}

func (c *Counter) Emit(f finding.Finding) {
	c.vec.WithLabelValues(string(f.Kind), string(f.Reason)).Inc()
}

// Collector keeps findings in memory for `analyze` and `audit` (bounded: past
// max it counts what it dropped).
type Collector struct {
	mu       sync.Mutex
	max      int
	findings []finding.Finding
	Dropped  int
}

// NewCollector keeps at most max findings.
func NewCollector(max int) *Collector { return &Collector{max: max} }

func (c *Collector) Emit(f finding.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.findings) >= c.max {
		c.Dropped++
		return
	}
	c.findings = append(c.findings, f)
}

// Findings returns a copy of what was collected.
func (c *Collector) Findings() []finding.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]finding.Finding(nil), c.findings...)
}
