package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// cut drops the last n bytes of a file, as a tcpdump killed mid-write leaves it.
func cut(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-n); err != nil {
		t.Fatal(err)
	}
}

// A capture whose last record is cut short still gives its results, with a
// warning naming the file and the packet; in text and JSON output too.
func TestTruncatedCaptureKeepsResults(t *testing.T) {
	sc := build(t, "tls-fortigate", testgen.Params{})
	total := len(sc.Packets)
	for _, format := range []testgen.Format{testgen.FormatPCAP, testgen.FormatPCAPNG} {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", format, workers), func(t *testing.T) {
				path := writeCapture(t, sc.Packets, format)
				cut(t, path, 10)
				res, err := Analyze(context.Background(), testConfig(workers), []string{path}, Options{})
				if err != nil {
					t.Fatalf("Analyze: %v", err)
				}
				if res.Packets != uint64(total-1) {
					t.Errorf("read %d packets, want the %d before the cut", res.Packets, total-1)
				}
				if len(res.Findings) != 1 || res.Findings[0].Product != "FortiGate" {
					t.Errorf("findings = %+v, want the FortiGate interception", res.Findings)
				}
				if len(res.Flows) == 0 {
					t.Error("no flow listed")
				}
				wantWarn := fmt.Sprintf("%s: packet %d: file truncated", path, total)
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], wantWarn) {
					t.Fatalf("warnings = %q, want one containing %q", res.Warnings, wantWarn)
				}
				var text, js bytes.Buffer
				res.WriteText(&text)
				if !strings.Contains(text.String(), "Warning: "+res.Warnings[0]) {
					t.Errorf("text output lacks the warning:\n%s", text.String())
				}
				res.WriteJSON(&js)
				lines := strings.Split(strings.TrimSpace(js.String()), "\n")
				var summary struct {
					Warnings []string `json:"warnings"`
				}
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || len(summary.Warnings) != 1 {
					t.Errorf("JSON summary warnings = %v (%v): %s", summary.Warnings, err, lines[len(lines)-1])
				}
			})
		}
	}
}

// With several files, one cut short does not stop the others.
func TestTruncatedFileAmongOthers(t *testing.T) {
	sc := build(t, "zoom-clean", testgen.Params{})
	half := len(sc.Packets) / 2
	a := writeCapture(t, sc.Packets[:half], testgen.FormatPCAP)
	b := writeCapture(t, sc.Packets[half:], testgen.FormatPCAP)
	cut(t, a, 10)
	res, err := Analyze(context.Background(), testConfig(1), []string{a, b}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Packets != uint64(len(sc.Packets)-1) {
		t.Errorf("read %d packets, want %d", res.Packets, len(sc.Packets)-1)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], a) {
		t.Errorf("warnings = %q", res.Warnings)
	}
}

// Files that give no packet at all are errors, not warnings.
func TestUnusableCaptureIsAnError(t *testing.T) {
	sc := build(t, "zoom-clean", testgen.Params{})
	headerOnly := writeCapture(t, sc.Packets[:1], testgen.FormatPCAP)
	cut(t, headerOnly, 10) // the pcap header and part of the only packet
	notCapture := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCapture, []byte("not a capture file at all"), 0o644)
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(t.TempDir(), "nope.pcap"), "no such file"},
		{"not a capture", notCapture, "not a pcap or pcapng file"},
		{"first packet cut", headerOnly, "packet 1: file truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Analyze(context.Background(), testConfig(1), []string{tc.path}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (result %+v), want one containing %q", err, res, tc.want)
			}
		})
	}
}
