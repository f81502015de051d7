package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
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

// breakDir makes dir refuse the log for a while; the returned func restores
// it. Root ignores permissions, so as root the directory is moved away.
func breakDir(t *testing.T, dir, path string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		// Rotation cannot rename, and the reopen cannot open the file.
		if err := os.Chmod(path, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(dir, 0o700); os.Chmod(path, 0o640) }
	}
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Rename(away, dir); err != nil {
			t.Fatal(err)
		}
	}
}

// A rotation that cannot reopen the file must not leave the log writing to
// the closed file forever: once the path is writable again, findings are
// written again, and rotation works again.
func TestRecoversAfterFailedReopen(t *testing.T) {
	for _, backups := range []int{0, 2} {
		t.Run(fmt.Sprintf("backups=%d", backups), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "events.jsonl")
			l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1, MaxBackups: backups}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			line, _ := json.Marshal(sample(1))
			perFile := (1 << 20) / (len(line) + 1)
			for l.size+int64(len(line)+1) <= l.maxSize { // full: the next Emit rotates
				l.Emit(sample(1))
			}
			restore := breakDir(t, dir, path)
			for range 3 {
				l.Emit(sample(1)) // lost: the rotation cannot reopen
			}
			restore()
			if l.Dropped() == 0 {
				t.Fatal("no finding counted as dropped while the directory was unusable")
			}
			const after = 5
			for range after {
				f := sample(1)
				f.Source = "after-outage"
				l.Emit(f)
			}
			// Fill past another rotation: it must work again.
			for range perFile {
				f := sample(1)
				f.Source = "second-rotation"
				l.Emit(f)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(path + "*")
			seen := map[string]int{}
			for _, f := range files {
				for _, m := range readLines(t, f) {
					seen[m["source"].(string)]++
				}
			}
			if backups > 0 && seen["after-outage"] != after {
				t.Errorf("%d of the %d findings after the outage written (files %v)", seen["after-outage"], after, files)
			}
			if seen["second-rotation"] == 0 {
				t.Errorf("nothing written after the outage (files %v, seen %v)", files, seen)
			}
			st, err := os.Stat(path)
			if err != nil || st.Size() > 1<<20 {
				t.Errorf("current log %v, %v: rotation did not resume", st, err)
			}
		})
	}
}
