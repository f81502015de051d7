package daemon

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The site named in the config is exported as zoomprobe_site_info and
// written on every event log line.
func TestSiteNamedInMetricsAndEventLog(t *testing.T) {
	pcap, n := scenarioFile(t, "tls-fortigate")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zoomprobe.yml")
	events := filepath.Join(dir, "events.jsonl")
	cfg := "site: branch-7\ncapture:\n  workers: 1\nprobes:\n  enabled: false\ntls:\n  system_roots: false\nevent_log:\n  path: " + events + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, srv := startDaemon(t, cfgPath, fileInputs(pcap))
	body := waitMetric(t, srv.URL+"/metrics", `zoomprobe_packets_total{interface="file"}`, float64(n))
	if !strings.Contains(body, `zoomprobe_site_info{site="branch-7"} 1`) {
		t.Errorf("/metrics lacks zoomprobe_site_info for branch-7")
	}
	var lines []map[string]any
	for deadline := time.Now().Add(30 * time.Second); len(lines) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines = readEvents(t, events)
	}
	if len(lines) == 0 {
		t.Fatal("no finding in the event log")
	}
	for _, l := range lines {
		if l["site"] != "branch-7" {
			t.Errorf("event log line without the site: %v", l)
		}
	}
}

func readEvents(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
