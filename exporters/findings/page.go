package findings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Link is an entry of the page's navigation bar.
type Link struct {
	Address, Text string
}

// Page serves the store as HTML and JSON.
type Page struct {
	Store   *Store
	Site    func() string // the site in force (config site:); nil: none
	Version string        // shown in the header
	Links   []Link        // other endpoints (metrics, readiness)
	API     string        // the JSON's path, linked from the page
	// Evidence is the path evidence files are served under, ending in "/"
	// ("": the page names a finding's file without a link).
	Evidence string
}

func (p *Page) snapshot() Snapshot {
	s := p.Store.Snapshot()
	if p.Site != nil {
		s.Site = p.Site()
	}
	return s
}

// The page has no script and loads nothing: the policy forbids both, so a
// string that escaped escaping still could not run.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "Use GET.", http.StatusMethodNotAllowed)
	return false
}

// HTML serves the findings page.
func (p *Page) HTML() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, struct {
			Snapshot
			Version  string
			Links    []Link
			API      string
			Evidence string
		}{p.snapshot(), p.Version, p.Links, p.API, p.Evidence}); err != nil {
			http.Error(w, "rendering the findings page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		securityHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	})
}

// JSON serves the same as the page, for scripts (/api/v1/findings).
func (p *Page) JSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		b, err := json.MarshalIndent(p.snapshot(), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		securityHeaders(w.Header())
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
}

// Visible writes control characters, bidirectional overrides and bytes that
// are not UTF-8 as Go escapes (\x1b, \u202e), so packet data cannot move
// the cursor of a terminal that shows a copy of the page, reorder what it
// displays, or hide in it. html/template escapes the HTML afterwards.
func Visible(s string) string {
	clean := true
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func clients(g Group) string {
	if g.DistinctClients == 0 {
		return "—"
	}
	if g.DistinctClientsEstimated {
		return "~" + strconv.Itoa(g.DistinctClients)
	}
	return strconv.Itoa(g.DistinctClients)
}

func endpoint(s Server) string {
	if s.Address == "" {
		return ""
	}
	host := s.Address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	out := host
	if s.Port != 0 {
		out += ":" + strconv.Itoa(int(s.Port))
	}
	if s.Transport != "" {
		out += "/" + s.Transport
	}
	return out
}

var pageTmpl = template.Must(template.New("findings").Funcs(template.FuncMap{
	"v":        Visible,
	"when":     when,
	"clients":  clients,
	"endpoint": endpoint,
	"title":    KindTitle,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>{{if .Groups}}{{len .Groups}} open · {{end}}zoomprobe findings{{if .Site}} — {{v .Site}}{{end}}</title>
<style>
:root { --crit:#cf222e; --crit-bg:#ffebe9; --warn:#9a6700; --warn-bg:#fff8c5; --ok:#1a7f37; --ok-bg:#dafbe1; --line:#d0d7de; --muted:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:#1f2328; margin:0; background:#f6f8fa; }
header { background:#24292f; color:#fff; padding: 10px 24px; display:flex; align-items:center; gap:18px; }
header .brand { font-weight:700; font-size:16px; }
header .site { background:#57606a; border-radius:10px; padding:1px 9px; font-size:13px; }
header nav { margin-left:auto; display:flex; gap:16px; font-size:13px; }
header a { color:#c9d1d9; text-decoration:none; } header a:hover { color:#fff; text-decoration:underline; }
main { padding: 18px 24px 28px; }
.banner { display:flex; align-items:center; gap:14px; padding: 14px 18px; border-radius: 8px; border:2px solid; background:#fff; margin-bottom:16px; }
.banner .big { font-size:20px; font-weight:700; }
.banner.crit { border-color:var(--crit); } .banner.crit .big { color:var(--crit); }
.banner.warn { border-color:var(--warn); } .banner.warn .big { color:var(--warn); }
.banner.ok { border-color:var(--ok); } .banner.ok .big { color:var(--ok); }
.count { padding: 2px 10px; border-radius: 12px; font-size: 13px; font-weight: 600; }
.count.critical { background:var(--crit-bg); color:var(--crit); } .count.warning { background:var(--warn-bg); color:var(--warn); }
.meta { color: var(--muted); font-size: 12.5px; margin-left:auto; text-align:right; }
table { width:100%; border-collapse: collapse; background:#fff; border:1px solid var(--line); table-layout: fixed; }
th, td { text-align:left; vertical-align:top; padding: 9px 12px; border-bottom:1px solid var(--line); overflow-wrap:anywhere; }
th { background:#f6f8fa; font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.3px; }
tbody.group { border-bottom: 2px solid var(--line); }
tbody.group tr.head td { border-bottom: none; padding-bottom: 4px; }
tbody.critical td.sev { border-left:6px solid var(--crit); }
tbody.warning td.sev { border-left:6px solid var(--warn); }
.pill { display:inline-block; padding: 2px 8px; border-radius: 12px; font-size: 11.5px; font-weight: 700; text-transform:uppercase; white-space:nowrap; }
tbody.critical .pill { background:var(--crit-bg); color:var(--crit); }
tbody.warning .pill { background:var(--warn-bg); color:var(--warn); }
.kind { font-weight:700; font-size:15px; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
.reason { color:#0550ae; }
.chips { margin-top:4px; display:flex; flex-wrap:wrap; gap:4px; }
.chip { font-size:11.5px; background:#eaeef2; border-radius:4px; padding:1px 6px; }
.chip.product { background:#ddf4ff; color:#0550ae; font-weight:600; }
.chip.rooms { background:#fbefff; color:#8250df; font-weight:600; }
.name { font-weight:600; font-size:13.5px; }
.addr { color:var(--muted); }
.muted { color:var(--muted); font-size:12.5px; white-space:nowrap; }
.src { white-space:normal; margin-top:4px; }
.num { font-size:18px; font-weight:700; }
div.detail { display:grid; grid-template-columns: 1fr 1fr; gap: 20px; padding-bottom: 4px; }
.label { font-size:11.5px; font-weight:600; color:var(--muted); text-transform:uppercase; letter-spacing:.3px; margin-bottom:2px; }
.text { font-size:13px; }
.evidence { margin-top:6px; font-size:12.5px; }
.empty { padding: 40px; text-align:center; color:var(--muted); background:#fff; border:1px solid var(--line); border-radius:8px; }
footer { color:var(--muted); font-size:12px; margin-top:14px; }
</style>
</head>
<body>
<header>
<span class="brand">zoomprobe</span>{{if .Site}}<span class="site" id="site">{{v .Site}}</span>{{end}}
<span>What breaks Zoom on this network, now</span>
<nav><a href="/findings">Findings</a>{{if .API}}<a href="{{.API}}">JSON</a>{{end}}{{range .Links}}<a href="{{.Address}}">{{.Text}}</a>{{end}}</nav>
</header>
<main>
{{if .Groups}}<section class="banner {{if .Summary.Critical}}crit{{else}}warn{{end}}" id="summary">
<span class="big">{{len .Groups}} {{if eq (len .Groups) 1}}problem{{else}}problems{{end}} now</span>
{{if .Summary.Critical}}<span class="count critical">{{.Summary.Critical}} critical</span>{{end}}
{{if .Summary.Warning}}<span class="count warning">{{.Summary.Warning}} {{if eq .Summary.Warning 1}}warning{{else}}warnings{{end}}</span>{{end}}
<span class="meta">{{when .Generated}} UTC{{if .Version}}<br>zoomprobe {{.Version}}{{end}}</span>
</section>
<table id="findings">
<colgroup><col style="width:112px"><col style="width:26%"><col><col style="width:218px"><col style="width:92px"></colgroup>
<thead><tr><th>Severity</th><th>Problem</th><th>Server</th><th>Seen (UTC)</th><th>Clients</th></tr></thead>
{{range .Groups}}<tbody class="group {{.Severity}}" data-kind="{{v (print .Kind)}}" data-reason="{{v (print .Reason)}}">
<tr class="head">
<td class="sev" rowspan="2"><span class="pill">{{.Severity}}</span></td>
<td><div class="kind">{{v (title .Kind)}}</div><div class="mono reason">{{v (print .Reason)}}</div>
<div class="chips">{{if .Service}}<span class="chip">{{v .Service}}</span>{{end}}{{if .Product}}<span class="chip product">{{v .Product}}</span>{{end}}{{if .ZoomRoomsCode}}<span class="chip rooms">Zoom Rooms code {{.ZoomRoomsCode}}</span>{{end}}{{if .Confidence}}<span class="chip">{{v .Confidence}} confidence</span>{{end}}</div></td>
<td>{{if .Server.Name}}<div class="mono name">{{v .Server.Name}}</div>{{end}}<div class="mono addr">{{endpoint .Server}}</div></td>
<td><span class="num">{{.Count}}×</span><div class="muted">first {{when .FirstSeen}}</div><div class="muted">last {{when .LastSeen}}</div></td>
<td><span class="num">{{clients .}}</span></td>
</tr>
<tr class="detail"><td colspan="4"><div class="detail">
<div><div class="label">What users see</div><div class="text">{{if .UserSees}}{{v .UserSees}}{{else}}—{{end}}</div></div>
<div><div class="label">Remediation</div><div class="text">{{if .Remediation}}{{v .Remediation}}{{else}}—{{end}}</div>
{{if .EvidenceFile}}<div class="evidence">Evidence: {{if $.Evidence}}<a class="evidence-file mono" href="{{$.Evidence}}{{.EvidenceFile}}" download>{{v .EvidenceFile}}</a>{{else}}<code class="evidence-file">{{v .EvidenceFile}}</code>{{end}}</div>{{end}}
<div class="muted src">Reported by {{range $i, $s := .Sources}}{{if $i}}, {{end}}{{v $s}}{{end}}{{if and .Site (ne .Site $.Site)}} · site {{v .Site}}{{end}}</div></div>
</div></td></tr>
</tbody>
{{end}}</table>
{{else}}<section class="banner ok" id="summary"><span class="big">Nothing broken</span><span>No finding in the last {{.ResolveAfter}}.</span><span class="meta">{{when .Generated}} UTC{{if .Version}}<br>zoomprobe {{.Version}}{{end}}</span></section>
<div class="empty">Findings appear here as the probe sees them: blocked ports, resets, TLS interception, proxies, DNS filtering, clock skew.</div>{{end}}
<footer>A problem leaves this page when no finding of it came for {{.ResolveAfter}}{{if or .ResolvedGroups .EvictedGroups}} ({{.ResolvedGroups}} resolved{{if .EvictedGroups}}, {{.EvictedGroups}} dropped for room: raise findings.max_bytes{{end}} since start){{end}}. Times are packet times. Clients are counted without keeping addresses; a ~ marks an estimate. The page refreshes every minute.</footer>
</main>
</body>
</html>
`))
