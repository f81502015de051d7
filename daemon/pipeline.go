package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/exporters"
	"github.com/zoomprobe/zoomprobe/exporters/eventlog"
	"github.com/zoomprobe/zoomprobe/exporters/findings"
	"github.com/zoomprobe/zoomprobe/finding"
)

// pipeline is what one configuration runs. A reload builds the next one from
// it, reusing every part whose settings did not change.
type pipeline struct {
	eng       *engine.Engine
	engReg    *prometheus.Registry
	engineKey string // settings only a new engine can take
	analyzers string // analyzer settings, swapped in place
	inputs    map[string]string

	elog    *eventlog.Log
	elogCfg config.EventLogConfig
	site    string // stamped on each event log line

	probes *probeRun
}

type probeRun struct {
	key    string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *probeRun) stop() {
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// sink is where every finding goes: the findings counter, the event log in
// force and the findings page.
func (d *Daemon) sink() finding.Sink {
	return exporters.Tee(d.counter, d.events, finding.SinkFunc(d.showFinding))
}

// showFinding puts a finding on the findings page, with the site in force.
func (d *Daemon) showFinding(f finding.Finding) {
	if f.Site == "" {
		f.Site = d.Config().Site
	}
	d.findings.Emit(f)
}

func findingsSettings(cfg *config.Config) findings.Settings {
	return findings.Settings{ResolveAfter: cfg.Findings.ResolveAfter, MaxBytes: cfg.Findings.MaxBytes}
}

// start builds and starts the first pipeline.
func (d *Daemon) start(cfg *config.Config) (*pipeline, error) {
	keys, err := configKeys(cfg)
	if err != nil {
		return nil, err
	}
	inputs, err := d.inputs(cfg)
	if err != nil {
		return nil, err
	}
	opened, err := openInputs(inputs, cfg.Capture.WaitForInterfaces)
	if err != nil {
		return nil, err
	}
	p := &pipeline{analyzers: keys.analyzers, engineKey: keys.engine}
	if p.elog, err = eventlog.Open(cfg.EventLog, d.log); err != nil {
		closeAll(opened)
		return nil, err
	}
	p.elogCfg, p.site = cfg.EventLog, cfg.Site
	if p.eng, p.engReg, err = d.newEngine(cfg); err != nil {
		closeAll(opened)
		p.elog.Close()
		return nil, err
	}
	d.events.swap(logSink(p.elog, cfg.Site))
	p.eng.Start()
	p.inputs = map[string]string{}
	for _, in := range inputs {
		p.eng.AddInput(in, opened[in.Label], time.Time{})
		p.inputs[in.Label] = keys.input
	}
	if p.probes, err = d.startProbes(cfg, keys.probes); err != nil {
		p.stop(d.events)
		return nil, err
	}
	d.log.Info("pipeline started", "inputs", len(inputs), "workers", cfg.Capture.Workers)
	return p, nil
}

func (d *Daemon) newEngine(cfg *config.Config) (*engine.Engine, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	var ev *evidence.Dir
	if cfg.Evidence.Dir != "" {
		dc := evidence.DirConfig{Path: cfg.Evidence.Dir, MaxBytes: cfg.Evidence.MaxDirBytes, Retention: cfg.Evidence.Retention}
		// The same directory keeps its Dir across engines: the old engine's
		// last files and the new one's are counted and pruned together.
		ev = d.evidence
		if ev == nil || d.evidenceCfg != dc {
			dc.Logger = d.log.With("component", "evidence")
			var err error
			if ev, err = evidence.OpenDir(dc); err != nil {
				return nil, nil, err
			}
			dc.Logger = nil
		}
		if err := reg.Register(ev); err != nil {
			return nil, nil, err
		}
		d.evidence, d.evidenceCfg = ev, dc
	}
	eng, err := engine.New(engine.Options{Config: cfg, Registerer: reg, Sink: d.sink(), Clock: d.clock, Logger: d.log.With("component", "engine"), OwnFlows: d.own, Evidence: ev, Memory: d.memory})
	return eng, reg, err
}

func (d *Daemon) startProbes(cfg *config.Config, key string) (*probeRun, error) {
	if d.opts.Passive {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	run, err := startProbes(cfg, reg, d.sink(), d.clock, d.log, d.own)
	if err != nil || run == nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &probeRun{key: key, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); run(ctx) }()
	return r, nil
}

// stop ends the pipeline: capture stops, the workers judge their flows, and
// the event log is closed once nothing can write to it.
func (p *pipeline) stop(events *swapSink) {
	if p == nil {
		return
	}
	p.probes.stop()
	p.eng.Stop(time.Time{})
	events.swap(nil)
	p.elog.Close()
}

// update makes the pipeline for cfg out of old: it prepares every part that
// changed (and can fail) first, and touches the running pipeline only when
// all are ready. It returns what changed.
func (d *Daemon) update(old *pipeline, cfg *config.Config) (*pipeline, []string, error) {
	keys, err := configKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	inputs, err := d.inputs(cfg)
	if err != nil {
		return nil, nil, err
	}
	next := *old
	var changes []string

	// Sources to open: every one when the engine is replaced, else the new
	// and changed ones. They are opened now, before any old one stops.
	rebuild := keys.engine != old.engineKey
	var toOpen []engine.Input
	for _, in := range inputs {
		if k, ok := old.inputs[in.Label]; rebuild || !ok || k != keys.input {
			toOpen = append(toOpen, in)
		}
	}
	var prepared *engine.PreparedAnalyzers
	var newEng *engine.Engine
	var newReg *prometheus.Registry
	if rebuild {
		if newEng, newReg, err = d.newEngine(cfg); err != nil {
			return nil, nil, err
		}
	} else if keys.analyzers != old.analyzers {
		if prepared, err = old.eng.PrepareAnalyzers(cfg); err != nil {
			return nil, nil, err
		}
	}
	var newLog *eventlog.Log
	elogChanged := cfg.EventLog != old.elogCfg || cfg.Site != old.site
	if elogChanged {
		if newLog, err = eventlog.Open(cfg.EventLog, d.log); err != nil {
			return nil, nil, err
		}
	}
	opened, err := openInputs(toOpen, cfg.Capture.WaitForInterfaces)
	if err != nil {
		newLog.Close()
		return nil, nil, err
	}

	// Everything is ready: apply.
	if elogChanged {
		d.events.swap(logSink(newLog, cfg.Site)) // waits for a finding being written
		old.elog.Close()
		next.elog, next.elogCfg, next.site = newLog, cfg.EventLog, cfg.Site
		changes = append(changes, "event_log")
	}
	until := time.Now() // every source in opened is queueing packets by now
	next.inputs = map[string]string{}
	if rebuild {
		last := old.eng.Stop(until)
		newEng.Start()
		for _, in := range inputs {
			newEng.AddInput(in, opened[in.Label], last[in.Label])
			next.inputs[in.Label] = keys.input
		}
		next.eng, next.engReg, next.engineKey, next.analyzers = newEng, newReg, keys.engine, keys.analyzers
		changes = append(changes, "engine (flows were judged and dropped)")
	} else {
		keep := map[string]bool{}
		for _, in := range inputs {
			keep[in.Label] = true
		}
		for _, label := range old.eng.Labels() {
			if !keep[label] {
				old.eng.RemoveInput(label)
				changes = append(changes, "capture "+label+" removed")
			}
		}
		for _, in := range inputs {
			next.inputs[in.Label] = keys.input
			k, ok := old.inputs[in.Label]
			switch {
			case !ok:
				old.eng.AddInput(in, opened[in.Label], time.Time{})
				changes = append(changes, "capture "+in.Label+" added")
			case k != keys.input:
				last := old.eng.HandOver(in.Label, until)
				old.eng.AddInput(in, opened[in.Label], last)
				changes = append(changes, "capture "+in.Label+" replaced")
			}
		}
		if prepared != nil {
			if err := old.eng.SwapAnalyzers(prepared); err != nil {
				d.log.Error("analyzer metrics could not all be registered", "err", err)
			}
			next.analyzers = keys.analyzers
			changes = append(changes, "analyzers")
		}
	}
	if keys.probes != probesKey(old) {
		old.probes.stop()
		next.probes = nil
		if next.probes, err = d.startProbes(cfg, keys.probes); err != nil {
			// Preflight built the same judge: this is not expected.
			d.log.Error("probes could not restart", "err", err)
		}
		changes = append(changes, "probes")
	}
	return &next, changes, nil
}

func probesKey(p *pipeline) string {
	if p.probes == nil {
		return "off"
	}
	return p.probes.key
}

// openInputs opens the live inputs ahead (every socket of each), so their
// sockets queue packets before any old source stops. A live input that
// cannot open is an error, unless wait is set (capture.wait_for_interfaces):
// then its readers retry. File inputs open when their reader starts.
func openInputs(inputs []engine.Input, wait bool) (map[string][]capture.Source, error) {
	opened := map[string][]capture.Source{}
	for _, in := range inputs {
		if !in.Live {
			continue
		}
		for range max(in.Readers, 1) {
			src, err := in.Open()
			if err != nil {
				if wait {
					break
				}
				closeAll(opened)
				return nil, fmt.Errorf("capture %s: %w", in.Label, err)
			}
			opened[in.Label] = append(opened[in.Label], src)
		}
	}
	return opened, nil
}

func closeAll(srcs map[string][]capture.Source) {
	for _, group := range srcs {
		for _, s := range group {
			s.Close()
		}
	}
}

// logSink is the event log stamping the site on each line; nil (not a
// typed nil) when the log is off.
func logSink(l *eventlog.Log, site string) finding.Sink {
	if l == nil {
		return nil
	}
	return stampSite(site, l)
}

// swapSink is the event log in force. Emit holds a read lock, so a swap
// waits for a finding being written to the old log before that log closes:
// none is lost or cut. Findings are rare next to packets; the lock is not on
// the per-packet path.
type swapSink struct {
	mu   sync.RWMutex
	sink finding.Sink
}

func (s *swapSink) Emit(f finding.Finding) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sink != nil {
		s.sink.Emit(f)
	}
}

