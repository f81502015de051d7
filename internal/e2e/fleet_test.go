package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/zoomprobe/zoomprobe/internal/testbed"
)

// Fleet sites: each a test bed with the real daemon, scraped by its own
// Prometheus agent that remote-writes to one central Prometheus.
const (
	fleetClean     = "fleet-clean"     // nothing in the way
	fleetInspected = "fleet-inspected" // FortiGate-named TLS inspection
	fleetUDP       = "fleet-udp"       // UDP 8801-8810 dropped
)

// startAgent runs a Prometheus in agent mode that scrapes target as job
// zoomprobe, names the site with an external label and forwards every sample
// to the central Prometheus, as deploy/fleet/prometheus-agent.yml does.
func startAgent(t *testing.T, site, target, centralURL string) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval": "1s",
			"external_labels": map[string]string{"site": site},
		},
		"scrape_configs": []any{map[string]any{
			"job_name":       "zoomprobe",
			"static_configs": []any{map[string]any{"targets": []string{target}}},
		}},
		"remote_write": []any{map[string]any{
			"url":          centralURL + "/api/v1/write",
			"queue_config": map[string]any{"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"},
		}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "agent.yml"), b)
	startProcess(t, dir, "agent-"+site, PrometheusBin,
		"--enable-feature=agent",
		"--config.file="+filepath.Join(dir, "agent.yml"),
		"--storage.agent.path="+filepath.Join(dir, "wal"),
		"--web.listen-address="+freeAddr(t),
		"--log.level=warn")
}

// TestFleet runs the fleet path of deploy/fleet/ end to end: three sites, three
// agents, one central Prometheus with the alert and readiness rules, one
// Alertmanager. The central Prometheus must know each site's readiness per
// requirement, alerts must arrive with the right site, and every query of the
// fleet dashboard must return data.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three live test beds and starts five Prometheus processes")
	}
	needLiveStack(t)
	began := time.Now()
	fortinet, err := testbed.InterceptCA(testbed.KnownInspectCN, testbed.KnownInspectOrg)
	if err != nil {
		t.Fatal(err)
	}
	clean := startSite(t, siteOptions{name: fleetClean})
	inspected := startSite(t, siteOptions{name: fleetInspected,
		router: []testbed.Behaviour{testbed.Intercept(testbed.KnownInspectCN, testbed.KnownInspectOrg)}})
	udp := startSite(t, siteOptions{name: fleetUDP, router: []testbed.Behaviour{testbed.Drop("udp", "8801:8810")}})
	sites := []*site{clean, inspected, udp}

	central := Start(t, Options{
		RemoteWriteReceiver: true,
		RuleFiles:           []string{"deploy/prometheus/zoomprobe-rules.yml", "deploy/fleet/fleet-rules.yml"},
	})
	for _, s := range sites {
		startAgent(t, s.name, s.Target(), central.PromURL)
	}
	for _, s := range sites {
		central.WaitForQuery(t, fmt.Sprintf(`up{job="zoomprobe",site=%q} == 1`, s.name), 30*time.Second)
	}

	ctx, cancel := context.WithCancel(context.Background())
	blank := testbed.ClientPlan{}
	managed := testbed.ClientPlan{ExtraRoots: []*x509.Certificate{fortinet.Cert}, SkipMedia: true, SkipSTUN: true}
	unmanaged := testbed.ClientPlan{SkipMedia: true, SkipSTUN: true}
	loops := []*sync.WaitGroup{
		clean.clients(ctx, t, 300*time.Millisecond, []testbed.ClientPlan{blank}),
		inspected.clients(ctx, t, 300*time.Millisecond, []testbed.ClientPlan{managed, unmanaged}),
		udp.clients(ctx, t, 200*time.Millisecond, []testbed.ClientPlan{blank}, []testbed.ClientPlan{blank}, []testbed.ClientPlan{blank}),
	}
	stopClients := func() {
		cancel()
		for _, wg := range loops {
			wg.Wait()
		}
	}
	t.Cleanup(stopClients)
	defer func() {
		if t.Failed() {
			for _, s := range sites {
				t.Logf("%s: %s\n%s", s.name, s.summary(), zoomprobeLines(s.scrape(t)))
			}
		}
	}()

	// Alerts from the central Prometheus, each with its site.
	want := []map[string]string{
		{"alertname": "ZoomTLSInterception", "site": fleetInspected, "product": "FortiGate"},
		{"alertname": "ZoomSiteNotReady", "site": fleetInspected, "requirement": "tls_not_intercepted"},
		{"alertname": "ZoomUDPMediaBlocked", "site": fleetUDP, "port": "8801"},
		{"alertname": "ZoomSiteNotReady", "site": fleetUDP, "requirement": "udp_media_open"},
	}
	deadline := time.Now().Add(120 * time.Second)
	for _, w := range want {
		a := central.Hook.WaitFor(t, w, time.Until(deadline))
		t.Logf("received after %s: %s", time.Since(began).Round(time.Second), fmtLabels(a.Labels))
	}
	stopClients()

	// Readiness per site and requirement, as the fleet dashboard shows it.
	notReady := map[string]map[string]bool{
		fleetClean:     {},
		fleetInspected: {"tls_not_intercepted": true},
		fleetUDP:       {"udp_media_open": true},
	}
	for _, s := range sites {
		got, err := central.Query(context.Background(), fmt.Sprintf(`site_requirement:zoomprobe_ready:1h{site=%q}`, s.name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 6 {
			t.Errorf("%s: %d requirement series, want 6: %v", s.name, len(got), got)
		}
		for _, smp := range got {
			req := smp.Metric["requirement"]
			if want := !notReady[s.name][req]; (smp.Value == 1) != want {
				t.Errorf("%s: requirement %s = %v, want ready=%v", s.name, req, smp.Value, want)
			}
		}
	}
	for _, a := range central.Hook.Alerts() {
		if a.Status == "firing" && a.Labels["site"] == fleetClean {
			t.Errorf("the clean site raised %s", fmtLabels(a.Labels))
		}
		if a.Labels["site"] == "" {
			t.Errorf("alert without a site: %s", fmtLabels(a.Labels))
		}
	}
	t.Run("fleet_dashboard", func(t *testing.T) {
		central.RunDashboardFile(t, filepath.Join("..", "..", "deploy", "grafana", "zoomprobe-fleet.json"), 5*time.Minute)
	})
	t.Logf("whole fleet test: %s", time.Since(began).Round(100*time.Millisecond))
}
