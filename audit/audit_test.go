package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/probetest"
	"github.com/zoomprobe/zoomprobe/probes"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

// bed is a Zoom look-alike on Zoom's real ports, on loopback addresses of a
// private network namespace: 127.0.0.2 the web front end (TLS 443), 127.0.0.3
// a media router (TCP 8801/8802, STUN 3478/3479), NTP on 127.0.0.4/.5,
// DNS on 127.0.0.53, the proxy on 127.0.0.8:3128.
type bed struct {
	yaml  string
	judge probes.ChainJudge
}

const (
	web   = "127.0.0.2"
	media = "127.0.0.3"
)

func newBed(t *testing.T, broken bool) bed {
	t.Helper()
	probetest.RequireIsolated(t)
	zoomCA := probetest.NewCA(t, "Test Zoom Root CA", "DigiCert Inc (test)")
	inspect := probetest.NewCA(t, "FortiGate CA", "Fortinet")
	ca := zoomCA
	if broken {
		ca = inspect
	}
	probetest.TLSServer(t, ca.Leaf(t, time.Time{}, time.Time{}, "zoom.us", "www.zoom.us"), 0, web+":443")
	if !broken {
		probetest.OpenPort(t, media+":8801")
	}
	skew := 80 * time.Millisecond
	if broken {
		skew = 10 * time.Minute
		// 8801 refused (nothing listens), 8802 dropped, 3479 rejected by ICMP
		probetest.OpenPort(t, media+":8802")
		probetest.Iptables(t, "INPUT", "-d", media, "-p", "tcp", "--dport", "8802", "-j", "DROP")
		probetest.STUNServer(t, media+":3479")
		probetest.Iptables(t, "INPUT", "-d", media, "-p", "udp", "--dport", "3479", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
	} else {
		probetest.OpenPort(t, media+":8802")
		probetest.STUNServer(t, media+":3479")
	}
	probetest.STUNServer(t, media+":3478")
	probetest.NTPServer(t, skew, "127.0.0.4:123")
	if !broken {
		probetest.NTPServer(t, skew, "127.0.0.5:123")
	} // broken: 127.0.0.5 does not answer

	answers := map[string]probetest.DNSAnswer{
		"zoom.us":     {Addrs: []netip.Addr{netip.MustParseAddr("170.114.52.2")}},
		"www.zoom.us": {Addrs: []netip.Addr{netip.MustParseAddr("170.114.52.3")}},
	}
	if broken {
		answers["www.zoom.us"] = probetest.DNSAnswer{Addrs: []netip.Addr{netip.MustParseAddr("0.0.0.0")}}
	}
	probetest.DNSServer(t, answers, "127.0.0.53:53")

	px := &probetest.Proxy{
		Routes: map[string]string{"zoom.us:443": web + ":443", "www.zoom.us:443": web + ":443"},
		Policy: func(authority string) int {
			if broken && authority == "www.zoom.us:443" {
				return http.StatusForbidden
			}
			return http.StatusOK
		},
	}
	proxyURL := px.Start(t, "127.0.0.8:3128")

	y := fmt.Sprintf(`probes:
  proxy:
    url: %s
  tls:
    timeout: 2s
    targets:
      - {host: zoom.us, address: "%[2]s:443"}
      - {host: www.zoom.us, address: "%[2]s:443"}
  tcp:
    timeout: 1s
    targets:
      - {host: zoom.us, address: "%[2]s:443"}
      - {host: zoomfrn99mmr.zoom.us, address: "%[3]s:8801"}
      - {host: zoomfrn99mmr.zoom.us, address: "%[3]s:8802"}
  stun:
    timeout: 1s
    targets:
      - {host: zoomfrn99mmr.zoom.us, address: "%[3]s:3478"}
      - {host: zoomfrn99mmr.zoom.us, address: "%[3]s:3479"}
  ntp:
    timeout: 1s
    system_servers: false
    servers: ["127.0.0.4", "127.0.0.5"]
  dns:
    system: false
    resolvers: [127.0.0.53]
    names: [zoom.us, www.zoom.us]
`, proxyURL, web, media)
	judge := probes.CertcheckJudge(certcheck.Options{Roots: zoomCA.Pool(), Expected: []certcheck.Issuer{certcheck.IssuerFromCert(zoomCA.Cert)}, Products: certcheck.DefaultProducts()})
	return bed{yaml: y, judge: judge}
}

func runAudit(t *testing.T, b bed, passive Passive) (*report.Report, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(b.yaml))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every check registers its sockets, as under `audit --audit.interface`:
	// binding before connect must not change a verdict.
	own := ownflows.New(4096, time.Minute)
	r, err := Run(ctx, Options{Config: cfg, Judge: b.judge, Progress: &progress, Host: "testbed", Version: "test", Passive: passive, PassiveLabel: "capture file test.pcap", OwnFlows: own})
	if err != nil {
		t.Fatal(err)
	}
	protos := map[uint8]bool{}
	for _, k := range own.Sockets() {
		protos[k.Proto] = true
	}
	if !protos[ownflows.ProtoTCP] || !protos[ownflows.ProtoUDP] {
		t.Errorf("registered sockets %v: want the checks' TCP and UDP sockets", own.Sockets())
	}
	return r, progress.String()
}

