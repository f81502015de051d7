package report

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Fleet is the readiness of many sites, merged from their audit reports
// (`zoomprobe report site-*.json`): one row a site, one column a requirement.
type Fleet struct {
	Title     string    `json:"title"`
	Generated time.Time `json:"generated"`
	// Overall is FAIL when any site fails, WARN when any warns.
	Overall  Status       `json:"overall"`
	Headline string       `json:"headline"`
	Summary  FleetSummary `json:"summary"`
	// Columns are the requirements of every report, in the order the
	// reports list them.
	Columns []FleetColumn `json:"columns"`
	// Sites, the worst first: most failures, then most warnings, then by name.
	Sites []FleetSite `json:"sites"`
	Notes []string    `json:"notes,omitempty"`
}

// FleetSummary counts sites by overall status.
type FleetSummary struct {
	Sites    int `json:"sites"`
	Ready    int `json:"ready"`
	Warn     int `json:"warn"`
	NotReady int `json:"not_ready"`
}

// FleetColumn is one requirement across the fleet.
type FleetColumn struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// FleetSite is one site's row.
type FleetSite struct {
	Site      string    `json:"site"`
	Host      string    `json:"host,omitempty"`
	Source    string    `json:"source"` // the report file
	Generated time.Time `json:"generated"`
	Overall   Status    `json:"overall"`
	Headline  string    `json:"headline"`
	// Status by requirement ID; a requirement the site's report lacks is SKIP.
	Status map[string]Status `json:"status"`
	// Problems are the failing and warning requirements with their first
	// evidence line and remediation, for the detail section.
	Problems []FleetProblem `json:"problems,omitempty"`
	fail     int
	warn     int
}

// FleetProblem is a requirement a site fails or warns on.
type FleetProblem struct {
	ID          string `json:"id"`
	Requirement string `json:"requirement"`
	Status      Status `json:"status"`
	Evidence    string `json:"evidence,omitempty"`
	Remediation string `json:"remediation,omitempty"`
}

// ReadReport reads one audit report written with --output.format json.
func ReadReport(r io.Reader) (*Report, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var rep Report
	if err := dec.Decode(&rep); err != nil {
		return nil, err
	}
	if rep.Overall == "" || rep.Requirements == nil {
		return nil, fmt.Errorf("not a zoomprobe audit report (no overall status or requirements)")
	}
	return &rep, nil
}

// MergeFleet merges audit reports, named by their files, into one fleet
// report. A report's site is its site: field, else its host, else the file
// name. When one site has several reports, the newest counts and a note
// says which were set aside.
func MergeFleet(reports []*Report, files []string, now time.Time) *Fleet {
	f := &Fleet{Title: "Zoom readiness of the fleet", Generated: now}
	bySite := map[string]int{}
	seenCol := map[string]bool{}
	for i, r := range reports {
		name := cmp.Or(r.Site, r.Host, strings.TrimSuffix(filepath.Base(files[i]), filepath.Ext(files[i])))
		s := FleetSite{Site: name, Host: r.Host, Source: files[i], Generated: r.Generated, Overall: r.Overall,
			Headline: r.Headline, Status: map[string]Status{}}
		for _, q := range r.Requirements {
			if !seenCol[q.ID] {
				seenCol[q.ID] = true
				f.Columns = append(f.Columns, FleetColumn{ID: q.ID, Title: q.Title})
			}
			s.Status[q.ID] = q.Status
			if q.Status != Fail && q.Status != Warn {
				continue
			}
			p := FleetProblem{ID: q.ID, Requirement: q.Title, Status: q.Status, Remediation: q.Remediation}
			if len(q.Evidence) > 0 {
				p.Evidence = q.Evidence[0]
			}
			s.Problems = append(s.Problems, p)
			if q.Status == Fail {
				s.fail++
			} else {
				s.warn++
			}
		}
		if j, dup := bySite[name]; dup {
			old := f.Sites[j]
			keep, drop := s, old
			if old.Generated.After(s.Generated) {
				keep, drop = old, s
			}
			f.Sites[j] = keep
			f.Notes = append(f.Notes, fmt.Sprintf("%s: %s set aside for the newer %s.", name, drop.Source, keep.Source))
			continue
		}
		bySite[name] = len(f.Sites)
		f.Sites = append(f.Sites, s)
	}
	for i := range f.Sites {
		for _, c := range f.Columns {
			if _, ok := f.Sites[i].Status[c.ID]; !ok {
				f.Sites[i].Status[c.ID] = Skip
			}
		}
	}
	slices.SortFunc(f.Sites, func(a, b FleetSite) int {
		return cmp.Or(cmp.Compare(b.fail, a.fail), cmp.Compare(b.warn, a.warn), cmp.Compare(a.Site, b.Site))
	})
	f.Summary.Sites = len(f.Sites)
	for _, s := range f.Sites {
		switch s.Overall {
		case Fail:
			f.Summary.NotReady++
		case Warn:
			f.Summary.Warn++
		case Pass:
			f.Summary.Ready++
		}
	}
	switch {
	case f.Summary.NotReady > 0:
		f.Overall = Fail
		var names []string
		for _, s := range f.Sites {
			if s.Overall == Fail {
				names = append(names, s.Site)
			}
		}
		f.Headline = fmt.Sprintf("%s of %d not ready for Zoom: %s.", plural(f.Summary.NotReady, "site"), f.Summary.Sites, strings.Join(names, ", "))
	case f.Summary.Warn > 0:
		f.Overall = Warn
		f.Headline = fmt.Sprintf("Every site should work; %s to review.", plural(f.Summary.Warn, "site"))
	case f.Summary.Ready > 0:
		f.Overall = Pass
		f.Headline = fmt.Sprintf("All %s ready for Zoom.", plural(f.Summary.Ready, "site"))
	default:
		f.Overall = Skip
		f.Headline = "No site was checked."
	}
	return f
}

