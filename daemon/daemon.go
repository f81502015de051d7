// Package daemon wires zoomprobe together and runs it: it loads the config,
// starts the pipeline (capture, engine, probes, event log), serves the HTTP
// endpoints, and reloads on SIGHUP or POST /-/reload. A reload builds the new
// pipeline only after the new config validated and passed Preflight (files,
// BPF, analyzer names, event log directory); a bad one keeps the old
// pipeline running and sets zoomprobe_config_last_reload_successful to 0.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
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
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/exporters"
	"github.com/zoomprobe/zoomprobe/exporters/eventlog"
	"github.com/zoomprobe/zoomprobe/finding"
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
	clock    *analyzers.Clock

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
	if err := Preflight(cfg); err != nil {
		return nil, configError(o.ConfigFile, err)
	}
	d := &Daemon{opts: o, log: o.Logger, cfg: cfg, base: prometheus.NewRegistry(), clock: &analyzers.Clock{}, reloadReq: make(chan chan error)}
	d.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoomprobe_config_last_reload_successful", Help: "1 if the last configuration load or reload succeeded."})
	d.reloadTS = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoomprobe_config_last_reload_success_timestamp_seconds", Help: "Time of the last successful configuration load."})
	d.base.MustRegister(d.reloadOK, d.reloadTS,
		versioncollector.NewCollector("zoomprobe"),
		siteCollector{d},
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
	p, err := d.start(d.cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.pipeline = p
	d.mu.Unlock()

	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	if d.opts.Web != nil {
		go func() { srvErr <- web.ListenAndServe(srv, d.opts.Web, d.log) }()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(shutdownCtx)
			cancel()
			d.mu.Lock()
			p := d.pipeline
			d.mu.Unlock()
			p.stop()
			d.log.Info("stopped")
			return nil
		case err := <-srvErr:
			if !errors.Is(err, http.ErrServerClosed) {
				d.mu.Lock()
				d.pipeline.stop()
				d.mu.Unlock()
				return fmt.Errorf("web server: %w", err)
			}
		case <-hup:
			if err := d.reload(); err != nil {
				d.log.Error("reload failed; the previous configuration keeps running", "err", err)
			}
		case reply := <-d.reloadReq:
			reply <- d.reload()
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

func (d *Daemon) reload() error {
	cfg, err := config.Load(d.opts.ConfigFile, d.opts.Site)
	if err != nil {
		d.reloadOK.Set(0)
		return err
	}
	// Checked before the old pipeline stops: a config that cannot start must
	// not interrupt capture.
	if err := Preflight(cfg); err != nil {
		d.reloadOK.Set(0)
		return configError(d.opts.ConfigFile, err)
	}
	d.mu.Lock()
	old := d.pipeline
	d.mu.Unlock()
	// Stop the old pipeline first: both would capture the same interfaces and
	// write the same event log.
	old.stop()
	p, err := d.start(cfg)
	if err != nil {
		d.reloadOK.Set(0)
		d.log.Error("new configuration failed to start; restarting the previous one", "err", err)
		d.mu.Lock()
		prev := d.cfg
		d.mu.Unlock()
		if p, err2 := d.start(prev); err2 == nil {
			d.mu.Lock()
			d.pipeline = p
			d.mu.Unlock()
		}
		return err
	}
	d.mu.Lock()
	d.cfg, d.pipeline = cfg, p
	d.mu.Unlock()
	d.reloadOK.Set(1)
	d.reloadTS.SetToCurrentTime()
	d.log.Info("configuration reloaded")
	return nil
}

// pipeline is everything one configuration runs.
type pipeline struct {
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	log    *eventlog.Log
	eng    *engine.Engine
}

func (p *pipeline) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
	p.log.Close()
}

func (d *Daemon) start(cfg *config.Config) (*pipeline, error) {
	inputs, err := d.inputs(cfg)
	if err != nil {
		return nil, err
	}
	elog, err := eventlog.Open(cfg.EventLog, d.log)
	if err != nil {
		return nil, err
	}
	var elogSink finding.Sink
	if elog != nil {
		elogSink = elog
	}
	sink := exporters.Tee(d.counter, stampSite(cfg.Site, elogSink))
	reg := prometheus.NewRegistry()
	eng, err := engine.New(engine.Options{Config: cfg, Registerer: reg, Sink: sink, Clock: d.clock, Logger: d.log.With("component", "engine")})
	if err != nil {
		elog.Close()
		return nil, err
	}
	probesRun, err := startProbes(cfg, reg, sink, d.clock, d.log)
	if err != nil {
		elog.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{reg: reg, cancel: cancel, done: make(chan struct{}), log: elog, eng: eng}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := eng.Run(ctx, inputs); err != nil {
			d.log.Error("packet analysis stopped", "err", err)
		}
	}()
	if probesRun != nil {
		wg.Add(1)
		go func() { defer wg.Done(); probesRun(ctx) }()
	}
	go func() { wg.Wait(); close(p.done) }()
	d.log.Info("pipeline started", "inputs", len(inputs), "workers", cfg.Capture.Workers)
	return p, nil
}

func (d *Daemon) inputs(cfg *config.Config) ([]engine.Input, error) {
	if d.opts.Inputs != nil {
		return d.opts.Inputs(cfg)
	}
	ifaces := cfg.Capture.Interfaces
	if len(ifaces) == 0 {
		def, err := capture.DefaultRouteInterface()
		if err != nil {
			return nil, fmt.Errorf("capture.interfaces is empty and the default-route interface cannot be found (%v): name an interface in the config", err)
		}
		ifaces = []string{def}
	}
	filter, err := loadBPF(cfg)
	if err != nil {
		return nil, err
	}
	var out []engine.Input
	for _, name := range ifaces {
		opts := LiveOptions(cfg, filter)
		out = append(out, engine.Input{Label: name, Live: true, Open: func() (capture.Source, error) {
			return capture.OpenLive(name, opts)
		}})
	}
	return out, nil
}

// Gatherer merges the daemon's own metrics with the current pipeline's.
func (d *Daemon) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		d.mu.Lock()
		p := d.pipeline
		d.mu.Unlock()
		gs := prometheus.Gatherers{d.base}
		if p != nil {
			gs = append(gs, p.reg)
		}
		return gs.Gather()
	})
}

// Ready reports whether a pipeline runs.
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pipeline != nil
}
