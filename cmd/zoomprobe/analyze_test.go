package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/evidence/evidencetest"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// runCaptured runs the command line with stdout and stderr captured.
func runCaptured(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, _ := os.Create(filepath.Join(dir, "stdout"))
	errF, _ := os.Create(filepath.Join(dir, "stderr"))
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = run(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	read := func(f *os.File) string {
		f.Seek(0, io.SeekStart)
		b, _ := io.ReadAll(f)
		f.Close()
		return string(b)
	}
	return code, read(outF), read(errF)
}

// check-config fails, naming the field, on what only the machine can tell.
func TestCheckConfigPreflight(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	products := write("products.yml", "products:\n  - {name: X, kind: nonsense, issuer_cn: [X]}\n")
	fifo := filepath.Join(dir, "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		exit       int
		want       string
	}{
		{"valid", "event_log:\n  path: " + filepath.Join(dir, "events.jsonl") + "\n", 0, "OK"},
		{"invalid value", "capture:\n  workers: 0\n", 1, "capture.workers"},
		{"bad bpf", "capture:\n  bpf: \"1\\n6 0 0\\n\"\n", 1, "capture.bpf: bpf line 2"},
		{"bpf the kernel refuses", "capture:\n  bpf: \"3\\n40 0 0 12\\n52 0 0 0\\n6 0 0 65535\\n\"\n", 1, "capture.bpf: the kernel refuses the program"},
		{"missing interface", "capture:\n  interfaces: [zp-nope0]\n", 1, `capture.interfaces[0]: no interface "zp-nope0"`},
		{"missing bpf_file", "capture:\n  bpf_file: " + filepath.Join(dir, "nope.bpf") + "\n", 1, "capture.bpf_file"},
		{"missing ranges_file", "zoom:\n  ranges_file: " + filepath.Join(dir, "nope.txt") + "\n", 1, "zoom.ranges_file"},
		{"unknown analyzer", "analyzers:\n  disabled: [tls, dnsfiltre]\n", 1, `analyzers.disabled[1]: no analyzer named "dnsfiltre"`},
		{"event log dir missing", "event_log:\n  path: " + filepath.Join(dir, "nodir", "events.jsonl") + "\n", 1, "event_log.path: directory"},
		{"event log is a FIFO", "event_log:\n  path: " + fifo + "\n", 1, "event_log.path: " + fifo + " is a named pipe (FIFO)"},
		{"bad products_file", "tls:\n  products_file: " + products + "\n", 1, "tls.products_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write(strings.ReplaceAll(tc.name, " ", "-")+".yml", tc.yaml)
			code, _, stderr := runCaptured(t, "--config.file", cfg, "check-config")
			if code != tc.exit || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.exit, tc.want)
			}
		})
	}
}

// analyze on a capture cut mid-record prints what it read, warns, exits 0;
// a file that is no capture at all is still an error.
func TestAnalyzeTruncatedCapture(t *testing.T) {
	src, err := os.ReadFile("../../testdata/zoom-clean.pcap")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cutPath := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cutPath, src[:len(src)-10], 0o644)
	code, stdout, stderr := runCaptured(t, "analyze", cutPath)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "Read ") || !strings.Contains(stdout, "zone_controller") || !strings.Contains(stdout, "Warning: ") {
		t.Errorf("stdout lacks the results or the warning:\n%s", stdout)
	}
	if !strings.Contains(stderr, "zoomprobe analyze: warning: capture: "+cutPath+": packet ") || !strings.Contains(stderr, "file truncated") {
		t.Errorf("stderr = %q", stderr)
	}
	code, stdout, _ = runCaptured(t, "analyze", "--format", "json", cutPath)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || !strings.Contains(lines[len(lines)-1], `"warnings":["capture: `+cutPath) {
		t.Errorf("json: exit %d, summary %s", code, lines[len(lines)-1])
	}

	notCapture := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCapture, []byte("not a capture file at all"), 0o644)
	if code, _, stderr := runCaptured(t, "analyze", notCapture); code != 1 || !strings.Contains(stderr, "not a pcap or pcapng file") {
		t.Errorf("not a capture: exit %d, stderr %q", code, stderr)
	}
}

// analyze --evidence.dir writes one pcapng per finding, named in the JSON
// output, each reading back with the packets behind its finding.
func TestAnalyzeEvidenceDir(t *testing.T) {
	capture := repeatedFindings(t)
	dir := filepath.Join(t.TempDir(), "evidence")
	code, stdout, stderr := runCaptured(t, "--config.file", testConfigFile(t), "analyze", "--format", "json", "--evidence.dir", dir, capture)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var x finding.Finding
		if json.Unmarshal([]byte(line), &x) != nil || x.Kind == "" || x.Flow == nil {
			continue
		}
		name, _ := x.Evidence[evidence.FileKey].(string)
		if name == "" {
			t.Fatalf("%s/%s: no evidence file", x.Kind, x.Reason)
		}
		if _, err := evidencetest.Check(filepath.Join(dir, name), &x); err != nil {
			t.Error(err)
		}
		n++
	}
	ents, err := os.ReadDir(dir)
	if err != nil || n == 0 || len(ents) != n {
		t.Fatalf("%d findings about flows, %d files (%v)", n, len(ents), err)
	}
}

// analyze --box reads a box's two captures as its two sides and names the
// box in the findings; bad --box values are refused with what to write.
func TestAnalyzeBox(t *testing.T) {
	sc, err := testgen.BuildBox("box-drops", testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out, err := sc.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCaptured(t, "analyze", "--format", "json", "--box", "fw1:"+in+":"+out)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(stdout, `"where":"between_capture_points"`); n != 2 || strings.Count(stdout, `"box":"fw1"`) != 2 {
		t.Errorf("want two findings naming fw1, got %d:\n%s", n, stdout)
	}
	for _, c := range []struct{ arg, want string }{
		{"fw1:" + in, "write NAME:INSIDE.pcap:OUTSIDE.pcap"},
		{"f w:" + in + ":" + out, `the name "f w"`},
		{"fw1:" + in + ":" + in, "the same file"},
		{"fw1:" + in + ":" + filepath.Join(dir, "missing.pcap"), "missing.pcap"},
	} {
		if code, _, stderr := runCaptured(t, "analyze", "--box", c.arg); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("--box %s: exit %d, stderr %q, want %q", c.arg, code, stderr, c.want)
		}
	}
	if code, _, stderr := runCaptured(t, "analyze"); code != 2 || !strings.Contains(stderr, "--box NAME:INSIDE.pcap:OUTSIDE.pcap") {
		t.Errorf("no file: exit %d, stderr %q", code, stderr)
	}
}
