package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/safetext"
)

var mdBadge = map[Status]string{Pass: "✅ PASS", Warn: "⚠️ WARN", Fail: "❌ FAIL", Skip: "➖ SKIP"}

// Markdown writes the report as GitHub-flavoured Markdown (for a ticket or
// a wiki page).
func Markdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	title := r.Title
	if title == "" {
		title = "Zoom readiness report"
	}
	fmt.Fprintf(bw, "# %s\n\n", mdEscape(title))
	var meta []string
	if r.Site != "" {
		meta = append(meta, "Site **"+mdEscape(r.Site)+"**")
	}
	if r.Host != "" {
		meta = append(meta, "From **"+mdEscape(r.Host)+"**")
	}
	if g := r.generated(); g != "" {
		meta = append(meta, g)
	}
	if r.Duration > 0 {
		meta = append(meta, "took "+r.Duration.Round(100*time.Millisecond).String())
	}
	if r.Version != "" {
		meta = append(meta, "zoomprobe "+mdEscape(r.Version))
	}
	if len(meta) > 0 {
		fmt.Fprintf(bw, "%s\n\n", strings.Join(meta, " · "))
	}
	fmt.Fprintf(bw, "**%s — %s**\n\n", mdBadge[r.Overall], mdEscape(r.Headline))
	fmt.Fprintf(bw, "%d passed, %s, %d failed, %d skipped.\n\n", r.Summary.Pass, plural(r.Summary.Warn, "warning"), r.Summary.Fail, r.Summary.Skip)

	if c := r.Changes; c != nil {
		fmt.Fprintf(bw, "## Since the previous audit\n\n%s\n\n", mdEscape(c.Summary))
		if len(c.Requirements) > 0 {
			fmt.Fprintf(bw, "| Requirement | Before | Now |\n|---|---|---|\n")
			for _, q := range c.Requirements {
				fmt.Fprintf(bw, "| %s | %s | %s |\n", mdEscape(q.Title), mdBadge[q.Before], mdBadge[q.After])
			}
			fmt.Fprintln(bw)
		}
		for _, l := range []struct {
			label string
			list  []Failure
		}{{"New failures", c.NewFailures}, {"Resolved", c.Resolved}, {"Not checked again", c.NotChecked}} {
			if len(l.list) == 0 {
				continue
			}
			fmt.Fprintf(bw, "**%s**\n\n", l.label)
			for _, f := range l.list {
				fmt.Fprintf(bw, "- %s\n", mdEscape(f.What))
			}
			fmt.Fprintln(bw)
		}
	}
	if len(r.Facts) > 0 {
		fmt.Fprintf(bw, "## What the audit learnt about this network\n\n| Fact | Value |\n|---|---|\n")
		for _, f := range r.Facts {
			fmt.Fprintf(bw, "| %s | %s |\n", mdEscape(f.Title), mdEscape(f.Value))
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "## Requirements\n\n")
	fmt.Fprintf(bw, "| Status | Requirement | Evidence | What users see | Remediation |\n|---|---|---|---|---|\n")
	for _, q := range r.Requirements {
		sees, fix := "", ""
		if q.Status == Fail || q.Status == Warn {
			sees = mdEscape(q.UserSees)
			if q.ErrorCodes != "" {
				sees = strings.TrimPrefix(sees+"<br>Error codes: "+mdEscape(q.ErrorCodes), "<br>")
			}
			if q.RoomsCode != 0 {
				sees = strings.TrimPrefix(fmt.Sprintf("%s<br>Zoom Rooms certificate code **%d**", sees, q.RoomsCode), "<br>")
			}
			fix = mdEscape(q.Remediation)
		}
		ev := make([]string, len(q.Evidence))
		for i, e := range q.Evidence {
			ev[i] = mdEscape(e)
		}
		fmt.Fprintf(bw, "| %s | **%s**<br>%s | %s | %s | %s |\n", mdBadge[q.Status], mdEscape(q.Title), mdEscape(q.Needed), strings.Join(ev, "<br>"), sees, fix)
	}
	fmt.Fprintln(bw)
	if len(r.Notes) > 0 {
		fmt.Fprintf(bw, "## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "- %s\n", mdEscape(n))
		}
		fmt.Fprintln(bw)
	}
	if len(r.Checks) > 0 {
		fmt.Fprintf(bw, "## Checks run\n\n| Status | Check | Target | Result | Time |\n|---|---|---|---|---|\n")
		for _, c := range r.Checks {
			fmt.Fprintf(bw, "| %s | %s | `%s` | %s | %s |\n", c.Status, c.Check, strings.ReplaceAll(safetext.Escape(c.Target), "`", "'"), mdEscape(c.Summary), c.Duration.Round(time.Millisecond))
		}
		fmt.Fprintln(bw)
	}
	if len(r.Findings) > 0 {
		fmt.Fprintf(bw, "## Findings\n\n| Kind | Reason | Source | Server | Zoom Rooms code | Remediation |\n|---|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			server := f.SNI
			if f.Flow != nil && f.Flow.Server.IsValid() {
				server = strings.TrimSpace(fmt.Sprintf("%s %s:%d/%s", f.SNI, f.Flow.Server, f.Flow.ServerPort, f.Flow.Transport))
			}
			code := ""
			if f.ZoomRoomsCode != 0 {
				code = fmt.Sprint(f.ZoomRoomsCode)
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s |\n", f.Kind, f.Reason, mdEscape(f.Source), mdEscape(server), code, mdEscape(f.Remediation))
		}
	}
	return bw.Flush()
}

// mdEscape keeps table cells intact: no pipes, no newlines, no raw HTML,
// no control characters (a report is often read with cat or less).
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "'")
	return safetext.Escape(r.Replace(s))
}
