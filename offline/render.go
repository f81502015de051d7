package offline

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

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
	fmt.Fprintf(w, "%d finding(s):\n", len(r.Findings))
	for i, f := range r.Findings {
		writeFinding(w, i+1, f)
	}
	if r.DroppedFindings > 0 {
		fmt.Fprintf(w, "\n(%d more findings were not kept in memory)\n", r.DroppedFindings)
	}
	return nil
}

func writeFinding(w io.Writer, n int, f finding.Finding) {
	fmt.Fprintf(w, "\n%d. %s — %s (%s)\n", n, safetext.Escape(string(f.Kind)), safetext.Escape(string(f.Reason)), f.Time.UTC().Format("2006-01-02 15:04:05.000000Z"))
	if f.Flow != nil {
		fmt.Fprintf(w, "   flow:        %s %s:%d → %s:%d\n", f.Flow.Transport, f.Flow.Client, f.Flow.ClientPort, f.Flow.Server, f.Flow.ServerPort)
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "   %-12s %s\n", k+":", safetext.Escape(v))
		}
	}
	line("service", f.Service)
	line("sni", f.SNI)
	line("product", f.Product)
	if f.ZoomRoomsCode != 0 {
		line("zoom rooms", fmt.Sprintf("certificate code %d", f.ZoomRoomsCode))
	}
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
