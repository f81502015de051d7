package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/testbed"
)

// Sites of the live test: each is its own bed and daemon, scraped with its
// own site label, so every alert must arrive with the right site.
const (
	siteBlocked   = "branch-blocked"   // firewall drops TCP 8801 and UDP 8801-8810
	siteInspected = "branch-inspected" // transparent TLS inspection by a FortiGate-named CA
	siteFiltered  = "branch-filtered"  // an on-path box injects RSTs after each ClientHello to 443
	siteBoxed     = "branch-boxed"     // a NAT captured on both sides drops UDP 8801 and resets TCP 8802
)

// expectedAlert is one alert the webhook must receive: its labels (a
// subset match), the receiver the shipped routing must choose.
type expectedAlert struct {
	labels   map[string]string
	receiver string
	// services, when set, are the Zoom services the alert's service label
	// should name (any one of them).
	services []string
}

// TestLiveAlerts is zoomprobe's monitoring end to end: live middleboxes in
// network namespaces, Zoom-like clients crossing them, the real daemon
// capturing the mirror port, Debian's Prometheus scraping it with the shipped
// (time-compressed) rules, Debian's Alertmanager routing with the shipped
// configuration, and the webhook receiving the pages. Then every dashboard
// query runs against that Prometheus, and the exported metrics are checked
// against deploy/metrics.txt.
func TestLiveAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds live test beds and starts Prometheus and Alertmanager")
	}
	needLiveStack(t)
	t.Parallel() // with TestHarnessSelfTest
	began := time.Now()
	fortinet, err := testbed.InterceptCA(testbed.KnownInspectCN, testbed.KnownInspectOrg)
	if err != nil {
		t.Fatal(err)
	}

	blocked := startSite(t, siteOptions{
		name:   siteBlocked,
		router: []testbed.Behaviour{testbed.Drop("tcp", "8801"), testbed.Drop("udp", "8801:8810")},
		probes: func(t *testing.T, bed *testbed.Bed) string { return loopbackProbes(t, bed, true) },
	})
	inspected := startSite(t, siteOptions{
		name:   siteInspected,
		router: []testbed.Behaviour{testbed.Intercept(testbed.KnownInspectCN, testbed.KnownInspectOrg)},
		probes: func(t *testing.T, bed *testbed.Bed) string { return loopbackProbes(t, bed, false) },
	})
	filtered := startSite(t, siteOptions{
		name:   siteFiltered,
		router: []testbed.Behaviour{testbed.InjectRST(64)},
	})
	boxed := startSite(t, siteOptions{
		name:   siteBoxed,
		router: []testbed.Behaviour{testbed.NAT(), testbed.Drop("udp", "8801"), testbed.Reject("tcp", "8802", testbed.RejectTCPReset)},
		box:    true,
	})
	sites := []*site{blocked, inspected, filtered, boxed}
	var groups []TargetGroup
	for _, s := range sites {
		groups = append(groups, TargetGroup{Targets: []string{s.Target()}, Labels: map[string]string{"site": s.name}})
	}
	h := Start(t, Options{Groups: groups})
	h.WaitForQuery(t, `up{job="zoomprobe"} == 1`, 20*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	// Three users at the blocked site join again and again: media over UDP
	// 8801 is dropped, TCP 8801 is dropped, TLS 443 works (Zoom's fallback
	// chain). At the inspected site a managed laptop, which trusts the
	// FortiGate CA and works, and an unmanaged one, which refuses the
	// certificate, take turns. At the filtered site every ClientHello to 443
	// is answered by forged resets.
	blank := testbed.ClientPlan{}
	managed := testbed.ClientPlan{ExtraRoots: []*x509.Certificate{fortinet.Cert}, SkipMedia: true, SkipSTUN: true}
	unmanaged := testbed.ClientPlan{SkipMedia: true, SkipSTUN: true}
	loops := []*sync.WaitGroup{
		blocked.clients(ctx, t, 200*time.Millisecond, []testbed.ClientPlan{blank}, []testbed.ClientPlan{blank}, []testbed.ClientPlan{blank}),
		inspected.clients(ctx, t, 300*time.Millisecond, []testbed.ClientPlan{managed, unmanaged}),
		filtered.clients(ctx, t, 300*time.Millisecond, []testbed.ClientPlan{{SkipMedia: true, SkipSTUN: true}}),
		boxed.clients(ctx, t, 300*time.Millisecond, []testbed.ClientPlan{{MediaTCPPort: 8802, SkipSTUN: true}}),
	}
	stopClients := func() {
		cancel()
		for _, wg := range loops {
			wg.Wait()
		}
	}
	t.Cleanup(stopClients)

	want := []expectedAlert{
		{map[string]string{"alertname": "ZoomPortBlockedDropped", "site": siteBlocked, "severity": "critical",
			"service": "media_router", "transport": "tcp", "port": "8801", "reason": "generic_timeout_error"}, "network-oncall", nil},
		{map[string]string{"alertname": "ZoomUDPMediaBlocked", "site": siteBlocked, "severity": "warning",
			"service": "media", "transport": "udp", "port": "8801", "reason": "udp_no_answer"}, "network-team", nil},
		{map[string]string{"alertname": "ZoomUDPFallback", "site": siteBlocked, "severity": "warning",
			"service": "media"}, "network-team", nil},
		{map[string]string{"alertname": "ZoomProbeCheckFailing", "site": siteBlocked, "severity": "warning",
			"check": "tcp"}, "network-team", nil},
		{map[string]string{"alertname": "ZoomTLSInterception", "site": siteInspected, "severity": "critical",
			"reason": "ssl_unknown_authority", "product": "FortiGate"}, "network-oncall", []string{"web", "zone_controller"}},
		{map[string]string{"alertname": "ZoomClientsRejectingCertificate", "site": siteInspected, "severity": "critical",
			"alert": "bad_certificate"}, "network-oncall", []string{"web", "zone_controller"}},
		{map[string]string{"alertname": "ZoomInjectedResets", "site": siteFiltered, "severity": "critical",
			"phase": "after_client_hello", "origin": "middlebox"}, "network-oncall", []string{"web", "zone_controller"}},
		{map[string]string{"alertname": "ZoomSNIFiltering", "site": siteFiltered, "severity": "critical",
			"reason": "sni_filtering"}, "network-oncall", nil},
		{map[string]string{"alertname": "ZoomBlockedBetweenCapturePoints", "site": siteBoxed, "severity": "critical",
			"box": "fw1", "verdict": "reset_by_box"}, "network-oncall", nil},
		{map[string]string{"alertname": "ZoomBlockedBetweenCapturePoints", "site": siteBoxed, "severity": "critical",
			"box": "fw1", "verdict": "dropped_outbound"}, "network-oncall", nil},
	}
	defer func() {
		if t.Failed() {
			for _, s := range sites {
				t.Logf("%s: %s", s.name, s.summary())
			}
			for _, s := range sites {
				b, _ := os.ReadFile(s.events)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("%s event log (tail):\n%s", s.name, b)
				t.Logf("%s metrics:\n%s", s.name, zoomprobeLines(s.scrape(t)))
			}
		}
	}()
	deadline := time.Now().Add(75 * time.Second)
	for _, w := range want {
		a := h.Hook.WaitFor(t, w.labels, time.Until(deadline))
		if a.Receiver != w.receiver {
			t.Errorf("%s at %s went to receiver %q, want %q", w.labels["alertname"], a.Labels["site"], a.Receiver, w.receiver)
		}
		name := w.labels["alertname"]
		if len(w.services) > 0 {
			svc := a.Labels["service"]
			switch {
			case slices.Contains(w.services, svc):
			default:
				t.Errorf("%s at %s: service=%q, want one of %v", name, a.Labels["site"], svc, w.services)
			}
		}
		if !strings.HasSuffix(a.Annotations["runbook_url"], "/docs/runbooks/"+name+".md") {
			t.Errorf("%s: runbook_url = %q", name, a.Annotations["runbook_url"])
		}
		if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
			t.Errorf("%s: empty summary or description: %v", name, a.Annotations)
		}
		if a.Labels["job"] != "zoomprobe" || a.Labels["instance"] == "" {
			t.Errorf("%s: job/instance labels %q/%q", name, a.Labels["job"], a.Labels["instance"])
		}
		t.Logf("received after %s at %s: %s", time.Since(began).Round(time.Second), a.Receiver, fmtLabels(a.Labels))
	}
	stopClients()

	// Nothing else may page: each site raises only its own alerts, and the
	// daemon's health alerts stay quiet.
	// Behind the box, media falls back to TLS 443: ZoomUDPFallback may fire
	// too (the box's alert says where UDP is blocked).
	allowed := map[string]map[string]bool{siteBlocked: {}, siteInspected: {}, siteFiltered: {}, siteBoxed: {"ZoomUDPFallback": true}}
	for _, w := range want {
		allowed[w.labels["site"]][w.labels["alertname"]] = true
	}
	for _, a := range h.Hook.Alerts() {
		if a.Status == "firing" && !allowed[a.Labels["site"]][a.Labels["alertname"]] {
			t.Errorf("unexpected alert: %s", fmtLabels(a.Labels))
		}
	}

	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, h) })
	t.Run("metric_contract", func(t *testing.T) {
		checkMetricContract(t, blocked.scrape(t), inspected.scrape(t), filtered.scrape(t), boxed.scrape(t))
	})
	for _, s := range sites {
		t.Logf("%s: %s", s.name, s.summary())
	}
	t.Logf("whole live test: %s", time.Since(began).Round(100*time.Millisecond))
}

func fmtLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + m[k])
	}
	b.WriteString("}")
	return b.String()
}

func zoomprobeLines(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "zoomprobe_") && !strings.HasSuffix(l, " 0") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// needLiveStack skips a test that builds live test beds unless it runs as
// root with Prometheus and Alertmanager installed; in CI a missing binary fails.
func needLiveStack(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, iptables and AF_PACKET capture (CI runs as root)")
	}
	for _, bin := range []string{PrometheusBin, AlertmanagerBin} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed: run scripts/e2e-deps.sh", bin)
			}
			t.Skipf("%s not installed: run scripts/e2e-deps.sh", bin)
		}
	}
}
