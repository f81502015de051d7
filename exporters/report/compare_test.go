package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// audits are two audits of one site a week apart: DNS timed out the first
// time (the checks that needed it were not tested) and TCP 8801 was refused;
// a week later DNS works, 8801 is still refused and TLS is intercepted,
// and a capture shows the interception to clients.
func audits() (prev, cur *Report) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	prev = &Report{Title: "Zoom readiness report", Generated: t0, Site: "paris", Host: "room-7",
		Requirements: []Requirement{
			{ID: "dns", Title: "DNS resolves Zoom's names", Status: Fail, Evidence: []string{"✗ zoom.us: DNS: resolver 10.0.0.53:53 timed out; 3 checks depended on it and were not tested"}},
			{ID: "tcp-8801", Title: "TCP 8801 to Zoom", Status: Fail},
			{ID: "tls", Title: "TLS to Zoom without interception", Status: Skip},
			{ID: "clock", Title: "Clock within 10s of true time", Status: Warn},
		},
		Checks: []Check{
			{Check: "dns", Target: "zoom.us", Status: Fail, Summary: "zoom.us: system: dns_timeout (DNS: resolver 10.0.0.53:53 timed out)"},
			{Check: "tcp", Target: "zoomfrn99mmr.zoom.us:8801", Status: Fail, Summary: "TCP 8801 to zoomfrn99mmr.zoom.us refused (144.195.33.99:8801)"},
			{Check: "ntp", Target: "pool.ntp.org", Status: Fail, Summary: "no answer from pool.ntp.org"},
			{Check: "tls", Target: "zoom.us:443", Status: Skip, Summary: "not tested: zoom.us did not resolve (DNS: resolver 10.0.0.53:53 timed out)"},
		},
	}
	prev.Finish()
	prev.Headline = "DNS: resolver 10.0.0.53:53 timed out; 3 checks depended on it and were not tested. " + prev.Headline

	cur = &Report{Title: "Zoom readiness report", Generated: t0.Add(7 * 24 * time.Hour), Site: "paris", Host: "room-7",
		Requirements: []Requirement{
			{ID: "dns", Title: "DNS resolves Zoom's names", Status: Pass, Evidence: []string{"✓ zoom.us resolves to 170.114.52.2"}},
			{ID: "tcp-8801", Title: "TCP 8801 to Zoom", Status: Fail, Evidence: []string{"✗ TCP 8801 to zoomfrn99mmr.zoom.us refused (144.195.33.99:8801)"},
				UserSees: "Zoom fails with error 5003.", Remediation: "Allow TCP 8801 to Zoom's ranges."},
			{ID: "tls", Title: "TLS to Zoom without interception", Status: Fail, Evidence: []string{"✗ zoom.us:443: certificate from FortiGate CA"},
				RoomsCode: 6, Remediation: "Exempt Zoom from SSL inspection."},
			{ID: "observed", Title: "Observed Zoom traffic has no failures", Status: Fail, Evidence: []string{"tls_interception / ssl_unknown_authority: 2"}},
		},
		Checks: []Check{
			{Check: "dns", Target: "zoom.us", Status: Pass, Summary: "zoom.us resolves to 170.114.52.2"},
			{Check: "tcp", Target: "zoomfrn99mmr.zoom.us:8801", Status: Fail, Summary: "TCP 8801 to zoomfrn99mmr.zoom.us refused (144.195.33.99:8801)"},
			{Check: "tls", Target: "zoom.us:443", Status: Fail, Summary: "zoom.us:443: certificate from FortiGate CA \x1b[2J\u202e"},
		},
		Findings: []finding.Finding{
			{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: "probe/tls", SNI: "zoom.us"},
			{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: "tls", Service: "zone_controller", SNI: "zoomfr85zc.zoom.us",
				Flow: &finding.Flow{Transport: "tcp", Client: netip.MustParseAddr("10.20.30.40"), ClientPort: 40001, Server: netip.MustParseAddr("170.114.10.85"), ServerPort: 443}},
			{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: "tls", Service: "zone_controller", SNI: "zoomfr85zc.zoom.us",
				Flow: &finding.Flow{Transport: "tcp", Client: netip.MustParseAddr("10.20.30.41"), ClientPort: 40002, Server: netip.MustParseAddr("170.114.10.85"), ServerPort: 443}},
		},
		Facts: []Fact{
			{ID: "egress_address", Title: "Egress address seen by Zoom's STUN servers", Value: "203.0.113.40 (seen by zoomfrn99mmr.zoom.us:3478)"},
			{ID: "resolvers", Title: "Resolvers used", Value: "system resolver (10.0.0.53 from /etc/resolv.conf): ok"},
			{ID: "proxy", Title: "Web proxy", Value: "http://10.0.0.8:3128 (Via: 1.1 squid \x1b]0;x\x07)"},
			{ID: "clock_offset", Title: "Clock offset from NTP", Value: "+0.012 s from pool.ntp.org (round trip 8.1 ms)"},
		},
	}
	cur.Finish()
	return prev, cur
}

