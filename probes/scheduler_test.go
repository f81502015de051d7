package probes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/probetest"
)

type collect struct {
	mu sync.Mutex
	fs []finding.Finding
	ch chan finding.Finding
}

func (c *collect) Emit(f finding.Finding) {
	c.mu.Lock()
	c.fs = append(c.fs, f)
	c.mu.Unlock()
	if c.ch != nil {
		c.ch <- f
	}
}

func (c *collect) reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.fs {
		out = append(out, string(f.Reason))
	}
	return out
}

func bedConfig(t *testing.T, ntpSkew time.Duration) *config.Config {
	t.Helper()
	open := probetest.OpenPort(t)
	closed := probetest.ClosedPort(t)
	stun := probetest.STUNServer(t)
	ntp := probetest.NTPServer(t, ntpSkew)
	y := fmt.Sprintf(`probes:
  tls:
    enabled: false
  tcp:
    timeout: 1s
    jitter: 0s
    targets:
      - {host: open.zoom.us, address: "%s"}
      - {host: closed.zoom.us, address: "%s"}
  stun:
    timeout: 1s
    targets:
      - {host: stun.zoom.us, address: "%s"}
  ntp:
    timeout: 1s
    system_servers: false
    servers: ["%s"]
  dns:
    enabled: false
`, open, closed, stun, ntp)
	c, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSchedulerRunOnce(t *testing.T) {
	cfg := bedConfig(t, 90*time.Second)
	reg := prometheus.NewRegistry()
	sink := &collect{}
	clock := &certcheck.Clock{}
	s := NewScheduler(cfg.Probes, reg, sink, clock, nil)
	var order []string
	res := s.RunOnce(context.Background(), 4, func(check string, n int) { order = append(order, fmt.Sprintf("%s:%d", check, n)) })
	if got := strings.Join(order, " "); got != "ntp:1 tcp:2 stun:1" {
		t.Fatalf("progress order %q", got)
	}
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	if off := clock.Offset(); off < 89*time.Second || off > 91*time.Second {
		t.Errorf("clock offset published %s, want ~90s", off)
	}
	ntpLabel := cfg.Probes.NTP.Servers[0]
	want := map[string]float64{
		"tcp|open.zoom.us:" + portOf(cfg.Probes.TCP.Targets[0].Address):   1,
		"tcp|closed.zoom.us:" + portOf(cfg.Probes.TCP.Targets[1].Address): 0,
		"stun|stun.zoom.us:" + portOf(cfg.Probes.STUN.Targets[0].Address): 1,
		"ntp|" + ntpLabel: 1,
	}
	for k, v := range want {
		p := strings.SplitN(k, "|", 2)
		if got := testutil.ToFloat64(s.success.WithLabelValues(p[0], p[1])); got != v {
			t.Errorf("probe_success{check=%s,target=%s} = %v, want %v", p[0], p[1], got, v)
		}
	}
	if got := testutil.ToFloat64(s.offset.WithLabelValues(ntpLabel)); got < 89 || got > 91 {
		t.Errorf("clock_offset_seconds = %v", got)
	}
	if got := testutil.ToFloat64(s.ntpUp.WithLabelValues(ntpLabel)); got != 1 {
		t.Errorf("ntp_up = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "zoomprobe_probe_success", "zoomprobe_probe_duration_seconds", "zoomprobe_clock_offset_seconds", "zoomprobe_ntp_up"); err != nil || n != 4+4+1+1 {
		t.Errorf("gathered %d series (%v)", n, err)
	}
	got := strings.Join(sink.reasons(), ",")
	if got != "clock_skew_warning,connection_refused" && got != "connection_refused,clock_skew_warning" {
		t.Fatalf("findings %q", got)
	}
	// The same failures again: metrics update, findings are not repeated.
	s.RunOnce(context.Background(), 4, nil)
	if n := len(sink.reasons()); n != 2 {
		t.Errorf("repeated findings: %v", sink.reasons())
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func TestSchedulerRunStopsWithContext(t *testing.T) {
	cfg := bedConfig(t, 0)
	cfg.Probes.NTP.Enabled, cfg.Probes.STUN.Enabled = false, false
	cfg.Probes.TCP.Interval = time.Second
	sink := &collect{ch: make(chan finding.Finding, 16)}
	s := NewScheduler(cfg.Probes, prometheus.NewRegistry(), sink, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case f := <-sink.ch:
		if f.Reason != finding.ReasonConnectionRefused {
			t.Errorf("first finding %s", f.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no finding from the scheduled run")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestPlan(t *testing.T) {
	dir := t.TempDir()
	chrony := filepath.Join(dir, "chrony.conf")
	os.WriteFile(chrony, []byte("# site\nserver ntp1.example.net iburst\npool 2.debian.pool.ntp.org iburst\nserver 127.127.1.0\n"), 0o644)
	timesyncd := filepath.Join(dir, "timesyncd.conf")
	os.WriteFile(timesyncd, []byte("[Time]\nNTP=ntp1.example.net ntp2.example.net\n"), 0o644)
	old := SystemNTPConfigFiles
	SystemNTPConfigFiles = []string{chrony, timesyncd, filepath.Join(dir, "missing")}
	defer func() { SystemNTPConfigFiles = old }()

	c, err := config.Parse([]byte(`probes:
  tls:
    targets: [zoom.us, "www.zoom.us:8443"]
    tls12: true
  tcp:
    targets: [zoomfrn99mmr.zoom.us, {host: zc.zoom.us, address: "192.0.2.7:9"}]
    ports: [443, 8801]
  stun:
    targets: ["stun.zoom.us:3479"]
  ntp:
    servers: [time.example.org]
  dns:
    names: [zoom.us]
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range Plan(&c.Probes) {
		s := j.Check + " " + j.Target.Label
		if j.Target.Address != "" {
			s += " @" + j.Target.Address
		}
		got = append(got, s)
	}
	want := []string{
		"ntp time.example.org", "ntp ntp1.example.net", "ntp 2.debian.pool.ntp.org", "ntp ntp2.example.net",
		"dns zoom.us",
		"tcp zoomfrn99mmr.zoom.us:443", "tcp zoomfrn99mmr.zoom.us:8801", "tcp zc.zoom.us:9 @192.0.2.7:9",
		"stun stun.zoom.us:3479",
		"tls12 zoom.us:443", "tls12 www.zoom.us:8443",
		"tls zoom.us:443", "tls www.zoom.us:8443",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