// ExitCode is 1 when any site is not ready.
func (f *Fleet) ExitCode() int {
	if f.Overall == Fail {
		return 1
	}
	return 0
}

// RenderFleet writes f in one of Formats; color applies to text only.
func RenderFleet(w io.Writer, format string, f *Fleet, color bool) error {
	switch format {
	case "text":
		return fleetText(w, f, color)
	case "markdown", "md":
		return fleetMarkdown(w, f)
	case "html":
		return fleetHTML.Execute(w, f)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	}
	return fmt.Errorf("unknown report format %q (use text, markdown, html or json)", format)
}

func fleetText(w io.Writer, f *Fleet, color bool) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	fmt.Fprintln(bw, paint(ansiBold, f.Title))
	fmt.Fprintf(bw, "%s  %s\n", paint(statusColor(f.Overall), string(f.Overall)), escapeControl(f.Headline))
	fmt.Fprintf(bw, "%d sites: %d ready, %d with warnings, %d not ready\n\n", f.Summary.Sites, f.Summary.Ready, f.Summary.Warn, f.Summary.NotReady)
	width := len("site")
	for _, s := range f.Sites {
		width = max(width, len(escapeControl(s.Site)))
	}
	fmt.Fprintf(bw, "%-*s  %-7s", width, "site", "overall")
	for _, c := range f.Columns {
		fmt.Fprintf(bw, "  %s", c.ID)
	}
	fmt.Fprintln(bw)
	for _, s := range f.Sites {
		fmt.Fprintf(bw, "%-*s  %s", width, escapeControl(s.Site), paint(statusColor(s.Overall), fmt.Sprintf("%-7s", s.Overall)))
		for _, c := range f.Columns {
			st := s.Status[c.ID]
			fmt.Fprintf(bw, "  %s", paint(statusColor(st), fmt.Sprintf("%-*s", len(c.ID), st)))
		}
		fmt.Fprintln(bw)
	}
	for _, s := range f.Sites {
		if len(s.Problems) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n%s (%s, %s)\n", paint(ansiBold, escapeControl(s.Site)), escapeControl(s.Source), s.Generated.UTC().Format("2006-01-02 15:04 UTC"))
		for _, p := range s.Problems {
			fmt.Fprintf(bw, "  %s %s", paint(statusColor(p.Status), string(p.Status)), escapeControl(p.Requirement))
			if p.Evidence != "" {
				fmt.Fprintf(bw, ": %s", escapeControl(p.Evidence))
			}
			fmt.Fprintln(bw)
			if p.Remediation != "" {
				fmt.Fprintf(bw, "       fix: %s\n", escapeControl(p.Remediation))
			}
		}
	}
	for _, n := range f.Notes {
		fmt.Fprintf(bw, "\nnote: %s\n", escapeControl(n))
	}
	return bw.Flush()
}

