package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zoomprobe/zoomprobe/internal/promql"
)

// standardPrefixes are the families of client_golang's Go and process
// collectors: the daemon exports them, they are not zoomprobe's contract.
var standardPrefixes = []string{"go_", "process_"}

// notExercised names the metrics of metrics.txt whose series only appear
// after an event the live sites do not cause, and why. The contract check
// fails if one of them is exported after all (then remove it here).
var notExercised = map[string]string{}

// checkMetricContract parses /metrics bodies scraped from real daemons and
// requires that every metric of deploy/metrics.txt is exported with exactly
// its labels and type, and that the daemon exports nothing metrics.txt lacks.
func checkMetricContract(t *testing.T, bodies ...string) {
	f, err := os.Open(filepath.Join("..", "..", "deploy", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	contract, err := promql.ParseMetrics(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]*dto.MetricFamily{}
	for _, body := range bodies {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("parsing /metrics: %v", err)
		}
		for name, fam := range fams {
			if prev, ok := exported[name]; ok {
				prev.Metric = append(prev.Metric, fam.Metric...)
				continue
			}
			exported[name] = fam
		}
	}
	var names []string
	for name := range exported {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fam := exported[name]
		if !strings.HasPrefix(name, "zoomprobe_") {
			if !slices.ContainsFunc(standardPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
				t.Errorf("%s is exported but is neither zoomprobe_* nor a standard Go/process metric", name)
			}
			continue
		}
		m, ok := contract[name]
		if !ok {
			t.Errorf("%s is exported (%d series, labels %v) but missing from deploy/metrics.txt", name, len(fam.Metric), labelNames(fam.Metric[0]))
			continue
		}
		if got := strings.ToLower(fam.GetType().String()); got != m.Type {
			t.Errorf("%s: exported as %s, metrics.txt says %s", name, got, m.Type)
		}
		want := slices.Sorted(slices.Values(m.Labels))
		for _, s := range fam.Metric {
			if got := labelNames(s); !slices.Equal(got, want) {
				t.Errorf("%s: exported with labels %v, metrics.txt says %v", name, got, want)
				break
			}
		}
		if why, ok := notExercised[name]; ok {
			t.Errorf("%s is exported now, but notExercised says %q: remove it there", name, why)
		}
	}
	for name := range contract {
		if _, ok := exported[name]; ok {
			continue
		}
		if why, ok := notExercised[name]; ok {
			t.Logf("%s not exported in this run: %s", name, why)
			continue
		}
		t.Errorf("%s is in deploy/metrics.txt but the daemon does not export it", name)
	}
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName())
	}
	sort.Strings(out)
	return out
}

// panelsWithoutData names dashboard queries ("panel/refId") that can only
// have data in a scenario the live test does not run, and why. A query listed
// here that does return data fails the test, so the list stays true.
var panelsWithoutData = map[string]string{}

// checkDashboard runs every panel query of deploy/grafana/zoomprobe.json
// against the harness's Prometheus and requires data.
func checkDashboard(t *testing.T, h *Harness) {
	qs, err := DashboardQueries("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("dashboard has no queries")
	}
	for _, q := range qs {
		key := q.Panel + "/" + q.RefID
		s, err := h.Query(context.Background(), GrafanaExpr(q.Expr, 30*time.Second))
		why, excused := panelsWithoutData[key]
		switch {
		case err != nil:
			t.Errorf("panel %q query %s: %v", q.Panel, q.RefID, err)
		case len(s) == 0 && excused:
			t.Logf("panel %q query %s: no data, as expected: %s", q.Panel, q.RefID, why)
		case len(s) == 0:
			t.Errorf("panel %q query %s returned no data: %s", q.Panel, q.RefID, q.Expr)
		case excused:
			t.Errorf("panel %q query %s has data now (%d series): remove it from panelsWithoutData (%s)", q.Panel, q.RefID, len(s), why)
		default:
			t.Logf("panel %q query %s: %d series", q.Panel, q.RefID, len(s))
		}
	}
}
