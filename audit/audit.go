// Package audit runs every active check once (and, through a hook, passive
// analysis of captures or an interface) and turns the results into a
// readiness report: Zoom's requirements, each PASS / WARN / FAIL with the
// evidence, what users or a Zoom Room would see, and the remediation.
package audit

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/probes"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Passive is the hook for passive analysis during the audit (reading
// capture files, watching an interface for a while): it sends its findings
// to sink and returns when done or when ctx ends. It runs while the active
// checks run, so it also sees their traffic.
type Passive func(ctx context.Context, sink finding.Sink) error

// Options tune an audit.
type Options struct {
	Config *config.Config
	// Checks limits the audit to these checks (probes.CheckOrder names);
	// empty runs every enabled check.
	Checks []string
	// Targets replace the configured hosts of the tls, tcp, stun and dns
	// checks ("host" or "host:port").
	Targets []config.ProbeTarget
	// Passive, when set, runs alongside the checks; PassiveLabel says what
	// it analysed ("capture files a.pcap, b.pcap", "interface eth0 for 5m").
	Passive      Passive
	PassiveLabel string
	// Progress receives one line per check as it starts (stderr).
	Progress io.Writer
	// Judge judges TLS chains; nil: certcheck with the config's tls section.
	Judge probes.ChainJudge
	// Resolver resolves target names; nil: the system resolver.
	Resolver *net.Resolver
	Parallel int
	Host     string // shown in the report; default os.Hostname
	Version  string
	// MaxFindings bounds the findings kept in the report.
	MaxFindings int
	// OwnFlows, when set, is where the checks register their sockets: give
	// the same registry to the engine Passive runs on a live interface, so
	// the checks' own traffic is not reported as clients'.
	OwnFlows *ownflows.Registry
}

