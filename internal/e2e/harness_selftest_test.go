package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// syntheticLabelValues gives each contract label a plausible value, so the
// synthetic target exposes one series per metric of deploy/metrics.txt.
var syntheticLabelValues = map[string]string{
	"interface": "eth1", "layer": "vxlan", "service": "web", "transport": "tcp", "port": "443",
	"status": "open", "phase": "after_client_hello", "origin": "middlebox", "alert": "unknown_ca",
	"product": "FortiGate", "kind": "blocked_connection", "check": "tls", "target": "zoom.us:443",
	"server": "pool.ntp.org", "analyzer": "tls", "version": "0.0.0-selftest", "revision": "selftest",
	"goversion": "go1.26", "verdict": "ok", "branch": "main", "goos": "linux", "goarch": "amd64", "tags": "netgo",
	"why": "too_short",
}

// perMetricReason picks the reason that makes each counter mean a failure.
var perMetricReason = map[string]string{
	"zoomprobe_blocked_connections_total": "generic_timeout_error",
	"zoomprobe_tls_interceptions_total":   "ssl_unexpected_issuer",
	"zoomprobe_proxy_denials_total":       "proxy_auth_required",
	"zoomprobe_dns_filtered_total":        "dns_sinkhole",
	"zoomprobe_findings_total":            "generic_timeout_error",
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([a-zA-Z0-9_,]*)\}\s+(counter|gauge)$`)

// syntheticTarget serves /metrics with every contract metric: counters grow by
// one per second since start, gauges hold healthy values. It is NOT zoomprobe:
// it only proves the harness (scrape, rules, Alertmanager, webhook, queries).
func syntheticTarget(t *testing.T, repoRoot string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "deploy/metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type metric struct {
		name, typ string
		labels    []string
	}
	var metrics []metric
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		metrics = append(metrics, metric{m[1], m[3], labels})
	}
	if len(metrics) == 0 {
		t.Fatal("deploy/metrics.txt: no metrics")
	}
	start := time.Now()
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes.Add(1)
		now := time.Now()
		elapsed := now.Sub(start).Seconds()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, m := range metrics {
			var pairs []string
			for _, l := range m.labels {
				v := syntheticLabelValues[l]
				if l == "reason" {
					v = perMetricReason[m.name]
					if v == "" {
						v = "unknown_failure"
					}
				}
				pairs = append(pairs, fmt.Sprintf("%s=%q", l, v))
			}
			var value float64
			switch {
			case m.typ == "counter":
				value = float64(int(elapsed)) // one event a second
			case strings.HasSuffix(m.name, "_timestamp_seconds"):
				value = float64(now.Unix())
			case m.name == "zoomprobe_tls_certificate_not_after_seconds":
				value = float64(now.Add(90 * 24 * time.Hour).Unix())
			case m.name == "zoomprobe_clock_offset_seconds":
				value = 0.02
			case m.name == "zoomprobe_probe_duration_seconds":
				value = 0.05
			case m.name == "zoomprobe_active_flows":
				value = 12
			default:
				value = 1 // up, ok, build_info, current port status
			}
			fmt.Fprintf(w, "# TYPE %s %s\n%s{%s} %g\n", m.name, m.typ, m.name, strings.Join(pairs, ","), value)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestHarnessSelfTest runs the whole chain against a synthetic target: a
// counter of dropped SYNs to TCP 443 grows, Prometheus evaluates the shipped
// (time-compressed) rules, the shipped Alertmanager routing delivers
// ZoomPortBlockedDropped to the critical receiver, a target that does not
// answer raises ZoomprobeDown, and every dashboard query returns data.
func TestHarnessSelfTest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and Alertmanager")
	}
	t.Parallel() // with TestLiveAlerts: the package stays well under two minutes
	live := syntheticTarget(t, "../..")
	dead := freeAddr(t) // nothing listens there: up == 0
	h := Start(t, Options{Targets: []string{live, dead}, TargetLabels: map[string]string{"site": "selftest"}})

	h.WaitForQuery(t, `up{job="zoomprobe",site="selftest"} == 1`, 30*time.Second)

	a := h.Hook.WaitFor(t, map[string]string{"alertname": "ZoomPortBlockedDropped", "instance": live}, 90*time.Second)
	for k, want := range map[string]string{
		"severity": "critical", "site": "selftest", "job": "zoomprobe",
		"service": "web", "transport": "tcp", "port": "443", "reason": "generic_timeout_error",
	} {
		if a.Labels[k] != want {
			t.Errorf("ZoomPortBlockedDropped label %s = %q, want %q (labels %v)", k, a.Labels[k], want, a.Labels)
		}
	}
	if a.Receiver != "network-oncall" {
		t.Errorf("critical alert went to receiver %q, want network-oncall", a.Receiver)
	}
	if !strings.HasSuffix(a.Annotations["runbook_url"], "/docs/runbooks/ZoomPortBlockedDropped.md") {
		t.Errorf("runbook_url = %q", a.Annotations["runbook_url"])
	}
	if !strings.Contains(a.Annotations["description"], "tcp/443") {
		t.Errorf("description lacks the port: %q", a.Annotations["description"])
	}

	down := h.Hook.WaitFor(t, map[string]string{"alertname": "ZoomprobeDown", "instance": dead}, 60*time.Second)
	if down.Labels["site"] != "selftest" || down.Receiver != "network-oncall" {
		t.Errorf("ZoomprobeDown: labels %v receiver %q", down.Labels, down.Receiver)
	}

	// Healthy gauges must not raise their alerts.
	for _, a := range h.Hook.Alerts() {
		switch a.Labels["alertname"] {
		case "ZoomprobeNotCapturing", "ZoomClockSkewWarning", "ZoomClockSkewCritical", "ZoomNTPUnreachable",
			"ZoomProbeCheckFailing", "ZoomprobeConfigReloadFailed", "ZoomprobeAnalyzerDown", "ZoomCertificateExpiringSoon":
			t.Errorf("%s fired on healthy values: %v", a.Labels["alertname"], a.Labels)
		}
	}

	h.RunDashboard(t, "../..", 30*time.Second)
}

func TestCompressRules(t *testing.T) {
	src := []byte(`groups:
  - name: g
    rules:
      - alert: A
        expr: increase(x[15m]) >= 3 and increase(x[6h] offset 1w) > 0 and max_over_time(y[30m:1m]) == 0
        for: 5m
        labels: {severity: warning}
      - alert: B
        expr: up == 0
