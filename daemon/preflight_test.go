package daemon

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/engine"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// kernelRejectedBPF is `ldh [12]; div #0; ret #65535`: ParseBPF accepts it
// (every instruction decodes, jumps stay inside), the kernel does not.
const kernelRejectedBPF = "3\n40 0 0 12\n52 0 0 0\n6 0 0 65535\n"

// Each case breaks one thing only the machine can tell; Preflight names the field.
func TestPreflight(t *testing.T) {
	dir := t.TempDir()
	badBPF := writeFile(t, dir, "bad.bpf", "2\n6 0 0 65535\n")
	goodBPF := writeFile(t, dir, "good.bpf", "1\n6 0 0 65535\n")
	badRanges := writeFile(t, dir, "ranges.txt", "3.7.35.0/24\nnot a network\n")
	badProducts := writeFile(t, dir, "products.yml", "products:\n  - {name: X, kind: nonsense, issuer_cn: [X]}\n")
	badSigs := writeFile(t, dir, "sigs.yml", "bogus_field: 1\n")
	notDir := writeFile(t, dir, "plainfile", "x")
	existing := writeFile(t, dir, "events.jsonl", "{\"kept\":true}\n")
	fifo := filepath.Join(dir, "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range analyzers.Registered() {
		all = append(all, p.Name())
	}
	if len(all) < 4 {
		t.Fatalf("only %v registered: analyzers/all not linked", all)
	}
	cases := []struct {
		name string
		set  func(c *config.Config)
		want string // "" means it must pass
	}{
		{"defaults", func(c *config.Config) {}, ""},
		{"evidence dir to make", func(c *config.Config) { c.Evidence.Dir = filepath.Join(dir, "evidence", "new") }, ""},
		{"evidence dir a file", func(c *config.Config) { c.Evidence.Dir = filepath.Join(notDir, "ev") }, "evidence.dir: " + notDir + " is not a directory"},
		{"bpf valid", func(c *config.Config) { c.Capture.BPF = "1\n6 0 0 65535\n" }, ""},
		{"bpf invalid", func(c *config.Config) { c.Capture.BPF = "1\n6 0 0\n" }, "capture.bpf: bpf line 2"},
		// Passes ParseBPF (valid opcodes, jumps in range) but the kernel
		// refuses a division by a constant zero.
		{"bpf kernel-rejected", func(c *config.Config) { c.Capture.BPF = kernelRejectedBPF }, "capture.bpf: the kernel refuses the program"},
		{"bpf_file valid", func(c *config.Config) { c.Capture.BPFFile = goodBPF }, ""},
		{"interface missing", func(c *config.Config) { c.Capture.Interfaces = []string{"lo", "zp-nope0"} }, `capture.interfaces[1]: no interface "zp-nope0" here`},
		{"interface missing, waited for", func(c *config.Config) {
			c.Capture.Interfaces, c.Capture.WaitForInterfaces = []string{"zp-nope0"}, true
		}, ""},
		{"interface present", func(c *config.Config) { c.Capture.Interfaces = []string{"lo"} }, ""},
		{"bpf_file missing", func(c *config.Config) { c.Capture.BPFFile = filepath.Join(dir, "nope.bpf") }, "capture.bpf_file: open"},
		{"bpf_file invalid", func(c *config.Config) { c.Capture.BPFFile = badBPF }, "capture.bpf_file " + badBPF},
		{"ranges_file missing", func(c *config.Config) { c.Zoom.RangesFile = filepath.Join(dir, "nope.txt") }, "zoom.ranges_file: zoom ranges: stat"},
		{"ranges_file invalid", func(c *config.Config) { c.Zoom.RangesFile = badRanges }, "zoom.ranges_file: " + badRanges},
		{"analyzers all known", func(c *config.Config) { c.Analyzers.Disabled = all }, ""},
		{"analyzer unknown", func(c *config.Config) { c.Analyzers.Disabled = []string{"tls", "tsl"} }, `analyzers.disabled[1]: no analyzer named "tsl" (known: ` + strings.Join(all, ", ") + ")"},
		{"event log dir missing", func(c *config.Config) { c.EventLog.Path = filepath.Join(dir, "nodir", "events.jsonl") }, "event_log.path: directory " + filepath.Join(dir, "nodir")},
		{"event log dir is a file", func(c *config.Config) { c.EventLog.Path = filepath.Join(notDir, "events.jsonl") }, "event_log.path: " + notDir + " is not a directory"},
		{"event log is a directory", func(c *config.Config) { c.EventLog.Path = dir }, "event_log.path: " + dir + " is a directory"},
		{"event log exists", func(c *config.Config) { c.EventLog.Path = existing }, ""},
		{"event log is a FIFO", func(c *config.Config) { c.EventLog.Path = fifo }, "event_log.path: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{"extra_roots unreadable", func(c *config.Config) { c.TLS.ExtraRoots = []string{filepath.Join(dir, "nope.pem")} }, "tls.extra_roots: open"},
		{"extra_roots valid", func(c *config.Config) { c.TLS.ExtraRoots = []string{"../testdata/ca/zoom-root.pem"} }, ""},
		{"products_file invalid", func(c *config.Config) { c.TLS.ProductsFile = badProducts }, "tls.products_file: " + badProducts + ": products[0].kind"},
		{"products_file missing", func(c *config.Config) { c.TLS.ProductsFile = filepath.Join(dir, "nope.yml") }, "tls.products_file: open"},
		{"proxy_signatures_file invalid", func(c *config.Config) { c.Reach.ProxySignaturesFile = badSigs }, "reachability.proxy_signatures_file: " + badSigs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.TLS.SystemRoots = false
			tc.set(cfg)
			err := Preflight(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// Nothing was truncated or left behind.
	if b, _ := os.ReadFile(existing); string(b) != "{\"kept\":true}\n" {
		t.Errorf("existing event log changed: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".zoomprobe-preflight-*")); len(left) != 0 {
		t.Errorf("probe files left behind: %v", left)
	}
}

func TestPreflightUnwritableEventLogDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to a mode 0500 directory anyway")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	cfg := config.Default()
	cfg.EventLog.Path = filepath.Join(dir, "events.jsonl")
	err := Preflight(cfg)
	if err == nil || !strings.Contains(err.Error(), "event_log.path: directory "+dir+" is not writable") {
		t.Fatalf("err = %v", err)
	}
}

// daemon.New refuses a config that passes validation but cannot run.
func TestPreflightAtStart(t *testing.T) {
	path := writeFile(t, t.TempDir(), "zoomprobe.yml", "analyzers:\n  disabled: [nope]\n")
	_, err := New(Options{ConfigFile: path})
	if err == nil || !strings.Contains(err.Error(), `analyzers.disabled[0]: no analyzer named "nope"`) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("err = %v", err)
	}
}

// heldSource replays a capture, then idles like an interface with no
// traffic (ErrTimeout every poll timeout) until Close, counting opens and
// closes: a restarted pipeline shows in them.
type heldSource struct {
	capture.Source
	closed   chan struct{}
	once     sync.Once
	onClosed func()
}

func (s *heldSource) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	data, ts, n, link, err := s.Source.ReadPacket()
	if err == io.EOF {
		select {
		case <-s.closed:
			return nil, time.Time{}, 0, 0, capture.ErrClosed
		case <-time.After(50 * time.Millisecond):
			return nil, time.Time{}, 0, 0, capture.ErrTimeout
		}
	}
	return data, ts, n, link, err
}

func (s *heldSource) Close() error {
	s.once.Do(func() { close(s.closed); s.onClosed() })
	return s.Source.Close()
}

// A reload whose config fails preflight leaves the running pipeline alone:
// the source is neither closed nor reopened and packets_total keeps its
// value; a good reload afterwards does restart it.
func TestFailedPreflightKeepsPipeline(t *testing.T) {
	pcap, n := scenarioFile(t, "zoom-clean")
	var opens, closes atomic.Int32
	inputs := func(*config.Config) ([]engine.Input, error) {
		return []engine.Input{{Label: "file", Open: func() (capture.Source, error) {
			src, err := capture.OpenFiles([]string{pcap})
			if err != nil {
				return nil, err
			}
			opens.Add(1)
			return &heldSource{Source: src, closed: make(chan struct{}), onClosed: func() { closes.Add(1) }}, nil
		}}}, nil
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zoomprobe.yml")
	good := "capture:\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: " + filepath.Join(dir, "events.jsonl") + "\n"
	writeFile(t, dir, "zoomprobe.yml", good)
	badProducts := writeFile(t, dir, "products.yml", "products:\n  - {name: X, kind: nonsense, issuer_cn: [X]}\n")
	_, srv := startDaemon(t, cfgPath, inputs)
	waitReady(t, srv.URL)
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_packets_total{interface="file"}`, float64(n))

	for _, tc := range []struct{ name, yaml, field string }{
		{"bpf", "capture:\n  workers: 1\n  bpf: |\n    1\n    6 0 0\n", "capture.bpf"},
		{"bpf_file", "capture:\n  workers: 1\n  bpf_file: " + filepath.Join(dir, "nope.bpf") + "\n", "capture.bpf_file"},
		{"ranges_file", "zoom:\n  ranges_file: " + filepath.Join(dir, "nope.txt") + "\n", "zoom.ranges_file"},
		{"analyzers", "analyzers:\n  disabled: [tsl]\n", "analyzers.disabled[0]"},
		{"event_log", "event_log:\n  path: " + filepath.Join(dir, "nodir", "events.jsonl") + "\n", "event_log.path"},
		{"products_file", "tls:\n  products_file: " + badProducts + "\n", "tls.products_file"},
		{"bpf kernel-rejected", "capture:\n  workers: 1\n  bpf: \"" + strings.ReplaceAll(kernelRejectedBPF, "\n", "\\n") + "\"\n", "capture.bpf: the kernel refuses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, dir, "zoomprobe.yml", tc.yaml+"probes:\n  enabled: false\n")
			code, msg := post(t, srv.URL+"/-/reload")
			if code != 500 || !strings.Contains(msg, tc.field) {
				t.Errorf("reload = %d %q, want 500 naming %s", code, msg, tc.field)
			}
			_, body := get(t, srv.URL+"/metrics")
			if v := metricValue(body, "zoomprobe_config_last_reload_successful"); v != 0 {
				t.Errorf("config_last_reload_successful = %v after a failed preflight", v)
			}
			if v := metricValue(body, `zoomprobe_packets_total{interface="file"}`); v != float64(n) {
				t.Errorf("packets_total = %v, want %d kept", v, n)
			}
			if o, c := opens.Load(), closes.Load(); o != 1 || c != 0 {
				t.Errorf("source opened %d times and closed %d: the pipeline was restarted", o, c)
			}
		})
	}

	writeFile(t, dir, "zoomprobe.yml", good)
	if code, msg := post(t, srv.URL+"/-/reload"); code != 200 {
		t.Fatalf("good reload = %d %q", code, msg)
	}
	waitMetric(t, srv.URL+"/metrics", "zoomprobe_config_last_reload_successful", 1)
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_packets_total{interface="file"}`, float64(n))
	// The good config is the one running: nothing to reopen.
	if o, c := opens.Load(), closes.Load(); o != 1 || c != 0 {
		t.Errorf("after a good reload of the running config: opened %d, closed %d; want 1 and 0", o, c)
	}
}
