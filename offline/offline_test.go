package offline

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	_ "github.com/zoomprobe/zoomprobe/analyzers/all"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
	"github.com/zoomprobe/zoomprobe/zoom"
)

var update = flag.Bool("update", false, "rewrite golden files")

func writeCapture(t testing.TB, pkts []testgen.Packet, format testgen.Format) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture."+string(format))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testgen.WritePackets(f, format, pkts); err != nil {
		t.Fatal(err)
	}
	return path
}

func build(t testing.TB, name string, p testgen.Params) *testgen.Scenario {
	t.Helper()
	sc, err := testgen.Build(name, p)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// testConfig trusts the scenarios' test PKI the way a site adds roots: the
// test "Zoom" root and the test public CA stand in for the system's store.
func testConfig(workers int) *config.Config {
	cfg := config.Default()
	cfg.Capture.Workers = workers
	cfg.TLS.SystemRoots = false
	cfg.TLS.ExtraRoots = []string{"../testdata/ca/zoom-root.pem", "../testdata/ca/public-ca.pem"}
	return cfg
}

func analyze(t testing.TB, cfg *config.Config, files ...string) *Result {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(1)
	}
	res, err := Analyze(context.Background(), cfg, files, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Every Zoom flow of the clean scenario is identified with its service class,
// whatever wraps it and however many workers share the work; nothing else is listed.
func TestIdentifiesEveryFlow(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		sc := build(t, "zoom-clean", testgen.Params{IPv6: v6})
		for _, wrap := range testgen.Wraps() {
			pkts, err := testgen.WrapAll(wrap, sc.Packets)
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 2} {
				name := fmt.Sprintf("ipv6=%v/%s/workers=%d", v6, wrap, workers)
				t.Run(name, func(t *testing.T) {
					res := analyze(t, testConfig(workers), writeCapture(t, pkts, testgen.FormatPCAPNG))
					if res.Packets != uint64(len(pkts)) {
						t.Errorf("read %d packets, wrote %d", res.Packets, len(pkts))
					}
					checkFlows(t, sc, res)
				})
			}
		}
	}
}

func checkFlows(t *testing.T, sc *testgen.Scenario, res *Result) {
	t.Helper()
	got := map[string]Flow{}
	for _, f := range res.Flows {
		got[fmt.Sprintf("%s %s>%s", f.Transport, netip.AddrPortFrom(f.Client, f.ClientPort), netip.AddrPortFrom(f.Server, f.ServerPort))] = f
	}
	zoomFlows := 0
	for _, want := range sc.Flows {
		key := fmt.Sprintf("%s %s>%s", want.Transport, want.Client, want.Server)
		f, listed := got[key]
		if want.Service == zoom.ServiceNone {
			if listed {
				t.Errorf("%s listed as %s, want not Zoom", key, f.Service)
			}
			continue
		}
		zoomFlows++
		if !listed {
			t.Errorf("%s (%s) not identified", key, want.Service)
			continue
		}
		if f.Service != want.Service.String() {
			t.Errorf("%s identified as %s, want %s", key, f.Service, want.Service)
		}
	}
	if len(res.Flows) != zoomFlows {
		t.Errorf("listed %d flows, want the %d Zoom flows", len(res.Flows), zoomFlows)
	}
}

// findingKey is what a scenario promises about a finding.
func findingKey(kind, reason, transport, server string, port uint16) string {
	return fmt.Sprintf("%s/%s %s %s:%d", kind, reason, transport, server, port)
}

// Every scenario gives exactly the findings it promises (none for the clean
// and ordinary-life ones), from pcap and pcapng alike.
func TestScenarioFindings(t *testing.T) {
	for _, info := range testgen.List() {
		t.Run(info.Name, func(t *testing.T) {
			sc := build(t, info.Name, testgen.Params{})
			res := analyze(t, nil, writeCapture(t, sc.Packets, testgen.FormatPCAP))
			var want, got []string
			products := map[string]string{}
			for _, f := range sc.Findings {
				k := findingKey(string(f.Kind), string(f.Reason), f.Transport, f.Server.String(), f.ServerPort)
				want = append(want, k)
				if f.Product != "" {
					products[k] = f.Product
				}
			}
			for _, f := range res.Findings {
				k := findingKey(string(f.Kind), string(f.Reason), "", "", 0)
				if f.Flow != nil {
					k = findingKey(string(f.Kind), string(f.Reason), f.Flow.Transport, f.Flow.Server.String(), f.Flow.ServerPort)
				}
				got = append(got, k)
				if p, ok := products[k]; ok && f.Product != p {
					t.Errorf("%s: product %q, want %q", k, f.Product, p)
				}
			}
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Errorf("findings:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
				for _, f := range res.Findings {
					t.Logf("got %+v", f)
				}
			}
		})
	}
}

// The engine's own metrics after the clean scenario match the golden text.
func TestGoldenMetrics(t *testing.T) {
	sc := build(t, "zoom-clean", testgen.Params{})
	res := analyze(t, nil, writeCapture(t, sc.Packets, testgen.FormatPCAP))
	golden := filepath.Join("testdata", "zoom-clean.metrics")
	names := []string{"zoomprobe_packets_total", "zoomprobe_flows_total", "zoomprobe_active_flows", "zoomprobe_zoom_packets_total", "zoomprobe_flow_evictions_total", "zoomprobe_decode_errors_total"}
	if *update {
		var b strings.Builder
		if err := res.WriteMetrics(&b); err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, block := range strings.SplitAfter(b.String(), "\n# HELP ") {
			for _, n := range names {
				if strings.HasPrefix(block, n+" ") || strings.HasPrefix(block, "# HELP "+n+" ") {
					keep = append(keep, block)
				}
			}
		}
		out := strings.Join(keep, "")
		if !strings.HasPrefix(out, "# HELP ") {
			out = "# HELP " + out
		}
		out = strings.TrimSuffix(out, "# HELP ")
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./offline -run GoldenMetrics -update)", err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(res.Gatherer(), f, names...); err != nil {
		t.Error(err)
	}
}

