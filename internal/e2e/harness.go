// Package e2e proves zoomprobe's monitoring end to end with the real tools:
// Debian's Prometheus scrapes a target with the shipped alert rules, Debian's
// Alertmanager routes the alerts with the shipped configuration, and a webhook
// in the test receives them. Every Grafana panel query runs against that
// Prometheus.
//
// Start gives a running Prometheus + Alertmanager + webhook on loopback ports,
// with data under t.TempDir(). The shipped rules are time-compressed (every
// window and `for:` divided by Options.TimeScale) so an alert that needs 15
// minutes in production fires in seconds, with the same expressions and
// thresholds.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"
)

// Options configure a harness.
type Options struct {
	// Targets are host:port addresses Prometheus scrapes as job "zoomprobe".
	Targets []string
	// TargetLabels are added to every target (site, as a real scrape config does).
	TargetLabels map[string]string
	// Groups are more targets with their own labels (one site each), scraped
	// by the same job.
	Groups []TargetGroup
	// RepoRoot is the repository's top directory (default "../..", from internal/e2e/).
	RepoRoot string
	// TimeScale divides every range, offset and `for:` of the shipped rules
	// (default 60: 15m windows become 15s).
	TimeScale int
	// ScrapeInterval is both the scrape and the rule evaluation interval (default 1s).
	ScrapeInterval time.Duration
	// RuleFiles are the repository's rule files Prometheus loads, each
	// time-compressed (default: deploy/prometheus/zoomprobe-rules.yml).
	RuleFiles []string
	// RemoteWriteReceiver makes Prometheus accept samples from agents
	// (--web.enable-remote-write-receiver): the central Prometheus of a fleet.
	RemoteWriteReceiver bool
}

// TargetGroup is a static_configs entry: targets sharing target labels.
type TargetGroup struct {
	Targets []string
	Labels  map[string]string
}

// Harness is a running Prometheus, Alertmanager and webhook receiver.
type Harness struct {
	PromURL string // http://127.0.0.1:port
	AMURL   string
	Hook    *Webhook
	dir     string
	client  *http.Client
}

// Binaries the harness runs (Debian package names in scripts/e2e-deps.sh).
var (
	PrometheusBin   = "prometheus"
	AlertmanagerBin = "prometheus-alertmanager"
)