func (s *swapSink) swap(to finding.Sink) finding.Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sink
	s.sink = to
	return old
}

// keys says which parts of a configuration changed between two loads.
type keys struct {
	engine, analyzers, input, probes string
}

// configKeys digests the settings each part of the pipeline takes, with the
// content of the files they name (a reload picks up an edited file).
func configKeys(cfg *config.Config) (keys, error) {
	var k keys
	var errs []error
	digest := func(parts ...any) string {
		h := sha256.New()
		for _, p := range parts {
			b, err := json.Marshal(p)
			if err != nil {
				errs = append(errs, err)
			}
			h.Write(b)
			h.Write([]byte{0})
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	files := func(paths ...string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, fileDigest(p))
		}
		return out
	}
	eng := *cfg
	eng.Site = ""                          // the event log stamps it
	eng.Findings = config.FindingsConfig{} // the store outlives pipelines
	eng.EventLog, eng.Probes, eng.Analyzers, eng.TLS, eng.Reach, eng.Metrics = config.EventLogConfig{}, config.ProbesConfig{}, config.AnalyzersConfig{}, config.TLSConfig{}, config.ReachConfig{}, config.MetricsConfig{}
	c := &eng.Capture
	c.Interfaces, c.BPF, c.BPFFile, c.SnapLen, c.RingSizeMB, c.Promiscuous, c.WaitForInterfaces, c.LiveReaders = nil, "", "", 0, 0, false, false, 0
	k.engine = digest(eng, files(cfg.Zoom.RangesFile))
	tlsFiles := files(append([]string{cfg.TLS.ProductsFile}, cfg.TLS.ExtraRoots...)...)
	k.analyzers = digest(cfg.Analyzers, cfg.TLS, cfg.Reach, cfg.Metrics, cfg.Zoom.Watch, tlsFiles, files(cfg.Reach.ProxySignaturesFile))
	filter, _ := loadBPF(cfg) // Preflight has checked it
	k.input = digest(filter, cfg.Capture.SnapLen, cfg.Capture.RingSizeMB, cfg.Capture.Promiscuous, cfg.Capture.LiveReaders)
	if cfg.Probes.Enabled {
		k.probes = digest(cfg.Probes, cfg.Reach, cfg.TLS, tlsFiles)
	} else {
		k.probes = "off"
	}
	return k, errors.Join(errs...)
}

// fileDigest hashes a file, or the files of a directory (zoom.ranges_file
// may name one); "" for no path, and the error text when it cannot be read.
func fileDigest(path string) string {
	if path == "" {
		return ""
	}
	h := sha256.New()
	paths := []string{path}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		paths, _ = filepath.Glob(filepath.Join(path, "*"))
	}
	for _, p := range paths {
		b, err := config.ReadFile(p) // never waits on a FIFO, never reads /dev/zero
		if err != nil {
			h.Write([]byte(err.Error()))
			continue
		}
		h.Write([]byte(p))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
