package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// fileInputs replays a capture instead of a live interface.
func fileInputs(path string) func(*config.Config) ([]engine.Input, error) {
	return func(*config.Config) ([]engine.Input, error) {
		return []engine.Input{{Label: "file", Open: func() (capture.Source, error) { return capture.OpenFiles([]string{path}) }}}, nil
	}
}

func scenarioFile(t *testing.T, name string) (string, int) {
	t.Helper()
	sc, err := testgen.Build(name, testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testgen.WritePackets(f, testgen.FormatPCAP, sc.Packets); err != nil {
		t.Fatal(err)
	}
	return path, len(sc.Packets)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue finds one sample in exposition text; -1 when absent.
func metricValue(text, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func waitMetric(t *testing.T, url, series string, want float64) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := get(t, url)
		if metricValue(body, series) == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %v; last scrape:\n%s", series, want, grepZoomprobe(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepZoomprobe(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "zoomprobe_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func startDaemon(t *testing.T, cfgPath string, inputs func(*config.Config) ([]engine.Input, error)) (*Daemon, *httptest.Server) {
	t.Helper()
	d, err := New(Options{ConfigFile: cfgPath, Inputs: inputs, EnableLifecycle: true})
	if err != nil {
		t.Fatal(err)
	}
	return d, runDaemon(t, d)
}

// runDaemon runs d until the test ends and serves its handler.
func runDaemon(t *testing.T, d *Daemon) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

func TestServesMetricsAndReloads(t *testing.T) {
	pcap, n := scenarioFile(t, "zoom-clean")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zoomprobe.yml")
	events := filepath.Join(dir, "events.jsonl")
	good := "capture:\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: " + events + "\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	_, srv := startDaemon(t, cfgPath, fileInputs(pcap))

	if code, _ := get(t, srv.URL+"/-/healthy"); code != 200 {
		t.Errorf("/-/healthy = %d", code)
	}
	waitReady(t, srv.URL)
	body := waitMetric(t, srv.URL+"/metrics", `zoomprobe_packets_total{interface="file"}`, float64(n))
	for _, want := range []string{"zoomprobe_build_info{", "zoomprobe_config_last_reload_successful 1", `zoomprobe_flows_total{service="zone_controller",transport="tcp"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A bad config: the reload fails with the field named, the old config keeps running.
	if err := os.WriteFile(cfgPath, []byte("capture:\n  workers: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, msg := post(t, srv.URL+"/-/reload")
	if code != 500 || !strings.Contains(msg, "capture.workers") {
		t.Errorf("bad reload = %d %q", code, msg)
	}
	_, body = get(t, srv.URL+"/metrics")
	if metricValue(body, "zoomprobe_config_last_reload_successful") != 0 {
		t.Errorf("config_last_reload_successful not 0 after a bad reload")
	}
	if metricValue(body, `zoomprobe_packets_total{interface="file"}`) != float64(n) {
		t.Errorf("the old pipeline's metrics were lost on a bad reload")
	}
	if code, _ := get(t, srv.URL+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}

	// Fixed: the reload succeeds and the new pipeline replays the capture.
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := post(t, srv.URL+"/-/reload"); code != 200 {
		t.Fatalf("good reload = %d %q", code, msg)
	}
	waitMetric(t, srv.URL+"/metrics", "zoomprobe_config_last_reload_successful", 1)
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_packets_total{interface="file"}`, float64(n))
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, url+"/-/ready")
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready = %d after 10s", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadConfigAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(path, []byte("flows:\n  max_flows: 1\n"), 0o644)
	_, err := New(Options{ConfigFile: path})
	if err == nil || !strings.Contains(err.Error(), "flows.max_flows") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultConfigLoads(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Config().EventLog.Path != "-" {
		t.Errorf("default event log = %q", d.Config().EventLog.Path)
	}
}
