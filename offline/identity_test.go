package offline

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/testgen"
)

// identityCapture is a capture whose flows only a name or Zoom's UDP header
// identifies: TLS to cloud addresses (outside Zoom's ranges, no DNS seen),
// one to an address a DNS answer mapped to zoom.us but whose ClientHello
// names example.com, and Zoom UDP media to a cloud address.
func identityCapture(t *testing.T) string {
	t.Helper()
	g := testgen.New(7, testgen.DefaultStart)
	client := netip.MustParseAddr("10.1.1.2")
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	g.DNS(client, netip.MustParseAddr("10.1.1.1"), testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{netip.MustParseAddr("52.1.2.5")}})
	g.Advance(10 * time.Millisecond)
	_, tr := g.TLS(netip.AddrPortFrom(client, 40001), ap("52.1.2.3:443"), testgen.TCPOptions{},
		testgen.TLSSpec{ServerName: "zoomam104zc.zoom.us", Version: tls.VersionTLS13, Chain: testgen.ChainZoom})
	if tr == nil || len(tr.Flights[0].Data) <= 1460 {
		t.Fatal("Go's ClientHello no longer spans two segments: the test lost its point")
	}
	g.TLS(netip.AddrPortFrom(client, 40002), ap("52.1.2.4:443"), testgen.TCPOptions{},
		testgen.TLSSpec{ServerName: "example.org", Version: tls.VersionTLS13, Chain: testgen.ChainPublic})
	g.TLS(netip.AddrPortFrom(client, 40003), ap("52.1.2.5:443"), testgen.TCPOptions{},
		testgen.TLSSpec{ServerName: "example.com", Version: tls.VersionTLS13, Chain: testgen.ChainPublic})
	u := g.UDP(netip.AddrPortFrom(client, 50001), ap("52.1.2.6:8801"), testgen.UDPOptions{})
	g.ZoomUDPMedia(u, testgen.ZoomMediaOptions{AudioPackets: 5, VideoFrames: 2})
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return writeCapture(t, g.Packets(), testgen.FormatPCAP)
}

// flowsByServer lists the result's flows by server address, through the
// JSON that `analyze --format json` prints.
func flowsByServer(t *testing.T, res *Result) map[string]map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Flows []map[string]any `json:"flows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]any{}
	for _, f := range out.Flows {
		m[f["server"].(string)] = f
	}
	return m
}

func checkIdentity(t *testing.T, flows map[string]map[string]any, server string, want map[string]any) {
	t.Helper()
	f, ok := flows[server]
	if want == nil {
		if ok {
			t.Errorf("%s listed: %v", server, f)
		}
		return
	}
	if !ok {
		t.Errorf("%s not listed, want %v", server, want)
		return
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s: %s = %v, want %v (flow %v)", server, k, f[k], v, f)
		}
	}
}

// Identity does not depend on the TLS analyzer: with tls disabled, flows are
// still named by their SNI (a ClientHello over two segments); an explicit
// SNI beats the DNS name of the address; JSON says how each was learnt.
func TestIdentityWithoutTLSAnalyzer(t *testing.T) {
	capture := identityCapture(t)
	for _, disabled := range [][]string{nil, {"tls"}, {"tls", "reach", "httpinspect", "dnsfilter"}} {
		cfg := testConfig(1)
		cfg.Analyzers.Disabled = disabled
		flows := flowsByServer(t, analyze(t, cfg, capture))
		checkIdentity(t, flows, "52.1.2.3", map[string]any{"service": "zone_controller", "source": "sni", "name": "zoomam104zc.zoom.us", "name_source": "sni"})
		checkIdentity(t, flows, "52.1.2.4", nil)
		checkIdentity(t, flows, "52.1.2.5", nil) // DNS said zoom.us, the ClientHello example.com
		checkIdentity(t, flows, "52.1.2.6", map[string]any{"service": "media", "source": "zoom_udp"})
	}
}

// Watching everything never demotes Zoom: the flows keep their Zoom classes,
// and the rest is watched.
func TestWatchAllKeepsZoom(t *testing.T) {
	cfg := testConfig(2)
	cfg.Zoom.Watch.All = true
	flows := flowsByServer(t, analyze(t, cfg, identityCapture(t)))
	checkIdentity(t, flows, "52.1.2.3", map[string]any{"service": "zone_controller", "source": "sni"})
	checkIdentity(t, flows, "52.1.2.6", map[string]any{"service": "media", "source": "zoom_udp"})
	checkIdentity(t, flows, "52.1.2.4", map[string]any{"service": "watched", "source": "watch", "name": "example.org"})
	checkIdentity(t, flows, "52.1.2.5", map[string]any{"service": "watched", "source": "watch", "name": "example.com"})

	// The clean meeting: every Zoom flow keeps its class.
	sc := build(t, "zoom-clean", testgen.Params{})
	res := analyze(t, cfg, writeCapture(t, sc.Packets, testgen.FormatPCAP))
	got := map[string]string{}
	for _, f := range res.Flows {
		got[f.Transport+" "+netip.AddrPortFrom(f.Client, f.ClientPort).String()+">"+netip.AddrPortFrom(f.Server, f.ServerPort).String()] = f.Service
	}
	for _, want := range sc.Flows {
		key := want.Transport + " " + want.Client.String() + ">" + want.Server.String()
		if want.Service.IsZoom() && got[key] != want.Service.String() {
			t.Errorf("%s: %q with watch.all, want %s", key, got[key], want.Service)
		}
	}
}