// Compare lists the requirements whose status changed, the failures that
// are new, those fixed, and those this audit did not look at again.
func TestCompare(t *testing.T) {
	prev, cur := audits()
	c := Compare(prev, cur, "paris-2026-05-01.json")
	var reqs []string
	for _, q := range c.Requirements {
		reqs = append(reqs, q.ID+" "+string(q.Before)+"→"+string(q.After))
	}
	if want := []string{"dns FAIL→PASS", "tls SKIP→FAIL", "observed SKIP→FAIL", "clock WARN→SKIP"}; !slices.Equal(reqs, want) {
		t.Errorf("requirement changes %q, want %q", reqs, want)
	}
	keys := func(fs []Failure) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Key)
		}
		return out
	}
	if got, want := keys(c.NewFailures), []string{"check tls zoom.us:443", "observed tls_interception — ssl_unknown_authority (zone_controller, tcp 170.114.10.85:443, sni zoomfr85zc.zoom.us)"}; !slices.Equal(got, want) {
		t.Errorf("new failures %q, want %q (two clients, one failure; probe findings come with their check)", got, want)
	}
	if got, want := keys(c.Resolved), []string{"check dns zoom.us"}; !slices.Equal(got, want) {
		t.Errorf("resolved %q, want %q", got, want)
	}
	if got, want := keys(c.NotChecked), []string{"check ntp pool.ntp.org"}; !slices.Equal(got, want) {
		t.Errorf("not checked %q, want %q", got, want)
	}
	if want := "Since the audit of 2026-05-01 10:00 UTC (FAIL): 4 requirements changed, 2 new failures, 1 resolved, 1 not checked again."; c.Summary != want {
		t.Errorf("summary %q, want %q", c.Summary, want)
	}
	if same := Compare(cur, cur, "x.json"); same.Summary != "Nothing changed since the audit of 2026-05-08 10:00 UTC (FAIL)." {
		t.Errorf("same report: %q", same.Summary)
	}
}

// The text report with --compare and the network facts, as a golden file;
// every format carries the changes and the facts, with network text inert.
func TestCompareGolden(t *testing.T) {
	prev, cur := audits()
	cur.Changes = Compare(prev, cur, "paris-2026-05-01.json")
	var text bytes.Buffer
	if err := Text(&text, cur, false); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "audit-compare.txt")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, text.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./exporters/report -run CompareGolden -update)", err)
	}
	if text.String() != string(want) {
		t.Errorf("text differs from %s:\n%s", path, text.String())
	}
	if bad := controlChars(text.String()); bad != "" {
		t.Errorf("text: %s", bad)
	}

	var md, html, js bytes.Buffer
	if err := Markdown(&md, cur); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Since the previous audit", "| DNS resolves Zoom's names | ❌ FAIL | ✅ PASS |", "**Resolved**", "## What the audit learnt about this network", "| Egress address seen by Zoom's STUN servers | 203.0.113.40"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if bad := controlChars(md.String()); bad != "" {
		t.Errorf("markdown: %s", bad)
	}
	if err := HTML(&html, cur); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<section id="changes">`, `<ul class="ev" id="new-failures">`, `<tr id="fact-egress_address">`, `<tr id="fact-clock_offset">`} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if err := JSON(&js, cur); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(&js)
	if err != nil {
		t.Fatal(err)
	}
	if back.Changes == nil || back.Changes.Summary != cur.Changes.Summary || len(back.Facts) != 4 || back.Facts[2].Value != cur.Facts[2].Value {
		t.Errorf("json round trip lost the changes or the facts: %+v %+v", back.Changes, back.Facts)
	}
	var again bytes.Buffer
	json.NewEncoder(&again).Encode(back.Changes)
	if !strings.Contains(again.String(), `"not_checked":[{"key":"check ntp pool.ntp.org"`) {
		t.Errorf("json changes: %s", again.String())
	}
}