// Run performs the audit. It fails only when the audit could not run
// (bad options); network failures are the report's content.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if o.Config == nil {
		return nil, fmt.Errorf("audit: no configuration")
	}
	for _, c := range o.Checks {
		if _, ok := probes.Probers[c]; !ok {
			return nil, fmt.Errorf("audit: unknown check %q (known: %s)", c, strings.Join(probes.CheckOrder, ", "))
		}
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = 1000
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	pc := o.Config.Probes
	if len(o.Targets) > 0 {
		pc.TLS.Targets, pc.TCP.Targets, pc.STUN.Targets = o.Targets, o.Targets, o.Targets
		pc.DNS.Names = nil
		for _, t := range o.Targets {
			if !slices.Contains(pc.DNS.Names, t.Host) {
				pc.DNS.Names = append(pc.DNS.Names, t.Host)
			}
		}
	}
	start := time.Now()
	var mu sync.Mutex
	var found []finding.Finding
	dropped := 0
	sink := finding.SinkFunc(func(f finding.Finding) {
		mu.Lock()
		defer mu.Unlock()
		if len(found) >= o.MaxFindings {
			dropped++
			return
		}
		found = append(found, f)
	})
	clock := &certcheck.Clock{}
	s := probes.NewScheduler(pc, prometheus.NewRegistry(), sink, clock, nil)
	if o.Judge == nil {
		j, err := probes.JudgeFromConfig(o.Config.TLS)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		o.Judge = j
	}
	s.SetJudge(o.Judge)
	if o.OwnFlows != nil {
		s.SetOwnFlows(o.OwnFlows)
	}
	if o.Resolver != nil {
		s.SetResolver(o.Resolver)
	}
	jobs := s.Jobs()
	if len(o.Checks) > 0 {
		jobs = slices.DeleteFunc(jobs, func(j probes.Job) bool { return !slices.Contains(o.Checks, j.Check) })
		s.SetJobs(jobs)
	}

	var passiveErr error
	var passiveFindings []finding.Finding
	var wg sync.WaitGroup
	if o.Passive != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pmu sync.Mutex
			passiveErr = o.Passive(ctx, finding.SinkFunc(func(f finding.Finding) {
				pmu.Lock()
				if len(passiveFindings) < o.MaxFindings {
					passiveFindings = append(passiveFindings, f)
				}
				pmu.Unlock()
			}))
		}()
	}
	total := countChecks(jobs)
	step := 0
	results := s.RunOnce(ctx, o.Parallel, func(check string, n int) {
		step++
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "zoomprobe audit: [%d/%d] %s: %s\n", step, total, check, plural(n, "target"))
		}
	})
	if o.Passive != nil && o.Progress != nil {
		fmt.Fprintf(o.Progress, "zoomprobe audit: waiting for passive analysis (%s)\n", o.PassiveLabel)
	}
	wg.Wait()

	host := o.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	r := &report.Report{Title: "Zoom readiness report", Generated: start, Site: o.Config.Site, Host: host, Version: o.Version}
	b := builder{cfg: &pc, results: results, clock: clock, selected: o.Checks}
	r.Requirements = b.requirements()
	if o.Passive != nil {
		r.Requirements = append(r.Requirements, passiveRequirement(o.PassiveLabel, passiveFindings, passiveErr))
	}
	for _, res := range results {
		r.Checks = append(r.Checks, report.Check{Check: res.Check, Target: res.Target, Status: statusOf(res.Status), Reason: string(res.Reason), Summary: res.Summary, Duration: res.Duration, Evidence: res.Evidence})
	}
	// Findings of every run, not only those the scheduler chose to emit.
	for _, res := range results {
		for _, f := range res.Findings {
			if len(r.Findings) < o.MaxFindings {
				r.Findings = append(r.Findings, f)
			}
		}
	}
	r.Findings = append(r.Findings, passiveFindings...)
	r.Facts = networkFacts(results, &pc)
	if off := clock.Offset(); off != 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("TLS certificates were judged at this host's time corrected by the NTP offset (%s).", fmtOffset(off)))
	}
	if pc.Proxy.Parsed != nil {
		r.Notes = append(r.Notes, "TLS checks went through the proxy "+pc.Proxy.Parsed.Scheme+"://"+pc.Proxy.Parsed.Host+bypassNote(pc.Proxy.Bypass)+"; TCP and UDP checks went direct, as Zoom's media does.")
	}
	if dropped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d findings were not kept (more than %d).", dropped, o.MaxFindings))
	}
	r.Duration = time.Since(start)
	r.Finish()
	if cause, n := rootCause(results); cause != "" {
		// The root cause first: what it prevented is not blamed on anything else.
		r.Headline = fmt.Sprintf("%s; %s depended on it and were not tested. %s", cause, plural(n, "check"), r.Headline)
		slices.SortStableFunc(r.Findings, func(a, b finding.Finding) int {
			return boolRank(a.Source == "probe/dns") - boolRank(b.Source == "probe/dns")
		})
	}
	return r, nil
}

func boolRank(first bool) int {
	if first {
		return 0
	}
	return 1
}

// rootCause is the cause most not-tested checks share, and how many.
func rootCause(results []probes.Result) (string, int) {
	count := map[string]int{}
	best := ""
	for _, r := range results {
		if r.Status != probes.StatusNotTested || r.Cause == "" {
			continue
		}
		count[r.Cause]++
		if best == "" || count[r.Cause] > count[best] || count[r.Cause] == count[best] && r.Cause < best {
			best = r.Cause
		}
	}
	return best, count[best]
}

func bypassNote(b []string) string {
	if len(b) == 0 {
		return ""
	}
	return " (bypassed for " + strings.Join(b, ", ") + ")"
}

func countChecks(jobs []probes.Job) int {
	n := 0
	for i := range jobs {
		if i == 0 || jobs[i].Check != jobs[i-1].Check {
			n++
		}
	}
	return n
}

func plural(n int, w string) string {
	if n == 1 {
		return "1 " + w
	}
	return strconv.Itoa(n) + " " + w + "s"
}

func fmtOffset(d time.Duration) string {
	s := d.Round(time.Millisecond).String()
	if d >= 0 {
		s = "+" + s
	}
	return s
}

func statusOf(s probes.Status) report.Status {
	switch s {
	case probes.StatusNotTested:
		return report.Skip // not a failure of what it tests: the cause is reported first
	case probes.StatusPass:
		return report.Pass
	case probes.StatusFail:
		return report.Fail
	case probes.StatusWarn, probes.StatusUnknown:
		return report.Warn
	}
	return report.Skip
}

