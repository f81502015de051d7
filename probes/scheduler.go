package probes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
)

// Job is one check against one target on its schedule.
type Job struct {
	Check    string
	Target   Target
	Schedule config.Schedule
}

// maxSystemNTPServers bounds the servers read from the host's time daemon.
const maxSystemNTPServers = 4

// SystemNTPConfigFiles are read for the host's own NTP servers when
// probes.ntp.system_servers is set ("server", "pool" lines; NTP= lines).
var SystemNTPConfigFiles = []string{"/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/ntp.conf", "/etc/ntpsec/ntp.conf", "/etc/systemd/timesyncd.conf"}

// Plan expands the configuration into jobs, in CheckOrder. Targets without
// a port get one job per configured port.
func Plan(cfg *config.ProbesConfig) []Job {
	var jobs []Job
	for _, check := range CheckOrder {
		switch check {
		case CheckNTP:
			if !cfg.NTP.Enabled {
				continue
			}
			servers := append([]string(nil), cfg.NTP.Servers...)
			if cfg.NTP.SystemServers {
				servers = append(servers, systemNTPServers(SystemNTPConfigFiles)...)
			}
			seen := map[string]bool{}
			for _, s := range servers {
				host, port, err := net.SplitHostPort(s)
				if err != nil {
					host, port = strings.Trim(s, "[]"), "123"
				}
				p, _ := strconv.Atoi(port)
				label := s
				if seen[label] || len(seen) >= cfg.MaxTargets {
					continue
				}
				seen[label] = true
				jobs = append(jobs, Job{Check: CheckNTP, Target: Target{Label: label, Host: host, Port: uint16(p)}, Schedule: cfg.NTP.Schedule})
			}
		case CheckDNS:
			if !cfg.DNS.Enabled {
				continue
			}
			for _, n := range cfg.DNS.Names {
				jobs = append(jobs, Job{Check: CheckDNS, Target: Target{Label: n, Host: n}, Schedule: cfg.DNS.Schedule})
			}
		case CheckTCP:
			if cfg.TCP.Enabled {
				jobs = append(jobs, portJobs(CheckTCP, cfg.TCP, 0)...)
			}
		case CheckSTUN:
			if cfg.STUN.Enabled {
				jobs = append(jobs, portJobs(CheckSTUN, cfg.STUN, 0)...)
			}
		case CheckTLS, CheckTLS12:
			if !cfg.TLS.Enabled || (check == CheckTLS12 && !cfg.TLS.TLS12) {
				continue
			}
			jobs = append(jobs, portJobs(check, config.PortProbeConfig{Schedule: cfg.TLS.Schedule, Targets: cfg.TLS.Targets}, 443)...)
		}
	}
	return jobs
}

func portJobs(check string, c config.PortProbeConfig, defaultPort uint16) []Job {
	var jobs []Job
	for _, t := range c.Targets {
		ports := c.Ports
		switch {
		case t.Port != 0:
			ports = []uint16{t.Port}
		case t.Address != "":
			// a pinned address carries its port
			if ap, err := netip.ParseAddrPort(t.Address); err == nil {
				ports = []uint16{ap.Port()}
			}
		case defaultPort != 0:
			ports = []uint16{defaultPort}
		}
		for _, p := range ports {
			label := net.JoinHostPort(t.Host, strconv.Itoa(int(p)))
			jobs = append(jobs, Job{Check: check, Target: Target{Label: label, Host: t.Host, Port: p, Address: t.Address}, Schedule: c.Schedule})
		}
	}
	return jobs
}

// systemNTPServers reads the host's NTP configuration files.
func systemNTPServers(files []string) []string {
	var out []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() && len(out) < maxSystemNTPServers {
			line := strings.TrimSpace(sc.Text())
			if i := strings.IndexAny(line, "#;"); i >= 0 {
				line = line[:i]
			}
			fields := strings.Fields(line)
			switch {
			case len(fields) >= 2 && (fields[0] == "server" || fields[0] == "pool"):
				out = appendServer(out, fields[1])
			case strings.HasPrefix(line, "NTP="):
				for _, s := range strings.Fields(strings.TrimPrefix(line, "NTP=")) {
					out = appendServer(out, s)
				}
			}
		}
		f.Close()
	}
	if len(out) > maxSystemNTPServers {
		out = out[:maxSystemNTPServers]
	}
	return out
}

