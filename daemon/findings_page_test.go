package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/zoomprobe/zoomprobe/exporters/findings"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/testgen"
)

// hostileName is a DNS question an attacker might send: markup and an
// escape sequence in a label (lower case: names are compared so), under
// zoom.us so the DNS analyzer judges it.
const hostileName = "<script>alert(1)</script>\x1b[31m.zoom.us"

// wantGroup is what the page must show for an expected finding.
type wantGroup struct {
	kind   finding.Kind
	reason finding.Reason
	server netip.Addr
	port   uint16
}

// pageScenarios are replayed into the daemon for the findings page: several
// kinds of problem, critical and warning.
var pageScenarios = []string{"tls-fortigate", "syn-dropped", "rst-after-clienthello", "udp-fallback", "dns-sinkhole", "proxy-denied"}

// findingsCapture writes one capture of the scenarios, ten minutes apart
// (every flow of one has ended before the next starts), then a lookup of
// hostileName answered with a sinkhole. It returns the path and the groups
// the page must show.
func findingsCapture(t *testing.T) (string, []wantGroup) {
	t.Helper()
	var pkts []testgen.Packet
	var want []wantGroup
	start := testgen.DefaultStart
	for _, name := range pageScenarios {
		sc, err := testgen.Build(name, testgen.Params{Start: start})
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, sc.Packets...)
		for _, f := range sc.Findings {
			want = append(want, wantGroup{f.Kind, f.Reason, f.Server, f.ServerPort})
		}
		start = start.Add(10 * time.Minute)
	}
	plan := testgen.PlanV4
	g := testgen.New(testgen.DefaultSeed, start)
	g.DNS(plan.Client2, plan.Resolver, testgen.DNSLookup{Name: hostileName, Addrs: []netip.Addr{netip.IPv4Unspecified()}})
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, g.Packets()...)

	path := filepath.Join(t.TempDir(), "findings.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testgen.WritePackets(f, testgen.FormatPCAP, pkts); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// apiFindings reads /api/v1/findings.
func apiFindings(t *testing.T, url string) findings.Snapshot {
	t.Helper()
	code, body := get(t, url+"/api/v1/findings")
	if code != 200 {
		t.Fatalf("/api/v1/findings = %d %s", code, body)
	}
	var s findings.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("/api/v1/findings: %v\n%s", err, body)
	}
	return s
}

func hasGroup(s findings.Snapshot, w wantGroup) bool {
	for _, g := range s.Groups {
		if g.Kind == w.kind && g.Reason == w.reason && g.Server.Address == w.server.String() && g.Server.Port == w.port {
			return true
		}
	}
	return false
}

