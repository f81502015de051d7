package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/livetest"
)

const sinkholeFindings = `zoomprobe_findings_total{kind="dns_filtered",reason="dns_sinkhole"}`

// waitCount polls a counter until it reaches want; more than want fails at
// once. The deadline only guards against a hang: the test counts.
func waitCount(t *testing.T, url, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get(t, url+"/metrics")
		v := metricValue(body, series)
		if v == want {
			return
		}
		if v > want {
			t.Fatalf("%s = %v, want %v: something was counted twice", series, v, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v: lost", series, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reload loop during steady traffic loses no finding and reads no packet
// twice: frames written on a live veth, each worth exactly one finding,
// give as many findings with a reload every few frames as without reloads.
// The reloads cycle through an unchanged config, an analyzer setting
// (swapped in place), a capture setting (a new socket takes over) and the
// event log's path (the new log takes over).
func TestReloadLoopLosesNoFinding(t *testing.T) {
	reloadLoop(t, func(link *livetest.Link, events, events2 string) []string {
		config := func(capture, extra string) string {
			return "capture:\n  interfaces: [" + link.Capture + "]\n  workers: 2\n  ring_size_mb: 4\n" + capture +
				"probes:\n  enabled: false\n" + extra
		}
		log1, log2 := "event_log:\n  path: "+events+"\n", "event_log:\n  path: "+events2+"\n"
		return []string{
			config("", log1),
			config("", log1), // the same again: nothing changes
			config("", log1+"reachability:\n  dns_repeat_interval: 6m\n"),
			config("  snaplen: 60000\n", log1+"reachability:\n  dns_repeat_interval: 6m\n"),
			config("  snaplen: 60000\n", log1),
			config("  snaplen: 60000\n", log2),
		}
	}, 4, true)
}

// The same with several sockets per interface (capture.live_readers): each
// load opens a new kernel fanout group, whose sockets take over from the old
// group's, whatever the number of sockets on either side.
func TestFanoutReloadLosesNoFinding(t *testing.T) {
	reloadLoop(t, func(link *livetest.Link, events, _ string) []string {
		config := func(readers, extra string) string {
			return "capture:\n  interfaces: [" + link.Capture + "]\n  workers: 2\n  ring_size_mb: 4\n  live_readers: " + readers + "\n" +
				"probes:\n  enabled: false\nevent_log:\n  path: " + events + "\n" + extra
		}
		return []string{
			config("3", ""),
			config("3", ""), // unchanged: the group stays
			config("3", "reachability:\n  dns_repeat_interval: 6m\n"), // analyzers swapped, the group stays
			config("1", ""), // one socket takes over from three
			config("2", ""),
			config("4", ""),
		}
	}, 4, true)
}

// A reload that needs a new engine (here the number of workers) during
// steady traffic loses no finding either: the new engine's sockets open
// before the old engine's readers hand over.
func TestEngineReplacedDuringTrafficLosesNoFinding(t *testing.T) {
	reloadLoop(t, func(link *livetest.Link, events, _ string) []string {
		config := func(workers string) string {
			return "capture:\n  interfaces: [" + link.Capture + "]\n  workers: " + workers + "\n  ring_size_mb: 4\n" +
				"probes:\n  enabled: false\nevent_log:\n  path: " + events + "\n"
		}
		return []string{config("2"), config("1")}
	}, 10, false)
}

// reloadLoop sends n frames with no reload, then n more with a reload every
// reloadEvery frames, cycling through configs; it checks every finding came once (in the
// event logs) and, when the engine is never replaced, that packets_total
// counted each frame once.
func reloadLoop(t *testing.T, makeConfigs func(link *livetest.Link, events, events2 string) []string, reloadEvery int, countPackets bool) {
	link := livetest.NewLink(t)
	dir := t.TempDir()
	events, events2 := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "events2.jsonl")
	configs := makeConfigs(link, events, events2)
	cfgPath := writeFile(t, dir, "zoomprobe.yml", configs[0])
	d, srv := startDaemon(t, cfgPath, nil)
	waitReadyCode(t, srv.URL, 200, "Ready.")

	const n = 200
	reloads := 0
	send := func(round string, reloadEvery int) {
		for i := range n {
			// Answers to 32 client ports: 32 flows, spread over the sockets
			// of a fanout group.
			link.Send(t, livetest.SinkholeAnswerTo(fmt.Sprintf("%s-%d.zoom.us", round, i), uint16(i), uint16(40000+i%32)))
			if reloadEvery > 0 && i%reloadEvery == reloadEvery-1 {
				reloads++
				writeFile(t, dir, "zoomprobe.yml", configs[reloads%len(configs)])
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := d.Reload(ctx)
				cancel()
				if err != nil {
					t.Fatalf("reload %d: %v", reloads, err)
				}
			}
		}
	}
	send("quiet", 0)
	waitCount(t, srv.URL, sinkholeFindings, n)
	send("reload", reloadEvery)
	waitCount(t, srv.URL, sinkholeFindings, 2*n)
	if countPackets {
		waitCount(t, srv.URL, `zoomprobe_packets_total{interface="`+link.Capture+`"}`, 2*n)
	}
	if reloads != n/reloadEvery {
		t.Fatalf("%d reloads", reloads)
	}
	waitReadyCode(t, srv.URL, 200, "Ready.")

	// Every name once in the event logs: none lost, none twice.
	seen := map[string]int{}
	for _, path := range []string{events, events2} {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev struct {
				Evidence struct{ Name string } `json:"evidence"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
			}
			seen[ev.Evidence.Name]++
		}
		f.Close()
	}
	for _, round := range []string{"quiet", "reload"} {
		for i := range n {
			name := fmt.Sprintf("%s-%d.zoom.us", round, i)
			if seen[name] != 1 {
				t.Errorf("%s logged %d times", name, seen[name])
			}
		}
	}
	if len(seen) != 2*n {
		var extra []string
		for k := range seen {
			if !strings.HasPrefix(k, "quiet-") && !strings.HasPrefix(k, "reload-") {
				extra = append(extra, k)
			}
		}
		t.Errorf("unexpected findings: %v", extra)
	}
	_, body := get(t, srv.URL+"/metrics")
	if v := metricValue(body, "zoomprobe_config_last_reload_successful"); v != 1 {
		t.Errorf("config_last_reload_successful = %v", v)
	}
	// The analyzers' metrics survived being swapped.
	if metricValue(body, `zoomprobe_analyzer_up{analyzer="dnsfilter"}`) != 1 || metricValue(body, `zoomprobe_dns_filtered_total{reason="dns_sinkhole"}`) < 0 {
		t.Errorf("analyzer metrics missing after the reloads:\n%s", grepZoomprobe(body))
	}
}

// A reload the machine cannot run (a BPF program the kernel refuses, a
// missing interface) is refused with the field named, logged, and leaves
// capture running: /-/ready stays 200 and a frame sent after each failed
// reload still gives its finding.
func TestFailedReloadKeepsCapturing(t *testing.T) {
	link := livetest.NewLink(t)
	dir := t.TempDir()
	good := "capture:\n  interfaces: [" + link.Capture + "]\n  workers: 1\nprobes:\n  enabled: false\nevent_log:\n  path: \"\"\n"
	cfgPath := writeFile(t, dir, "zoomprobe.yml", good)
	var logBuf syncBuffer
	d, err := New(Options{ConfigFile: cfgPath, EnableLifecycle: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := runDaemon(t, d)
	waitReadyCode(t, srv.URL, 200, "Ready.")
	bpf := strings.ReplaceAll(kernelRejectedBPF, "\n", "\\n")
	for i, tc := range []struct{ name, yaml, field string }{
		{"bpf the kernel refuses", "capture:\n  interfaces: [" + link.Capture + "]\n  bpf: \"" + bpf + "\"\n", "capture.bpf: the kernel refuses"},
		{"missing interface", "capture:\n  interfaces: [" + link.Capture + ", zp-nope0]\n", `capture.interfaces[1]: no interface "zp-nope0"`},
	} {
		writeFile(t, dir, "zoomprobe.yml", tc.yaml+"probes:\n  enabled: false\n")
		code, msg := post(t, srv.URL+"/-/reload")
		if code != 500 || !strings.Contains(msg, tc.field) {
			t.Errorf("%s: reload = %d %q, want 500 naming %s", tc.name, code, msg, tc.field)
		}
		if c, body := get(t, srv.URL+"/-/ready"); c != 200 {
			t.Errorf("%s: /-/ready = %d %q after a refused reload", tc.name, c, body)
		}
		link.Send(t, livetest.SinkholeAnswer(fmt.Sprintf("after-%d.zoom.us", i), uint16(i)))
		waitCount(t, srv.URL, sinkholeFindings, float64(i+1))
		if !strings.Contains(logBuf.String(), "reload failed") || !strings.Contains(logBuf.String(), strings.ReplaceAll(tc.field, `"`, `\"`)) {
			t.Errorf("%s: the failed reload was not logged:\n%s", tc.name, logBuf.String())
		}
	}

	// A refused SIGHUP reload is logged too.
	writeFile(t, dir, "zoomprobe.yml", "capture:\n  workers: 0\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logBuf.String(), "via=SIGHUP") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the failed SIGHUP reload:\n%s", logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// What the analyzers learnt across flows survives reloads: a DNS answer
// already reported is not reported again inside reachability.dns_repeat_interval
// after a reload of analyzer settings, nor after one that builds a new engine.
// (Before, every reload started the de-duplication afresh.)
func TestReloadKeepsAnalyzerMemory(t *testing.T) {
	link := livetest.NewLink(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	config := func(workers, interval string) string {
		return "capture:\n  interfaces: [" + link.Capture + "]\n  workers: " + workers + "\n  ring_size_mb: 4\n" +
			"probes:\n  enabled: false\nevent_log:\n  path: " + events + "\nreachability:\n  dns_repeat_interval: " + interval + "\n"
	}
	cfgPath := writeFile(t, dir, "zoomprobe.yml", config("2", "10m"))
	d, srv := startDaemon(t, cfgPath, nil)
	waitReadyCode(t, srv.URL, 200, "Ready.")

	link.Send(t, livetest.SinkholeAnswerTo("same.zoom.us", 1, 40000))
	waitCount(t, srv.URL, sinkholeFindings, 1)
	for i, next := range []string{config("2", "11m"), config("1", "11m")} { // analyzers swapped; then a new engine
		writeFile(t, dir, "zoomprobe.yml", next)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.Reload(ctx)
		cancel()
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// The same answer again, then a new name: once the new name is
		// reported, the repeat has been judged (same addresses, same worker,
		// in order).
		link.Send(t, livetest.SinkholeAnswerTo("same.zoom.us", uint16(10+i), 40000))
		link.Send(t, livetest.SinkholeAnswerTo(fmt.Sprintf("barrier-%d.zoom.us", i), uint16(20+i), 40000))
		waitCount(t, srv.URL, sinkholeFindings, float64(2+i))
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"same.zoom.us"`); n != 1 {
		t.Errorf("same.zoom.us reported %d times across two reloads, want once:\n%s", n, b)
	}
}