func appendServer(out []string, s string) []string {
	if s == "" || strings.ContainsAny(s, " /") || strings.HasPrefix(s, "127.") || s == "::1" {
		return out
	}
	for _, x := range out {
		if x == s {
			return out
		}
	}
	return append(out, s)
}

// Scheduler runs the checks: in the daemon on their schedules, in the
// audit once.
type Scheduler struct {
	cfg   config.ProbesConfig
	sink  finding.Sink
	clock *certcheck.Clock
	log   *slog.Logger
	jobs  []Job
	env   Env

	success, duration, offset, ntpUp *prometheus.GaugeVec

	mu      sync.Mutex
	ntp     map[string]Result    // latest NTP result per server
	emitted map[string]emitState // per check and target
}

type emitState struct {
	reasons string
	at      time.Time
}

// NewScheduler plans the jobs and registers the metrics on reg.
func NewScheduler(cfg config.ProbesConfig, reg prometheus.Registerer, sink finding.Sink, clock *certcheck.Clock, logger *slog.Logger) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if sink == nil {
		sink = finding.Discard
	}
	if clock == nil {
		clock = &certcheck.Clock{}
	}
	s := &Scheduler{cfg: cfg, sink: sink, clock: clock, log: logger, ntp: map[string]Result{}, emitted: map[string]emitState{}}
	s.env = Env{Config: &s.cfg, Clock: clock, Logger: logger}
	s.jobs = Plan(&s.cfg)
	s.success = gaugeVec(reg, "zoomprobe_probe_success", "1 if the last run of the active check reached the target and found it fine.", "check", "target")
	s.duration = gaugeVec(reg, "zoomprobe_probe_duration_seconds", "How long the last run of the active check took.", "check", "target")
	s.offset = gaugeVec(reg, "zoomprobe_clock_offset_seconds", "Offset of this host's clock from the NTP server (true time = local time + offset).", "server")
	s.ntpUp = gaugeVec(reg, "zoomprobe_ntp_up", "1 if the NTP server answered the last query with usable time.", "server")
	return s
}

// gaugeVec registers a gauge vector, reusing one already registered.
func gaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	if reg == nil {
		return g
	}
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				return old
			}
		}
	}
	return g
}

// SetJudge replaces the TLS chain judge (certcheck with the TLS config).
func (s *Scheduler) SetJudge(j ChainJudge) { s.env.Judge = j }

// SetResolver makes target names resolve through r (tests, audits that pin
// a resolver).
func (s *Scheduler) SetResolver(r *net.Resolver) { s.env.Resolver = r }

// SetOwnFlows makes the checks register their sockets with r, so an engine
// capturing on the same interface keeps their packets from the passive
// analyzers.
func (s *Scheduler) SetOwnFlows(r *ownflows.Registry) { s.env.Own = r }

// Jobs returns the planned jobs.
func (s *Scheduler) Jobs() []Job { return append([]Job(nil), s.jobs...) }

// SetJobs replaces the planned jobs (the audit's --audit.check filter).
func (s *Scheduler) SetJobs(j []Job) { s.jobs = j }

// Run runs every job on its schedule until ctx ends. The NTP checks run
// once first, so TLS verdicts judge validity at the corrected time.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	var first sync.WaitGroup
	for _, j := range s.jobs {
		if j.Check == CheckNTP {
			first.Add(1)
			go func() { defer first.Done(); s.runJob(ctx, j) }()
		}
	}
	first.Wait()
	for _, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ran := j.Check == CheckNTP // NTP ran once above
			for {
				var delay time.Duration
				if ran {
					delay = j.Schedule.Interval
				}
				if j.Schedule.Jitter > 0 {
					delay += rand.N(j.Schedule.Jitter)
				}
				t := time.NewTimer(delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				s.runJob(ctx, j)
				ran = true
			}
		}()
	}
	wg.Wait()
}

