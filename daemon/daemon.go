// Package daemon wires zoomprobe together and runs it: it loads the config,
// starts the pipeline (capture, engine, probes, event log), serves the HTTP
// endpoints, and reloads on SIGHUP or POST /-/reload (the latter only with
// --web.enable-lifecycle).
//
// A reload never stops capture to apply a setting. It checks the new config
// (validation, then Preflight: files, BPF in the kernel, interfaces), builds
// everything that can fail, and only then applies it in place: analyzer
// settings go to the workers between two batches of packets, the event log
// and probes are swapped, and a capture source whose settings changed is
// replaced by a new socket opened before the old one stops (see engine's
// live mode). A bad config keeps everything running untouched and sets
// zoomprobe_config_last_reload_successful to 0.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/exporters"
	"github.com/zoomprobe/zoomprobe/exporters/findings"
)

// DefaultListenAddress is zoomprobe's port: outside Prometheus' 9100-9999
// exporter block, which is nearly fully allocated.
const DefaultListenAddress = ":18801"

// Options configure a daemon.
type Options struct {
	ConfigFile  string // empty: the embedded default
	Web         *web.FlagConfig
	MetricsPath string
	Logger      *slog.Logger
	// Passive turns the active checks off whatever the config says (run
	// --passive), across reloads: the probe only listens.
	Passive bool
	// EnableLifecycle serves POST /-/reload (--web.enable-lifecycle); off,
	// it answers 403 and only SIGHUP reloads.
	EnableLifecycle bool
	// HUP delivers SIGHUP. The command installs it first thing, so a SIGHUP
	// that comes while the daemon starts is kept, not fatal; nil: Run
	// installs its own.
	HUP <-chan os.Signal
	// HTTP overrides the web server's timeouts and limits (zero fields: the
	// defaults).
	HTTP HTTPLimits
	// Inputs overrides the capture inputs derived from the config (tests use it
	// to capture inside a network namespace).
	Inputs func(cfg *config.Config) ([]engine.Input, error)
	// Site overrides the config's site: (the --site flag), on every load.
	Site string
}

// Daemon is a running zoomprobe.
type Daemon struct {
	opts Options
	log  *slog.Logger

	base     *prometheus.Registry
	counter  *exporters.Counter
	reloadOK prometheus.Gauge
	reloadTS prometheus.Gauge
	clock    *certcheck.Clock
	events   *swapSink // the event log in force; reloads swap it
	// own registers the active checks' sockets for the engine to skip; it
	// outlives reloads, which replace the engine and the probes separately.
	own *ownflows.Registry
	// memory is what the analyzers learnt across flows (dedup windows,
	// baselines); it outlives reloads, new engines included.
	memory *analyzers.Memory
	// findings is what the findings page shows; it outlives reloads.
	findings *findings.Store
	// evidence is the evidence directory in use (nil: off), kept by new
	// engines while its settings stay; only newEngine touches it.
	evidence    *evidence.Dir
	evidenceCfg evidence.DirConfig

	mu       sync.Mutex // guards cfg, pipeline
	cfg      *config.Config
	pipeline *pipeline

	reloadReq chan chan error
}