func fleetMarkdown(w io.Writer, f *Fleet) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# %s\n\n**%s — %s**\n\n", mdEscape(f.Title), mdBadge[f.Overall], mdEscape(f.Headline))
	fmt.Fprintf(bw, "%d sites: %d ready, %d with warnings, %d not ready.\n\n", f.Summary.Sites, f.Summary.Ready, f.Summary.Warn, f.Summary.NotReady)
	fmt.Fprint(bw, "| site | overall |")
	for _, c := range f.Columns {
		fmt.Fprintf(bw, " %s |", mdEscape(c.Title))
	}
	fmt.Fprint(bw, "\n|---|---|")
	for range f.Columns {
		fmt.Fprint(bw, "---|")
	}
	fmt.Fprintln(bw)
	for _, s := range f.Sites {
		fmt.Fprintf(bw, "| %s | %s |", mdEscape(s.Site), mdBadge[s.Overall])
		for _, c := range f.Columns {
			fmt.Fprintf(bw, " %s |", mdBadge[s.Status[c.ID]])
		}
		fmt.Fprintln(bw)
	}
	for _, s := range f.Sites {
		if len(s.Problems) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n## %s\n\n", mdEscape(s.Site))
		for _, p := range s.Problems {
			fmt.Fprintf(bw, "- %s **%s**", mdBadge[p.Status], mdEscape(p.Requirement))
			if p.Evidence != "" {
				fmt.Fprintf(bw, ": %s", mdEscape(p.Evidence))
			}
			if p.Remediation != "" {
				fmt.Fprintf(bw, " — %s", mdEscape(p.Remediation))
			}
			fmt.Fprintln(bw)
		}
	}
	for _, n := range f.Notes {
		fmt.Fprintf(bw, "\n> %s\n", mdEscape(n))
	}
	return bw.Flush()
}

var fleetHTML = template.Must(template.New("fleet").Funcs(template.FuncMap{
	"lower":  func(s Status) string { return strings.ToLower(string(s)) },
	"status": func(s FleetSite, id string) Status { return s.Status[id] },
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --pass:#1a7f37; --pass-bg:#dafbe1; --warn:#9a6700; --warn-bg:#fff8c5; --fail:#cf222e; --fail-bg:#ffebe9; --skip:#57606a; --skip-bg:#eaeef2; --line:#d0d7de; }
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:#1f2328; margin:2rem; background:#f6f8fa; }
table { border-collapse: collapse; background:#fff; }
th, td { border:1px solid var(--line); padding:.35rem .6rem; text-align:left; vertical-align:top; }
th { background:#eaeef2; font-weight:600; }
.s { font-weight:600; font-size:.8rem; text-align:center; }
.pass { color:var(--pass); background:var(--pass-bg); } .warn { color:var(--warn); background:var(--warn-bg); }
.fail { color:var(--fail); background:var(--fail-bg); } .skip { color:var(--skip); background:var(--skip-bg); }
.headline { font-size:1.2rem; margin:.5rem 0 1rem; padding:.6rem 1rem; border-radius:6px; display:inline-block; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<div class="headline {{lower .Overall}}">{{.Overall}} — {{.Headline}}</div>
<p>{{.Summary.Sites}} sites: {{.Summary.Ready}} ready, {{.Summary.Warn}} with warnings, {{.Summary.NotReady}} not ready.</p>
<table>
<tr><th>site</th><th>overall</th>{{range .Columns}}<th title="{{.ID}}">{{.Title}}</th>{{end}}</tr>
{{- $cols := .Columns}}
{{range .Sites}}{{$s := .}}<tr><td><a href="#site-{{.Site}}">{{.Site}}</a></td><td class="s {{lower .Overall}}">{{.Overall}}</td>{{range $cols}}{{$st := status $s .ID}}<td class="s {{lower $st}}">{{$st}}</td>{{end}}</tr>
{{end}}</table>
{{range .Sites}}{{if .Problems}}
<h2 id="site-{{.Site}}">{{.Site}}</h2>
<p>{{.Headline}} <small>({{.Source}}, {{when .Generated}})</small></p>
<ul>{{range .Problems}}<li><span class="s {{lower .Status}}">{{.Status}}</span> <b>{{.Requirement}}</b>{{if .Evidence}}: {{.Evidence}}{{end}}{{if .Remediation}}<br><i>{{.Remediation}}</i>{{end}}</li>{{end}}</ul>
{{end}}{{end}}
{{range .Notes}}<p><small>{{.}}</small></p>{{end}}
</body>
</html>
`))

// escapeControl makes text from reports safe for a terminal: control
// characters (ESC sequences, newlines) are written as \xNN.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, `\x%02x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }
