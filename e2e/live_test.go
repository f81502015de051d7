package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/testbed"
)

// Sites of the live test: each is its own bed and daemon, scraped with its
// own site label, so every alert must arrive with the right site.
const (
	siteBlocked   = "branch-blocked"   // firewall drops TCP 8801 and UDP 8801-8810
	siteInspected = "branch-inspected" // transparent TLS inspection by a FortiGate-named CA
)

// expectedAlert is one alert the webhook must receive: its labels (a
// subset match), the receiver the shipped routing must choose.
type expectedAlert struct {
	labels   map[string]string
	receiver string
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
	h := Start(t, Options{Groups: []TargetGroup{
		{Targets: []string{blocked.Target()}, Labels: map[string]string{"site": siteBlocked}},
		{Targets: []string{inspected.Target()}, Labels: map[string]string{"site": siteInspected}},
	}})
	h.WaitForQuery(t, `up{job="zoomprobe"} == 1`, 20*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	// Three users at the blocked site join again and again: media over UDP
	// 8801 is dropped, TCP 8801 is dropped, TLS 443 works (Zoom's fallback
	// chain). At the inspected site, two managed laptops trust the FortiGate
	// CA and work; one unmanaged laptop does not and refuses the certificate.
	blockedClients := blocked.clients(ctx, t, 200*time.Millisecond, testbed.ClientPlan{}, testbed.ClientPlan{}, testbed.ClientPlan{})
	managed := testbed.ClientPlan{ExtraRoots: []*x509.Certificate{fortinet.Cert}}
	inspectedClients := inspected.clients(ctx, t, time.Second, managed, managed, testbed.ClientPlan{SkipMedia: true})
	stopClients := func() { cancel(); blockedClients.Wait(); inspectedClients.Wait() }
	t.Cleanup(stopClients)

	want := []expectedAlert{
		{map[string]string{"alertname": "ZoomPortBlockedDropped", "site": siteBlocked, "severity": "critical",
			"service": "media_router", "transport": "tcp", "port": "8801", "reason": "generic_timeout_error"}, "network-oncall"},
		{map[string]string{"alertname": "ZoomUDPMediaBlocked", "site": siteBlocked, "severity": "warning",
			"service": "media", "transport": "udp", "port": "8801", "reason": "udp_no_answer"}, "network-team"},
		{map[string]string{"alertname": "ZoomUDPFallback", "site": siteBlocked, "severity": "warning",
			"service": "media"}, "network-team"},
		{map[string]string{"alertname": "ZoomProbeCheckFailing", "site": siteBlocked, "severity": "warning",
			"check": "tcp"}, "network-team"},
		{map[string]string{"alertname": "ZoomTLSInterception", "site": siteInspected, "severity": "critical",
			"service": "web", "reason": "ssl_unknown_authority", "product": "FortiGate"}, "network-oncall"},
		{map[string]string{"alertname": "ZoomTLSInterception", "site": siteInspected, "severity": "critical",
			"service": "zone_controller", "reason": "ssl_unknown_authority", "product": "FortiGate"}, "network-oncall"},
		{map[string]string{"alertname": "ZoomClientsRejectingCertificate", "site": siteInspected, "severity": "critical",
			"service": "web"}, "network-oncall"},
	}
	defer func() {
		if t.Failed() {
			t.Logf("%s: %s", blocked.name, blocked.summary())
			t.Logf("%s: %s", inspected.name, inspected.summary())
			for _, s := range []*site{blocked, inspected} {
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
	if a := h.Hook.WaitFor(t, map[string]string{"alertname": "ZoomClientsRejectingCertificate", "site": siteInspected}, time.Second); a.Labels["alert"] == "" {
		t.Errorf("ZoomClientsRejectingCertificate without the alert label: %v", a.Labels)
	}
	stopClients()

	// Nothing else may page: each site raises only its own alerts, and the
	// daemon's health alerts stay quiet.
	allowed := map[string]map[string]bool{siteBlocked: {}, siteInspected: {}}
	for _, w := range want {
		allowed[w.labels["site"]][w.labels["alertname"]] = true
	}
	for _, a := range h.Hook.Alerts() {
		if a.Status == "firing" && !allowed[a.Labels["site"]][a.Labels["alertname"]] {
			t.Errorf("unexpected alert: %s", fmtLabels(a.Labels))
		}
	}

	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, h) })
	t.Run("metric_contract", func(t *testing.T) { checkMetricContract(t, blocked.scrape(t), inspected.scrape(t)) })
	t.Logf("%s: %s", blocked.name, blocked.summary())
	t.Logf("%s: %s", inspected.name, inspected.summary())
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