// waitGroups polls the API until every wanted group is there. The deadline
// only guards against a hang.
func waitGroups(t *testing.T, url string, want []wantGroup) findings.Snapshot {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := apiFindings(t, url)
		missing := 0
		for _, w := range want {
			if !hasGroup(s, w) {
				missing++
			}
		}
		if missing == 0 {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s.Groups, "", "  ")
			t.Fatalf("%d of %d expected groups missing; the API shows:\n%s", missing, len(want), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// trustTestPKI is the tls: section that trusts testgen's CAs, with its Zoom
// root as the expected issuer: Zoom's (test) chain is then no interception.
func trustTestPKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := testgen.WriteCAPEMs(dir); err != nil {
		t.Fatal(err)
	}
	pki, err := testgen.TestPKI()
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(pki.ZoomRoot.Cert.RawSubjectPublicKeyInfo)
	return fmt.Sprintf("tls:\n  system_roots: false\n  extra_roots: [%q, %q]\n  expected_issuers:\n    - cn: %q\n      spki_sha256: %s\n",
		filepath.Join(dir, "zoom-root.pem"), filepath.Join(dir, "public-ca.pem"), pki.ZoomRoot.Cert.Subject.CommonName, hex.EncodeToString(spki[:]))
}

// waitName polls the API until a group names the server name.
func waitName(t *testing.T, url, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, g := range apiFindings(t, url).Groups {
			if g.Server.Name == name {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no group names %q", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chromiumPath finds Debian's chromium; without it the test is skipped,
// unless CI=true, where scripts/deps.sh must have installed it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed and CI=true: scripts/deps.sh installs Debian's chromium; the findings page must be rendered in CI")
	}
	t.Skip("chromium is not installed (Debian package chromium; scripts/deps.sh installs it): the findings page is not rendered in a browser")
	return ""
}

// chromium runs headless Chromium with a fresh profile and returns its
// standard output. It runs in its own process group, killed whole if it
// hangs.
func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// keepArtefact copies a file to $ZOOMPROBE_ARTIFACTS when it is set.
func keepArtefact(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("ZOOMPROBE_ARTIFACTS")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("kept %s", dst)
}

// The daemon replays a capture of several scenarios; its findings page,
// rendered by a real headless Chromium, shows a row for each expected group
// with its severity, and the hostile SNI as text (markup escaped, the ESC
// shown as \x1b). The screenshot is kept.
func TestFindingsPageInChromium(t *testing.T) {
	pcap, want := findingsCapture(t)
	cfg := writeFile(t, t.TempDir(), "zoomprobe.yml", "site: paris-hq\ncapture:\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: \"\"\n"+trustTestPKI(t))
	d, srv := startDaemon(t, cfg, fileInputs(pcap))
	waitGroups(t, srv.URL, want)
	// The hostile lookup came last in the capture.
	waitName(t, srv.URL, hostileName)
	// Any producer's strings are escaped too: a finding with markup and an
	// ESC in its SNI and product, and an evidence file.
	d.sink().Emit(finding.Finding{Time: testgen.DefaultStart.Add(2 * time.Hour), Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority,
		Source: "tls", Service: "web", SNI: "<script>\x1bx.zoom.us", Product: "<b>Evil\x1b[5mProxy</b>",
		Flow:     &finding.Flow{Transport: "tcp", Client: testgen.PlanV4.Client2, ClientPort: 50123, Server: testgen.PlanV4.Web, ServerPort: 443},
		Evidence: map[string]any{"evidence_file": "tls_interception-0001.pcapng"}})
	snap := apiFindings(t, srv.URL)
	if snap.Site != "paris-hq" || snap.Summary.Critical == 0 || snap.Summary.Warning == 0 {
		t.Errorf("site %q, summary %+v: want the site, and critical and warning groups", snap.Site, snap.Summary)
	}

	// The page as served; then as Chromium renders it.
	code, served := get(t, srv.URL+"/findings")
	if code != 200 || strings.Count(served, `<tbody class="group `) != len(snap.Groups) || strings.Contains(served, "<script") || strings.Contains(served, "\x1b") {
		t.Errorf("/findings = %d with %d groups (API: %d), script %v, raw ESC %v", code, strings.Count(served, `<tbody class="group `),
			len(snap.Groups), strings.Contains(served, "<script"), strings.Contains(served, "\x1b"))
	}
	bin := chromiumPath(t)
	dom := string(chromium(t, bin, "--dump-dom", srv.URL+"/findings"))
	if !strings.Contains(dom, `id="findings"`) {
		t.Fatalf("Chromium did not render the findings table:\n%s", tail(dom, 3000))
	}
	rows := strings.Count(dom, `<tbody class="group `)
	if rows != len(snap.Groups) {
		t.Errorf("%d rows in the DOM, %d groups in the API", rows, len(snap.Groups))
	}
	for _, g := range snap.Groups {
		row := fmt.Sprintf(`<tbody class="group %s" data-kind="%s" data-reason="%s">`, g.Severity, g.Kind, g.Reason)
		if !strings.Contains(dom, row) {
			t.Errorf("DOM lacks the row %s", row)
		}
	}
	for _, w := range want {
		if cell := w.server.String() + ":" + fmt.Sprint(w.port); !strings.Contains(dom, cell) {
			t.Errorf("DOM lacks the server %s", cell)
		}
	}
	for _, esc := range []string{`&lt;script&gt;alert(1)&lt;/script&gt;\x1b[31m.zoom.us`, `&lt;script&gt;\x1bx.zoom.us`, `&lt;b&gt;Evil\x1b[5mProxy&lt;/b&gt;`, "tls_interception-0001.pcapng"} {
		if !strings.Contains(dom, esc) {
			t.Errorf("the DOM lacks %s", esc)
		}
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "\x1b") {
		t.Errorf("the DOM holds a script element or a raw ESC")
	}
	if !strings.Contains(dom, "paris-hq") || !strings.Contains(dom, "FortiGate") || !strings.Contains(dom, "Zoom Rooms code 6") {
		t.Errorf("the DOM lacks the site, the product or the Zoom Rooms code")
	}

	// What a network admin sees on a 1280-pixel screen, and the whole page.
	for _, shot := range []struct{ name, size string }{{"findings-page.png", "1280,900"}, {"findings-page-full.png", "1280,2400"}} {
		png := filepath.Join(t.ArtifactDir(), shot.name)
		chromium(t, bin, "--screenshot="+png, "--window-size="+shot.size, "--hide-scrollbars", "--run-all-compositor-stages-before-draw", srv.URL+"/findings")
		st, err := os.Stat(png)
		if err != nil || st.Size() < 20_000 {
			t.Fatalf("screenshot %s: %v (%d bytes)", png, err, sizeOf(st))
		}
		t.Logf("screenshot: %s (%d bytes)", png, st.Size())
		keepArtefact(t, png)
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}

// / shows the findings page (the landing page with its pprof links is
// gone), other paths are 404, and the groups survive a reload that swaps
// the analyzers and the event log; a findings-only change is applied alone.
func TestFindingsPageRoutesAndReload(t *testing.T) {
	pcap, _ := scenarioFile(t, "dns-sinkhole")
	dir := t.TempDir()
	cfg := "capture:\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: \"\"\n"
	cfgPath := writeFile(t, dir, "zoomprobe.yml", cfg)
	var logs syncBuffer
	d, err := New(Options{ConfigFile: cfgPath, Inputs: fileInputs(pcap), EnableLifecycle: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := runDaemon(t, d)
	want := []wantGroup{{finding.KindDNSFiltered, finding.ReasonDNSSinkhole, testgen.PlanV4.Resolver, 53}}
	before := waitGroups(t, srv.URL, want)

	code, root := get(t, srv.URL+"/")
	if code != 200 || !strings.Contains(root, `id="findings"`) || strings.Contains(root, "pprof") {
		t.Errorf("/ = %d, findings table %v, pprof %v", code, strings.Contains(root, `id="findings"`), strings.Contains(root, "pprof"))
	}
	if code, _ := get(t, srv.URL+"/debug/pprof/heap"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/heap = %d, want 404", code)
	}

	// Analyzer setting and event log path change: swapped in place, no replay.
	writeFile(t, dir, "zoomprobe.yml", cfg+"reachability:\n  dns_repeat_interval: 6m\n")
	if code, msg := post(t, srv.URL+"/-/reload"); code != 200 {
		t.Fatalf("reload = %d %s", code, msg)
	}
	after := apiFindings(t, srv.URL)
	if len(after.Groups) != len(before.Groups) || after.Groups[0].Count != before.Groups[0].Count {
		t.Errorf("groups after an analyzer reload: %+v, before %+v", after.Groups, before.Groups)
	}
	// findings.resolve_after alone.
	writeFile(t, dir, "zoomprobe.yml", cfg+"reachability:\n  dns_repeat_interval: 6m\nfindings:\n  resolve_after: 3h\n")
	if code, msg := post(t, srv.URL+"/-/reload"); code != 200 {
		t.Fatalf("reload = %d %s", code, msg)
	}
	if s := apiFindings(t, srv.URL); s.ResolveAfter != findings.Duration(3*time.Hour) || len(s.Groups) != len(before.Groups) {
		t.Errorf("after resolve_after 3h: %s, %d groups", s.ResolveAfter, len(s.Groups))
	}
	if !strings.Contains(logs.String(), `msg="configuration reloaded" changed=findings`) {
		t.Errorf("a findings-only reload changed more than the findings:\n%s", logs.String())
	}
}

// The findings page and its JSON are under the web config's auth like
// /metrics: exporter-toolkit wraps the daemon's whole handler.
func TestFindingsPageBehindWebAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := writeFile(t, dir, "web.yml", "basic_auth_users:\n  admin: "+string(hash)+"\n")
	d, err := New(Options{ConfigFile: writeFile(t, dir, "zoomprobe.yml", "capture:\n  interfaces: [lo]\nprobes:\n  enabled: false\n")})
	if err != nil {
		t.Fatal(err)
	}
	d.findings.Emit(finding.Finding{Time: testgen.DefaultStart, Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSNXDomain, SNI: "zoom.us"})
	srv := d.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, systemd := []string{ln.Addr().String()}, false
	served := make(chan error, 1)
	go func() {
		served <- web.Serve(ln, srv, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &webCfg}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	for _, path := range []string{"/", "/findings", "/api/v1/findings", "/metrics"} {
		url := "http://" + ln.Addr().String() + path
		for _, c := range []struct {
			user, pass string
			want       int
		}{{"", "", http.StatusUnauthorized}, {"admin", "wrong", http.StatusUnauthorized}, {"admin", "s3cret", http.StatusOK}} {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s as %q: %d, want %d", path, c.user+":"+c.pass, resp.StatusCode, c.want)
			}
			if c.want != http.StatusOK && strings.Contains(string(body), "zoom.us") {
				t.Errorf("%s leaks findings without auth", path)
			}
		}
	}
}
