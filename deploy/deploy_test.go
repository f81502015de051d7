package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/promql"

	yaml "go.yaml.in/yaml/v3"

	"github.com/zoomprobe/zoomprobe/config"
)

var update = flag.Bool("update", false, "rewrite generated files (kubernetes/prometheusrule.yaml)")

const runbookBase = "https://github.com/zoomprobe/zoomprobe/blob/main/docs/runbooks/"

func contract(t *testing.T) map[string]promql.Metric {
	t.Helper()
	f, err := os.Open("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := promql.ParseMetrics(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMetricsContract(t *testing.T) {
	m := contract(t)
	// The core set DESIGN.md names must be there.
	for _, name := range []string{"packets_total", "capture_dropped_packets_total", "decode_errors_total",
		"flows_total", "active_flows", "flow_evictions_total", "build_info", "tls_handshakes_total",
		"tls_interceptions_total", "tls_client_alerts_total", "blocked_connections_total",
		"connection_resets_total", "udp_fallbacks_total", "proxy_denials_total",
		"captive_portal_redirects_total", "dns_filtered_total", "clock_offset_seconds", "ntp_up",
		"probe_success", "probe_duration_seconds", "findings_total", "port_status"} {
		if _, ok := m["zoomprobe_"+name]; !ok {
			t.Errorf("metrics.txt: zoomprobe_%s missing", name)
		}
	}
	// Labels that would hold an address or another unbounded value.
	forbidden := []string{"client", "client_ip", "ip", "address", "addr", "src", "dst", "host", "sni", "url"}
	for name, metric := range m {
		if !strings.HasPrefix(name, "zoomprobe_") {
			t.Errorf("%s: metric names start with zoomprobe_", name)
		}
		if isCounter := metric.Type == "counter"; isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: counters and only counters end in _total (type %s)", name, metric.Type)
		}
		for _, l := range metric.Labels {
			if slices.Contains(forbidden, l) {
				t.Errorf("%s: label %q would be unbounded", name, l)
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule { return loadRuleFile(t, "prometheus/zoomprobe-rules.yml") }

func loadRuleFile(t *testing.T, path string) []rule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []rule
	for _, g := range rf.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", path)
	}
	return out
}

// byClause finds aggregations that keep only the listed labels and so would
// drop the site label Alertmanager groups by.
var byClause = regexp.MustCompile(`\bby\s*\(`)

func TestRules(t *testing.T) {
	m := contract(t)
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		name := r.Alert
		if name == "" {
			t.Errorf("recording rule %s: this file holds alerts only", r.Record)
			continue
		}
		if seen[name] {
			t.Errorf("%s: defined twice", name)
		}
		seen[name] = true
		if byClause.MatchString(r.Expr) {
			t.Errorf("%s: aggregate with without(...), not by(...), so target labels (site) reach Alertmanager", name)
		}
		checkAlert(t, r, m)
	}
	// The fleet's rules aggregate by site on purpose: their alerts keep it.
	fleet := maps.Clone(m)
	for _, r := range loadRuleFile(t, "fleet/fleet-rules.yml") {
		if r.Record != "" {
			for _, p := range promql.CheckUsage(r.Expr, fleet) {
				t.Errorf("fleet rule %s: %s", r.Record, p)
			}
			labels := []string{"site"}
			for l := range r.Labels {
				labels = append(labels, l)
			}
			fleet[r.Record] = promql.Metric{Name: r.Record, Labels: labels, Type: "gauge"}
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: defined twice", r.Alert)
		}
		seen[r.Alert] = true
		checkAlert(t, r, fleet)
	}
	// No runbook without its alert.
	pages, _ := filepath.Glob("../docs/runbooks/*.md")
	for _, p := range pages {
		base := strings.TrimSuffix(filepath.Base(p), ".md")
		if base != "README" && !seen[base] {
			t.Errorf("%s: no alert named %s in the rule files", p, base)
		}
	}
}

// checkAlert holds an alerting rule to the house rules: known metrics and
// labels, a severity, a `for:`, every annotation, and its runbook.
func checkAlert(t *testing.T, r rule, m map[string]promql.Metric) {
	t.Helper()
	name := r.Alert
	for _, p := range promql.CheckUsage(r.Expr, m) {
		t.Errorf("%s: %s", name, p)
	}
	if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
		t.Errorf("%s: severity label %q, want critical or warning", name, sev)
	}
	if r.For == "" {
		t.Errorf("%s: no `for:`; a single evaluation must not page", name)
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		if strings.TrimSpace(r.Annotations[a]) == "" {
			t.Errorf("%s: annotation %s missing", name, a)
		}
	}
	if want := runbookBase + name + ".md"; r.Annotations["runbook_url"] != want {
		t.Errorf("%s: runbook_url %q, want %q", name, r.Annotations["runbook_url"], want)
	}
	checkRunbook(t, name)
}

