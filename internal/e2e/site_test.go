package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/daemon"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/internal/probetest"
	"github.com/zoomprobe/zoomprobe/internal/testbed"
)

// site is one live test bed with the real daemon capturing its mirror port
// and serving /metrics on loopback: one "branch office" for Prometheus.
type site struct {
	name    string
	bed     *testbed.Bed
	d       *daemon.Daemon
	srv     *httptest.Server
	events  string // the daemon's event log (JSON lines)
	runs    atomic.Int64
	mu      sync.Mutex
	results map[string]int // client step outcomes, for the log
}

// Target is the host:port Prometheus scrapes.
func (s *site) Target() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// siteOptions choose the middlebox and the active checks of a site.
type siteOptions struct {
	name   string
	router []testbed.Behaviour
	// probes returns the YAML of the probes: section (loopback targets
	// only); nil disables the active checks.
	probes func(t *testing.T, bed *testbed.Bed) string
	// box: the router is a box captured on both sides (mon0 inside, mon1
	// outside after its NAT), configured as capture.boxes "fw1".
	box bool
}

// daemonYAML is the daemon's configuration on a test bed: the bed's
// "Internet" is watched, the test Zoom root is the only trusted root (so the
// clean path is clean), and the timers are short so verdicts come within
// seconds of the client giving up. Probes are off unless the site gives
// loopback targets: their defaults are real Zoom hosts.
func daemonYAML(t *testing.T, dir string, bed *testbed.Bed, probes string, box bool) string {
	t.Helper()
	common, err := testbed.DaemonConfigYAML(dir, bed.ZoomCA)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 2
	if probes == "" {
		probes = "  enabled: false\n"
	}
	boxes := ""
	if box {
		boxes = fmt.Sprintf("  interfaces: [%s, %s]\n  boxes:\n    - {name: fw1, inside: %s, outside: %s}\n",
			testbed.ProbeIf, testbed.ProbeOutsideIf, testbed.ProbeIf, testbed.ProbeOutsideIf)
	}
	return fmt.Sprintf(`capture:
  workers: %d
  retry_interval: 200ms
%sflows:
  embryonic_timeout: 2s
  udp_timeout: 1s
  tcp_timeout: 5s
  closed_timeout: 1s
%sevent_log:
  path: %q
evidence:
  dir: %q
probes:
%s`, workers, boxes, common, filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "evidence"), probes)
}

// startSite builds a bed, applies the router's behaviours and starts the
// daemon in this process, capturing the probe namespace's mon0.
func startSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	bed, err := testbed.New(t, testbed.Options{OutsideMirror: o.box})
	if err != nil {
		t.Fatalf("site %s: test bed: %v", o.name, err)
	}
	for _, bh := range o.router {
		if err := bed.Apply(bh); err != nil {
			if errors.Is(err, testbed.ErrSkip) {
				t.Skipf("site %s: %v", o.name, err)
			}
			t.Fatalf("site %s: apply %s: %v", o.name, bh, err)
		}
	}
	probes := ""
	if o.probes != nil {
		probes = o.probes(t, bed)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zoomprobe.yml")
	if err := os.WriteFile(cfgPath, []byte(daemonYAML(t, dir, bed, probes, o.box)), 0o644); err != nil {
		t.Fatal(err)
	}
	probeNS := bed.Name(testbed.NSProbe)
	ifaces := []string{testbed.ProbeIf}
	if o.box {
		ifaces = append(ifaces, testbed.ProbeOutsideIf)
	}
	inputs := func(cfg *config.Config) ([]engine.Input, error) {
		opts := daemon.LiveOptions(cfg, nil)
		var ins []engine.Input
		for _, ifname := range ifaces {
			ins = append(ins, engine.Input{Label: ifname, Live: true, Open: func() (src capture.Source, err error) {
				err = capture.InNamespace(probeNS, func() error {
					src, err = capture.OpenLive(ifname, opts)
					return err
				})
				return src, err
			}})
		}
		return ins, nil
	}
	d, err := daemon.New(daemon.Options{ConfigFile: cfgPath, Site: o.name, Inputs: inputs})
	if err != nil {
		t.Fatalf("site %s: daemon: %v", o.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("site %s: daemon Run: %v", o.name, err)
		}
	})
	s := &site{name: o.name, bed: bed, d: d, srv: srv, events: filepath.Join(dir, "events.jsonl"), results: map[string]int{}}
	for _, ifname := range ifaces {
		s.waitCapturing(t, ifname)
	}
	return s
}

// waitCapturing waits until the daemon's capture on ifname is open.
func (s *site) waitCapturing(t *testing.T, ifname string) {
	t.Helper()
	want := `zoomprobe_capture_up{interface="` + ifname + `"} 1`
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.scrape(t), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("site %s: daemon never opened %s", s.name, ifname)
}

// scrape fetches the daemon's /metrics in the text format.
func (s *site) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("site %s: scrape: %v", s.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("site %s: scrape: HTTP %d %v", s.name, resp.StatusCode, err)
	}
	return string(b)
}

// clients runs one loop per user until ctx ends, each user cycling through
// its plans and pausing between runs: people joining meetings again and
// again, as at a real site, so the rules' "N in a window" thresholds are met
// by real verdicts.
func (s *site) clients(ctx context.Context, t *testing.T, pause time.Duration, users ...[]testbed.ClientPlan) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, plans := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				res, err := s.bed.RunClient(plans[i%len(plans)])
				if err != nil {
					t.Errorf("site %s: client: %v", s.name, err)
					return
				}
				s.runs.Add(1)
				s.mu.Lock()
				for step, r := range res.Reasons() {
					s.results[string(step)+"="+string(r)]++
				}
				s.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	return &wg
}

func (s *site) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d client runs, step outcomes %v", s.runs.Load(), s.results)
}

// loopbackProbes starts loopback servers for the active checks and returns
// the probes: section using them: a TLS server with the test Zoom chain
// (named zoom.us), an NTP server 20 ms off, and optionally a TCP port nobody
// listens on (a check that keeps failing). Nothing leaves the machine.
func loopbackProbes(t *testing.T, bed *testbed.Bed, closedTCP bool) string {
	t.Helper()
	leaf, err := bed.ZoomIssuing.Leaf(testbed.WebName)
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := probetest.TLSServer(t, *leaf, tls.VersionTLS12)
	ntpAddr := probetest.NTPServer(t, 20*time.Millisecond)
	tcp := "    enabled: false\n"
	if closedTCP {
		tcp = fmt.Sprintf("    enabled: true\n    interval: 1s\n    timeout: 500ms\n    jitter: 0s\n    targets:\n      - {host: %s, address: %q}\n",
			testbed.MediaRouterName, probetest.ClosedPort(t))
	}
	return fmt.Sprintf(`  enabled: true
  tls:
    enabled: true
    interval: 1s
    timeout: 900ms
    jitter: 0s
    tls12: false
    targets:
      - {host: %s, address: %q}
  tcp:
%s  stun:
    enabled: false
  ntp:
    enabled: true
    interval: 1s
    timeout: 900ms
    jitter: 0s
    system_servers: false
    servers: [%q]
  dns:
    enabled: false
`, testbed.WebName, tlsAddr, tcp, ntpAddr)
}
