package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// hostile holds strings that came from the network (a proxy's Via header, a
// certificate's issuer): every format must keep them inert.
const hostile = `<script>alert(1)</script> | *bold* _x_ ` + "`code`\nnext line \x1b]0;retitled\x07\x1b[2J\rFAKE \u009b31m \u202e"

func sample(statuses ...Status) *Report {
	r := &Report{Title: "Zoom readiness report", Generated: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Host: "room-7", Duration: 2500 * time.Millisecond}
	for i, s := range statuses {
		r.Requirements = append(r.Requirements, Requirement{
			ID: "row" + string(rune('a'+i)), Title: "Requirement " + string(s), Needed: "Why Zoom needs it.", Status: s,
			Evidence: []string{"✗ issuer " + hostile}, UserSees: "Users see " + hostile, ErrorCodes: "5003", RoomsCode: 6,
			Remediation: "Fix " + hostile,
		})
	}
	r.Checks = []Check{{Check: "tls", Target: "zoom.us:443", Status: Fail, Reason: "ssl_unknown_authority", Summary: "<b>x</b> \x1b[2J\nFAKE", Duration: time.Millisecond}}
	r.Findings = []finding.Finding{{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: "probe/tls", SNI: "zoom.us", Product: hostile, Remediation: hostile}}
	r.Finish()
	return r
}

func TestFinish(t *testing.T) {
	cases := []struct {
		statuses []Status
		overall  Status
		exit     int
		headline string
	}{
		{[]Status{Pass, Pass}, Pass, 0, "Ready for Zoom: all 2 requirements passed."},
		{[]Status{Pass, Warn, Skip}, Warn, 0, "Zoom should work, with 1 warning to review."},
		{[]Status{Fail, Warn, Warn, Pass}, Fail, 1, "Not ready for Zoom: 1 requirement failed, 2 warnings."},
		{[]Status{Skip}, Skip, 0, "Nothing was checked."},
	}
	for _, c := range cases {
		r := sample(c.statuses...)
		if r.Overall != c.overall || r.ExitCode() != c.exit || r.Headline != c.headline {
			t.Errorf("%v: overall %s exit %d headline %q", c.statuses, r.Overall, r.ExitCode(), r.Headline)
		}
	}
}

func TestFormatsKeepHostileTextInert(t *testing.T) {
	r := sample(Fail, Pass)
	var h, m, tx, j bytes.Buffer
	if err := HTML(&h, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "<script>") || !strings.Contains(h.String(), "&lt;script&gt;") {
		t.Error("html: network text not escaped")
	}
	if !strings.Contains(h.String(), `<section class="banner fail" id="summary">`) || !strings.Contains(h.String(), "1 failed") {
		t.Error("html: summary banner missing")
	}
	if err := Markdown(&m, r); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(m.String(), "\n") {
		if strings.HasPrefix(line, "| ❌ FAIL |") {
			rows++
			if strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 6 {
				t.Errorf("markdown row broken by a pipe or newline: %s", line)
			}
		}
	}
	if rows != 1 {
		t.Errorf("%d FAIL rows in markdown, want 1", rows)
	}
	if strings.Contains(m.String(), "<script>") {
		t.Error("markdown: raw HTML passes through")
	}
	if err := Text(&tx, r, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tx.String(), "\x1b[") {
		t.Error("text: colour without a TTY")
	}
	for name, out := range map[string]string{"text": tx.String(), "markdown": m.String()} {
		if bad := controlChars(out); bad != "" {
			t.Errorf("%s: network text reaches the terminal raw: %s", name, bad)
		}
	}
	var colour bytes.Buffer
	if err := Text(&colour, r, true); err != nil {
		t.Fatal(err)
	}
	painted := strings.NewReplacer(ansiReset, "", ansiBold, "", ansiDim, "", ansiRed, "", ansiGreen, "", ansiYel, "").Replace(colour.String())
	if bad := controlChars(painted); bad != "" {
		t.Errorf("coloured text: escapes other than its own colours: %s", bad)
	}
	for _, line := range strings.Split(tx.String(), "\n") {
		if visibleLen(line) > textWidth+20 {
			t.Errorf("text line not wrapped (%d): %q", visibleLen(line), line)
		}
	}
	if err := JSON(&j, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || back.Requirements[0].Evidence[0] != r.Requirements[0].Evidence[0] {
		t.Errorf("json round trip: %v", err)
	}
}

func TestTextColour(t *testing.T) {
	var b bytes.Buffer
	Text(&b, sample(Fail), true)
	if !strings.Contains(b.String(), ansiRed+"[FAIL]") && !strings.Contains(b.String(), ansiBold+ansiRed+"[FAIL]") {
		t.Errorf("no red FAIL:\n%q", b.String())
	}
	// wrapping ignores escape codes: a coloured line wraps like a plain one
	if visibleLen(ansiRed+"abc"+ansiReset) != 3 {
		t.Error("visibleLen counts escapes")
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if err := Render(&bytes.Buffer{}, "pdf", sample(Pass), false); err == nil || !strings.Contains(err.Error(), `unknown report format "pdf"`) {
		t.Errorf("err = %v", err)
	}
}

// controlChars lists what a terminal would act on in out, other than the
// newlines between lines.
func controlChars(out string) string {
	var bad []string
	for _, r := range out {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e) {
			bad = append(bad, fmt.Sprintf("%U", r))
		}
	}
	return strings.Join(bad, " ")
}

// The text report ends with the intercepting CA's certificate, once per
// certificate, when a check saw interception; not otherwise.
func TestTextShowsInterceptionCA(t *testing.T) {
	ca := "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	r := &Report{Checks: []Check{
		{Check: "tls", Target: "zoom.us:443", Status: Fail, Evidence: map[string]any{"issuer": "CN=FortiGate CA", "issuer_pem": ca}},
		{Check: "tls12", Target: "zoom.us:443", Status: Fail, Evidence: map[string]any{"issuer": "CN=FortiGate CA", "issuer_pem": ca}},
		{Check: "tcp", Target: "zoom.us:443", Status: Pass},
	}}
	r.Finish()
	var b strings.Builder
	if err := Text(&b, r, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "BEGIN CERTIFICATE") != 1 || !strings.Contains(out, "\n"+ca) || !strings.Contains(out, "Certificate of the intercepting CA") || !strings.Contains(out, "tls zoom.us:443: issuer CN=FortiGate CA") {
		t.Errorf("text report:\n%s", out)
	}
	r.Checks = r.Checks[2:]
	b.Reset()
	if err := Text(&b, r, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "intercepting CA") {
		t.Error("CA section without interception")
	}
}
