package testbed

import (
	"context"
	"path/filepath"
	"testing"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/evidence/evidencetest"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/offline"
)

// daemonConfig is the daemon's configuration for test-bed captures: the
// bed's "Internet" is watched, the test Zoom root is the only trusted and
// expected root, and the reachability timers are short enough for captures
// of a few seconds.
func daemonConfig(t *testing.T) *config.Config {
	t.Helper()
	root, _, err := ZoomPKI()
	if err != nil {
		t.Fatal(err)
	}
	yml, err := DaemonConfigYAML(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("test-bed daemon config: %v\n%s", err, yml)
	}
	return cfg
}

// observeDaemon runs the daemon's offline analysis over the scenario's
// capture and requires the expected metric values and exactly the expected
// findings.
func observeDaemon(t *testing.T, obs *Observation) {
	t.Helper()
	evDir := t.TempDir()
	res, err := offline.Analyze(context.Background(), daemonConfig(t), []string{obs.Pcap}, offline.Options{EvidenceDir: evDir})
	if err != nil {
		t.Fatalf("analyze %s: %v", obs.Pcap, err)
	}
	checkEvidence(t, obs.Scenario.Name, evDir, res.Findings)
	if err := CheckMetrics(res.Gatherer(), obs.Scenario.Expect.Metrics); err != nil {
		t.Errorf("scenario %s: daemon: %v", obs.Scenario.Name, err)
	}
	err = MatchFindings(res.Findings, obs.Scenario.Expect.Findings)
	known := obs.Scenario.Expect.KnownIssue
	switch {
	case err == nil && known != "":
		t.Logf("scenario %s: the daemon now reports exactly the expected findings; remove KnownIssue %q", obs.Scenario.Name, known)
	case err != nil:
		for _, f := range res.Findings {
			t.Logf("  reported: %s/%s service=%s sni=%s product=%s code=%d flow=%+v evidence=%v", f.Kind, f.Reason, f.Service, f.SNI, f.Product, f.ZoomRoomsCode, f.Flow, f.Evidence)
		}
		if known != "" {
			t.Skipf("scenario %s: daemon differs, known issue (%s): %v", obs.Scenario.Name, known, err)
		}
		t.Errorf("scenario %s: daemon: %v", obs.Scenario.Name, err)
	}
}

// checkEvidence requires an evidence file for every finding about a flow,
// that reads back with the packets proving it.
func checkEvidence(t *testing.T, scenario, dir string, fs []finding.Finding) {
	t.Helper()
	for i := range fs {
		x := &fs[i]
		if x.Flow == nil {
			continue
		}
		name, _ := x.Evidence[evidence.FileKey].(string)
		if name == "" {
			t.Errorf("scenario %s: %s/%s names no evidence file", scenario, x.Kind, x.Reason)
			continue
		}
		f, err := evidencetest.Check(filepath.Join(dir, name), x)
		if err != nil {
			t.Errorf("scenario %s: evidence: %v", scenario, err)
			continue
		}
		t.Logf("scenario %s: %s/%s: %s, %d packets", scenario, x.Kind, x.Reason, name, len(f.Packets))
	}
}
