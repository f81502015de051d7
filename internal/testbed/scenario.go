package testbed

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/finding"
)

// Scenario is one test-bed experiment as data: what the middlebox does,
// what the client does, and what must be observed.
type Scenario struct {
	Name   string // also the pcap's base name
	Desc   string
	Router []Behaviour
	Client ClientPlan
	Expect Expectation
}

// Expectation is everything a scenario asserts.
type Expectation struct {
	// Client is how every step the client attempted must end (exactly: a
	// step missing here must not have been attempted).
	Client map[Step]finding.Reason
	// Media is the media step that must have worked ("" for none).
	Media Step
	// Traffic are assertions on what the probe's mirror saw.
	Traffic []TrafficCheck
	// Findings are exactly the findings the daemon must report for this
	// traffic (none at all for a clean scenario), and Metrics the metric
	// values it must export. They are asserted by the observe function the
	// engine's tests pass to RunScenario.
	Findings []ExpectedFinding
	Metrics  []ExpectedMetric
	// Analyzers name the analyzers that produce Findings. Pending says what
	// is left: "to be completed by analyzer X" while X does not exist; the
	// traffic checks stand in for it until then.
	Analyzers []string
	Pending   string
	// KnownIssue, when set, explains a known difference between Findings
	// (what is right) and what the daemon reports today; the daemon-level
	// check then skips with this note instead of failing, until fixed.
	KnownIssue string
}

// ExpectedFinding is one finding the daemon must report. Kind and Reason
// must match; other zero fields are not compared.
type ExpectedFinding struct {
	Kind          finding.Kind
	Reason        finding.Reason
	Service       string // zoom.Service name: web, zone_controller, media_router, media...
	Transport     string // tcp, udp
	Server        netip.Addr
	ServerPort    uint16
	SNI           string
	Product       string
	ZoomRoomsCode int
}

func (e ExpectedFinding) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s/%s", e.Kind, e.Reason)
	if e.Service != "" {
		fmt.Fprintf(&sb, " service=%s", e.Service)
	}
	if e.Transport != "" {
		fmt.Fprintf(&sb, " %s", e.Transport)
	}
	if e.Server.IsValid() || e.ServerPort != 0 {
		fmt.Fprintf(&sb, " server=%s:%d", e.Server, e.ServerPort)
	}
	if e.SNI != "" {
		fmt.Fprintf(&sb, " sni=%s", e.SNI)
	}
	if e.Product != "" {
		fmt.Fprintf(&sb, " product=%s", e.Product)
	}
	if e.ZoomRoomsCode != 0 {
		fmt.Fprintf(&sb, " rooms_code=%d", e.ZoomRoomsCode)
	}
	return sb.String()
}

// Matches reports whether f is the expected finding.
func (e ExpectedFinding) Matches(f finding.Finding) bool {
	if f.Kind != e.Kind || f.Reason != e.Reason {
		return false
	}
	if e.Service != "" && f.Service != e.Service ||
		e.SNI != "" && f.SNI != e.SNI ||
		e.Product != "" && f.Product != e.Product ||
		e.ZoomRoomsCode != 0 && f.ZoomRoomsCode != e.ZoomRoomsCode {
		return false
	}
	if e.Transport != "" || e.Server.IsValid() || e.ServerPort != 0 {
		if f.Flow == nil ||
			e.Transport != "" && f.Flow.Transport != e.Transport ||
			e.Server.IsValid() && f.Flow.Server != e.Server ||
			e.ServerPort != 0 && f.Flow.ServerPort != e.ServerPort {
			return false
		}
	}
	return true
}

// ExpectedMetric is one metric sample the daemon must export.
type ExpectedMetric struct {
	Name   string // full name, e.g. zoomprobe_blocked_connections_total
	Labels map[string]string
	Value  float64
}

