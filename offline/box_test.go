package offline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// A box's two captures, generated through a NAT with sequence
// randomisation and written as pcap files, analysed as analyze --box does:
// the box's drops and resets are findings that name it, each block once (the
// inside flows' own beyond-the-probe verdicts are left to the box), and a
// clean NAT gives nothing.
func TestBoxScenarios(t *testing.T) {
	for _, name := range testgen.BoxScenarios() {
		for _, workers := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(t *testing.T) {
				sc, err := testgen.BuildBox(name, testgen.Params{})
				if err != nil {
					t.Fatal(err)
				}
				in, out, err := sc.WriteFiles(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				box, err := ParseBox("fw1:" + in + ":" + out)
				if err != nil {
					t.Fatal(err)
				}
				res, err := Analyze(context.Background(), testConfig(workers), nil, Options{Boxes: []Box{box}})
				if err != nil {
					t.Fatal(err)
				}
				var got, want []string
				for _, f := range res.Findings {
					where, _ := f.Evidence["where"].(string)
					box, _ := f.Evidence["box"].(string)
					verdict, _ := f.Evidence["box_verdict"].(string)
					got = append(got, fmt.Sprintf("%s %s %s:%d %s box=%s %s client=%s", f.Reason, f.Flow.Transport, f.Flow.Server, f.Flow.ServerPort, where, box, verdict, f.Flow.Client))
				}
				for _, v := range sc.Verdicts {
					reason := map[string]string{"udp": "udp_no_answer", "tcp": "connection_refused"}[v.Transport]
					want = append(want, fmt.Sprintf("%s %s %s:%d between_capture_points box=fw1 %s client=%s", reason, v.Transport, v.Server, v.ServerPort, v.Verdict, v.Client))
				}
				for _, v := range sc.Beyond {
					want = append(want, fmt.Sprintf("%s %s %s:%d beyond_probe box=  client=%s", v.Verdict, v.Transport, v.Server, v.ServerPort, v.Client))
				}
				sort.Strings(got)
				sort.Strings(want)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				// Every outside packet matched its inside copy; the
				// inside-only ones are the box's drops and resets.
				var metrics strings.Builder
				if err := res.WriteMetrics(&metrics); err != nil {
					t.Fatal(err)
				}
				made := 0
				for _, v := range sc.Verdicts {
					if v.Verdict == "reset_by_box" {
						made = 3
					}
				}
				for result, n := range map[string]int{"matched": len(sc.Outside) - sc.NotZoom, "dropped_outbound": len(sc.Inside) - len(sc.Outside) - made,
					"made_by_box": made, "dropped_inbound": 0, "evicted": 0, "inside_only": 0, "outside_only": 0} {
					line := fmt.Sprintf("zoomprobe_box_packets_total{box=\"fw1\",result=%q} %d\n", result, n)
					if !strings.Contains(metrics.String(), line) {
						t.Errorf("want %s", line)
					}
				}
				for _, f := range res.Findings {
					if f.Evidence["where"] == "between_capture_points" && !strings.Contains(f.Remediation, "fw1") {
						t.Errorf("remediation does not name the box: %q", f.Remediation)
					}
				}
			})
		}
	}
}

// The inside capture alone (no box configured) says the same blocks
// happened beyond the probe: what the box's verdicts replace.
func TestBoxInsideAlone(t *testing.T) {
	sc, err := testgen.BuildBox("box-drops", testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	res := analyze(t, nil, writeCapture(t, sc.Inside, testgen.FormatPCAP))
	var got []string
	for _, f := range res.Findings {
		got = append(got, fmt.Sprintf("%s %d %v", f.Reason, f.Flow.ServerPort, f.Evidence["where"]))
	}
	sort.Strings(got)
	if want := "connection_refused 8802 beyond_probe\nudp_no_answer 8801 beyond_probe"; strings.Join(got, "\n") != want {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
