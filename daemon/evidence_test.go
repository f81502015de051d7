package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/evidence/evidencetest"
	"github.com/zoomprobe/zoomprobe/finding"
)

// With evidence.dir set, the daemon writes one pcapng per finding; the event
// log line and the findings API name it, and it reads back with the packets
// behind the finding.
func TestDaemonWritesEvidence(t *testing.T) {
	pcap, _ := scenarioFile(t, "tls-client-alert")
	tmp := t.TempDir()
	evDir := filepath.Join(tmp, "evidence")
	events := filepath.Join(tmp, "events.jsonl")
	cfg := writeFile(t, tmp, "zoomprobe.yml", fmt.Sprintf("capture:\n  workers: 2\nprobes:\n  enabled: false\nevent_log:\n  path: %q\nevidence:\n  dir: %q\n%s",
		events, evDir, trustTestPKI(t)))
	_, srv := startDaemon(t, cfg, fileInputs(pcap))
	body := waitMetric(t, srv.URL+"/metrics", "zoomprobe_evidence_files_written_total", 2)
	if v := metricValue(body, "zoomprobe_evidence_write_errors_total"); v != 0 {
		t.Errorf("write errors %v", v)
	}
	if v := metricValue(body, "zoomprobe_evidence_dir_bytes"); v <= 0 {
		t.Errorf("dir bytes %v", v)
	}
	fh, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	n := 0
	for sc.Scan() {
		var x finding.Finding
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		name, _ := x.Evidence[evidence.FileKey].(string)
		if name == "" {
			t.Errorf("%s/%s: the event log line names no evidence file", x.Kind, x.Reason)
			continue
		}
		if _, err := evidencetest.Check(filepath.Join(evDir, name), &x); err != nil {
			t.Error(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d findings with evidence in the event log, want 2", n)
	}
	for _, g := range apiFindings(t, srv.URL).Groups {
		if g.EvidenceFile == "" {
			t.Errorf("group %s/%s has no evidence file", g.Kind, g.Reason)
		}
	}
}
