package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/zoomprobe/zoomprobe/daemon"
)

func init() {
	commands = append(commands, command{
		Name: "run", Help: "Run the daemon: capture, analyse, serve metrics (the default config captures on the default-route interface).",
		Setup: func(cmd *kingpin.CmdClause, g *globals) func() int {
			webCfg := kingpinflag.AddFlags(cmd, daemon.DefaultListenAddress)
			metricsPath := cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
			passive := cmd.Flag("passive", "Only listen: no active checks (no packet to Zoom, NTP or DNS servers), whatever probes.enabled says.").Bool()
			lifecycle := cmd.Flag("web.enable-lifecycle", "Enable reload via HTTP request (POST /-/reload). SIGHUP always reloads.").Default("false").Bool()
			return func() int {
				// With event_log.path "-" piped into a reader that exits (head,
				// a crashed shipper), a write to standard output must fail
				// (counted as an event log write error), not kill the daemon.
				signal.Ignore(syscall.SIGPIPE)
				g.logger.Info("starting zoomprobe", "version", version.Info(), "build_context", version.BuildContext())
				d, err := daemon.New(daemon.Options{ConfigFile: g.configFile, Site: g.site, Web: webCfg, MetricsPath: *metricsPath, Logger: g.logger, Passive: *passive,
					EnableLifecycle: *lifecycle, HUP: g.hup})
				if err != nil {
					g.logger.Error("cannot start", "err", err)
					return 1
				}
				endpoints := *metricsPath + " /-/healthy /-/ready"
				if *lifecycle {
					endpoints += " /-/reload"
				}
				logStartup(g.logger, d.Config(), *passive, *webCfg.WebListenAddresses, endpoints)
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				if err := d.Run(ctx); err != nil {
					g.logger.Error("zoomprobe stopped", "err", err)
					return 1
				}
				return 0
			}
		},
	})
}
