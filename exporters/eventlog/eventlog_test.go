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

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

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
	l, err := Open(config.EventLogConfig{MaxSizeMB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Emit(sample(1))
	if got := testutil.ToFloat64(l.dropped); got != 0 {
		t.Errorf("dropped = %v: a disabled log drops nothing", got)
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
			// With no backups the open file is emptied in place: nothing to
			// reopen, nothing lost.
			if dropped := testutil.ToFloat64(l.dropped); backups > 0 && dropped == 0 {
				t.Fatal("no finding counted as dropped while the directory was unusable")
			} else if backups == 0 && dropped != 0 {
				t.Fatalf("%v findings dropped: emptying the open file needs no directory", dropped)
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

// checkWholeLines fails unless every line of path is one JSON object; it
// returns the number of lines.
func checkWholeLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s ends in a partial line: %q", path, b[max(0, len(b)-80):])
	}
	n := 0
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" && len(b) == 0 {
			break
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s line %d is not a finding (%v): %.200q", path, i+1, err, line)
		}
		n++
	}
	return n
}

// padded is a finding whose line length varies with i, so that lines end
// anywhere in a page and a full disk cuts one in the middle.
func padded(i int) finding.Finding {
	f := sample(i)
	f.Evidence = map[string]any{"pad": strings.Repeat("x", 100+i*37%900)}
	return f
}

// A real full disk: a 64 KiB tmpfs. Every line in the file is a whole
// finding, what could not be written is counted, and once room is made
// the log writes again without gluing a finding to a partial one.
func TestFullDiskLeavesOnlyWholeLines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (the full-disk case runs in CI as root)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	// Room made later by removing this file.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1, MaxBackups: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	emitted := 0
	for i := 0; testutil.ToFloat64(l.dropped) < 5; i++ {
		if i > 1000 {
			t.Fatal("a 64 KiB file system never filled up")
		}
		l.Emit(padded(i))
		emitted++
	}
	if testutil.ToFloat64(l.writeErrors) == 0 {
		t.Error("write errors not counted")
	}
	full := checkWholeLines(t, path)
	if want := emitted - int(testutil.ToFloat64(l.dropped)); full != want {
		t.Errorf("%d lines in the file, want %d emitted less %v dropped", full, want, testutil.ToFloat64(l.dropped))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	dropped := testutil.ToFloat64(l.dropped)
	const after = 10
	for i := range after {
		l.Emit(padded(i))
	}
	if got := testutil.ToFloat64(l.dropped); got != dropped {
		t.Errorf("%v more dropped after room was made", got-dropped)
	}
	if n := checkWholeLines(t, path); n != full+after {
		t.Errorf("%d lines after room was made, want %d", n, full+after)
	}
}

// When rotation fails the file still stays under max_size_mb: what does not
// fit is dropped and counted. Here the oldest backup's name is taken by a
// directory, which neither root nor anyone else can replace with the log.
func TestFailedRotationKeepsSizeLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.MkdirAll(filepath.Join(path+".1", "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1, MaxBackups: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(sample(1))
	perFile := (1 << 20) / (len(line) + 1)
	total := 3 * perFile
	for i := range total {
		l.Emit(sample(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Fatalf("%d bytes written with max_size_mb 1", st.Size())
	}
	kept := checkWholeLines(t, path)
	if dropped := int(testutil.ToFloat64(l.dropped)); dropped != total-kept || dropped == 0 {
		t.Errorf("dropped = %d, want %d (%d kept of %d)", dropped, total-kept, kept, total)
	}
	if testutil.ToFloat64(l.writeErrors) == 0 {
		t.Error("failed rotations not counted as errors")
	}
}

// A FIFO (or any special file) at the path is refused with an error naming
// the field, whether or not something reads it: opening one for writing
// blocks until a reader comes, and writing blocks when the reader stalls.
func TestRefusesFIFO(t *testing.T) {
	for _, reader := range []bool{true, false} {
		t.Run(fmt.Sprintf("reader=%v", reader), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			if err := unix.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if reader {
				r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
			}
			l, err := Open(config.EventLogConfig{Path: path, MaxSizeMB: 1}, nil)
			if err == nil {
				l.Close()
				t.Fatal("a FIFO was accepted as the event log")
			}
			if !strings.HasPrefix(err.Error(), "event_log.path:") || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("err = %v", err)
			}
		})
	}
	l, err := Open(config.EventLogConfig{Path: os.DevNull, MaxSizeMB: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "character device") {
		l.Close()
		t.Errorf("%s: err = %v", os.DevNull, err)
	}
}

// Reconfigure swaps settings live: a new path is opened before the old file
// is closed, a bad one leaves the log writing where it was, an empty one
// stops it, and a smaller size limit applies from the next finding.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	l, err := Open(config.EventLogConfig{Path: a, MaxSizeMB: 2, MaxBackups: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Emit(sample(1))
	if err := l.Reconfigure(config.EventLogConfig{Path: filepath.Join(dir, "missing", "x.jsonl"), MaxSizeMB: 2}); err == nil || !strings.HasPrefix(err.Error(), "event_log.path:") {
		t.Fatalf("bad path: err = %v", err)
	}
	l.Emit(sample(2)) // still to a
	if err := l.Reconfigure(config.EventLogConfig{Path: b, MaxSizeMB: 1, MaxBackups: 1}); err != nil {
		t.Fatal(err)
	}
	l.Emit(sample(3))
	if n, m := checkWholeLines(t, a), checkWholeLines(t, b); n != 2 || m != 1 {
		t.Fatalf("a has %d lines (want 2), b %d (want 1)", n, m)
	}
	// 1 MiB of findings in b, then the limit drops to... 1 MiB is the
	// smallest; fill b and check the next finding rotates it.
	line, _ := json.Marshal(sample(1))
	for range (1<<20)/(len(line)+1) + 1 {
		l.Emit(sample(4))
	}
	if _, err := os.Stat(b + ".1"); err != nil {
		t.Errorf("no rotation under the new limit: %v", err)
	}
	if err := l.Reconfigure(config.EventLogConfig{MaxSizeMB: 1}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(b)
	l.Emit(sample(5))
	after, _ := os.ReadFile(b)
	if len(after) != len(before) {
		t.Error("a disabled log still writes")
	}
	if testutil.ToFloat64(l.dropped) != 0 {
		t.Errorf("dropped = %v", testutil.ToFloat64(l.dropped))
	}
}

// Standard output cannot be cut back: after a failed write the next finding
// starts on a line of its own.
func TestStreamFailureStartsNewLine(t *testing.T) {
	l, err := Open(config.EventLogConfig{Path: "-", MaxSizeMB: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &flakyWriter{failAfter: 10}
	l.stdout = w
	l.Emit(sample(1)) // 10 bytes, then an error
	w.failAfter = -1
	l.Emit(sample(2))
	lines := strings.Split(w.buf.String(), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("output %q", w.buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Errorf("the finding after the failure is glued to the partial line: %q", lines[1])
	}
	if testutil.ToFloat64(l.dropped) != 1 || testutil.ToFloat64(l.writeErrors) != 1 {
		t.Errorf("dropped %v, errors %v", testutil.ToFloat64(l.dropped), testutil.ToFloat64(l.writeErrors))
	}
}

type flakyWriter struct {
	buf       strings.Builder
	failAfter int // bytes accepted before the error; -1 never fails
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	if w.failAfter < 0 || len(p) <= w.failAfter {
		w.buf.Write(p)
		return len(p), nil
	}
	w.buf.Write(p[:w.failAfter])
	return w.failAfter, unix.EPIPE
}
