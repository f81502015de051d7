package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
)

// testPlugin builds testAnalyzers that log their calls in one shared log.
type testPlugin struct {
	name string
	log  *[]string
	// panicPort: Packet panics for flows to this server port; expirePort: Expire does.
	panicPort, expirePort uint16
}

func (p testPlugin) Name() string { return p.name }
func (p testPlugin) Init(analyzers.Env) (func() analyzers.Analyzer, error) {
	return func() analyzers.Analyzer { return &testAnalyzer{p} }, nil
}

type testAnalyzer struct{ testPlugin }

func (a *testAnalyzer) Packet(f *flow.Flow, _ *decode.Packet, _ flow.Dir) {
	*a.log = append(*a.log, fmt.Sprintf("%s packet %d", a.name, f.ServerPort()))
	if f.ServerPort() == a.panicPort {
		var m map[string]int
		//lint:ignore SA5000 a nil map write on purpose: a genuine runtime panic
		m["boom"]++
	}
}
func (a *testAnalyzer) ICMP(*flow.Flow, *decode.Packet, flow.Dir) {}
func (a *testAnalyzer) Expire(f *flow.Flow, _ time.Time, _ flow.ExpireReason) {
	*a.log = append(*a.log, fmt.Sprintf("%s expire %d", a.name, f.ServerPort()))
	if f.ServerPort() == a.expirePort {
		panic("expire boom")
	}
}

func tcpPacket(at time.Duration, dport uint16, flags uint8) decode.Packet {
	return decode.Packet{Time: t0.Add(at), Proto: decode.ProtoTCP, IPVersion: 4, TTL: 64,
		Src: netip.MustParseAddr(client), Dst: netip.MustParseAddr("52.1.2.3"), SrcPort: 40000, DstPort: dport, TCPFlags: flags, Seq: 1}
}

// The engine runs the analyzers in analyzers.Order, whatever the order of
// registration; analyzers.disabled removes one without reordering the rest.
func TestAnalyzersRunInOrder(t *testing.T) {
	var names []string
	for _, p := range analyzers.Registered() {
		names = append(names, p.Name())
	}
	if !slices.Equal(names, analyzers.Order) {
		t.Fatalf("registered %v, Order %v", names, analyzers.Order)
	}
	for _, disabled := range []string{"", "tls", "dnsfilter"} {
		cfg := config.Default()
		if disabled != "" {
			cfg.Analyzers.Disabled = []string{disabled}
		}
		e, err := New(Options{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range e.m.analyzers {
			got = append(got, h.name)
		}
		want := slices.DeleteFunc(slices.Clone(analyzers.Order), func(n string) bool { return n == disabled })
		if !slices.Equal(got, want) {
			t.Errorf("disabled %q: engine runs %v, want %v", disabled, got, want)
		}
	}
	// Every packet and every expiry go through the list in order.
	var log []string
	e, err := New(Options{Config: config.Default(), Plugins: []analyzers.Plugin{
		testPlugin{name: "c", log: &log}, testPlugin{name: "a", log: &log}, testPlugin{name: "b", log: &log}}})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	p := tcpPacket(0, 443, decode.TCPSyn)
	w.handle(&p)
	w.flush(time.Time{})
	want := []string{"c packet 443", "a packet 443", "b packet 443", "c expire 443", "a expire 443", "b expire 443"}
	if !slices.Equal(log, want) {
		t.Errorf("calls %v, want %v", log, want)
	}
}

// A panic in one analyzer's call is recovered: counted, logged once with the
// flow, the flow is dropped from that analyzer only, analyzer_up goes to 0,
// and the worker keeps going.
func TestAnalyzerPanicRecovered(t *testing.T) {
	var log []string
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	e, err := New(Options{Config: config.Default(), Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Plugins: []analyzers.Plugin{
			testPlugin{name: "first", log: &log},
			testPlugin{name: "faulty", log: &log, panicPort: 9999, expirePort: 9998},
			testPlugin{name: "last", log: &log},
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	for i, port := range []uint16{9999, 9999, 9999, 9998, 443} {
		p := tcpPacket(time.Duration(i)*time.Millisecond, port, decode.TCPAck)
		w.handle(&p)
	}
	w.flush(time.Time{})
	want := []string{
		"first packet 9999", "faulty packet 9999", "last packet 9999", // the panic
		"first packet 9999", "last packet 9999", // dropped from faulty only
		"first packet 9999", "last packet 9999",
		"first packet 9998", "faulty packet 9998", "last packet 9998",
		"first packet 443", "faulty packet 443", "last packet 443",
	}
	if got := log[:len(want)]; !slices.Equal(got, want) {
		t.Errorf("packet calls\n got %v\nwant %v", got, want)
	}
	expires := log[len(want):]
	slices.Sort(expires)
	wantExpires := []string{"faulty expire 443", "faulty expire 9998", "first expire 443", "first expire 9998", "first expire 9999", "last expire 443", "last expire 9998", "last expire 9999"}
	if !slices.Equal(expires, wantExpires) {
		t.Errorf("expire calls\n got %v\nwant %v", expires, wantExpires)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP zoomprobe_analyzer_panics_total Panics recovered at the analyzer boundary; each drops the flow from that analyzer.
# TYPE zoomprobe_analyzer_panics_total counter
zoomprobe_analyzer_panics_total{analyzer="faulty"} 2
zoomprobe_analyzer_panics_total{analyzer="first"} 0
zoomprobe_analyzer_panics_total{analyzer="last"} 0
# HELP zoomprobe_analyzer_up 1 for each analyzer that initialised and runs without fault; 0 once it panicked (it still sees the other flows).
# TYPE zoomprobe_analyzer_up gauge
zoomprobe_analyzer_up{analyzer="faulty"} 0
zoomprobe_analyzer_up{analyzer="first"} 1
zoomprobe_analyzer_up{analyzer="last"} 1
`), "zoomprobe_analyzer_panics_total", "zoomprobe_analyzer_up"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(logs.String(), "analyzer panicked"); n != 1 {
		t.Errorf("%d log lines for 2 panics, want 1:\n%s", n, logs.String())
	}
	for _, want := range []string{"analyzer=faulty", "server=52.1.2.3:9999", "client=10.1.1.2:40000", "assignment to entry in nil map"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// BenchmarkAnalyzerBoundary is one packet shown to an analyzer through the
// recovering loop: no allocation.
func BenchmarkAnalyzerBoundary(b *testing.B) {
	e, err := New(Options{Config: config.Default(), Plugins: []analyzers.Plugin{nop{}}})
	if err != nil {
		b.Fatal(err)
	}
	w := e.workers[0]
	p := tcpPacket(0, 443, decode.TCPSyn)
	f, d, _ := w.table.Packet(&p)
	b.ReportAllocs()
	for b.Loop() {
		w.packet(0, f, &p, d)
	}
}

type nop struct{}

func (nop) Name() string { return "nop" }
func (nop) Init(analyzers.Env) (func() analyzers.Analyzer, error) {
	return func() analyzers.Analyzer { return nop{} }, nil
}
func (nop) Packet(*flow.Flow, *decode.Packet, flow.Dir)     {}
func (nop) ICMP(*flow.Flow, *decode.Packet, flow.Dir)       {}
func (nop) Expire(*flow.Flow, time.Time, flow.ExpireReason) {}
