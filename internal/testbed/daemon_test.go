package testbed

import (
	"context"
	"testing"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/config"
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
	res, err := offline.Analyze(context.Background(), daemonConfig(t), []string{obs.Pcap}, offline.Options{})
	if err != nil {
		t.Fatalf("analyze %s: %v", obs.Pcap, err)
	}
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
