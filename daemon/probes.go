package daemon

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/probes"
)

// startProbes builds the active-check scheduler; nil when probes are off.
func startProbes(cfg *config.Config, reg prometheus.Registerer, sink finding.Sink, clock *analyzers.Clock, log *slog.Logger) (func(context.Context), error) {
	if !cfg.Probes.Enabled {
		return nil, nil
	}
	s := probes.NewScheduler(cfg.Probes, reg, sink, clock, log.With("component", "probes"))
	return s.Run, nil
}