// Every runbook answers the same questions, in this order.
var runbookSections = []string{
	"## What it means", "## What Zoom users see", "## How to confirm", "## How to fix", "## When to escalate",
}

func checkRunbook(t *testing.T, alert string) {
	t.Helper()
	path := "../docs/runbooks/" + alert + ".md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: runbook: %v", alert, err)
		return
	}
	text := string(b)
	if !strings.HasPrefix(text, "# "+alert+"\n") {
		t.Errorf("%s: first line must be `# %s`", path, alert)
	}
	last := -1
	for _, s := range runbookSections {
		i := strings.Index(text, "\n"+s+"\n")
		if i < 0 {
			t.Errorf("%s: section %q missing", path, s)
			continue
		}
		if i < last {
			t.Errorf("%s: section %q out of order", path, s)
		}
		last = i
	}
	if !strings.Contains(text, "```") {
		t.Errorf("%s: no command to confirm with (a fenced code block)", path)
	}
}

// TestRuleTestsCoverEveryAlert checks the promtool test file has, for every
// alert, a case where it fires and a case where it must not (an evaluation
// with no alert, or input series that do not show up among the alerts).
func TestRuleTestsCoverEveryAlert(t *testing.T) {
	b, err := os.ReadFile("prometheus/zoomprobe-rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tf.RuleFiles, "zoomprobe-rules.yml") {
		t.Errorf("rule_files = %v, want zoomprobe-rules.yml", tf.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			}
			// Quiet if an evaluation expects nothing, or expects fewer
			// alerts than there are series of the alert's metrics.
			if len(at.ExpAlerts) == 0 || len(tc.InputSeries) > len(at.ExpAlerts) {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no promtool case where it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: no promtool case where it must stay quiet", r.Alert)
		}
	}
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels      []panel `json:"panels"` // collapsed rows
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
			Custom struct {
				ThresholdsStyle struct {
					Mode string `json:"mode"`
				} `json:"thresholdsStyle"`
			} `json:"custom"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string          `json:"id"`
				Options json.RawMessage `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

// checkPanelDisplay: a unit on every panel; thresholds chosen for the panel,
// not Grafana's default (green, red from 80), and drawn on time series when
// they mark a level; series of counters that stayed at zero kept out of the
// legend, so it lists what happened.
func checkPanelDisplay(t *testing.T, p panel) {
	t.Helper()
	df := p.FieldConfig.Defaults
	if df.Unit == "" {
		t.Errorf("panel %q: no unit", p.Title)
	}
	if df.Thresholds == nil || len(df.Thresholds.Steps) == 0 {
		t.Errorf("panel %q: no thresholds (Grafana would show its default: red from 80)", p.Title)
	} else {
		st := df.Thresholds.Steps
		if len(st) == 2 && st[1].Value != nil && *st[1].Value == 80 {
			t.Errorf("panel %q: Grafana's default thresholds (red from 80)", p.Title)
		}
		if p.Type == "timeseries" && len(st) > 1 && (df.Custom.ThresholdsStyle.Mode == "" || df.Custom.ThresholdsStyle.Mode == "off") {
			t.Errorf("panel %q: thresholds are not drawn (custom.thresholdsStyle.mode)", p.Title)
		}
	}
	rates := false
	for _, tg := range p.Targets {
		rates = rates || strings.Contains(tg.Expr, "rate(")
	}
	if p.Type != "timeseries" || !rates {
		return
	}
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID != "byValue" {
			continue
		}
		for _, prop := range o.Properties {
			var hide struct{ Legend bool }
			if prop.ID == "custom.hideFrom" && json.Unmarshal(prop.Value, &hide) == nil && hide.Legend {
				return
			}
		}
	}
	t.Errorf("panel %q: all-zero series are listed in the legend (add a byValue override hiding them)", p.Title)
}