// RunOnce runs every job once, check by check in plan order (targets of a
// check in parallel, at most parallel at a time), and returns the results.
// progress, when set, is called as each check starts.
func (s *Scheduler) RunOnce(ctx context.Context, parallel int, progress func(check string, n int)) []Result {
	if parallel < 1 {
		parallel = 1
	}
	var out []Result
	for i := 0; i < len(s.jobs); {
		j := i
		for j < len(s.jobs) && s.jobs[j].Check == s.jobs[i].Check {
			j++
		}
		group := s.jobs[i:j]
		if progress != nil {
			progress(group[0].Check, len(group))
		}
		res := make([]Result, len(group))
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for k, job := range group {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				res[k] = s.runJob(ctx, job)
			}()
		}
		wg.Wait()
		out = append(out, res...)
		i = j
	}
	return out
}

// runJob runs one check with its timeout and records what it found.
func (s *Scheduler) runJob(ctx context.Context, j Job) (r Result) {
	p, ok := Probers[j.Check]
	if !ok {
		return Result{Check: j.Check, Target: j.Target.Label, Status: StatusUnknown, Reason: finding.ReasonProbeSkipped, Summary: "no such check"}
	}
	cctx, cancel := context.WithTimeout(ctx, j.Schedule.Timeout)
	defer cancel()
	start := time.Now()
	func() {
		defer func() {
			if e := recover(); e != nil {
				s.log.Error("probe panicked", "check", j.Check, "target", j.Target.Label, "panic", e, "stack", string(debug.Stack()))
				r = Result{Check: j.Check, Target: j.Target.Label, Time: time.Now(), Status: StatusUnknown, Reason: finding.ReasonUnknown, Summary: fmt.Sprintf("check failed internally: %v", e)}
			}
		}()
		r = p(cctx, j.Target, s.env)
	}()
	if r.Duration == 0 {
		r.Duration = time.Since(start)
	}
	s.record(j, r)
	return r
}

func (s *Scheduler) record(j Job, r Result) {
	ok := 0.0
	if r.Success {
		ok = 1
	}
	s.success.WithLabelValues(j.Check, j.Target.Label).Set(ok)
	s.duration.WithLabelValues(j.Check, j.Target.Label).Set(r.Duration.Seconds())
	if j.Check == CheckNTP {
		s.ntpUp.WithLabelValues(j.Target.Label).Set(ok)
		if r.HasValue {
			s.offset.WithLabelValues(j.Target.Label).Set(r.Value)
		}
		s.mu.Lock()
		s.ntp[j.Target.Label] = r
		if best, ok := bestOffset(s.ntp); ok {
			s.clock.SetOffset(best)
		}
		s.mu.Unlock()
	}
	s.log.Debug("probe", "check", j.Check, "target", j.Target.Label, "status", r.Status, "reason", r.Reason, "duration", r.Duration)
	s.emit(j, r)
}

// emit sends the findings when the set of reasons changed or the same
// failure lasted probes.repeat_findings: a steady failure does not flood
// the event log.
func (s *Scheduler) emit(j Job, r Result) {
	key := j.Check + "\x00" + j.Target.Label
	var reasons []string
	for _, f := range r.Findings {
		reasons = append(reasons, string(f.Kind)+"/"+string(f.Reason))
	}
	sort.Strings(reasons)
	sig := strings.Join(reasons, ",")
	now := time.Now()
	s.mu.Lock()
	prev, seen := s.emitted[key]
	send := len(r.Findings) > 0 && (!seen || prev.reasons != sig || now.Sub(prev.at) >= s.cfg.RepeatFindings)
	if len(r.Findings) == 0 {
		delete(s.emitted, key)
	} else if send {
		s.emitted[key] = emitState{reasons: sig, at: now}
	}
	s.mu.Unlock()
	if send {
		for _, f := range r.Findings {
			s.sink.Emit(f)
		}
	}
}

// bestOffset picks the offset of the usable server with the lowest RTT.
func bestOffset(latest map[string]Result) (time.Duration, bool) {
	best, bestRTT, found := 0.0, 0.0, false
	for _, r := range latest {
		if !r.HasValue {
			continue
		}
		rtt, _ := r.Evidence["rtt_seconds"].(float64)
		if !found || rtt < bestRTT {
			best, bestRTT, found = r.Value, rtt, true
		}
	}
	return time.Duration(best * float64(time.Second)), found
}

// Offset returns the clock offset the scheduler published (zero if unknown).
func (s *Scheduler) Offset() time.Duration { return s.clock.Offset() }