// worse orders statuses for aggregation.
func worse(a, b report.Status) report.Status {
	rank := map[report.Status]int{report.Skip: 0, report.Pass: 1, report.Warn: 2, report.Fail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// builder turns check results into requirement rows.
type builder struct {
	cfg      *config.ProbesConfig
	results  []probes.Result
	clock    *certcheck.Clock
	selected []string
}

func (b *builder) of(checks ...string) []probes.Result {
	var out []probes.Result
	for _, r := range b.results {
		if slices.Contains(checks, r.Check) {
			out = append(out, r)
		}
	}
	return out
}

func (b *builder) requirements() []report.Requirement {
	var rows []report.Requirement
	rows = append(rows, b.dnsRow())
	rows = append(rows, b.ntpRows()...)
	rows = append(rows, b.portRows(probes.CheckTCP, "tcp", b.cfg.TCP.Ports)...)
	rows = append(rows, b.portRows(probes.CheckSTUN, "udp", b.cfg.STUN.Ports)...)
	rows = append(rows, b.tlsRow())
	rows = append(rows, b.proxyRow())
	return rows
}

// tested drops the results that were not tested (their cause is reported
// by the row it belongs to).
func tested(rs []probes.Result) []probes.Result {
	var out []probes.Result
	for _, r := range rs {
		if r.Status != probes.StatusNotTested {
			out = append(out, r)
		}
	}
	return out
}

func skipped(id, title, needed, why string) report.Requirement {
	return report.Requirement{ID: id, Title: title, Needed: needed, Status: report.Skip, Evidence: []string{why}}
}

// fromFindings fills user_sees, codes and remediation from the first
// finding of the worst results.
func fillFrom(q *report.Requirement, rs []probes.Result) {
	for _, want := range []probes.Status{probes.StatusFail, probes.StatusWarn, probes.StatusUnknown} {
		for _, r := range rs {
			if r.Status != want || len(r.Findings) == 0 {
				continue
			}
			f := r.Findings[0]
			if q.UserSees == "" {
				q.UserSees = f.UserSees
				if strings.Contains(f.UserSees, "5003") {
					q.UserSees = "\"" + zoom.ConnectErrorText + "\""
					q.ErrorCodes = connectFamily
				}
			}
			if q.Remediation == "" {
				q.Remediation = f.Remediation
			}
			if q.RoomsCode == 0 {
				q.RoomsCode = f.ZoomRoomsCode
			}
		}
	}
}

const connectFamily = "5003 and its family 5000-5004, 104101-104118 (Zoom cannot reach its servers)"

func evidenceLines(rs []probes.Result) []string {
	var out []string
	for _, r := range rs {
		mark := ""
		switch r.Status {
		case probes.StatusFail:
			mark = "✗ "
		case probes.StatusWarn, probes.StatusUnknown:
			mark = "? "
		case probes.StatusPass:
			mark = "✓ "
		case probes.StatusNotTested:
			mark = "– "
		}
		if line := mark + r.Summary; !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	return out
}

func aggregate(rs []probes.Result) report.Status {
	st := report.Skip
	for _, r := range rs {
		st = worse(st, statusOf(r.Status))
	}
	return st
}

func (b *builder) dnsRow() report.Requirement {
	const id, title, needed = "dns", "DNS resolves Zoom's names", "Clients find Zoom's web, zone controllers and media routers by name; a filtered or sinkholed answer stops them before any connection."
	rs := b.of(probes.CheckDNS)
	q := report.Requirement{ID: id, Title: title, Needed: needed, Status: aggregate(rs), Evidence: evidenceLines(rs)}
	if len(rs) == 0 {
		q = skipped(id, title, needed, "DNS check not run")
	}
	fillFrom(&q, rs)
	// Lookups the other checks made: a name that did not resolve stopped
	// them, and DNS is the cause to report (once, here).
	type dependent struct {
		host, cause string
		reason      finding.Reason
		checks      int
	}
	var deps []*dependent
	for _, r := range b.results {
		if r.Status != probes.StatusNotTested || r.Cause == "" {
			continue
		}
		host := hostOf(r.Target)
		i := slices.IndexFunc(deps, func(d *dependent) bool { return d.host == host && d.cause == r.Cause })
		if i < 0 {
			deps = append(deps, &dependent{host: host, cause: r.Cause, reason: r.Reason})
			i = len(deps) - 1
		}
		deps[i].checks++
	}
	if len(rs) == 0 && len(deps) > 0 {
		q.Evidence = nil // not "not run": the other checks' lookups are the evidence
	}
	for _, d := range deps {
		q.Evidence = append(q.Evidence, fmt.Sprintf("✗ %s: %s; %s depended on it and were not tested", d.host, d.cause, plural(d.checks, "check")))
		if d.reason == finding.ReasonDNSNXDomain {
			// The name may be filtered, or simply not a current Zoom host.
			q.Status = worse(q.Status, report.Warn)
			if q.Remediation == "" {
				q.Remediation = "Names that do not exist here (NXDOMAIN) are filtered, or are not current Zoom hosts: check the DNS filter, and list the Zoom hosts your rooms use under probes.*.targets or --audit.target."
			}
			continue
		}
		q.Status = report.Fail
		if q.Remediation == "" {
			q.Remediation = "The resolver this host uses fails (" + d.cause + "): make it reachable and able to resolve Zoom's names. Every connection to Zoom by name fails until it does."
		}
		if q.UserSees == "" {
			q.UserSees = "\"" + zoom.ConnectErrorText + "\""
			q.ErrorCodes = connectFamily
		}
	}
	return q
}

// hostOf is the host of a "host:port" label (the label itself otherwise).
func hostOf(label string) string {
	if h, _, err := net.SplitHostPort(label); err == nil {
		return h
	}
	return label
}

func (b *builder) ntpRows() []report.Requirement {
	const needed = "Zoom names a wrong clock as the most common cause of certificate warnings: certificates look expired or not yet valid."
	rs := b.of(probes.CheckNTP)
	if len(rs) == 0 {
		return []report.Requirement{
			skipped("clock", "Clock is correct", needed, "NTP check not run"),
			skipped("ntp", "NTP (UDP 123) is reachable", "Rooms and clients keep time with NTP.", "NTP check not run"),
		}
	}
	// Clock: the offset from the best server (lowest RTT), as the scheduler publishes.
	clock := report.Requirement{ID: "clock", Title: fmt.Sprintf("Clock within %s of true time", b.cfg.NTP.Warning), Needed: needed}
	var best *probes.Result
	for i := range rs {
		r := &rs[i]
		if !r.HasValue {
			continue
		}
		rtt, _ := r.Evidence["rtt_seconds"].(float64)
		brtt := 0.0
		if best != nil {
			brtt, _ = best.Evidence["rtt_seconds"].(float64)
		}
		if best == nil || rtt < brtt {
			best = r
		}
	}
	if best == nil {
		clock.Status = report.Warn
		clock.Evidence = []string{"no NTP server answered: the clock could not be checked"}
		clock.UserSees = "Unknown: if the clock is wrong, Zoom shows certificate warnings (Zoom Rooms code 5 or 3)."
		clock.Remediation = "Make an NTP server reachable (see the NTP row) and run the audit again."
	} else {
		clock.Status = statusOf(best.Status)
		clock.Evidence = []string{best.Summary}
		for _, r := range rs {
			if r.HasValue && r.Target != best.Target {
				clock.Evidence = append(clock.Evidence, r.Summary)
			}
		}
		if best.Status != probes.StatusPass {
			fillFrom(&clock, []probes.Result{*best})
		}
	}
	ntp := report.Requirement{ID: "ntp", Title: "NTP (UDP 123) is reachable", Needed: "Zoom Rooms and clients keep their clocks right with NTP; blocked UDP 123 lets clocks drift."}
	up, down := 0, 0
	var downRes []probes.Result
	for _, r := range rs {
		if r.Reason == finding.ReasonNTPUnreachable {
			down++
			downRes = append(downRes, r)
			ntp.Evidence = append(ntp.Evidence, "✗ "+r.Summary)
		} else {
			up++
			ntp.Evidence = append(ntp.Evidence, fmt.Sprintf("✓ NTP server %s answered (stratum %v)", r.Target, r.Evidence["stratum"]))
		}
	}
	switch {
	case down == 0:
		ntp.Status = report.Pass
	case up == 0:
		ntp.Status = report.Fail
	default:
		ntp.Status = report.Warn
	}
	fillFrom(&ntp, downRes)
	return []report.Requirement{clock, ntp}
}

var portNeeds = map[string]string{
	"tcp/443":  "Web, sign-in and signalling; the last media fallback (TLS on 443) when UDP and TCP 8801/8802 fail.",
	"tcp/8801": "Media over TCP to Zoom's multimedia routers, the fallback when UDP is blocked.",
	"tcp/8802": "Media over TCP to Zoom's multimedia routers (second port).",
	"udp/3478": "Zoom's STUN: finds the public address for UDP media; an answer proves UDP reaches Zoom.",
	"udp/3479": "Zoom's STUN (second port).",
}

// portRows makes one row per port: PASS when every target connected, WARN
// when some did or nothing was decided, FAIL when none did and something
// proved a block. For UDP one answer proves the path.
func (b *builder) portRows(check, transport string, ports []uint16) []report.Requirement {
	rs := b.of(check)
	byPort := map[uint16][]probes.Result{}
	seen := append([]uint16(nil), ports...)
	for _, r := range rs {
		p := portOfResult(r)
		byPort[p] = append(byPort[p], r)
		if !slices.Contains(seen, p) {
			seen = append(seen, p)
		}
	}
	sort.Slice(seen, func(i, j int) bool { return seen[i] < seen[j] })
	var rows []report.Requirement
	for _, p := range seen {
		key := transport + "/" + strconv.Itoa(int(p))
		id := transport + "-" + strconv.Itoa(int(p))
		title := strings.ToUpper(transport) + " " + strconv.Itoa(int(p)) + " to Zoom"
		if check == probes.CheckSTUN {
			title = "UDP " + strconv.Itoa(int(p)) + " to Zoom (STUN)"
		}
		needed := portNeeds[key]
		if needed == "" {
			needed = "A port Zoom uses (" + key + ")."
		}
		group := byPort[p]
		if len(group) == 0 {
			if len(rs) == 0 {
				rows = append(rows, skipped(id, title, needed, check+" check not run"))
			}
			continue
		}
		q := report.Requirement{ID: id, Title: title, Needed: needed, Evidence: evidenceLines(group)}
		if group = tested(group); len(group) == 0 {
			q.Status = report.Skip
			q.Evidence = append(q.Evidence, "No target was tested: their names did not resolve (see the DNS row).")
			rows = append(rows, q)
			continue
		}
		pass, fail, unknown := 0, 0, 0
		for _, r := range group {
			switch r.Status {
			case probes.StatusPass:
				pass++
			case probes.StatusFail:
				fail++
			default:
				unknown++
			}
		}
		switch {
		case pass == len(group):
			q.Status = report.Pass
		case pass > 0 && transport == "udp":
			q.Status = report.Pass // one answer proves the path; silence elsewhere is not a block
		case pass > 0:
			q.Status = report.Warn
		case fail > 0:
			q.Status = report.Fail
		default:
			q.Status = report.Warn
		}
		if q.Status != report.Pass {
			fillFrom(&q, group)
			if q.Status == report.Warn && fail == 0 && transport == "udp" {
				q.Evidence = append(q.Evidence, "No answer and no ICMP error: unknown, not proof of a block. Zoom would fall back to TCP.")
			}
		}
		rows = append(rows, q)
	}
	return rows
}

func portOfResult(r probes.Result) uint16 {
	if p, ok := r.Evidence["port"].(int); ok {
		return uint16(p)
	}
	if i := strings.LastIndexByte(r.Target, ':'); i >= 0 {
		n, _ := strconv.Atoi(r.Target[i+1:])
		return uint16(n)
	}
	return 0
}

func (b *builder) tlsRow() report.Requirement {
	const id, title, needed = "tls", "TLS to Zoom without interception", "Zoom pins its certificate authority: SSL inspection, a captive portal or a wrong clock make the client or Zoom Room refuse the certificate."
	rs := b.of(probes.CheckTLS12, probes.CheckTLS)
	if len(rs) == 0 {
		return skipped(id, title, needed, "TLS check not run")
	}
	// A proxy's refusal belongs to the proxy row: here it means "not tested".
	var tested []probes.Result
	var untested []string
	var notResolved []probes.Result
	for _, r := range rs {
		if r.Status == probes.StatusNotTested {
			notResolved = append(notResolved, r)
			continue
		}
		if isProxyReason(r.Reason) {
			line := "? " + r.Target + " not tested: the proxy refused CONNECT (see the proxy row)"
			if !slices.Contains(untested, line) {
				untested = append(untested, line)
			}
			continue
		}
		tested = append(tested, r)
	}
	q := report.Requirement{ID: id, Title: title, Needed: needed, Status: aggregate(tested), Evidence: append(append(evidenceLines(tested), untested...), evidenceLines(notResolved)...)}
	if len(untested) > 0 {
		q.Status = worse(q.Status, report.Warn)
	}
	fillFrom(&q, tested)
	if q.RoomsCode != 0 && q.UserSees == "" {
		if e, ok := zoom.LookupRoomsCertError(q.RoomsCode); ok {
			q.UserSees = e.Description
		}
	}
	return q
}

func isProxyReason(r finding.Reason) bool {
	switch r {
	case finding.ReasonProxyDenied, finding.ReasonProxyAuthRequired, finding.ReasonProxyBadGateway, finding.ReasonProxyClosed:
		return true
	}
	return false
}

func (b *builder) proxyRow() report.Requirement {
	const id, title, needed = "proxy", "Web proxy allows CONNECT to Zoom", "Clients configured with a proxy (ProxyServer / ProxyPAC) reach Zoom's web and TLS fallback through CONNECT; Zoom Rooms cannot answer proxy authentication."
	if b.cfg.Proxy.Parsed == nil {
		return skipped(id, title, needed, "No proxy configured (probes.proxy.url): the checks went direct.")
	}
	var via []probes.Result
	for _, r := range b.of(probes.CheckTLS12, probes.CheckTLS) {
		if _, ok := r.Evidence["proxy"]; ok {
			via = append(via, r)
		}
	}
	if len(via) == 0 {
		return skipped(id, title, needed, "Every TLS target is in probes.proxy.bypass, or no TLS check ran.")
	}
	q := report.Requirement{ID: id, Title: title, Needed: needed, Status: report.Pass}
	var bad []probes.Result
	for _, r := range via {
		line := "✓ CONNECT " + r.Target + " granted by " + fmt.Sprint(r.Evidence["proxy"])
		if isProxyReason(r.Reason) {
			bad = append(bad, r)
			line = "✗ " + r.Summary
		}
		if !slices.Contains(q.Evidence, line) {
			q.Evidence = append(q.Evidence, line)
		}
	}
	if len(bad) > 0 {
		q.Status = report.Fail
		fillFrom(&q, bad)
	}
	return q
}

// passiveRequirement summarises what passive analysis found.
func passiveRequirement(label string, fs []finding.Finding, err error) report.Requirement {
	q := report.Requirement{ID: "observed", Title: "Observed Zoom traffic has no failures", Needed: "What clients actually tried, from " + label + "."}
	if err != nil {
		q.Status = report.Warn
		q.Evidence = []string{"passive analysis failed: " + err.Error()}
		return q
	}
	if len(fs) == 0 {
		q.Status = report.Pass
		q.Evidence = []string{"no findings in " + label}
		return q
	}
	count := map[string]int{}
	var keys []string
	for _, f := range fs {
		k := string(f.Kind) + " / " + string(f.Reason)
		if count[k] == 0 {
			keys = append(keys, k)
		}
		count[k]++
	}
	for _, k := range keys {
		q.Evidence = append(q.Evidence, fmt.Sprintf("%s: %d", k, count[k]))
	}
	q.Status = report.Warn
	for _, f := range fs {
		if f.Confidence == "high" || f.Kind == finding.KindTLSInterception || f.Kind == finding.KindBlockedConnection || f.Kind == finding.KindCertRejected {
			q.Status = report.Fail
			break
		}
	}
	f := fs[0]
	q.UserSees, q.Remediation, q.RoomsCode = f.UserSees, f.Remediation, f.ZoomRoomsCode
	if strings.Contains(f.UserSees, "5003") {
		q.ErrorCodes = connectFamily
	}
	return q
}