func rows(r *report.Report) map[string]report.Requirement {
	m := map[string]report.Requirement{}
	for _, q := range r.Requirements {
		m[q.ID] = q
	}
	return m
}

func TestAuditAllPass(t *testing.T) {
	r, progress := runAudit(t, newBed(t, false), nil)
	want := map[string]report.Status{
		"dns": report.Pass, "clock": report.Pass, "ntp": report.Pass,
		"tcp-443": report.Pass, "tcp-8801": report.Pass, "tcp-8802": report.Pass,
		"udp-3478": report.Pass, "udp-3479": report.Pass, "tls": report.Pass, "proxy": report.Pass,
	}
	got := rows(r)
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("row %s = %s, want %s: %v", id, got[id].Status, st, got[id].Evidence)
		}
	}
	if len(r.Requirements) != len(want) {
		t.Errorf("%d rows, want %d", len(r.Requirements), len(want))
	}
	if r.Overall != report.Pass || r.ExitCode() != 0 || len(r.Findings) != 0 {
		t.Errorf("overall %s exit %d findings %v", r.Overall, r.ExitCode(), r.Findings)
	}
	for _, step := range []string{"[1/6] ntp: 2 targets", "[2/6] dns: 2 targets", "[3/6] tcp: 3 targets", "[4/6] stun: 2 targets", "[5/6] tls12: 2 targets", "[6/6] tls: 2 targets"} {
		if !strings.Contains(progress, step) {
			t.Errorf("progress lacks %q:\n%s", step, progress)
		}
	}
	writeAll(t, r, "pass")
}

func TestAuditFailures(t *testing.T) {
	passive := func(ctx context.Context, sink finding.Sink) error {
		sink.Emit(finding.Finding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonTimeout, Source: "reach", Confidence: "high", UserSees: "Error 5003", Remediation: "Allow UDP 8801."})
		return nil
	}
	r, _ := runAudit(t, newBed(t, true), passive)
	type want struct {
		status    report.Status
		roomsCode int
		evidence  string
	}
	wants := map[string]want{
		"dns":      {report.Fail, 0, "www.zoom.us: 127.0.0.53: dns_sinkhole"},
		"clock":    {report.Fail, 5, "clock offset +10m"},
		"ntp":      {report.Warn, 0, "did not answer"},
		"tcp-443":  {report.Pass, 0, "connected"},
		"tcp-8801": {report.Fail, 0, "connection_refused"},
		"tcp-8802": {report.Fail, 0, "generic_timeout_error"},
		"udp-3478": {report.Pass, 0, "answered Zoom's STUN request"},
		"udp-3479": {report.Fail, 0, "icmp_admin_prohibited"},
		"tls":      {report.Fail, 6, "FortiGate CA"},
		"proxy":    {report.Fail, 0, "refused CONNECT to www.zoom.us:443: proxy_denied"},
		"observed": {report.Fail, 0, "blocked_connection / generic_timeout_error: 1"},
	}
	got := rows(r)
	for id, w := range wants {
		q := got[id]
		if q.Status != w.status || q.RoomsCode != w.roomsCode || !strings.Contains(strings.Join(q.Evidence, "\n"), w.evidence) {
			t.Errorf("row %s = %s code %d evidence %q; want %s code %d evidence containing %q", id, q.Status, q.RoomsCode, q.Evidence, w.status, w.roomsCode, w.evidence)
		}
		if q.Status == report.Fail && (q.Remediation == "" || q.UserSees == "") {
			t.Errorf("row %s fails without user_sees/remediation: %+v", id, q)
		}
	}
	if q := got["tcp-8801"]; !strings.Contains(q.ErrorCodes, "5000-5004") {
		t.Errorf("tcp-8801 error codes %q", q.ErrorCodes)
	}
	if q := got["tls"]; !strings.Contains(q.UserSees, "code 6") || !strings.Contains(q.Remediation, "SSL inspection") {
		t.Errorf("tls row: %+v", q)
	}
	if r.Overall != report.Fail || r.ExitCode() != 1 || r.Summary.Fail != 8 {
		t.Errorf("overall %s exit %d summary %+v", r.Overall, r.ExitCode(), r.Summary)
	}
	if !strings.Contains(strings.Join(r.Notes, " "), "NTP offset (+10m") {
		t.Errorf("notes %v", r.Notes)
	}
	// What the checks learnt on their way: the address the STUN server saw,
	// the resolver and its sinkhole, the proxy, the offset of the best server.
	checkFacts(t, r, map[string]string{
		"egress_address": "127.0.0.1 (seen by zoomfrn99mmr.zoom.us:3478)",
		"resolvers":      "127.0.0.53: ok, dns_sinkhole",
		"proxy":          "http://127.0.0.8:3128",
		"clock_offset":   "+600.",
	})
	writeAll(t, r, "fail")
}

