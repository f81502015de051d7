package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/evidence/evidencetest"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/finding"
)

// audit --evidence.dir captures its own checks' packets: in a namespace, a
// TCP check to a closed port is refused, and the file the report names holds
// the check's SYN and the RST.
func TestAuditCapturesItsChecks(t *testing.T) {
	probeNS, _ := quietNamespace(t)
	bin := buildDaemon(t)
	dir := filepath.Join(t.TempDir(), "evidence")
	out, err := exec.Command("ip", "netns", "exec", probeNS, bin, "audit", "--audit.check", "tcp", "--audit.target", "192.0.2.1:443",
		"--audit.quiet", "--output.format", "json", "--evidence.dir", dir).Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("audit: %v: %s", err, out)
	}
	var rep report.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	var name string
	for _, c := range rep.Checks {
		if c.Check == "tcp" && c.Status != report.Pass {
			name, _ = c.Evidence[evidence.FileKey].(string)
		}
	}
	if name == "" {
		t.Fatalf("no failed tcp check names an evidence file: %+v, notes %q", rep.Checks, rep.Notes)
	}
	x := &finding.Finding{Flow: &finding.Flow{Transport: "tcp"}}
	f, err := evidencetest.Read(filepath.Join(dir, name), x)
	if err != nil {
		t.Fatal(err)
	}
	var syn, rst bool
	for _, p := range f.Packets {
		if !p.IsTCP() {
			continue
		}
		syn = syn || p.TCPFlags&decode.TCPSyn != 0 && p.DstPort == 443 && p.Dst.String() == "192.0.2.1"
		rst = rst || p.TCPFlags&decode.TCPRst != 0 && p.SrcPort == 443 && p.Src.String() == "192.0.2.1"
	}
	if !syn || !rst {
		t.Errorf("%s: SYN %v, RST %v among %d packets (%s)", name, syn, rst, len(f.Packets), f.Comment)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}
