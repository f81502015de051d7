package tls_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
	"github.com/zoomprobe/zoomprobe/offline"
)

// The whole pipeline (capture file, decoder with checksums, two workers,
// batches, flow table, identity, every analyzer) over every cut of the real
// handshakes, one connection each: each gives the findings and identity its
// uncut handshake gives, and nothing else.
func TestEngineEveryCut(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15 MB capture")
	}
	sc, err := testgen.TLSCutsScenario(testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cuts.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := testgen.WritePackets(f, testgen.FormatPCAP, sc.Packets); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := config.Default()
	cfg.Capture.Workers = 2
	cfg.TLS.SystemRoots = false
	cfg.TLS.ExtraRoots = []string{"../../testdata/ca/zoom-root.pem", "../../testdata/ca/public-ca.pem"}
	// Two server set-ups answer zoom.us here (one asks for a retry with
	// another group): after a baseline of one, the other would rightly be
	// drift. Drift is not what this test is about.
	cfg.TLS.FingerprintBaseline = 1000
	res, err := offline.Analyze(context.Background(), cfg, []string{path}, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, x := range sc.Findings {
		want = append(want, fmt.Sprintf("%s/%s %s %s %s", x.Kind, x.Reason, x.Server, x.Service, x.Product))
	}
	for _, x := range res.Findings {
		got = append(got, fmt.Sprintf("%s/%s %s %s %s", x.Kind, x.Reason, x.Flow.Server, x.Service, x.Product))
	}
	if missing, extra := diff(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("findings missing:\n  %s\nunexpected:\n  %s", strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
	}
	ident := map[string]string{}
	for _, fl := range res.Flows {
		ident[fmt.Sprint(fl.Server, ":", fl.ServerPort)] = fl.Service + " " + fl.Name
	}
	for _, fl := range sc.Flows {
		if got, want := ident[fl.Server.String()], fl.Service.String()+" "+fl.Name; got != want {
			t.Errorf("flow to %s: %q, want %q", fl.Server, got, want)
		}
	}
	if len(sc.Flows) != len(testgen.CutSpecs())*len(testgen.TLSCuts()) {
		t.Errorf("%d flows", len(sc.Flows))
	}
}

// diff returns what is in want and not in got, and the reverse (as multisets).
func diff(want, got []string) (missing, extra []string) {
	n := map[string]int{}
	for _, w := range want {
		n[w]++
	}
	for _, g := range got {
		n[g]--
	}
	for k, v := range n {
		for ; v > 0; v-- {
			missing = append(missing, k)
		}
		for ; v < 0; v++ {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}