// New checks the config and prepares the metrics; Run starts everything.
func New(o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MetricsPath == "" {
		o.MetricsPath = "/metrics"
	}
	cfg, err := config.Load(o.ConfigFile, o.Site)
	if err != nil {
		return nil, err
	}
	if err := preflight(cfg, o.Inputs == nil); err != nil {
		return nil, configError(o.ConfigFile, err)
	}
	d := &Daemon{opts: o, log: o.Logger, cfg: cfg, base: prometheus.NewRegistry(), clock: &certcheck.Clock{},
		events: &swapSink{}, own: OwnFlows(cfg), memory: analyzers.NewMemory(), reloadReq: make(chan chan error),
		findings: findings.New(findingsSettings(cfg), nil)}
	d.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoomprobe_config_last_reload_successful", Help: "1 if the last configuration load or reload succeeded."})
	d.reloadTS = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoomprobe_config_last_reload_success_timestamp_seconds", Help: "Time of the last successful configuration load."})
	d.base.MustRegister(d.reloadOK, d.reloadTS,
		versioncollector.NewCollector("zoomprobe"),
		siteCollector{d},
		eventLogCollector{d},
		d.findings,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if d.counter, err = exporters.NewCounter(d.base); err != nil {
		return nil, err
	}
	d.reloadOK.Set(1)
	d.reloadTS.SetToCurrentTime()
	return d, nil
}

// configError names the config file, as config.LoadFile's errors do.
func configError(path string, err error) error {
	if path == "" {
		path = "built-in default configuration"
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Run serves until ctx ends, then stops the pipeline and flushes the event log.
func (d *Daemon) Run(ctx context.Context) error {
	hup := d.opts.HUP
	if hup == nil {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		defer signal.Stop(c)
		hup = c
	}
	p, err := d.start(d.cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.pipeline = p
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		p := d.pipeline
		d.mu.Unlock()
		p.stop(d.events)
	}()

	srv := d.HTTPServer()
	srvErr := make(chan error, 1)
	if d.opts.Web != nil {
		go func() { srvErr <- web.ListenAndServe(srv, d.opts.Web, d.log) }()
	}
	for {
		select {
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(shutdownCtx)
			cancel()
			d.log.Info("stopped")
			return nil
		case err := <-srvErr:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("web server: %w", err)
			}
		case <-hup:
			d.reload("SIGHUP")
		case reply := <-d.reloadReq:
			reply <- d.reload("HTTP /-/reload")
		}
	}
}

// Reload asks the running daemon to reload its config and waits for the result.
func (d *Daemon) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.reloadReq <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reload applies the config file again; every failure is logged here,
// whichever way the reload was asked for.
func (d *Daemon) reload(via string) error {
	err := d.applyReload()
	if err != nil {
		d.reloadOK.Set(0)
		d.log.Error("reload failed; the previous configuration keeps running", "via", via, "err", err)
		return err
	}
	d.reloadOK.Set(1)
	d.reloadTS.SetToCurrentTime()
	return nil
}

func (d *Daemon) applyReload() error {
	cfg, err := config.Load(d.opts.ConfigFile, d.opts.Site)
	if err != nil {
		return err
	}
	// Checked before anything changes: a config that cannot run must not
	// interrupt capture.
	if err := preflight(cfg, d.opts.Inputs == nil); err != nil {
		return configError(d.opts.ConfigFile, err)
	}
	d.mu.Lock()
	old, oldCfg := d.pipeline, d.cfg
	d.mu.Unlock()
	p, changes, err := d.update(old, cfg)
	if err != nil {
		return err
	}
	if cfg.Findings != oldCfg.Findings {
		d.findings.Configure(findingsSettings(cfg))
		changes = append(changes, "findings")
	}
	d.mu.Lock()
	d.cfg, d.pipeline = cfg, p
	d.mu.Unlock()
	if len(changes) == 0 {
		changes = []string{"nothing"}
	}
	d.log.Info("configuration reloaded", "changed", strings.Join(changes, ", "))
	return nil
}

// Gatherer merges the daemon's own metrics with the current pipeline's.
func (d *Daemon) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		d.mu.Lock()
		p := d.pipeline
		d.mu.Unlock()
		gs := prometheus.Gatherers{d.base}
		if p != nil {
			gs = append(gs, p.engReg)
			if p.probes != nil {
				gs = append(gs, p.probes.reg)
			}
		}
		return gs.Gather()
	})
}

// NotReady says why the daemon does not watch everything its config asks
// for (a source not capturing, analysis stopped); empty when it does.
func (d *Daemon) NotReady() []string {
	d.mu.Lock()
	p := d.pipeline
	d.mu.Unlock()
	if p == nil {
		return []string{"no pipeline running"}
	}
	return p.eng.NotReady()
}

// Ready reports whether every configured source captures and the analyzers run.
func (d *Daemon) Ready() bool { return len(d.NotReady()) == 0 }

// defaultInputs are the live interfaces the config names.
func (d *Daemon) inputs(cfg *config.Config) ([]engine.Input, error) {
	if d.opts.Inputs != nil {
		return d.opts.Inputs(cfg)
	}
	ifaces, err := captureInterfaces(cfg)
	if err != nil {
		return nil, err
	}
	filter, err := loadBPF(cfg)
	if err != nil {
		return nil, err
	}
	var out []engine.Input
	for _, name := range ifaces {
		opts := LiveOptions(cfg, filter)
		if cfg.Capture.LiveReaders > 1 {
			// A new group for each load: a replaced input's new sockets must
			// get copies of the old group's packets, not a share of them.
			opts.Fanout = &capture.Fanout{ID: capture.NewFanoutID(), Mode: capture.FanoutHash}
		}
		out = append(out, engine.Input{Label: name, Live: true, Readers: cfg.Capture.LiveReaders, Open: func() (capture.Source, error) {
			return capture.OpenLive(name, opts)
		}})
	}
	return out, nil
}

// captureInterfaces lists the interfaces to capture on: the config's, or
// the default-route interface.
func captureInterfaces(cfg *config.Config) ([]string, error) {
	if len(cfg.Capture.Interfaces) > 0 {
		return cfg.Capture.Interfaces, nil
	}
	def, err := capture.DefaultRouteInterface()
	if err != nil {
		return nil, fmt.Errorf("capture.interfaces is empty and the default-route interface cannot be found (%v): name an interface in the config", err)
	}
	return []string{def}, nil
}
