package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
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
	_, page := get(t, srv.URL+"/findings")
	for _, g := range apiFindings(t, srv.URL).Groups {
		if g.EvidenceFile == "" {
			t.Errorf("group %s/%s has no evidence file", g.Kind, g.Reason)
			continue
		}
		// The page links the file, and the daemon serves it as written.
		if !strings.Contains(page, `href="/evidence/`+g.EvidenceFile+`"`) {
			t.Errorf("the findings page does not link %s", g.EvidenceFile)
		}
		code, served := get(t, srv.URL+"/evidence/"+g.EvidenceFile)
		want, err := os.ReadFile(filepath.Join(evDir, g.EvidenceFile))
		if err != nil || code != 200 || served != string(want) {
			t.Errorf("GET /evidence/%s: %d, %d bytes; the file has %d (%v)", g.EvidenceFile, code, len(served), len(want), err)
		}
	}
	// Nothing else under (or above) the directory is served.
	os.WriteFile(filepath.Join(evDir, ".hidden.pcapng"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(tmp, "secret.pcapng"), []byte("x"), 0o600)
	for _, path := range []string{"/evidence/.hidden.pcapng", "/evidence/..%2Fsecret.pcapng", "/evidence/%2e%2e/secret.pcapng", "/evidence/events.jsonl", "/evidence/"} {
		if code, _ := get(t, srv.URL+path); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}

	// A reload that builds a new engine (workers) keeps the directory's Dir.
	writeFile(t, tmp, "zoomprobe.yml", fmt.Sprintf("capture:\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: %q\nevidence:\n  dir: %q\n%s",
		events, evDir, trustTestPKI(t)))
	if code, body := post(t, srv.URL+"/-/reload"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	// The new engine's registry shows the same Dir's counters (a new Dir
	// would start from zero; the new engine reads no packet twice).
	_, after := get(t, srv.URL+"/metrics")
	if metricValue(after, "zoomprobe_evidence_files_written_total") != 2 || metricValue(after, "zoomprobe_evidence_dir_bytes") != metricValue(body, "zoomprobe_evidence_dir_bytes") {
		t.Errorf("after a reload: %s", grepZoomprobe(after))
	}
}

// Live: the daemon captures with AF_PACKET on a veth, two workers behind the
// dispatcher (frames copied into batches); a SYN to a Zoom address with no
// listener is refused, and the evidence file holds the SYN and the RST.
func TestLiveEvidence(t *testing.T) {
	ns, _ := netns(t)
	inputs := func(cfg *config.Config) ([]engine.Input, error) {
		opts := LiveOptions(cfg, nil)
		return []engine.Input{{Label: "v0", Live: true, Open: func() (src capture.Source, err error) {
			err = capture.InNamespace(ns, func() error {
				src, err = capture.OpenLive("v0", opts)
				return err
			})
			return src, err
		}}}, nil
	}
	tmp := t.TempDir()
	evDir := filepath.Join(tmp, "evidence")
	events := filepath.Join(tmp, "events.jsonl")
	cfg := writeFile(t, tmp, "zoomprobe.yml", fmt.Sprintf("probes:\n  enabled: false\ncapture:\n  workers: 2\nflows:\n  embryonic_timeout: 1s\n  closed_timeout: 1s\nevent_log:\n  path: %q\nevidence:\n  dir: %q\n", events, evDir))
	_, srv := startDaemon(t, cfg, inputs)
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_capture_up{interface="v0"}`, 1)
	err := capture.InNamespace(ns, func() error {
		c, err := net.DialTimeout("tcp4", zoomAddr+":443", 2*time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s:443 accepted a connection", zoomAddr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitMetric(t, srv.URL+"/metrics", "zoomprobe_evidence_files_written_total", 1)
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var x finding.Finding
	if err := json.Unmarshal(bytes.TrimSpace(b), &x); err != nil || x.Reason != finding.ReasonConnectionRefused {
		t.Fatalf("event log %q (%v): want one connection_refused finding", b, err)
	}
	name, _ := x.Evidence[evidence.FileKey].(string)
	f, err := evidencetest.Check(filepath.Join(evDir, name), &x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d packets", name, len(f.Packets))
}
