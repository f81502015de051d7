package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"

	"github.com/zoomprobe/zoomprobe/audit"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/daemon"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/safetext"
	"github.com/zoomprobe/zoomprobe/offline"
	"github.com/zoomprobe/zoomprobe/probes"
)

func init() {
	commands = append(commands, command{
		Name: "audit", Help: "Run every active check once (and optionally analyse captures or an interface) and write a Zoom readiness report. Exit 0 all pass, 1 any failure, 2 usage or config error.",
		Setup: func(cmd *kingpin.CmdClause, g *globals) func() int {
			format := cmd.Flag("output.format", "Report format: text, markdown, html (self-contained, for a ticket) or json.").Default("text").Enum(report.Formats...)
			file := cmd.Flag("output.file", "Write the report here instead of standard output.").Default("-").String()
			targets := cmd.Flag("audit.target", "Zoom host (host or host:port) to check instead of the configured tls, tcp, stun and dns targets; repeatable.").Strings()
			checks := cmd.Flag("audit.check", "Run only this check ("+strings.Join(probes.CheckOrder, ", ")+"); repeatable.").Enums(probes.CheckOrder...)
			captures := cmd.Flag("audit.capture", "Also analyse this pcap/pcapng file and add what it shows; repeatable.").ExistingFiles()
			iface := cmd.Flag("audit.interface", "Also watch this interface (needs CAP_NET_RAW) while the checks run.").String()
			duration := cmd.Flag("audit.duration", "How long to watch --audit.interface.").Default("1m").Duration()
			parallel := cmd.Flag("audit.parallel", "Targets of one check tested at the same time.").Default("8").Int()
			quiet := cmd.Flag("audit.quiet", "No progress lines on standard error.").Bool()
			compare := cmd.Flag("compare", "A previous audit report in JSON (--output.format json): the report says what changed since.").ExistingFile()
			evidenceDir := cmd.Flag("evidence.dir", "Write a pcapng of the checks' own packets (captured on --audit.interface or the default route's; needs CAP_NET_RAW) and one per finding of --audit.capture and --audit.interface into this directory.").String()
			return func() int {
				return runAudit(g, auditArgs{format: *format, file: *file, targets: *targets, checks: *checks, captures: *captures,
					iface: *iface, duration: *duration, parallel: *parallel, quiet: *quiet, compare: *compare, evidenceDir: *evidenceDir})
			}
		},
	})
}

type auditArgs struct {
	format, file string
	targets      []string
	checks       []string
	captures     []string
	iface        string
	duration     time.Duration
	parallel     int
	quiet        bool
	compare      string
	evidenceDir  string
}

func runAudit(g *globals, a auditArgs) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "zoomprobe audit: "+format+"\n", args...)
		return 2
	}
	cfg, err := loadCommandConfig(g)
	if err != nil {
		return fail("%v", err)
	}
	var tgs []config.ProbeTarget
	for _, s := range a.targets {
		t, err := parseTarget(s)
		if err != nil {
			return fail("--audit.target %q: %v", s, err)
		}
		tgs = append(tgs, t)
	}
	if a.iface != "" && a.duration <= 0 {
		return fail("--audit.duration must be positive, got %s", a.duration)
	}
	if a.parallel < 1 || a.parallel > 256 {
		return fail("--audit.parallel must be between 1 and 256, got %d", a.parallel)
	}
	var previous *report.Report
	if a.compare != "" {
		// Read before the checks run: a wrong file is a usage error, found
		// before minutes of checks.
		if previous, err = readReportFile(a.compare); err != nil {
			return fail("--compare: %v", err)
		}
	}
	out, closeOut, err := openOutput(a.file)
	if err != nil {
		return fail("--output.file: %v", err)
	}

	o := audit.Options{Config: cfg, Checks: a.checks, Targets: tgs, Parallel: a.parallel, Version: version.Version}
	if !a.quiet {
		o.Progress = os.Stderr
	}
	o.OwnFlows = daemon.OwnFlows(cfg)
	o.Passive, o.PassiveLabel = passiveHook(cfg, g, a, o.OwnFlows)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cc *checkCapture
	var ccErr error
	if a.evidenceDir != "" {
		cc, ccErr = startCheckCapture(cfg, a.iface, o.OwnFlows)
	}
	rep, err := audit.Run(ctx, o)
	if err != nil {
		if cc != nil {
			cc.src.Close()
		}
		closeOut()
		return fail("%v", err)
	}
	switch {
	case cc != nil:
		if err := cc.finish(a.evidenceDir, cfg, rep); err != nil {
			rep.Notes = append(rep.Notes, "The checks' packets could not be written: "+err.Error())
		}
	case ccErr != nil:
		rep.Notes = append(rep.Notes, "The checks' packets were not captured (it needs CAP_NET_RAW): "+ccErr.Error())
	}
	if previous != nil {
		rep.Changes = report.Compare(previous, rep, a.compare)
	}
	color := a.format == "text" && a.file == "-" && isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""
	bw := bufio.NewWriter(out)
	// One err for render, flush and close: a failed render must not be
	// hidden by a flush that succeeds.
	err = report.Render(bw, a.format, rep, color)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("writing the report: %v", err)
	}
	if !a.quiet {
		fmt.Fprintf(os.Stderr, "zoomprobe audit: %s\n", safetext.Escape(rep.Headline))
	}
	return rep.ExitCode()
}

