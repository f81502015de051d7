package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/finding"
)

var siteInfoDesc = prometheus.NewDesc("zoomprobe_site_info",
	"Always 1; site is the probe's site (config site: or --site), empty when unnamed (the scraper's external label names it then).",
	[]string{"site"}, nil)

// siteCollector exports the site of the configuration in force, so a reload
// that renames the site is seen at the next scrape.
type siteCollector struct{ d *Daemon }

func (c siteCollector) Describe(ch chan<- *prometheus.Desc) { ch <- siteInfoDesc }

func (c siteCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(siteInfoDesc, prometheus.GaugeValue, 1, c.d.Config().Site)
}

// stampSite names the site on every finding the event log writes.
func stampSite(site string, next finding.Sink) finding.Sink {
	if next == nil || site == "" {
		return next
	}
	return finding.SinkFunc(func(f finding.Finding) {
		f.Site = site
		next.Emit(f)
	})
}

// eventLogCollector exports the counters of the event log in force; a
// reload that opens a new log starts them again (a counter reset).
type eventLogCollector struct{ d *Daemon }

func (c eventLogCollector) Describe(chan<- *prometheus.Desc) {} // unchecked: the log changes with reloads

func (c eventLogCollector) Collect(ch chan<- prometheus.Metric) {
	c.d.mu.Lock()
	p := c.d.pipeline
	c.d.mu.Unlock()
	if p != nil && p.elog != nil {
		p.elog.Collect(ch)
	}
}
