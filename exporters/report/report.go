// Package report renders zoomprobe's readiness report (what `zoomprobe
// audit` finds) as terminal text, Markdown, a self-contained HTML page and
// JSON. The report is plain data: audit/ builds it, this package only
// writes it.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// Status is a requirement's verdict.
type Status string

const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	// Skip: not checked (not configured, or the check was not selected).
	Skip Status = "SKIP"
)

// Report is one readiness audit.
type Report struct {
	Title     string        `json:"title"`
	Generated time.Time     `json:"generated"`
	Site      string        `json:"site,omitempty"` // the probe's site (config site: or --site)
	Host      string        `json:"host,omitempty"` // where the audit ran
	Version   string        `json:"version,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
	// Overall is FAIL when any requirement fails, WARN when any warns.
	Overall Status  `json:"overall"`
	Summary Summary `json:"summary"`
	// Headline is one sentence for the top of the report.
	Headline     string        `json:"headline"`
	Requirements []Requirement `json:"requirements"`
	Checks       []Check       `json:"checks"`
	// Findings are every finding the audit produced, active and passive.
	Findings []finding.Finding `json:"findings"`
	// Notes are what the reader should know (clock offset used, proxy...).
	Notes []string `json:"notes,omitempty"`
	// Facts are what the audit learnt about the network on its way: the
	// address Zoom's STUN servers saw, the resolvers, the proxy, the clock.
	Facts []Fact `json:"facts,omitempty"`
	// Changes says what changed since a previous audit (audit --compare).
	Changes *Changes `json:"changes,omitempty"`
}

// Fact is one thing the audit learnt about the network.
type Fact struct {
	ID    string `json:"id"`    // stable key: "egress_address", "resolvers", "proxy", "clock_offset"
	Title string `json:"title"` // "Egress address seen by Zoom's STUN servers"
	Value string `json:"value"`
}

// Summary counts requirements by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Requirement is one row of Zoom's requirements table.
type Requirement struct {
	ID       string   `json:"id"`       // stable key: "tcp-443", "tls", "clock"
	Title    string   `json:"title"`    // "TCP 443 to Zoom"
	Needed   string   `json:"needed"`   // why Zoom needs it
	Status   Status   `json:"status"`   //
	Evidence []string `json:"evidence"` // what was seen, one line each
	// UserSees is what a Zoom user or Zoom Room would show.
	UserSees string `json:"user_sees,omitempty"`
	// ErrorCodes names the client error family, when one applies.
	ErrorCodes string `json:"error_codes,omitempty"`
	// RoomsCode is the Zoom Rooms untrusted-certificate code (0: none).
	RoomsCode   int    `json:"zoom_rooms_code,omitempty"`
	Remediation string `json:"remediation,omitempty"`
}

// Check is one active check run, for the detail table.
type Check struct {
	Check    string         `json:"check"`
	Target   string         `json:"target"`
	Status   Status         `json:"status"`
	Reason   string         `json:"reason"`
	Summary  string         `json:"summary"`
	Duration time.Duration  `json:"duration_ns"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// Finish computes the summary, the overall status and the headline.
func (r *Report) Finish() {
	r.Summary = Summary{}
	for _, q := range r.Requirements {
		switch q.Status {
		case Pass:
			r.Summary.Pass++
		case Warn:
			r.Summary.Warn++
		case Fail:
			r.Summary.Fail++
		default:
			r.Summary.Skip++
		}
	}
	switch {
	case r.Summary.Fail > 0:
		r.Overall = Fail
		r.Headline = fmt.Sprintf("Not ready for Zoom: %s failed%s.", plural(r.Summary.Fail, "requirement"), warnTail(r.Summary.Warn))
	case r.Summary.Warn > 0:
		r.Overall = Warn
		r.Headline = fmt.Sprintf("Zoom should work, with %s to review.", plural(r.Summary.Warn, "warning"))
	case r.Summary.Pass > 0:
		r.Overall = Pass
		r.Headline = fmt.Sprintf("Ready for Zoom: all %s passed.", plural(r.Summary.Pass, "requirement"))
	default:
		r.Overall = Skip
		r.Headline = "Nothing was checked."
	}
}

func warnTail(n int) string {
	if n == 0 {
		return ""
	}
	return ", " + plural(n, "warning")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// ExitCode is the audit's exit status: 0 when nothing failed, 1 otherwise.
func (r *Report) ExitCode() int {
	if r.Overall == Fail {
		return 1
	}
	return 0
}

// Formats lists the renderers by name.
var Formats = []string{"text", "markdown", "html", "json"}

// Render writes r in format; color applies to text only.
func Render(w io.Writer, format string, r *Report, color bool) error {
	switch format {
	case "text":
		return Text(w, r, color)
	case "markdown", "md":
		return Markdown(w, r)
	case "html":
		return HTML(w, r)
	case "json":
		return JSON(w, r)
	}
	return fmt.Errorf("unknown report format %q (use text, markdown, html or json)", format)
}

// JSON writes the report as one indented JSON document.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *Report) generated() string {
	if r.Generated.IsZero() {
		return ""
	}
	return r.Generated.UTC().Format("2006-01-02 15:04:05 UTC")
}