// DashboardQueries returns every panel query of the dashboard, keyed by
// "panel title/refIndex". The e2e tests run them against a real Prometheus.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/zoomprobe.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("zoomprobe.json: %v", err)
	}
	return d
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func TestDashboard(t *testing.T) {
	m := contract(t)
	d := loadDashboard(t)
	if d.UID != "zoomprobe-overview" {
		t.Errorf("uid = %q: keep it stable (zoomprobe-overview), links and provisioning use it", d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	used := map[string]bool{}
	queries := 0
	for _, p := range flatten(d.Panels) {
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: datasource %s, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		checkPanelDisplay(t, p)
		for _, tg := range p.Targets {
			queries++
			for _, problem := range promql.CheckUsage(tg.Expr, m) {
				t.Errorf("panel %q: %s", p.Title, problem)
			}
			u, _ := promql.ScanPromQL(tg.Expr)
			for _, s := range u.Selectors {
				used[s.Name] = true
				if !slices.Contains(s.Labels, "job") || !slices.Contains(s.Labels, "instance") {
					t.Errorf("panel %q: %s is not filtered by the $job and $instance variables", p.Title, s.Name)
				}
			}
		}
	}
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}
	var unused []string
	for name := range m {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("metrics no panel shows: %v", unused)
	}
	for _, title := range []string{"Zoom port matrix", "Interceptions by product", "Connection resets by origin",
		"Blocked connections by reason", "Clock offset", "NTP servers", "Probe results", "Packets and kernel drops",
		"Decode errors by layer", "New flows, evictions, event log losses", "Findings by kind and reason"} {
		found := false
		for _, p := range flatten(d.Panels) {
			found = found || p.Title == title
		}
		if !found {
			t.Errorf("panel %q missing", title)
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, UID string
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/zoomprobe.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL == "" {
		t.Errorf("datasource provisioning: %+v", ds)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/zoomprobe.yml", &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options["path"] == "" {
		t.Errorf("dashboard provisioning: %+v", dp)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

const prometheusRulePath = "kubernetes/prometheusrule.yaml"

// prometheusRule renders the PrometheusRule from the rules file: its groups,
// indented under spec, with the file's header comments dropped.
func prometheusRule(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# GENERATED from deploy/prometheus/zoomprobe-rules.yml: do not edit. Regenerate with
#   go test ./deploy -run TestPrometheusRuleInSync -update
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: zoomprobe
  namespace: monitoring
  labels:
    app.kubernetes.io/name: zoomprobe
    role: alert-rules
spec:
`)
	sc := bufio.NewScanner(bytes.NewReader(rules))
	header := true
	for sc.Scan() {
		line := sc.Text()
		if header && (strings.HasPrefix(line, "#") || line == "") {
			continue
		}
		header = false
		if line == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("  " + line + "\n")
	}
	return b.Bytes()
}

func TestPrometheusRuleInSync(t *testing.T) {
	rules, err := os.ReadFile("prometheus/zoomprobe-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := prometheusRule(rules)
	if *update {
		if err := os.WriteFile(prometheusRulePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRulePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: go test ./deploy -run TestPrometheusRuleInSync -update", prometheusRulePath)
	}
	// Same groups, parsed both ways.
	var pr struct {
		Spec ruleFile `yaml:"spec"`
	}
	var rf ruleFile
	if err := yaml.Unmarshal(got, &pr); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(rules, &rf); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(pr.Spec)
	b, _ := json.Marshal(rf)
	if !bytes.Equal(a, b) {
		t.Error("PrometheusRule spec differs from the rules file after parsing")
	}
}

// k8sDocs decodes every YAML document of a manifest file.
func k8sDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// get walks a decoded YAML tree: get(d, "spec", "template", "spec").
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// checkZoomprobeContainer holds every zoomprobe container to the same
// privileges: non-root numeric user, read-only root, only NET_RAW added.
func checkZoomprobeContainer(t *testing.T, where string, podSpec any) {
	t.Helper()
	var c any
	for _, x := range get(podSpec, "containers").([]any) {
		if get(x, "name") == "zoomprobe" {
			c = x
		}
	}
	if c == nil {
		t.Errorf("%s: no container named zoomprobe", where)
		return
	}
	sc := get(c, "securityContext")
	if got := strs(get(sc, "capabilities", "add")); !slices.Equal(got, []string{"NET_RAW"}) {
		t.Errorf("%s: capabilities.add = %v, want [NET_RAW]", where, got)
	}
	if got := strs(get(sc, "capabilities", "drop")); !slices.Equal(got, []string{"ALL"}) {
		t.Errorf("%s: capabilities.drop = %v, want [ALL]", where, got)
	}
	for key, want := range map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true} {
		if got := get(sc, key); got != want {
			t.Errorf("%s: securityContext.%s = %v, want %v", where, key, got, want)
		}
	}
	uid, ok := get(sc, "runAsUser").(int)
	if !ok || uid == 0 {
		t.Errorf("%s: securityContext.runAsUser = %v, want a numeric non-root uid", where, get(sc, "runAsUser"))
	}
	if get(sc, "privileged") == true {
		t.Errorf("%s: privileged", where)
	}
	// A tag someone can build: the VERSION the Dockerfile stamps, not :latest.
	version, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if want := zoomprobeImage + ":" + strings.TrimSpace(string(version)); get(c, "image") != want {
		t.Errorf("%s: image %v, want %s (the documented name, tagged with VERSION)", where, get(c, "image"), want)
	}
	args := strs(get(c, "args"))
	if len(args) == 0 || args[0] != "run" || !slices.Contains(args, "--config.file=/etc/zoomprobe/zoomprobe.yml") {
		t.Errorf("%s: args %v, want run --config.file=/etc/zoomprobe/zoomprobe.yml", where, args)
	}
}

const zoomprobeImage = "ghcr.io/zoomprobe/zoomprobe"

// worstCaseMemory is the documented bound (README "Memory") on what a
// zoomprobe with this configuration holds: the runtime and tables, the
// AF_PACKET rings, each worker's packet batches, per flow its state and a
// and the worker's budgets (TLS reassembly, ClientHellos, verdicts, plain-HTTP
// headers).
func worstCaseMemory(cfg *config.Config, interfaces int) int64 {
	const mib, kib = 1 << 20, 1 << 10
	perFlow := int64(3 * kib)
	budgets := int64(cfg.TLS.ReassemblyBudgetBytes + cfg.Zoom.ClientHelloBudgetBytes + cfg.TLS.VerdictCacheBytes + cfg.Reach.HTTPBudgetBytes)
	return 64*mib + int64(interfaces)*int64(max(cfg.Capture.LiveReaders, 1))*int64(cfg.Capture.RingSizeMB)*mib +
		int64(cfg.Capture.Workers)*(4*mib+int64(cfg.Flows.MaxFlows)*perFlow+budgets) +
		int64(cfg.Zoom.NameCacheSize)*256
}

// checkMemoryLimit: the container's limit covers the worst case of its
// config and is not far above it (derived, not guessed).
func checkMemoryLimit(t *testing.T, where string, podSpec any, yml string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if len(cfg.Capture.Interfaces) == 0 {
		t.Errorf("%s: name the capture interfaces (the memory bound counts their rings)", where)
	}
	var limit string
	for _, x := range get(podSpec, "containers").([]any) {
		if get(x, "name") == "zoomprobe" {
			limit = fmt.Sprint(get(x, "resources", "limits", "memory"))
		}
	}
	units := map[string]int64{"Mi": 1 << 20, "Gi": 1 << 30}
	var n, got int64
	if _, err := fmt.Sscanf(limit, "%d", &n); err == nil && len(limit) > 2 {
		got = n * units[limit[len(limit)-2:]]
	}
	worst := worstCaseMemory(cfg, len(cfg.Capture.Interfaces))
	if got < worst || float64(got) > 1.5*float64(worst) {
		t.Errorf("%s: memory limit %q; the config's worst case is %d MiB: want a limit between it and 1.5 times it",
			where, limit, worst>>20)
	}
}

// checkSiteLabel: the PodMonitor turns a pod label into the site label the
// rules and Alertmanager group by, and the pods carry that label.
func checkSiteLabel(t *testing.T, where string, podMonitor, podTemplate any) {
	t.Helper()
	labels, _ := get(podTemplate, "metadata", "labels").(map[string]any)
	found := false
	for _, ep := range get(podMonitor, "spec", "podMetricsEndpoints").([]any) {
		rl, _ := get(ep, "relabelings").([]any)
		for _, r := range rl {
			if get(r, "targetLabel") != "site" {
				continue
			}
			src := strs(get(r, "sourceLabels"))
			for k, v := range labels {
				sanitized := regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(k, "_")
				if len(src) == 1 && src[0] == "__meta_kubernetes_pod_label_"+sanitized && fmt.Sprint(v) != "" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("%s: no pod label that the PodMonitor relabels to site", where)
	}
}

func TestKubernetes(t *testing.T) {
	kinds := map[string]map[string]any{}
	for _, f := range []string{"configmap.yaml", "daemonset.yaml", "podmonitor.yaml", "prometheusrule.yaml"} {
		for _, d := range k8sDocs(t, "kubernetes/"+f) {
			kinds[fmt.Sprint(d["kind"])] = d
		}
	}
	for _, k := range []string{"ConfigMap", "ServiceAccount", "DaemonSet", "PodMonitor", "PrometheusRule"} {
		if kinds[k] == nil {
			t.Errorf("deploy/kubernetes has no %s", k)
		}
	}
	ds := kinds["DaemonSet"]
	pod := get(ds, "spec", "template", "spec")
	if get(pod, "hostNetwork") != true {
		t.Error("DaemonSet: hostNetwork must be true to see the node's mirror interface")
	}
	checkZoomprobeContainer(t, "DaemonSet", pod)
	// The DNS check asks the resolver Zoom clients use: the node's, not the
	// cluster's (ClusterFirstWithHostNet).
	if get(pod, "dnsPolicy") != "Default" {
		t.Errorf("DaemonSet: dnsPolicy %v, want Default (the node's resolver)", get(pod, "dnsPolicy"))
	}
	checkSiteLabel(t, "DaemonSet", kinds["PodMonitor"], get(ds, "spec", "template"))

	// The PodMonitor selects the DaemonSet's pods and the port it names exists.
	podLabels, _ := get(ds, "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := get(kinds["PodMonitor"], "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("PodMonitor selects %s=%v, which the DaemonSet's pods do not carry", k, v)
		}
	}
	if jl := fmt.Sprint(get(kinds["PodMonitor"], "spec", "jobLabel")); !strings.Contains(fmt.Sprint(podLabels[jl]), "zoomprobe") {
		t.Errorf("PodMonitor jobLabel %q gives job %v; ZoomprobeDown needs a job containing zoomprobe", jl, podLabels[jl])
	}

	// The ConfigMap's configuration is valid for this zoomprobe.
	data, _ := get(kinds["ConfigMap"], "data", "zoomprobe.yml").(string)
	if _, err := config.Parse([]byte(data)); err != nil {
		t.Errorf("ConfigMap zoomprobe.yml: %v", err)
	}
	checkMemoryLimit(t, "DaemonSet", pod, data)

	// The sidecar example holds to the same privileges.
	sidecar := map[string]map[string]any{}
	for _, d := range k8sDocs(t, "kubernetes/sidecar-example.yaml") {
		sidecar[fmt.Sprint(d["kind"])] = d
	}
	sidecarPod := get(sidecar["Deployment"], "spec", "template", "spec")
	checkZoomprobeContainer(t, "sidecar example", sidecarPod)
	sidecarData, _ := get(sidecar["ConfigMap"], "data", "zoomprobe.yml").(string)
	if _, err := config.Parse([]byte(sidecarData)); err != nil {
		t.Errorf("sidecar ConfigMap zoomprobe.yml: %v", err)
	}
	checkMemoryLimit(t, "sidecar example", sidecarPod, sidecarData)
	checkSiteLabel(t, "sidecar example", sidecar["PodMonitor"], get(sidecar["Deployment"], "spec", "template"))
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/zoomprobe.service"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, want := range map[string]string{
		"AmbientCapabilities": "CAP_NET_RAW", "CapabilityBoundingSet": "CAP_NET_RAW", "NoNewPrivileges": "yes",
		"DynamicUser": "yes", "User": "zoomprobe", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
		// Any exit is restarted (a signal death included), and a reload is
		// SIGHUP: /-/reload is off without --web.enable-lifecycle.
		"Restart": "always", "ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := settings[k]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %s=%v, want %s", path, k, got, want)
		}
	}
	if exec := strings.Join(settings["ExecStart"], ""); !strings.Contains(exec, " run ") || !strings.Contains(exec, "--config.file=") {
		t.Errorf("%s: ExecStart=%s, want `zoomprobe run --config.file=...`", path, exec)
	}

	// systemd's own check, with the binary swapped for one that exists here.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; static checks above ran")
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(b), "/usr/bin/zoomprobe", "/bin/true")
	if err := os.WriteFile(filepath.Join(dir, "zoomprobe.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "zoomprobe.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// dockerInstruction is one Dockerfile instruction with continuations joined.
type dockerInstruction struct {
	Cmd, Args string
}

func parseDockerfile(text string) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(string(b))
	var stages []string
	var final []dockerInstruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			stages = append(stages, in.Args)
			final = nil
		}
		final = append(final, in)
		if in.Cmd == "ADD" && regexp.MustCompile(`https?://`).MatchString(in.Args) {
			t.Errorf("ADD from a URL: %s (download in a RUN step with a checksum, or COPY)", in.Args)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got stages %v", stages)
	}
	if !strings.Contains(stages[len(stages)-1], "distroless/static") && !strings.HasPrefix(stages[len(stages)-1], "scratch") {
		t.Errorf("final stage %q: want distroless static or scratch", stages[len(stages)-1])
	}
	build := strings.Join(func() []string {
		var s []string
		for _, in := range ins {
			if in.Cmd == "RUN" {
				s = append(s, in.Args)
			}
		}
		return s
	}(), "\n")
	// Stamped with the VERSION file, like scripts/run.sh and release.sh,
	// not "dev".
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/zoomprobe", "setcap cap_net_raw=+ep", "$(cat VERSION)", "version.Version=${version}"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage does not run %q", want)
		}
	}
	var user, entry string
	for _, in := range final {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(user) {
		t.Errorf("final USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot can only verify numbers)", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 {
		t.Errorf("ENTRYPOINT %q: want exec form [\"/usr/bin/zoomprobe\"]", entry)
	}
	di, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(di), "\n"), ".git") {
		t.Error(".dockerignore must exclude .git")
	}
}

// TestAlertmanagerInhibitsUnderProbeDown checks the structure the e2e tests
// and operators rely on (amtool check-config validates the syntax).
func TestAlertmanagerConfig(t *testing.T) {
	var am struct {
		Route struct {
			GroupBy []string `yaml:"group_by"`
			Routes  []struct {
				Matchers []string `yaml:"matchers"`
				Receiver string   `yaml:"receiver"`
			} `yaml:"routes"`
		} `yaml:"route"`
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	readYAML(t, "alertmanager/alertmanager.yml", &am)
	if !slices.Contains(am.Route.GroupBy, "site") {
		t.Errorf("route.group_by = %v, want site in it", am.Route.GroupBy)
	}
	sev := map[string]bool{}
	for _, r := range am.Route.Routes {
		for _, m := range r.Matchers {
			sev[m] = true
		}
	}
	if !sev[`severity="critical"`] || !sev[`severity="warning"`] {
		t.Errorf("routes by severity missing: %v", sev)
	}
	found := false
	for _, ir := range am.InhibitRules {
		if slices.Contains(ir.SourceMatchers, `alertname="ZoomprobeDown"`) &&
			slices.Contains(ir.Equal, "site") && slices.Contains(ir.Equal, "instance") {
			found = true
		}
	}
	if !found {
		t.Error("no inhibit rule under ZoomprobeDown with equal [site, instance]")
	}
}
