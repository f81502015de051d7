package offline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/evidence/evidencetest"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// Every scenario that gives findings gives one evidence file per finding,
// named in the finding, that reads back with the packets proving it; with
// one worker and with two (the file pipeline's decoders and hand-off).
func TestEvidenceFilePerFinding(t *testing.T) {
	for _, info := range testgen.List() {
		sc := build(t, info.Name, testgen.Params{})
		if len(sc.Findings) == 0 {
			continue
		}
		capture := writeCapture(t, sc.Packets, testgen.FormatPCAPNG)
		for _, workers := range []int{1, 2} {
			t.Run(info.Name+"/workers="+string(rune('0'+workers)), func(t *testing.T) {
				dir := t.TempDir()
				res, err := Analyze(context.Background(), testConfig(workers), []string{capture}, Options{EvidenceDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Findings) == 0 {
					t.Fatal("no findings")
				}
				names := map[string]bool{}
				for _, x := range res.Findings {
					name, _ := x.Evidence[evidence.FileKey].(string)
					if x.Flow == nil {
						continue // not about a flow: nothing to keep
					}
					if name == "" {
						t.Errorf("%s/%s: no %s", x.Kind, x.Reason, evidence.FileKey)
						continue
					}
					if names[name] {
						t.Errorf("%s named twice", name)
					}
					names[name] = true
					f, err := evidencetest.Check(filepath.Join(dir, name), &x)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					t.Logf("%s/%s: %s: %d packets", x.Kind, x.Reason, name, len(f.Packets))
				}
				ents, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(ents) != len(names) {
					t.Errorf("%d files in the directory, %d named by findings", len(ents), len(names))
				}
			})
		}
	}
}

// Behind mirror-port and tunnel wrappers the files keep the frames as
// captured (outer headers included) and still read back with the packets
// proving each finding, whatever wraps them.
func TestEvidenceBehindWrappers(t *testing.T) {
	for _, name := range []string{"tls-client-alert", "dns-sinkhole", "syn-refused"} {
		sc := build(t, name, testgen.Params{})
		for _, wrap := range testgen.Wraps() {
			t.Run(name+"/"+string(wrap), func(t *testing.T) {
				pkts, err := testgen.WrapAll(wrap, sc.Packets)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				res, err := Analyze(context.Background(), testConfig(1), []string{writeCapture(t, pkts, testgen.FormatPCAPNG)}, Options{EvidenceDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Findings) != len(sc.Findings) {
					t.Fatalf("%d findings, want %d", len(res.Findings), len(sc.Findings))
				}
				for _, x := range res.Findings {
					name, _ := x.Evidence[evidence.FileKey].(string)
					if _, err := evidencetest.Check(filepath.Join(dir, name), &x); err != nil {
						t.Errorf("%s/%s: %v", x.Kind, x.Reason, err)
					}
				}
			})
		}
	}
}
