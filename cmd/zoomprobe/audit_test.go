package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/probes/probetest"
)

// auditConfig points every check at loopback servers: nothing leaves the
// machine (no system resolver, no system NTP servers, pinned addresses).
func auditConfig(t *testing.T, broken bool) string {
	t.Helper()
	media := probetest.OpenPort(t)
	if broken {
		media = probetest.ClosedPort(t)
	}
	return auditConfigMedia(t, media)
}

// auditConfigMedia is auditConfig with the media router's TCP address given.
func auditConfigMedia(t *testing.T, media string) string {
	t.Helper()
	open := probetest.OpenPort(t)
	stun := probetest.STUNServer(t)
	ntp := probetest.NTPServer(t, 0)
	y := fmt.Sprintf(`probes:
  tls:
    enabled: false
  tcp:
    timeout: 1s
    targets:
      - {host: zoom.us, address: "%s"}
      - {host: zoomfrn99mmr.zoom.us, address: "%s"}
  stun:
    timeout: 1s
    targets: [{host: zoomfrn99mmr.zoom.us, address: "%s"}]
  ntp:
    timeout: 1s
    system_servers: false
    servers: ["%s"]
  dns:
    enabled: false
tls:
  # The scenario captures use the test PKI: trust it as a site adds roots.
  system_roots: false
  extra_roots: ["%s", "%s"]
`, open, media, stun, ntp, caFile(t, "zoom-root.pem"), caFile(t, "public-ca.pem"))
	path := filepath.Join(t.TempDir(), "zoomprobe.yml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func caFile(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "ca", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditCommand(t *testing.T) {
	good, broken := auditConfig(t, false), auditConfig(t, true)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("probes:\n  tcp:\n    interval: 1ms\n"), 0o644)
	capture, _ := filepath.Abs("../../testdata/zoom-clean.pcap")
	cases := []struct {
		name   string
		args   []string
		exit   int
		format string
		check  func(t *testing.T, out []byte)
	}{
		{"pass-json", []string{"--config.file", good, "audit", "--output.format", "json"}, 0, "json", func(t *testing.T, out []byte) {
			var r report.Report
			if err := json.Unmarshal(out, &r); err != nil || r.Overall != report.Pass || len(r.Checks) != 4 {
				t.Errorf("report: %v overall %s checks %d", err, r.Overall, len(r.Checks))
			}
		}},
		{"fail-markdown", []string{"--config.file", broken, "audit", "--output.format", "markdown"}, 1, "md", func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), "| ❌ FAIL | **TCP ") || !strings.Contains(string(out), "connection\\_refused") {
				t.Errorf("markdown:\n%s", out)
			}
		}},
		{"only-ntp-html", []string{"--config.file", broken, "audit", "--audit.check", "ntp", "--output.format", "html"}, 0, "html", func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), `class="banner pass"`) || !strings.Contains(string(out), `<tr class="req skip" id="req-tcp-8801">`) {
				t.Errorf("html banner or skipped rows wrong")
			}
		}},
		{"capture-text", []string{"--config.file", good, "audit", "--audit.check", "ntp", "--audit.capture", capture}, 0, "txt", func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), "Observed Zoom traffic") || !strings.Contains(string(out), "zoom-clean.pcap") {
				t.Errorf("text:\n%s", out)
			}
		}},
		{"bad-config", []string{"--config.file", bad, "audit"}, 2, "", nil},
		{"bad-target", []string{"--config.file", good, "audit", "--audit.target", "zoom.us:99999"}, 2, "", nil},
		{"bad-check", []string{"--config.file", good, "audit", "--audit.check", "ping"}, 2, "", nil},
		{"bad-format", []string{"--config.file", good, "audit", "--output.format", "pdf"}, 2, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report."+c.format)
			args := append(c.args, "--audit.quiet")
			if c.format != "" {
				args = append(args, "--output.file", out)
			}
			if got := run(args); got != c.exit {
				t.Fatalf("exit %d, want %d", got, c.exit)
			}
			if c.check != nil {
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, b)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{"zoom.us": "zoom.us", "zoom.us:8801": "zoom.us:8801", "[2620:123:2000::2]:443": "[2620:123:2000::2]:443", "2620:123:2000::2": "2620:123:2000::2"} {
		got, err := parseTarget(in)
		if err != nil || got.String() != want {
			t.Errorf("parseTarget(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "zoom.us:0", "zoom.us:x", "a b", ":443"} {
		if _, err := parseTarget(in); err == nil {
			t.Errorf("parseTarget(%q) accepted", in)
		}
	}
}

// audit --compare reads an earlier JSON report and says what changed: the
// refused TCP port was opened since, so its row and check are resolved; a
// file that is not a report is a usage error, before any check runs.
func TestAuditCompare(t *testing.T) {
	media := probetest.ClosedPort(t)
	dir := t.TempDir()
	before := filepath.Join(dir, "before.json")
	cfg := auditConfigMedia(t, media)
	if code := run([]string{"--config.file", cfg, "audit", "--audit.quiet", "--output.format", "json", "--output.file", before}); code != 1 {
		t.Fatalf("first audit: exit %d", code)
	}
	probetest.OpenPort(t, media) // the firewall was fixed
	fixed := cfg
	after := filepath.Join(dir, "after.json")
	if code := run([]string{"--config.file", fixed, "audit", "--audit.quiet", "--compare", before, "--output.format", "json", "--output.file", after}); code != 0 {
		t.Fatalf("second audit: exit %d", code)
	}
	b, _ := os.ReadFile(after)
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil || r.Changes == nil {
		t.Fatalf("report: %v, changes %v", err, r.Changes)
	}
	c := r.Changes
	port := media[strings.LastIndexByte(media, ':')+1:]
	if c.PreviousFile != before || c.PreviousOverall != report.Fail || len(c.Requirements) != 1 || c.Requirements[0].ID != "tcp-"+port ||
		c.Requirements[0].Before != report.Fail || c.Requirements[0].After != report.Pass {
		t.Errorf("changes %+v", c)
	}
	if len(c.Resolved) != 1 || c.Resolved[0].Key != "check tcp zoomfrn99mmr.zoom.us:"+port || len(c.NewFailures) != 0 {
		t.Errorf("new %+v resolved %+v", c.NewFailures, c.Resolved)
	}
	text := filepath.Join(dir, "after.txt")
	run([]string{"--config.file", fixed, "audit", "--audit.quiet", "--compare", before, "--output.file", text})
	out, _ := os.ReadFile(text)
	for _, want := range []string{"(FAIL): 1 requirement changed, 0 new failures, 1 resolved.", "FAIL → PASS  TCP " + port + " to Zoom",
		"resolved: tcp: TCP " + port + " to zoomfrn99mmr.zoom.us failed: connection_refused",
		"What the audit learnt about this network", "Egress address seen by Zoom's STUN servers: 127.0.0.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	notReport := filepath.Join(dir, "not.json")
	os.WriteFile(notReport, []byte(`{"files": []}`), 0o644)
	code, _, stderr := runCaptured(t, "--config.file", fixed, "audit", "--audit.quiet", "--compare", notReport)
	if code != 2 || !strings.Contains(stderr, "--compare: "+notReport) {
		t.Errorf("not a report: exit %d, stderr %q", code, stderr)
	}
}
