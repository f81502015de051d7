package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/offline"
)

// boxScenario is the router as a box captured on both sides: NAT with
// random ports (MASQUERADE --random), plus what it blocks.
type boxScenario struct {
	name   string
	router []Behaviour
	client ClientPlan
	expect Expectation // Client, Media, Findings, Metrics
}

func boxScenarios() []boxScenario {
	// TCP media on 8802, so the box's reset of 8802 is what the client meets.
	plan := ClientPlan{MediaTCPPort: 8802, SkipSTUN: true}
	return []boxScenario{
		{
			name:   "box-nat-drops",
			router: []Behaviour{NAT(), Drop("udp", "8801"), Reject("tcp", "8802", RejectTCPReset)},
			client: plan,
			expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepSTUN: "", StepMediaUDP: finding.ReasonTimeout, StepMediaTCP: finding.ReasonConnectionRefused, StepMediaTLS: ok}),
				Media:  StepMediaTLS,
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonUDPNoAnswer, Service: "media", Transport: "udp", Server: MediaRouterAddr, ServerPort: 8801},
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "media_router", Transport: "tcp", Server: MediaRouterAddr, ServerPort: 8802},
					{Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback, Transport: "tcp", Server: MediaRouterAddr, ServerPort: 443},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_box_verdicts_total", Labels: map[string]string{"box": "fw1", "verdict": "dropped_outbound"}, Value: 1},
					{Name: "zoomprobe_box_verdicts_total", Labels: map[string]string{"box": "fw1", "verdict": "reset_by_box"}, Value: 1},
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"where": "beyond_probe"}, Value: 0},
					{Name: "zoomprobe_box_packets_total", Labels: map[string]string{"box": "fw1", "result": "evicted"}, Value: 0},
				},
			},
		},
		{
			name:   "box-nat-clean",
			router: []Behaviour{NAT()},
			client: plan,
			expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepSTUN: "", StepMediaTCP: "", StepMediaTLS: ""}),
				Media:  StepMediaUDP,
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Value: 0},
					{Name: "zoomprobe_box_verdicts_total", Labels: map[string]string{"box": "fw1"}, Value: 0},
					{Name: "zoomprobe_box_packets_total", Labels: map[string]string{"box": "fw1", "result": "dropped_outbound"}, Value: 0},
					{Name: "zoomprobe_box_packets_total", Labels: map[string]string{"box": "fw1", "result": "dropped_inbound"}, Value: 0},
				},
			},
		},
	}
}

// TestBoxScenarios runs the router as a box with two mirrored ports (inside:
// cli0, outside: srv0 after NAT), writes both captures and analyses them as
// `analyze --box fw1:inside.pcap:outside.pcap`: the box's drop of UDP 8801
// and its reset of TCP 8802 are findings that name it (where
// between_capture_points), with no beyond-the-probe finding for the same
// blocks; a clean NAT gives none.
func TestBoxScenarios(t *testing.T) {
	for _, sc := range boxScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			bed, err := New(t, Options{OutsideMirror: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, bh := range sc.router {
				if err := bed.Apply(bh); err != nil {
					t.Fatalf("apply %s: %v", bh, err)
				}
			}
			res, err := bed.RunClient(sc.client)
			if err != nil {
				t.Fatal(err)
			}
			bed.Mirror.WaitQuiet(settleIdle, settleMax)
			bed.Outside.WaitQuiet(settleIdle, settleMax)
			if err := checkClient(res, sc.expect); err != nil {
				t.Fatalf("%v\nclient: %s", err, res)
			}
			dir := os.Getenv(PcapDirEnv)
			if dir == "" {
				dir = t.TempDir()
			}
			in, out := filepath.Join(dir, sc.name+"-inside.pcap"), filepath.Join(dir, sc.name+"-outside.pcap")
			if err := WritePcap(in, bed.Mirror.Packets()); err != nil {
				t.Fatal(err)
			}
			if err := WritePcap(out, bed.Outside.Packets()); err != nil {
				t.Fatal(err)
			}
			// The outside capture really is translated: no client LAN address on it.
			for _, s := range DecodeAll(bed.Outside.Packets()) {
				if s.Src == ClientAddr || s.Dst == ClientAddr {
					t.Fatalf("the outside capture holds the client's own address: %s", s)
				}
			}
			box, err := offline.ParseBox("fw1:" + in + ":" + out)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ares, err := offline.Analyze(ctx, daemonConfig(t), nil, offline.Options{Boxes: []offline.Box{box}})
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckMetrics(ares.Gatherer(), sc.expect.Metrics); err != nil {
				t.Errorf("metrics: %v", err)
			}
			// Every Zoom packet that crossed the box was matched across it.
			results := map[string]float64{}
			fams, _ := ares.Gatherer().Gather()
			for _, mf := range fams {
				if mf.GetName() == "zoomprobe_box_packets_total" {
					for _, m := range mf.GetMetric() {
						for _, lp := range m.GetLabel() {
							if lp.GetName() == "result" {
								results[lp.GetValue()] = m.GetCounter().GetValue()
							}
						}
					}
				}
			}
			t.Logf("fw1 packets by result: %v", results)
			if results["matched"] < 20 || results["outside_only"] != 0 || results["inside_only"] != 0 {
				t.Errorf("packets by result %v: want the crossing traffic matched, nothing on one side only but the box's drops", results)
			}
			if err := MatchFindings(ares.Findings, sc.expect.Findings); err != nil {
				for _, f := range ares.Findings {
					t.Logf("  reported: %s/%s service=%s flow=%+v evidence=%v", f.Kind, f.Reason, f.Service, f.Flow, f.Evidence)
				}
				t.Error(err)
			}
			for _, f := range ares.Findings {
				if f.Kind != finding.KindBlockedConnection {
					continue
				}
				if f.Evidence["where"] != "between_capture_points" || f.Evidence["box"] != "fw1" || !strings.Contains(f.Remediation, "fw1") {
					t.Errorf("%s/%s on %d does not name the box: evidence %v, remediation %q", f.Kind, f.Reason, f.Flow.ServerPort, f.Evidence, f.Remediation)
				}
			}
			if t.Failed() {
				var sb strings.Builder
				for _, s := range DecodeAll(bed.Outside.Packets()) {
					fmt.Fprintln(&sb, "outside:", s)
				}
				t.Log(sb.String())
			}
		})
	}
}
