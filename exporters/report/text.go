package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/safetext"
)

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiYel   = "\x1b[33m"
	textWidth = 100
)

func statusColor(s Status) string {
	switch s {
	case Pass:
		return ansiGreen
	case Warn:
		return ansiYel
	case Fail:
		return ansiRed
	}
	return ansiDim
}

// Text writes the report for a terminal; color adds ANSI colours (use it
// only when writing to a TTY).
func Text(w io.Writer, r *Report, color bool) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	// Every string below may hold text from the network (names, headers,
	// certificate subjects): esc keeps its control characters off the
	// terminal; only paint's own codes reach it.
	esc := safetext.Escape
	title := r.Title
	if title == "" {
		title = "Zoom readiness report"
	}
	fmt.Fprintln(bw, paint(ansiBold, esc(title)))
	var meta []string
	if r.Site != "" {
		meta = append(meta, "site "+r.Site)
	}
	if r.Host != "" {
		meta = append(meta, "from "+esc(r.Host))
	}
	if g := r.generated(); g != "" {
		meta = append(meta, g)
	}
	if r.Duration > 0 {
		meta = append(meta, "took "+r.Duration.Round(100*time.Millisecond).String())
	}
	if r.Version != "" {
		meta = append(meta, "zoomprobe "+esc(r.Version))
	}
	if len(meta) > 0 {
		fmt.Fprintln(bw, paint(ansiDim, strings.Join(meta, " · ")))
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "%s  %s\n", paint(ansiBold+statusColor(r.Overall), "["+string(r.Overall)+"]"), paint(ansiBold, esc(r.Headline)))
	fmt.Fprintf(bw, "%d passed, %s, %d failed, %d skipped\n\n", r.Summary.Pass, plural(r.Summary.Warn, "warning"), r.Summary.Fail, r.Summary.Skip)
	if c := r.Changes; c != nil {
		writeWrapped(bw, "", "  ", paint(ansiBold, esc(c.Summary)), textWidth)
		for _, q := range c.Requirements {
			fmt.Fprintf(bw, "  %s → %s  %s\n", paint(statusColor(q.Before), fmt.Sprintf("%-4s", q.Before)), paint(statusColor(q.After), fmt.Sprintf("%-4s", q.After)), esc(q.Title))
		}
		for _, l := range []struct {
			label string
			list  []Failure
		}{{"new failure: ", c.NewFailures}, {"resolved: ", c.Resolved}, {"not checked again: ", c.NotChecked}} {
			for _, f := range l.list {
				writeWrapped(bw, "  "+l.label, "    ", esc(f.What), textWidth)
			}
		}
		fmt.Fprintln(bw)
	}
	if len(r.Facts) > 0 {
		fmt.Fprintln(bw, paint(ansiBold, "What the audit learnt about this network"))
		for _, f := range r.Facts {
			writeWrapped(bw, "  "+esc(f.Title)+": ", "    ", esc(f.Value), textWidth)
		}
		fmt.Fprintln(bw)
	}

	for _, q := range r.Requirements {
		fmt.Fprintf(bw, "%s  %s\n", paint(ansiBold+statusColor(q.Status), fmt.Sprintf("%-4s", q.Status)), paint(ansiBold, esc(q.Title)))
		const indent = "      "
		if q.Needed != "" {
			writeWrapped(bw, indent, indent, paint(ansiDim, esc(q.Needed)), textWidth)
		}
		for _, e := range q.Evidence {
			writeWrapped(bw, indent+"- ", indent+"  ", esc(e), textWidth)
		}
		if q.Status == Fail || q.Status == Warn {
			if q.UserSees != "" {
				writeWrapped(bw, indent+"Users see: ", indent+"           ", esc(q.UserSees), textWidth)
			}
			if q.ErrorCodes != "" {
				writeWrapped(bw, indent+"Error codes: ", indent+"             ", esc(q.ErrorCodes), textWidth)
			}
			if q.RoomsCode != 0 {
				fmt.Fprintf(bw, "%sZoom Rooms certificate code: %d\n", indent, q.RoomsCode)
			}
			if q.Remediation != "" {
				writeWrapped(bw, indent+paint(ansiBold, "Fix: "), indent+"     ", esc(q.Remediation), textWidth)
			}
		}
		fmt.Fprintln(bw)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(bw, paint(ansiBold, "Notes"))
		for _, n := range r.Notes {
			writeWrapped(bw, "  - ", "    ", esc(n), textWidth)
		}
		fmt.Fprintln(bw)
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(bw, paint(ansiBold, fmt.Sprintf("Checks run (%d)", len(r.Checks))))
		tw := 0
		for _, c := range r.Checks {
			tw = max(tw, len(esc(c.Target)))
		}
		tw = min(tw, 40)
		for _, c := range r.Checks {
			fmt.Fprintf(bw, "  %s %-5s %-*s %s\n", paint(statusColor(c.Status), fmt.Sprintf("%-4s", c.Status)), esc(c.Check), tw, esc(c.Target), esc(c.Summary))
		}
		fmt.Fprintln(bw)
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(bw, paint(ansiBold, fmt.Sprintf("Findings (%d)", len(r.Findings))))
		for _, f := range r.Findings {
			line := fmt.Sprintf("%s %s (%s)", f.Kind, f.Reason, f.Source)
			if f.SNI != "" {
				line += " " + f.SNI
			}
			line = esc(line)
			if f.Flow != nil && f.Flow.Server.IsValid() {
				line += fmt.Sprintf(" %s:%d/%s", f.Flow.Server, f.Flow.ServerPort, f.Flow.Transport)
			}
			if f.ZoomRoomsCode != 0 {
				line += fmt.Sprintf(", Zoom Rooms code %d", f.ZoomRoomsCode)
			}
			if f.Product != "" {
				line += ", product " + esc(f.Product)
			}
			writeWrapped(bw, "  - ", "    ", line, textWidth)
		}
	}
	writeInterceptionCAs(bw, r, paint)
	return bw.Flush()
}

