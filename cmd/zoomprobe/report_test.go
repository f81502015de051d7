package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/exporters/report"
)

// Two sites audit against loopback servers (one with a closed media port),
// then `report` merges their JSON into the fleet view, the broken site first.
func TestReportMergesSites(t *testing.T) {
	dir := t.TempDir()
	good, broken := auditConfig(t, false), auditConfig(t, true)
	hq, branch := filepath.Join(dir, "hq.json"), filepath.Join(dir, "branch.json")
	if got := run([]string{"--config.file", good, "--site", "hq", "audit", "--audit.quiet", "--output.format", "json", "--output.file", hq}); got != 0 {
		t.Fatalf("audit hq: exit %d", got)
	}
	if got := run([]string{"--config.file", broken, "--site", "branch-7", "audit", "--audit.quiet", "--output.format", "json", "--output.file", branch}); got != 1 {
		t.Fatalf("audit branch: exit %d", got)
	}
	var one report.Report
	if b, err := os.ReadFile(branch); err != nil || json.Unmarshal(b, &one) != nil || one.Site != "branch-7" {
		t.Fatalf("the audit report does not name its site: %v %q", err, one.Site)
	}

	out := filepath.Join(dir, "fleet.json")
	if got := run([]string{"report", "--output.format", "json", "--output.file", out, hq, branch}); got != 1 {
		t.Fatalf("report: exit %d, want 1 (a site is not ready)", got)
	}
	var f report.Fleet
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &f) != nil {
		t.Fatalf("fleet JSON: %v\n%s", err, b)
	}
	if f.Overall != report.Fail || f.Summary.Sites != 2 || f.Summary.Ready != 1 || f.Summary.NotReady != 1 {
		t.Errorf("fleet %s %+v", f.Overall, f.Summary)
	}
	if len(f.Sites) != 2 || f.Sites[0].Site != "branch-7" || f.Sites[1].Site != "hq" {
		t.Fatalf("sites %+v, want branch-7 (worst) first", f.Sites)
	}
	if len(f.Sites[0].Problems) == 0 {
		t.Fatalf("branch-7 lists no problem")
	}
	// The closed media port fails at the branch (the loopback servers'
	// ports differ between the two configs, so the columns do too).
	id := f.Sites[0].Problems[0].ID
	if f.Sites[0].Status[id] != report.Fail || f.Sites[1].Overall != report.Pass {
		t.Errorf("%s: branch %s, hq overall %s", id, f.Sites[0].Status[id], f.Sites[1].Overall)
	}
	if !strings.Contains(f.Headline, "branch-7") {
		t.Errorf("headline %q does not name the site that is not ready", f.Headline)
	}

	for _, format := range []string{"text", "markdown", "html"} {
		out := filepath.Join(dir, "fleet."+format)
		if got := run([]string{"report", "--output.format", format, "--output.file", out, branch, hq}); got != 1 {
			t.Fatalf("%s: exit %d", format, got)
		}
		b, _ := os.ReadFile(out)
		if i, j := strings.Index(string(b), "branch-7"), strings.Index(string(b), "hq"); i < 0 || j < 0 || i > j {
			t.Errorf("%s: both sites, branch-7 first:\n%s", format, b)
		}
	}

	// Not a report, or not there: exit 2 with the file named.
	junk := filepath.Join(dir, "junk.json")
	os.WriteFile(junk, []byte(`{"hello": 1}`), 0o644)
	if got := run([]string{"report", junk}); got != 2 {
		t.Errorf("junk report: exit %d, want 2", got)
	}
}

// The newest report of a site counts; the older one is named in a note.
func TestMergeFleetKeepsNewest(t *testing.T) {
	old := &report.Report{Site: "a", Overall: report.Fail, Requirements: []report.Requirement{{ID: "tls", Title: "TLS", Status: report.Fail}}}
	newer := &report.Report{Site: "a", Overall: report.Pass, Requirements: []report.Requirement{{ID: "tls", Title: "TLS", Status: report.Pass}}}
	newer.Generated = old.Generated.Add(1)
	f := report.MergeFleet([]*report.Report{newer, old}, []string{"new.json", "old.json"}, newer.Generated)
	if len(f.Sites) != 1 || f.Sites[0].Overall != report.Pass || len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "old.json") {
		t.Errorf("sites %+v notes %q", f.Sites, f.Notes)
	}
}