// checkFacts wants each fact's value to contain the given text.
func checkFacts(t *testing.T, r *report.Report, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, f := range r.Facts {
		got[f.ID] = f.Value
	}
	for id, w := range want {
		if !strings.Contains(got[id], w) {
			t.Errorf("fact %s = %q, want it to contain %q", id, got[id], w)
		}
	}
}

func TestAuditBadCheck(t *testing.T) {
	_, err := Run(context.Background(), Options{Config: config.Default(), Checks: []string{"ping"}})
	if err == nil || !strings.Contains(err.Error(), `unknown check "ping"`) {
		t.Fatalf("err = %v", err)
	}
}

// writeAll renders every format, checks each, and screenshots the HTML.
func writeAll(t *testing.T, r *report.Report, name string) {
	t.Helper()
	dir := t.TempDir()
	if d := os.Getenv("ZOOMPROBE_REPORT_DIR"); d != "" {
		dir = d
	}
	out := map[string][]byte{}
	for _, f := range report.Formats {
		var b bytes.Buffer
		if err := report.Render(&b, f, r, false); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = b.Bytes()
		ext := map[string]string{"text": "txt", "markdown": "md", "html": "html", "json": "json"}[f]
		if err := os.WriteFile(filepath.Join(dir, name+"."+ext), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var back report.Report
	if err := json.Unmarshal(out["json"], &back); err != nil || back.Overall != r.Overall || len(back.Requirements) != len(r.Requirements) {
		t.Errorf("json round trip: %v %s", err, back.Overall)
	}
	for _, q := range r.Requirements {
		if !bytes.Contains(out["text"], []byte(q.Title)) || !bytes.Contains(out["markdown"], []byte(mdTitle(q.Title))) || !bytes.Contains(out["html"], []byte(`id="req-`+q.ID+`"`)) {
			t.Errorf("row %s missing from a format", q.ID)
		}
	}
	if bytes.Contains(out["text"], []byte("\x1b[")) {
		t.Error("text without colour has escapes")
	}
	if !bytes.Contains(out["html"], []byte(`class="banner `+strings.ToLower(string(r.Overall))+`"`)) || bytes.Contains(out["html"], []byte("<script")) || bytes.Contains(out["html"], []byte("<link")) || bytes.Contains(out["html"], []byte(`src="`)) {
		t.Error("html: summary banner missing, or not self-contained")
	}
	screenshot(t, filepath.Join(dir, name+".html"), filepath.Join(dir, name+".png"))
}

func mdTitle(s string) string { return strings.NewReplacer("_", `\_`, "*", `\*`).Replace(s) }

// screenshot renders the HTML report in headless Chromium, proving it loads
// and renders; the PNG is kept when ZOOMPROBE_REPORT_DIR is set.
func screenshot(t *testing.T, htmlPath, png string) {
	t.Helper()
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Log("chromium not installed: HTML screenshot skipped")
		return
	}
	abs, _ := filepath.Abs(htmlPath)
	absPNG, _ := filepath.Abs(png)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--screenshot="+absPNG, "--window-size=1200,1600", "file://"+abs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	st, err := os.Stat(absPNG)
	if err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v (size %d)", absPNG, err, sizeOf(st))
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}