// Start runs Alertmanager, then Prometheus, and waits until both are ready.
// Without the binaries it skips, unless CI is set, where it fails.
func Start(t testing.TB, opt Options) *Harness {
	t.Helper()
	for _, bin := range []string{PrometheusBin, AlertmanagerBin} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed: run scripts/e2e-deps.sh", bin)
			}
			t.Skipf("%s not installed: run scripts/e2e-deps.sh", bin)
		}
	}
	if opt.RepoRoot == "" {
		opt.RepoRoot = "../.."
	}
	if opt.TimeScale == 0 {
		opt.TimeScale = 60
	}
	if opt.ScrapeInterval == 0 {
		opt.ScrapeInterval = time.Second
	}
	h := &Harness{dir: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	h.Hook = NewWebhook(t)

	// Alertmanager with the shipped routing, receivers pointed at the webhook.
	amCfg, err := os.ReadFile(filepath.Join(opt.RepoRoot, "deploy/alertmanager/alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	amCfg, err = AlertmanagerForTest(amCfg, h.Hook.URL)
	if err != nil {
		t.Fatalf("alertmanager.yml: %v", err)
	}
	writeFile(t, filepath.Join(h.dir, "alertmanager.yml"), amCfg)
	amAddr := freeAddr(t)
	h.AMURL = "http://" + amAddr
	startProcess(t, h.dir, "alertmanager", AlertmanagerBin,
		"--config.file="+filepath.Join(h.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(h.dir, "am-data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=", // no gossip: loopback only
		"--log.level=warn")

	// Prometheus with the shipped rules, time-compressed.
	if len(opt.RuleFiles) == 0 {
		opt.RuleFiles = []string{"deploy/prometheus/zoomprobe-rules.yml"}
	}
	var ruleFiles []string
	for i, f := range opt.RuleFiles {
		rules, err := os.ReadFile(filepath.Join(opt.RepoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if rules, err = CompressRules(rules, opt.TimeScale); err != nil {
			t.Fatalf("compressing %s: %v", f, err)
		}
		name := fmt.Sprintf("rules-%d.yml", i)
		writeFile(t, filepath.Join(h.dir, name), rules)
		ruleFiles = append(ruleFiles, name)
	}
	writeFile(t, filepath.Join(h.dir, "prometheus.yml"), prometheusConfig(opt, amAddr, ruleFiles))
	promAddr := freeAddr(t)
	h.PromURL = "http://" + promAddr
	args := []string{
		"--config.file=" + filepath.Join(h.dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(h.dir, "prom-data"),
		"--web.listen-address=" + promAddr,
		"--rules.alert.resend-delay=1s",
		"--log.level=warn"}
	if opt.RemoteWriteReceiver {
		args = append(args, "--web.enable-remote-write-receiver")
	}
	startProcess(t, h.dir, "prometheus", PrometheusBin, args...)

	for _, u := range []string{h.AMURL + "/-/ready", h.PromURL + "/-/ready"} {
		if err := h.waitHTTP(u, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func prometheusConfig(opt Options, amAddr string, ruleFiles []string) []byte {
	type staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels,omitempty"`
	}
	var statics []staticConfig
	if len(opt.Targets) > 0 {
		statics = append(statics, staticConfig{Targets: opt.Targets, Labels: opt.TargetLabels})
	}
	for _, g := range opt.Groups {
		statics = append(statics, staticConfig(g))
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     model.Duration(opt.ScrapeInterval).String(),
			"evaluation_interval": model.Duration(opt.ScrapeInterval).String(),
		},
		"rule_files": ruleFiles,
		"alerting": map[string]any{"alertmanagers": []any{
			map[string]any{"static_configs": []staticConfig{{Targets: []string{amAddr}}}},
		}},
	}
	if len(statics) > 0 {
		cfg["scrape_configs"] = []any{map[string]any{
			"job_name":       "zoomprobe",
			"static_configs": statics,
		}}
	}
	b, _ := yaml.Marshal(cfg)
	return b
}

var (
	rangeRE  = regexp.MustCompile(`\[([0-9a-z]+)(:[0-9a-z]*)?\]`)
	offsetRE = regexp.MustCompile(`\boffset\s+([0-9a-z]+)`)
)

// CompressRules divides every range, offset and `for:` of a rules file by
// scale (not below 1s; a `for:` not below minFor), keeping expressions and
// thresholds as shipped.
//
// minFor: a shipped `for: 5m` spans five or more scrapes; divided by 60 it is
// five of the tests' 1-s scrapes, and a machine busy enough to starve a
// scrape for five seconds fired ZoomprobeDown on a healthy site (TestFleet,
// under the flake loop). Ten scrapes in a row must fail.
const minFor = 10 * time.Second

func CompressRules(src []byte, scale int) ([]byte, error) {
	var rf struct {
		Groups []struct {
			Name     string           `yaml:"name"`
			Interval string           `yaml:"interval,omitempty"`
			Rules    []map[string]any `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(src, &rf); err != nil {
		return nil, err
	}
	var firstErr error
	shrinkAtLeast := func(s string, least time.Duration) string {
		d, err := model.ParseDuration(s)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("duration %q: %w", s, err)
			}
			return s
		}
		out := time.Duration(d) / time.Duration(scale)
		out = max(out.Round(time.Second), least)
		return model.Duration(out).String()
	}
	shrink := func(s string) string { return shrinkAtLeast(s, time.Second) }
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if f, ok := r["for"].(string); ok {
				r["for"] = shrinkAtLeast(f, minFor)
			}
			expr, _ := r["expr"].(string)
			expr = rangeRE.ReplaceAllStringFunc(expr, func(m string) string {
				sub := rangeRE.FindStringSubmatch(m)
				return "[" + shrink(sub[1]) + sub[2] + "]"
			})
			expr = offsetRE.ReplaceAllStringFunc(expr, func(m string) string {
				return "offset " + shrink(offsetRE.FindStringSubmatch(m)[1])
			})
			r["expr"] = expr
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return yaml.Marshal(rf)
}

// AlertmanagerForTest keeps the shipped routing and inhibition, points every
// webhook receiver at hookURL+"/"+receiver name and shortens the waits.
func AlertmanagerForTest(src []byte, hookURL string) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(src, &cfg); err != nil {
		return nil, err
	}
	route, ok := cfg["route"].(map[string]any)
	if !ok {
		return nil, errors.New("no route")
	}
	route["group_wait"] = "1s"
	route["group_interval"] = "1s"
	receivers, _ := cfg["receivers"].([]any)
	if len(receivers) == 0 {
		return nil, errors.New("no receivers")
	}
	for _, r := range receivers {
		rm := r.(map[string]any)
		for k := range rm {
			if k != "name" {
				delete(rm, k)
			}
		}
		rm["webhook_configs"] = []any{map[string]any{
			"url": hookURL + "/" + url.PathEscape(fmt.Sprint(rm["name"])), "send_resolved": true,
		}}
	}
	return yaml.Marshal(cfg)
}

// Alert is one alert as Alertmanager's webhook delivers it.
type Alert struct {
	Receiver    string            // the receiver the route chose
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Webhook collects what Alertmanager delivers.
type Webhook struct {
	URL    string
	mu     sync.Mutex
	alerts []Alert
	notify chan struct{}
}

// NewWebhook starts a receiver on loopback, closed when the test ends.
func NewWebhook(t testing.TB) *Webhook {
	w := &Webhook{notify: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Receiver string  `json:"receiver"`
			Alerts   []Alert `json:"alerts"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		for _, a := range msg.Alerts {
			a.Receiver = msg.Receiver
			w.alerts = append(w.alerts, a)
		}
		w.mu.Unlock()
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

// Alerts returns a copy of everything received so far.
func (w *Webhook) Alerts() []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Alert(nil), w.alerts...)
}

// WaitFor waits for a firing alert whose labels include every pair in match.
func (w *Webhook) WaitFor(t testing.TB, match map[string]string, timeout time.Duration) Alert {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, a := range w.Alerts() {
			if a.Status == "firing" && labelsMatch(a.Labels, match) {
				return a
			}
		}
		select {
		case <-w.notify:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no firing alert with %v at the webhook after %s; received: %+v", match, timeout, w.Alerts())
		}
	}
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Sample is one series of an instant query result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its samples (scalars become
// one sample with no labels).
func (h *Harness) Query(ctx context.Context, expr string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.PromURL+"/api/v1/query",
		strings.NewReader(url.Values{"query": {expr}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: HTTP %d: %w", expr, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, body.Error)
	}
	parse := func(v [2]any) float64 {
		s, _ := v[1].(string)
		var f float64
		fmt.Sscan(s, &f)
		return f
	}
	switch body.Data.ResultType {
	case "vector":
		var res []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &res); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(res))
		for _, r := range res {
			out = append(out, Sample{Metric: r.Metric, Value: parse(r.Value)})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		return []Sample{{Value: parse(v)}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %s not handled", expr, body.Data.ResultType)
}

// WaitForQuery polls expr until it returns at least one sample.
func (h *Harness) WaitForQuery(t testing.TB, expr string, timeout time.Duration) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		s, err := h.Query(context.Background(), expr)
		if err == nil && len(s) > 0 {
			return s
		}
		lastErr = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("query %q returned no data after %s (last error: %v)", expr, timeout, lastErr)
	return nil
}

// PanelQuery is one query of the Grafana dashboard.
type PanelQuery struct {
	Panel, RefID, Expr string
}

// DashboardQueries reads every panel query of deploy/grafana/zoomprobe.json.
func DashboardQueries(repoRoot string) ([]PanelQuery, error) {
	return DashboardFileQueries(filepath.Join(repoRoot, "deploy/grafana/zoomprobe.json"))
}

// DashboardFileQueries reads every panel query of a Grafana dashboard file.
func DashboardFileQueries(path string) ([]PanelQuery, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var out []PanelQuery
	var walk func([]json.RawMessage) error
	walk = func(raw []json.RawMessage) error {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				return err
			}
			for _, tg := range p.Targets {
				out = append(out, PanelQuery{Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(d.Panels)
}

// GrafanaExpr replaces the dashboard's variables as Grafana would with "All"
// selected and the given rate window.
func GrafanaExpr(expr string, window time.Duration) string {
	w := model.Duration(window).String()
	return strings.NewReplacer(
		"$__rate_interval", w, "$__interval", w, "$__range", w,
		"${job}", ".*", "$job", ".*", "${instance}", ".*", "$instance", ".*", "${site}", ".*", "$site", ".*",
	).Replace(expr)
}

// RunDashboard runs every panel query and fails for each that errors or
// returns no data.
func (h *Harness) RunDashboard(t testing.TB, repoRoot string, window time.Duration) {
	t.Helper()
	h.RunDashboardFile(t, filepath.Join(repoRoot, "deploy/grafana/zoomprobe.json"), window)
}

// RunDashboardFile runs every panel query of a dashboard file and fails for
// each that errors or returns no data.
func (h *Harness) RunDashboardFile(t testing.TB, path string, window time.Duration) {
	t.Helper()
	qs, err := DashboardFileQueries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("dashboard has no queries")
	}
	for _, q := range qs {
		s, err := h.Query(context.Background(), GrafanaExpr(q.Expr, window))
		switch {
		case err != nil:
			t.Errorf("panel %q query %s: %v", q.Panel, q.RefID, err)
		case len(s) == 0:
			t.Errorf("panel %q query %s returned no data: %s", q.Panel, q.RefID, q.Expr)
		}
	}
}

func (h *Harness) waitHTTP(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := h.client.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", u, timeout)
}

// freeAddr finds a free loopback port. The tiny race until the process binds
// it is acceptable in tests.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs bin until the test ends; its output goes to dir/name.log
// and is printed when the test failed.
func startProcess(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (tail):\n%s", name, bytes.TrimSpace(b))
		}
	})
}