`)
	out, err := CompressRules(src, 60)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(out, &rf); err != nil {
		t.Fatal(err)
	}
	r := rf.Groups[0].Rules
	if want := "increase(x[15s]) >= 3 and increase(x[6m] offset 2h48m) > 0 and max_over_time(y[30s:1m]) == 0"; r[0].Expr != want {
		t.Errorf("expr = %q, want %q", r[0].Expr, want)
	}
	if r[0].For != "10s" || r[0].Labels["severity"] != "warning" { // 5s, raised to minFor
		t.Errorf("for = %q labels %v", r[0].For, r[0].Labels)
	}
	if r[1].Expr != "up == 0" || r[1].For != "" {
		t.Errorf("rule B changed: %+v", r[1])
	}
	if _, err := CompressRules([]byte("groups: [{name: g, rules: [{alert: A, expr: 'x', for: 5q}]}]"), 60); err == nil {
		t.Error("bad duration accepted")
	}

	// The shipped rules, compressed, are still valid for promtool.
	shipped, err := os.ReadFile("../../deploy/prometheus/zoomprobe-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err = CompressRules(shipped, 60)
	if err != nil {
		t.Fatal(err)
	}
	checkWithTool(t, "promtool", out, "check", "rules")
}

func TestAlertmanagerForTest(t *testing.T) {
	shipped, err := os.ReadFile("../../deploy/alertmanager/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := AlertmanagerForTest(shipped, "http://127.0.0.1:1/hook")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Route struct {
			GroupBy   []string `yaml:"group_by"`
			GroupWait string   `yaml:"group_wait"`
		} `yaml:"route"`
		InhibitRules []any `yaml:"inhibit_rules"`
		Receivers    []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL string `yaml:"url"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, r := range cfg.Receivers {
		for _, w := range r.WebhookConfigs {
			urls = append(urls, w.URL)
		}
	}
	sort.Strings(urls)
	if want := "[http://127.0.0.1:1/hook/network-oncall http://127.0.0.1:1/hook/network-team]"; fmt.Sprint(urls) != want {
		t.Errorf("webhook urls = %v, want %s", urls, want)
	}
	if cfg.Route.GroupWait != "1s" || len(cfg.InhibitRules) == 0 || len(cfg.Route.GroupBy) == 0 {
		t.Errorf("routing not kept: %+v", cfg)
	}
	checkWithTool(t, "amtool", out, "check-config")
}

// checkWithTool runs `tool args... FILE` on b when the tool is installed.
func checkWithTool(t *testing.T, tool string, b []byte, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: run scripts/e2e-deps.sh", tool)
		}
		t.Logf("%s not installed; skipping its check", tool)
		return
	}
	path := filepath.Join(t.TempDir(), "file.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, append(args, path)...).CombinedOutput(); err != nil {
		t.Errorf("%s %v: %v\n%s", tool, args, err, out)
	}
}
