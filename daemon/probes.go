package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/probes"
)

// OwnFlows is the registry of the active checks' sockets for cfg, shared by
// the probes (which register) and the engine (which skips their packets): a
// socket is held while open and flows.closed_timeout after, like a closed
// flow in the flow table.
func OwnFlows(cfg *config.Config) *ownflows.Registry {
	return ownflows.New(cfg.Probes.MaxOwnSockets, cfg.Flows.ClosedTimeout)
}

// startProbes builds the active-check scheduler; nil when probes are off.
// The probes judge chains with the site's tls: settings and know the same
// sinkholes and private-answer exceptions as the passive DNS analyzer.
func startProbes(cfg *config.Config, reg prometheus.Registerer, sink finding.Sink, clock *certcheck.Clock, log *slog.Logger, own *ownflows.Registry) (func(context.Context), error) {
	if !cfg.Probes.Enabled {
		return nil, nil
	}
	pc := cfg.Probes
	pc.DNS.SinkholePrefixes = append(append([]netip.Prefix(nil), pc.DNS.SinkholePrefixes...), cfg.Reach.SinkholePrefixes...)
	pc.DNS.PrivateAllowed = append(append([]string(nil), pc.DNS.PrivateAllowed...), cfg.Reach.DNSPrivateAllowed...)
	judge, err := probes.JudgeFromConfig(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s := probes.NewScheduler(pc, reg, sink, clock, log.With("component", "probes"))
	s.SetJudge(judge)
	s.SetOwnFlows(own)
	return s.Run, nil
}
