package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// HTML writes a self-contained page (inline CSS, no scripts, no external
// resources) that an installer can attach to a ticket: the verdict and the
// counts at the top, then the requirements table, then the details.
func HTML(w io.Writer, r *Report) error {
	title := r.Title
	if title == "" {
		title = "Zoom readiness report"
	}
	return htmlTmpl.Execute(w, struct {
		*Report
		PageTitle string
		When      string
		Took      string
	}{r, title, r.generated(), tookString(r.Duration)})
}

func tookString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.Round(100 * time.Millisecond).String()
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"lower":      func(s Status) string { return strings.ToLower(string(s)) },
	"actionable": func(s Status) bool { return s == Fail || s == Warn },
	"ms": func(d time.Duration) string {
		if d < time.Millisecond {
			return "<1ms"
		}
		return d.Round(time.Millisecond).String()
	},
	"server": func(f finding.Finding) string {
		if f.Flow != nil && f.Flow.Server.IsValid() {
			return strings.TrimSpace(fmt.Sprintf("%s %s:%d/%s", f.SNI, f.Flow.Server, f.Flow.ServerPort, f.Flow.Transport))
		}
		return f.SNI
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.PageTitle}}{{if .Site}} — {{.Site}}{{else if .Host}} — {{.Host}}{{end}}</title>
<style>
:root { --pass:#1a7f37; --pass-bg:#dafbe1; --warn:#9a6700; --warn-bg:#fff8c5; --fail:#cf222e; --fail-bg:#ffebe9; --skip:#57606a; --skip-bg:#eaeef2; --line:#d0d7de; --muted:#57606a; }
* { box-sizing: border-box; }
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:#1f2328; margin:0; background:#f6f8fa; }
main { max-width: 1160px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.changes-summary { font-weight: 600; }
.meta { color: var(--muted); font-size: 13px; }
.banner { margin: 16px 0 8px; padding: 18px 20px; border-radius: 8px; border: 2px solid; display:flex; gap:18px; align-items:center; background:#fff; }
.banner .big { font-size: 28px; font-weight: 800; letter-spacing: .5px; padding: 6px 14px; border-radius: 6px; color:#fff; }
.banner .headline { font-size: 19px; font-weight: 600; }
.banner.pass { border-color: var(--pass); } .banner.pass .big { background: var(--pass); }
.banner.warn { border-color: var(--warn); } .banner.warn .big { background: var(--warn); }
.banner.fail { border-color: var(--fail); } .banner.fail .big { background: var(--fail); }
.banner.skip { border-color: var(--skip); } .banner.skip .big { background: var(--skip); }
.counts { display:flex; gap:10px; margin: 10px 0 0; flex-wrap: wrap; }
.count { padding: 3px 10px; border-radius: 12px; font-size: 13px; font-weight: 600; }
.pill { display:inline-block; min-width: 54px; text-align:center; padding: 2px 8px; border-radius: 12px; font-size: 12px; font-weight: 700; }
.pass .pill, .pill.pass, .count.pass { background: var(--pass-bg); color: var(--pass); }
.warn .pill, .pill.warn, .count.warn { background: var(--warn-bg); color: var(--warn); }
.fail .pill, .pill.fail, .count.fail { background: var(--fail-bg); color: var(--fail); }
.skip .pill, .pill.skip, .count.skip { background: var(--skip-bg); color: var(--skip); }
table { width: 100%; border-collapse: collapse; background:#fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; vertical-align: top; padding: 9px 11px; border-bottom: 1px solid var(--line); }
th { background: #f6f8fa; font-size: 13px; color: var(--muted); font-weight: 600; }
tr.req.fail td:first-child { border-left: 5px solid var(--fail); }
tr.req.warn td:first-child { border-left: 5px solid var(--warn); }
tr.req.pass td:first-child { border-left: 5px solid var(--pass); }
tr.req.skip td:first-child { border-left: 5px solid var(--skip); }
.title { font-weight: 600; }
.needed { color: var(--muted); font-size: 13px; }
ul.ev { margin: 0; padding-left: 16px; font-size: 13px; }
ul.ev li { word-break: break-word; }
.sees { font-size: 13px; }
.code { display:inline-block; margin-top:4px; font-size: 12px; font-weight:600; background:#eaeef2; border-radius: 4px; padding: 1px 6px; }
.fix { font-size: 13px; }
td.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
details { margin-top: 10px; }
summary { cursor: pointer; font-weight: 600; }
.notes li { margin: 2px 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
@media print { body { background:#fff; } main { padding: 0; } details { display:block; } }
</style>
</head>
<body>
<main>
<h1>{{.PageTitle}}</h1>
<div class="meta">{{if .Site}}Site <b>{{.Site}}</b> · {{end}}{{if .Host}}From <b>{{.Host}}</b>{{end}}{{if .When}} · {{.When}}{{end}}{{if .Took}} · took {{.Took}}{{end}}{{if .Version}} · zoomprobe {{.Version}}{{end}}</div>

<section class="banner {{lower .Overall}}" id="summary">
  <div class="big">{{.Overall}}</div>
  <div>
    <div class="headline">{{.Headline}}</div>
    <div class="counts">
      <span class="count pass">{{.Summary.Pass}} passed</span>
      <span class="count warn">{{.Summary.Warn}} {{if eq .Summary.Warn 1}}warning{{else}}warnings{{end}}</span>
      <span class="count fail">{{.Summary.Fail}} failed</span>
      <span class="count skip">{{.Summary.Skip}} skipped</span>
    </div>
  </div>
</section>

{{with .Changes}}<h2>Since the previous audit</h2>
<section id="changes">
<p class="changes-summary">{{.Summary}}</p>
{{if .Requirements}}<table id="requirement-changes">
<thead><tr><th>Requirement</th><th style="width:90px">Before</th><th style="width:90px">Now</th></tr></thead>
<tbody>
{{range .Requirements}}<tr><td>{{.Title}}</td><td class="{{lower .Before}}"><span class="pill">{{.Before}}</span></td><td class="{{lower .After}}"><span class="pill">{{.After}}</span></td></tr>
{{end}}</tbody>
</table>{{end}}
{{if .NewFailures}}<h3>New failures</h3><ul class="ev" id="new-failures">{{range .NewFailures}}<li>{{.What}}</li>{{end}}</ul>{{end}}
{{if .Resolved}}<h3>Resolved</h3><ul class="ev" id="resolved">{{range .Resolved}}<li>{{.What}}</li>{{end}}</ul>{{end}}
{{if .NotChecked}}<h3>Not checked again</h3><ul class="ev" id="not-checked">{{range .NotChecked}}<li>{{.What}}</li>{{end}}</ul>{{end}}
</section>{{end}}

{{if .Facts}}<h2>What the audit learnt about this network</h2>
<table id="facts">
<tbody>
{{range .Facts}}<tr id="fact-{{.ID}}"><th style="width:32%">{{.Title}}</th><td class="mono">{{.Value}}</td></tr>
{{end}}</tbody>
</table>{{end}}

<h2>Zoom's requirements</h2>
<table id="requirements">
<thead><tr><th style="width:80px">Status</th><th style="width:24%">Requirement</th><th>Evidence</th><th style="width:24%">What users see</th><th style="width:24%">Remediation</th></tr></thead>
<tbody>
{{range .Requirements}}<tr class="req {{lower .Status}}" id="req-{{.ID}}">
<td><span class="pill">{{.Status}}</span></td>
<td><div class="title">{{.Title}}</div><div class="needed">{{.Needed}}</div></td>
<td><ul class="ev">{{range .Evidence}}<li>{{.}}</li>{{end}}</ul></td>
<td class="sees">{{if actionable .Status}}{{.UserSees}}{{if .ErrorCodes}}<div class="code">Error codes {{.ErrorCodes}}</div>{{end}}{{if .RoomsCode}}<div class="code">Zoom Rooms certificate code {{.RoomsCode}}</div>{{end}}{{else}}—{{end}}</td>
<td class="fix">{{if actionable .Status}}{{.Remediation}}{{else}}—{{end}}</td>
</tr>
{{end}}</tbody>
</table>

{{if .Notes}}<h2>Notes</h2>
<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}

{{if .Checks}}<details open>
<summary>Checks run ({{len .Checks}})</summary>
<table id="checks" style="margin-top:8px">
<thead><tr><th style="width:80px">Status</th><th>Check</th><th>Target</th><th>Result</th><th>Time</th></tr></thead>
<tbody>
{{range .Checks}}<tr class="{{lower .Status}}"><td><span class="pill">{{.Status}}</span></td><td>{{.Check}}</td><td class="mono">{{.Target}}</td><td>{{.Summary}}</td><td>{{ms .Duration}}</td></tr>
{{end}}</tbody>
</table>
</details>{{end}}

{{if .Findings}}<details>
<summary>Findings ({{len .Findings}})</summary>
<table id="findings" style="margin-top:8px">
<thead><tr><th>Kind</th><th>Reason</th><th>Source</th><th>Server</th><th>Rooms code</th><th>Remediation</th></tr></thead>
<tbody>
{{range .Findings}}<tr><td>{{.Kind}}</td><td class="mono">{{.Reason}}</td><td>{{.Source}}</td><td class="mono">{{server .}}</td><td>{{if .ZoomRoomsCode}}{{.ZoomRoomsCode}}{{end}}</td><td>{{.Remediation}}</td></tr>
{{end}}</tbody>
</table>
</details>{{end}}

<footer>Generated by zoomprobe audit. Zoom documents its client errors 5000-5004 and 104101-104118 as one family: the client cannot reach Zoom's servers because of a firewall, proxy, antivirus or web security gateway.</footer>
</main>
</body>
</html>
`))
