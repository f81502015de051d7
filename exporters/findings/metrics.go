package findings

import "github.com/prometheus/client_golang/prometheus"

var (
	openGroupsDesc = prometheus.NewDesc("zoomprobe_findings_open_groups",
		"Problems on the findings page now (groups of findings not yet resolved), by severity.", []string{"severity"}, nil)
	evictedDesc = prometheus.NewDesc("zoomprobe_findings_open_groups_evicted_total",
		"Open groups dropped from the findings page to stay within findings.max_bytes.", nil, nil)
)

// Describe and Collect make the store a prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	ch <- openGroupsDesc
	ch <- evictedDesc
}

func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	s.prune(s.now())
	var crit, warn int
	for g := s.head; g != nil; g = g.next {
		if SeverityOf(g.kind, g.reason, g.transport) == Critical {
			crit++
		} else {
			warn++
		}
	}
	evicted := s.evicted
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(openGroupsDesc, prometheus.GaugeValue, float64(crit), string(Critical))
	ch <- prometheus.MustNewConstMetric(openGroupsDesc, prometheus.GaugeValue, float64(warn), string(Warning))
	ch <- prometheus.MustNewConstMetric(evictedDesc, prometheus.CounterValue, float64(evicted))
}