// readReportFile reads an audit report written with --output.format json.
func readReportFile(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := report.ReadReport(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %v (write it with zoomprobe audit --output.format json)", path, err)
	}
	return r, nil
}

// passiveHook analyses capture files and/or watches an interface with the
// same engine as `analyze` and `run`, while the active checks run.
// The checks register their sockets in own, and the engine watching the
// interface skips their packets: the audit's own probes are not clients.
func passiveHook(cfg *config.Config, g *globals, a auditArgs, own *ownflows.Registry) (audit.Passive, string) {
	if len(a.captures) == 0 && a.iface == "" {
		return nil, ""
	}
	var what []string
	if len(a.captures) > 0 {
		what = append(what, "capture files "+strings.Join(a.captures, ", "))
	}
	if a.iface != "" {
		what = append(what, fmt.Sprintf("interface %s for %s", a.iface, a.duration))
	}
	return func(ctx context.Context, sink finding.Sink) error {
		var errs []error
		if len(a.captures) > 0 {
			res, err := offline.Analyze(ctx, cfg, a.captures, offline.Options{Logger: g.logger, EvidenceDir: a.evidenceDir})
			if err != nil {
				errs = append(errs, err)
			} else {
				for _, f := range res.Findings {
					sink.Emit(f)
				}
			}
		}
		if a.iface != "" {
			errs = append(errs, watchInterface(ctx, cfg, g, a.iface, a.duration, sink, own, a.evidenceDir))
		}
		return errors.Join(errs...)
	}, strings.Join(what, " and ")
}

func watchInterface(ctx context.Context, cfg *config.Config, g *globals, iface string, d time.Duration, sink finding.Sink, own *ownflows.Registry, evidenceDir string) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ev *evidence.Dir
	if evidenceDir != "" {
		var err error
		if ev, err = evidence.OpenDir(evidence.DirConfig{Path: evidenceDir, MaxBytes: cfg.Evidence.MaxDirBytes, Retention: cfg.Evidence.Retention, Logger: g.logger}); err != nil {
			return err
		}
	}
	eng, err := engine.New(engine.Options{Config: cfg, Registerer: prometheus.NewRegistry(), Sink: sink, Logger: g.logger, OwnFlows: own, Evidence: ev})
	if err != nil {
		return err
	}
	in := engine.Input{Label: iface, Live: true, Open: func() (capture.Source, error) {
		return capture.OpenLive(iface, daemon.LiveOptions(cfg, nil))
	}}
	err = eng.Run(ctx, []engine.Input{in})
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func parseTarget(s string) (config.ProbeTarget, error) {
	s = strings.TrimSpace(s)
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 || h == "" {
			return config.ProbeTarget{}, fmt.Errorf("write host or host:port (port 1-65535)")
		}
		return config.ProbeTarget{Host: h, Port: uint16(n)}, nil
	}
	if s == "" || strings.ContainsAny(s, " /@") || strings.Count(s, ":") == 1 {
		return config.ProbeTarget{}, fmt.Errorf("write host or host:port")
	}
	return config.ProbeTarget{Host: strings.Trim(s, "[]")}, nil
}

func openOutput(path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return os.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
