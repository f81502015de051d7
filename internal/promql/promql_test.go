package promql

import (
	"reflect"
	"strings"
	"testing"
)

func TestScanPromQL(t *testing.T) {
	tests := []struct {
		expr      string
		selectors []Selector
		grouping  []string
		functions []string
	}{
		{
			expr:      `sum by (transport, port) (rate(zoomprobe_blocked_connections_total{job=~"$job",reason!="x}y"}[$__rate_interval]))`,
			selectors: []Selector{{Name: "zoomprobe_blocked_connections_total", Labels: []string{"job", "reason"}}},
			grouping:  []string{"transport", "port"},
			functions: []string{"sum", "rate"},
		},
		{
			expr:      "sum without (service) (increase(zoomprobe_zoom_packets_total[6h] offset 1w)) > 100\n  and up == 0",
			selectors: []Selector{{Name: "zoomprobe_zoom_packets_total"}, {Name: "up"}},
			grouping:  []string{"service"},
			functions: []string{"sum", "increase"},
		},
		{
			expr:      `time() - zoomprobe_last_packet_timestamp_seconds * 1e3 > 7 * 86400`,
			selectors: []Selector{{Name: "zoomprobe_last_packet_timestamp_seconds"}},
			functions: []string{"time"},
		},
		{
			expr:      `a / on (instance) group_left (version) b{l='it\'s'}`,
			selectors: []Selector{{Name: "a"}, {Name: "b", Labels: []string{"l"}}},
			grouping:  []string{"instance", "version"},
		},
		{
			expr:      `{__name__=~"zoomprobe_.*"}`,
			selectors: []Selector{{Labels: []string{"__name__"}}},
		},
	}
	for _, tt := range tests {
		u, err := ScanPromQL(tt.expr)
		if err != nil {
			t.Errorf("ScanPromQL(%q): %v", tt.expr, err)
			continue
		}
		if !reflect.DeepEqual(u.Selectors, tt.selectors) {
			t.Errorf("ScanPromQL(%q) selectors = %+v, want %+v", tt.expr, u.Selectors, tt.selectors)
		}
		if !reflect.DeepEqual(u.Grouping, tt.grouping) {
			t.Errorf("ScanPromQL(%q) grouping = %v, want %v", tt.expr, u.Grouping, tt.grouping)
		}
		if !reflect.DeepEqual(u.Functions, tt.functions) {
			t.Errorf("ScanPromQL(%q) functions = %v, want %v", tt.expr, u.Functions, tt.functions)
		}
	}
}

func TestScanPromQLErrors(t *testing.T) {
	for _, expr := range []string{`x{a="b}`, `x{a=b}`, `rate(x[5m)`, `sum by (a (x)`, `x{="b"}`} {
		if _, err := ScanPromQL(expr); err == nil {
			t.Errorf("ScanPromQL(%q) = nil error, want one", expr)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	contract := map[string]Metric{
		"zoomprobe_packets_total":        {Name: "zoomprobe_packets_total", Labels: []string{"interface"}, Type: "counter"},
		"zoomprobe_port_status":          {Name: "zoomprobe_port_status", Labels: []string{"service", "transport", "port", "status"}, Type: "gauge"},
		"zoomprobe_flow_evictions_total": {Name: "zoomprobe_flow_evictions_total", Type: "counter"},
	}
	tests := []struct {
		expr string
		want []string // substrings of the problems, in order; none: valid
	}{
		{`sum by (interface, site) (rate(zoomprobe_packets_total{job=~"$job",instance=~"$instance"}[$__rate_interval]))`, nil},
		{`zoomprobe_port_status{status="open"} == 1 and up == 1`, nil},
		{`rate(zoomprobe_flow_evictions_total[5m])`, nil},
		{`rate(zoomprobe_packet_total[5m])`, []string{`"zoomprobe_packet_total" is not in deploy/metrics.txt`}},
		{`zoomprobe_packets_total{service="web"}`, []string{`has no label "service"`}},
		{`sum by (reason) (zoomprobe_packets_total)`, []string{`grouping label "reason"`}},
		{`vector(1)`, nil},
		{`1 + 1`, []string{"no metric"}},
	}
	for _, tt := range tests {
		got := CheckUsage(tt.expr, contract)
		if len(got) != len(tt.want) {
			t.Errorf("CheckUsage(%q) = %q, want %d problems %q", tt.expr, got, len(tt.want), tt.want)
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], tt.want[i]) {
				t.Errorf("CheckUsage(%q)[%d] = %q, want it to contain %q", tt.expr, i, got[i], tt.want[i])
			}
		}
	}
}

func TestParseMetricsRejects(t *testing.T) {
	for _, text := range []string{
		"zoomprobe_x_total{a} histogram\n",
		"zoomprobe_x_total{a}\n",
		"zoomprobe_x_total{a} counter\nzoomprobe_x_total{b} counter\n",
		"zoomprobe x{a} counter\n",
	} {
		if _, err := ParseMetrics(strings.NewReader(text)); err == nil {
			t.Errorf("ParseMetrics(%q) = nil error, want one", text)
		}
	}
}