// The same scenario split across two files, given in the wrong order, is
// merged in packet-time order and gives the same flows.
func TestMergesFilesInTimeOrder(t *testing.T) {
	sc := build(t, "zoom-clean", testgen.Params{})
	half := len(sc.Packets) / 2
	a := writeCapture(t, sc.Packets[:half], testgen.FormatPCAP)
	b := writeCapture(t, sc.Packets[half:], testgen.FormatPCAPNG)
	res := analyze(t, nil, b, a)
	checkFlows(t, sc, res)
}

// Real captures from other projects: a correct probe sees Zoom flows and
// reports nothing.
func TestSharedRealCaptures(t *testing.T) {
	for _, name := range []string{"ndpi-zoom2.pcap", "ndpi-stun_zoom.pcapng"} {
		path := filepath.Join("..", "..", "shared", "captures", name)
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s not present (../shared/captures is beside the repository on the project's machines)", path)
		}
		t.Run(name, func(t *testing.T) {
			cfg := config.Default() // real chains: the system's roots
			cfg.Capture.Workers = 1
			res := analyze(t, cfg, path)
			zoomFlows := 0
			for svc, byT := range res.FlowsByService {
				if svc != "none" {
					zoomFlows += byT["tcp"] + byT["udp"]
				}
			}
			if zoomFlows == 0 {
				t.Errorf("no Zoom flow identified: %v", res.FlowsByService)
			}
			for _, f := range res.Findings {
				t.Errorf("clean capture gave a finding: %+v", f)
			}
		})
	}
}

func BenchmarkAnalyzeLarge(b *testing.B) {
	path := filepath.Join(b.TempDir(), "large.pcap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w, err := testgen.NewPacketWriter(f, testgen.FormatPCAP)
	if err != nil {
		b.Fatal(err)
	}
	n, err := testgen.Large(200000, testgen.LargeOptions{}, w.WritePacket)
	if err == nil {
		err = w.Flush()
	}
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Capture.Workers = 1
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Analyze(context.Background(), cfg, []string{path}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/packet")
}

// Where a block happened is told exactly: every promised "where" holds, and a
// client_side_drop finding carries every count and label the scenario promises.
func TestWhereEvidence(t *testing.T) {
	for _, info := range testgen.List() {
		sc := build(t, info.Name, testgen.Params{})
		checked := false
		for _, want := range sc.Findings {
			if _, ok := want.Evidence["where"]; ok {
				checked = true
			}
		}
		if !checked {
			continue
		}
		t.Run(info.Name, func(t *testing.T) {
			res := analyze(t, nil, writeCapture(t, sc.Packets, testgen.FormatPCAP))
			for _, want := range sc.Findings {
				if _, ok := want.Evidence["where"]; !ok {
					continue
				}
				k := findingKey(string(want.Kind), string(want.Reason), want.Transport, want.Server.String(), want.ServerPort)
				var got map[string]any
				for _, f := range res.Findings {
					if f.Flow != nil && findingKey(string(f.Kind), string(f.Reason), f.Flow.Transport, f.Flow.Server.String(), f.Flow.ServerPort) == k {
						got = f.Evidence
					}
				}
				if got == nil {
					t.Errorf("%s: no finding", k)
					continue
				}
				for key, v := range want.Evidence {
					if want.Reason != "client_side_drop" && key != "where" {
						continue // other analyzers' evidence keys are suggestions
					}
					if g := fmt.Sprint(got[key]); g != v {
						t.Errorf("%s: evidence %s = %s, want %s (all: %v)", k, key, g, v, got)
					}
				}
			}
		})
	}
}

// Flows without any finding still list their TLS version and issuer (the
// TLS analyzer's handshake summary), not only flows a finding described.
func TestFlowsListCleanHandshakes(t *testing.T) {
	sc := build(t, "zoom-clean", testgen.Params{})
	res := analyze(t, nil, writeCapture(t, sc.Packets, testgen.FormatPCAP))
	versions := map[string]int{}
	for _, f := range res.Flows {
		if f.Transport != "tcp" || f.ServerPort != 443 {
			continue
		}
		if len(f.Verdicts) != 0 {
			t.Errorf("clean scenario: %v has verdicts %v", f.Server, f.Verdicts)
		}
		versions[f.TLSVersion]++
		if f.TLSVersion == "tls1.2" && f.Issuer == "" {
			t.Errorf("TLS 1.2 flow to %v lists no issuer", f.Server)
		}
		if f.TLSVersion == "tls1.3" && f.Issuer != "" {
			t.Errorf("TLS 1.3 flow to %v lists issuer %q: the certificate is encrypted", f.Server, f.Issuer)
		}
	}
	t.Logf("TLS flows by version: %v", versions)
	if versions["tls1.2"]+versions["tls1.3"] == 0 || versions[""] != 0 {
		t.Errorf("TLS flows by listed version %v: want every one with its version", versions)
	}
}
