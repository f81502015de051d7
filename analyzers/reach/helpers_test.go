package reach_test

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/analyzers/reach"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
)

func pluginFor(t testing.TB) analyzers.Plugin {
	p, err := analyzers.Lookup(reach.Name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func analyzersEnv(cfg *config.Config, sink finding.Sink, reg prometheus.Registerer) analyzers.Env {
	return analyzers.Env{Config: cfg, Registerer: reg, Sink: sink, Clock: &certcheck.Clock{}, Logger: slog.New(slog.DiscardHandler), Slot: 0}
}