// writeInterceptionCAs prints, once each, the issuing certificates the
// checks that saw interception were sent (evidence issuer_pem), to hand to
// whoever runs the interception.
func writeInterceptionCAs(w io.Writer, r *Report, paint func(code, s string) string) {
	seen := map[string]bool{}
	for _, c := range r.Checks {
		p, _ := c.Evidence["issuer_pem"].(string)
		if p == "" || seen[p] {
			continue
		}
		if len(seen) == 0 {
			fmt.Fprintln(w)
			fmt.Fprintln(w, paint(ansiBold, "Certificate of the intercepting CA, as the server sent it"))
		}
		seen[p] = true
		issuer, _ := c.Evidence["issuer"].(string)
		fmt.Fprintf(w, "  %s %s: issuer %s\n", safetext.Escape(c.Check), safetext.Escape(c.Target), safetext.Escape(issuer))
		for _, line := range strings.Split(strings.TrimRight(p, "\n"), "\n") {
			fmt.Fprintln(w, safetext.Escape(line))
		}
	}
}

// writeWrapped writes s after first, wrapping at width with rest as indent.
func writeWrapped(w io.Writer, first, rest, s string, width int) {
	words := strings.Fields(s)
	line := first
	n := visibleLen(first)
	start := true
	for _, word := range words {
		if !start && n+1+visibleLen(word) > width {
			fmt.Fprintln(w, line)
			line, n, start = rest, visibleLen(rest), true
		}
		if !start {
			line += " "
			n++
		}
		line += word
		n += visibleLen(word)
		start = false
	}
	fmt.Fprintln(w, line)
}

// visibleLen is the length without ANSI escapes.
func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case r == '\x1b':
			esc = true
		case esc && r == 'm':
			esc = false
		case !esc:
			n++
		}
	}
	return n
}
