package offline

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// tiedCapture plays several scenarios at once, each over IPv4 and over IPv6,
// with packet times cut to 100ms, as a coarse clock would stamp them: many
// flows start, and many findings fall, at the same time.
func tiedCapture(t *testing.T) string {
	t.Helper()
	var pkts []testgen.Packet
	// Each scenario its own seed (its own ports), so no two share a flow.
	for i, name := range []string{"zoom-clean", "syn-refused", "syn-dropped", "tls-fortigate", "udp-fallback", "rst-after-clienthello"} {
		for _, v6 := range []bool{false, true} {
			pkts = append(pkts, build(t, name, testgen.Params{IPv6: v6, Seed: uint64(1000 + i)}).Packets...)
		}
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].Time.Before(pkts[j].Time) })
	for i := range pkts {
		pkts[i].Time = pkts[i].Time.Truncate(100 * time.Millisecond)
	}
	return writeCapture(t, pkts, testgen.FormatPCAP)
}

// The output is the same byte for byte whatever the worker count, and from
// one run to the next, even where times tie.
func TestOutputIndependentOfWorkers(t *testing.T) {
	path := tiedCapture(t)
	render := func(workers int) string {
		res := analyze(t, testConfig(workers), path)
		var b bytes.Buffer
		if err := res.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	want := render(1)
	if n := strings.Count(want, "\n"); n < 6 {
		t.Fatalf("only %d lines of output: the scenarios gave too few findings to test ordering", n)
	}
	ties := 0
	res := analyze(t, testConfig(1), path)
	for i := 1; i < len(res.Findings); i++ {
		if res.Findings[i].Time.Equal(res.Findings[i-1].Time) {
			ties++
		}
	}
	for i := 1; i < len(res.Flows); i++ {
		if res.Flows[i].First.Equal(res.Flows[i-1].First) {
			ties++
		}
	}
	if ties == 0 {
		t.Fatal("no tied times: the capture does not exercise the ordering")
	}
	for run := range 5 {
		for _, workers := range []int{1, 2, 3} {
			if got := render(workers); got != want {
				t.Fatalf("run %d, workers %d: output differs from workers 1:\n got: %s\nwant: %s", run, workers, got, want)
			}
		}
	}
}
