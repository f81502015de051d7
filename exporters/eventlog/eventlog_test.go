package eventlog

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
)

func sample(i int) finding.Finding {
	return finding.Finding{
		Time: time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC), Kind: finding.KindBlockedConnection,
		Reason: finding.ReasonTimeout, Source: "reach", Service: "media_router",
		Flow:     &finding.Flow{Transport: "tcp", Client: netip.MustParseAddr("10.0.0.2"), ClientPort: uint16(40000 + i), Server: netip.MustParseAddr("3.7.35.10"), ServerPort: 8801},
		UserSees: "error 5003", Remediation: "allow TCP 8801", Evidence: map[string]any{"syns": 3},
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestWritesDesignFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1, MaxBackups: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Emit(sample(1))
	// Written through before Close: a crash loses nothing already emitted.
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("%d lines before close", len(lines))
	}
	l.Close()
	m := lines[0]
	for _, k := range []string{"time", "kind", "reason", "service", "flow", "user_sees", "remediation", "evidence"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing field %q in %v", k, m)
		}
	}
	fl := m["flow"].(map[string]any)
	if fl["client"] != "10.0.0.2" || fl["server_port"] != float64(8801) || fl["transport"] != "tcp" {
		t.Errorf("flow = %v", fl)
	}
}

func TestRotatesBySizeAndKeepsBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1, MaxBackups: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(sample(0))
	perFile := (1 << 20) / (len(line) + 1)
	var wg sync.WaitGroup
	total := perFile*3 + 10
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 4 {
				l.Emit(sample(i))
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Fatalf("files %v, want the log and 2 backups", files)
	}
	n := 0
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MiB cap", f, st.Size())
		}
		n += len(readLines(t, f))
	}
	// The oldest file was dropped; what is kept is whole lines, newest last.
	if n >= total || n < 2*perFile {
		t.Errorf("kept %d lines of %d", n, total)
	}
}

func TestEmptyPathDisables(t *testing.T) {
	l, err := Open(config.EventLogConfig{}, nil)
	if l != nil || err != nil {
		t.Fatalf("got %v, %v", l, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUnwritableDirNamesField(t *testing.T) {
	_, err := Open(config.EventLogConfig{Path: "/nonexistent-dir/x/events.jsonl", MaxSizeMB: 1}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "event_log.path:") {
		t.Fatalf("err = %v", err)
	}
}