// MatchFindings checks that got holds exactly the expected findings (as a
// multiset: each expected finding matches one distinct reported finding,
// and nothing is left over).
func MatchFindings(got []finding.Finding, want []ExpectedFinding) error {
	used := make([]bool, len(got))
	var missing []string
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && w.Matches(g) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	var extra []string
	for i, g := range got {
		if !used[i] {
			port := uint16(0)
			if g.Flow != nil {
				port = g.Flow.ServerPort
			}
			extra = append(extra, fmt.Sprintf("%s/%s service=%s port=%d sni=%s product=%s", g.Kind, g.Reason, g.Service, port, g.SNI, g.Product))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	return fmt.Errorf("findings differ:\n  missing: %s\n  unexpected: %s", strings.Join(missing, "; "), strings.Join(extra, "; "))
}

// Observation is what a scenario run produced, handed to the observe
// function (where the daemon-level assertions go).
type Observation struct {
	Scenario Scenario
	Bed      *Bed
	Result   ClientResult
	Packets  []Packet // what the probe captured
	Seen     []Seen   // the same, decoded
	Pcap     string   // the pcap written for this run
}

// PcapDirEnv names an environment variable: when set, RunScenario writes
// each scenario's capture there as NAME.pcap (regression captures for
// `zoomprobe analyze`); otherwise into the test's temporary directory.
const PcapDirEnv = "ZOOMPROBE_TESTBED_PCAPS"

// Quiet-time after the client finished before the capture is judged.
const (
	settleIdle = 150 * time.Millisecond
	settleMax  = 10 * time.Second
)

// RunScenario builds a bed, switches the scenario's behaviours on, runs the
// client, waits for the mirror to go quiet, writes the capture, asserts the
// client's result and the traffic checks, and then calls observe (may be
// nil) for daemon-level assertions such as MatchFindings on the engine's
// output for obs.Pcap.
func RunScenario(t *testing.T, sc Scenario, observe func(t *testing.T, obs *Observation)) *Observation {
	t.Helper()
	bed, err := New(t, Options{})
	if err != nil {
		t.Fatalf("scenario %s: %v", sc.Name, err)
	}
	for _, bh := range sc.Router {
		if err := bed.Apply(bh); err != nil {
			if errors.Is(err, ErrSkip) {
				t.Skip(err.Error())
			}
			t.Fatalf("scenario %s: apply %s: %v", sc.Name, bh, err)
		}
	}
	res, err := bed.RunClient(sc.Client)
	if err != nil {
		t.Fatalf("scenario %s: client: %v", sc.Name, err)
	}
	bed.Mirror.WaitQuiet(settleIdle, settleMax)
	pkts := bed.Mirror.Packets()
	obs := &Observation{Scenario: sc, Bed: bed, Result: res, Packets: pkts, Seen: DecodeAll(pkts)}
	dir := os.Getenv(PcapDirEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	obs.Pcap = filepath.Join(dir, sc.Name+".pcap")
	if err := WritePcap(obs.Pcap, pkts); err != nil {
		t.Errorf("scenario %s: %v", sc.Name, err)
	}
	failed := false
	if err := checkClient(res, sc.Expect); err != nil {
		t.Errorf("scenario %s: %v", sc.Name, err)
		failed = true
	}
	for _, c := range sc.Expect.Traffic {
		if err := c.Check(obs.Seen); err != nil {
			t.Errorf("scenario %s: %v", sc.Name, err)
			failed = true
		}
	}
	if failed {
		t.Logf("client: %s", res)
		for _, s := range obs.Seen {
			t.Log(s)
		}
	}
	if sc.Expect.Pending != "" {
		t.Logf("scenario %s: daemon-level expectation pending: %s", sc.Name, sc.Expect.Pending)
	}
	if observe != nil {
		observe(t, obs)
	}
	return obs
}

func checkClient(res ClientResult, e Expectation) error {
	got := res.Reasons()
	var diffs []string
	for s, want := range e.Client {
		g, ok := got[s]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: not attempted, want %s", s, want))
		case g != want:
			diffs = append(diffs, fmt.Sprintf("%s: %s (%s), want %s", s, g, res.Steps[s].Err, want))
		}
	}
	for s, g := range got {
		if _, ok := e.Client[s]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: attempted (%s) but not expected", s, g))
		}
	}
	if res.Media != e.Media {
		diffs = append(diffs, fmt.Sprintf("media over %q, want %q", res.Media, e.Media))
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return fmt.Errorf("client result differs:\n  %s", strings.Join(diffs, "\n  "))
}

// CheckMetrics checks that g exports every expected sample: a metric of
// that name whose labels include the expected ones, with that value
// (counters and gauges; several matching series are summed).
func CheckMetrics(g prometheus.Gatherer, want []ExpectedMetric) error {
	if len(want) == 0 {
		return nil
	}
	fams, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	var diffs []string
	for _, w := range want {
		var sum float64
		found := false
		for _, mf := range fams {
			if mf.GetName() != w.Name {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				match := true
				for k, v := range w.Labels {
					if labels[k] != v {
						match = false
						break
					}
				}
				if !match {
					continue
				}
				found = true
				switch {
				case m.GetCounter() != nil:
					sum += m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					sum += m.GetGauge().GetValue()
				case m.GetUntyped() != nil:
					sum += m.GetUntyped().GetValue()
				}
			}
		}
		if !found && w.Value == 0 {
			continue // an absent series reads as zero
		}
		if !found || sum != w.Value {
			diffs = append(diffs, fmt.Sprintf("%s%v = %v (series found: %v), want %v", w.Name, w.Labels, sum, found, w.Value))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("metrics differ:\n  %s", strings.Join(diffs, "\n  "))
	}
	return nil
}
