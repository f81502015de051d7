package offline

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/safetext"
)

// WriteJSON writes findings one JSON object a line (as the event log does),
// then one line holding the summary: {"files": [...], "packets": N, "flows": [...],
// "flows_by_service": {...}, "warnings": [...] when a file could not be read to its end}.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, f := range r.Findings {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return enc.Encode(struct {
		Files          []string                  `json:"files"`
		Packets        uint64                    `json:"packets"`
		Flows          []Flow                    `json:"flows"`
		FlowsByService map[string]map[string]int `json:"flows_by_service"`
		UnlistedFlows  int                       `json:"unlisted_flows,omitempty"`
		Warnings       []string                  `json:"warnings,omitempty"`
	}{r.Files, r.Packets, r.Flows, r.FlowsByService, r.UnlistedFlows, r.Warnings})
}

// WriteText writes a summary a person can read: Zoom flows by service, then
// every finding with its evidence.
func (r *Result) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Read %d packets from %s.\n", r.Packets, safetext.Escape(strings.Join(r.Files, ", ")))
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", safetext.Escape(warn))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Zoom flows by service:")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tTCP\tUDP")
	services := make([]string, 0, len(r.FlowsByService))
	for s := range r.FlowsByService {
		services = append(services, s)
	}
	sort.Strings(services)
	zoomFlows := 0
	for _, s := range services {
		if s == "none" {
			continue
		}
		t, u := r.FlowsByService[s]["tcp"], r.FlowsByService[s]["udp"]
		zoomFlows += t + u
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", safetext.Escape(s), t, u)
	}
	if n := r.FlowsByService["none"]; n != nil {
		fmt.Fprintf(tw, "  (not Zoom)\t%d\t%d\n", n["tcp"], n["udp"])
	}
	tw.Flush()
	if zoomFlows == 0 {
		fmt.Fprintln(w, "  No Zoom flow was seen.")
	}
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No finding: nothing in these captures breaks Zoom.")
		return nil
	}
	groups := GroupFindings(r.Findings)
	fmt.Fprintf(w, "%s in %s (first time, count, distinct clients; the first finding's evidence below each):\n", plural(len(r.Findings), "finding"), plural(len(groups), "group"))
	for i := range groups {
		writeGroup(w, i+1, &groups[i])
	}
	if r.DroppedFindings > 0 {
		fmt.Fprintf(w, "\n(%d more findings were not kept in memory)\n", r.DroppedFindings)
	}
	return nil
}

const timeFormat = "2006-01-02 15:04:05.000000Z"

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// writeGroup writes one line for the group, then the first finding's
// details, indented.
func writeGroup(w io.Writer, n int, g *Group) {
	head := fmt.Sprintf("%s — %s", g.Kind, g.Reason)
	if g.Service != "" {
		head += " · " + g.Service
	}
	if g.Server.IsValid() {
		head += fmt.Sprintf(" · %s %s", g.Transport, netip.AddrPortFrom(g.Server, g.ServerPort))
	}
	if g.SNI != "" {
		head += " · sni " + g.SNI
	} else if n, ok := g.Example.Evidence["server_name"].(string); ok {
		head += " · name " + n + " (" + fmt.Sprint(g.Example.Evidence["server_name_source"]) + ")"
	}
	if g.Product != "" {
		head += " · " + g.Product
	}
	when := g.First.UTC().Format(timeFormat)
	if !g.Last.Equal(g.First) {
		last := g.Last.UTC().Format(timeFormat)
		if last[:11] == when[:11] {
			last = last[11:] // same day
		}
		when += " to " + last
	}
	fmt.Fprintf(w, "\n%d. %s\n   %s, %s, %s\n", n, safetext.Escape(head), when, plural(g.Count, "time"), plural(g.Clients, "client"))
	writeFindingDetails(w, &g.Example, g.Count > 1)
}

func writeFindingDetails(w io.Writer, f *finding.Finding, repeated bool) {
	if f.Flow != nil {
		label := "flow:"
		if repeated {
			label = "first flow:"
		}
		fmt.Fprintf(w, "   %-12s %s %s → %s\n", label, f.Flow.Transport, netip.AddrPortFrom(f.Flow.Client, f.Flow.ClientPort), netip.AddrPortFrom(f.Flow.Server, f.Flow.ServerPort))
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "   %-12s %s\n", k+":", safetext.Escape(v))
		}
	}
	if f.ZoomRoomsCode != 0 {
		line("zoom rooms", fmt.Sprintf("certificate code %d", f.ZoomRoomsCode))
	}
	line("confidence", f.Confidence)
	line("users see", f.UserSees)
	line("fix", f.Remediation)
	if len(f.Evidence) > 0 {
		keys := make([]string, 0, len(f.Evidence))
		for k := range f.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w, "   evidence:")
		for _, k := range keys {
			fmt.Fprintf(w, "     %s: %s\n", safetext.Escape(k), safetext.Escape(fmt.Sprint(f.Evidence[k])))
		}
	}
}

// maxCell bounds a table cell of network text (an issuer's whole DN).
const maxCell = 48

// WriteFlows writes the watched flows as a table, one a line, with how each
// was identified (ID), what the analyzers said of it (ok, or the kind/reason
// of its findings), and its packets and bytes each way.
func (r *Result) WriteFlows(w io.Writer) error {
	fmt.Fprintf(w, "%s:\n", plural(len(r.Flows), "watched flow"))
	if len(r.Flows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  FIRST (UTC)\tPROTO\tCLIENT\tSERVER\tSERVICE\tID\tNAME\tTLS\tISSUER\tVERDICT\tPKTS C→S/S→C\tBYTES C→S/S→C")
	for i := range r.Flows {
		fl := &r.Flows[i]
		name := fl.Name
		if fl.SNI != "" {
			name = fl.SNI
		}
		verdict := "ok"
		if len(fl.Verdicts) > 0 {
			verdict = strings.Join(fl.Verdicts, ",")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d/%d\n",
			fl.First.UTC().Format("2006-01-02 15:04:05.000"), fl.Transport,
			netip.AddrPortFrom(fl.Client, fl.ClientPort), netip.AddrPortFrom(fl.Server, fl.ServerPort),
			cell(fl.Service), cell(fl.Source), cell(name), cell(fl.TLSVersion), cell(fl.Issuer), safetext.Escape(verdict),
			fl.Packets[0], fl.Packets[1], fl.Bytes[0], fl.Bytes[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.UnlistedFlows > 0 {
		fmt.Fprintf(w, "  (%d more watched flows were counted but not listed)\n", r.UnlistedFlows)
	}
	return nil
}

// cell is network text made safe for one table cell: escaped, bounded,
// "-" when empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = safetext.Escape(s)
	if n := utf8.RuneCountInString(s); n > maxCell {
		s = string([]rune(s)[:maxCell-1]) + "…"
	}
	return s
}
