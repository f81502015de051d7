package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/testgen"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/zoomprobe -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it after review):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)) && len(out) < 20; i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, a, b))
		}
	}
	return strings.Join(out, "\n")
}

// testConfigFile trusts the scenarios' test PKI as a site adds roots.
func testConfigFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zoomprobe.yml")
	y := "tls:\n  system_roots: false\n  extra_roots: [\"" + caFile(t, "zoom-root.pem") + "\", \"" + caFile(t, "public-ca.pem") + "\"]\n"
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// repeatedFindings is a capture where the same things break again and
// again: two clients refused by the zone controller five times each, one
// client's media datagrams refused by the firewall with ICMP three times,
// and a proxy refusing CONNECT with a hostile Server header (escape codes,
// a bidi override) that must reach the terminal escaped.
func repeatedFindings(t *testing.T) string {
	t.Helper()
	p := testgen.PlanV4
	g := testgen.New(testgen.DefaultSeed, testgen.DefaultStart)
	for _, c := range []netip.Addr{p.Client, p.Client2} {
		g.DNS(c, p.Resolver, testgen.DNSLookup{Name: testgen.NameZC, Addrs: []netip.Addr{p.ZC}, TTL: 300})
		g.DNS(c, p.Resolver, testgen.DNSLookup{Name: testgen.NameMMR, Addrs: []netip.Addr{p.MMR}, TTL: 300})
	}
	g.Advance(10 * time.Millisecond)
	for i := 0; i < 5; i++ {
		for _, c := range []netip.Addr{p.Client, p.Client2} {
			conn := g.NewTCP(netip.AddrPortFrom(c, g.EphemeralPort()), netip.AddrPortFrom(p.ZC, 443), testgen.TCPOptions{})
			conn.SYN()
			conn.Reset(testgen.ServerToClient, testgen.ResetOptions{})
			g.Advance(700 * time.Millisecond)
		}
	}
	for i := 0; i < 3; i++ {
		u := g.UDP(netip.AddrPortFrom(p.Client, g.EphemeralPort()), netip.AddrPortFrom(p.MMR, 8801), testgen.UDPOptions{})
		var id [16]byte
		id[0] = byte(i + 1)
		q := u.Send(testgen.ClientToServer, testgen.ZoomSetupRequest(id))
		g.Advance(400 * time.Microsecond)
		g.ICMPUnreachable(p.Router, q, testgen.UnreachAdminProhibited, 64)
		g.Advance(2 * time.Second)
	}
	c := g.TCPConn(netip.AddrPortFrom(p.Client2, 40001), netip.AddrPortFrom(p.Proxy, 3128), testgen.TCPOptions{})
	c.Send(testgen.ClientToServer, []byte("CONNECT zoomfr85zc.zoom.us:443 HTTP/1.1\r\nHost: zoomfr85zc.zoom.us:443\r\n\r\n"))
	c.Send(testgen.ServerToClient, []byte("HTTP/1.1 403 Forbidden\r\nServer: squid/5.7 \x1b]0;pwned\x07\x1b[2J\u202eFAKE\r\nContent-Length: 0\r\n\r\n"))
	c.CloseFrom(testgen.ServerToClient)
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "repeated.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testgen.WritePackets(f, testgen.FormatPCAP, g.Packets()); err != nil {
		t.Fatal(err)
	}
	return path
}

// analyzeGolden runs analyze and checks its exit status, stderr and that no
// control character from the packets reaches the terminal.
func analyzeGolden(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCaptured(t, append([]string{"--config.file", testConfigFile(t), "analyze"}, args...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, r := range stdout {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e) {
			t.Fatalf("%U from a packet reaches the terminal raw:\n%s", r, stdout)
		}
	}
	return stdout
}

// Repeated findings print once per group with their count, first and last
// time and distinct clients; the first finding's evidence is kept.
func TestAnalyzeGroupedGolden(t *testing.T) {
	capture := repeatedFindings(t)
	out := analyzeGolden(t, capture)
	golden(t, "analyze-grouped.txt", strings.ReplaceAll(out, capture, "repeated.pcap"))
}

// --flows lists each watched flow with its verdict.
func TestAnalyzeFlowsGolden(t *testing.T) {
	capture := repeatedFindings(t)
	out := analyzeGolden(t, "--flows", capture)
	golden(t, "analyze-flows.txt", strings.ReplaceAll(out, capture, "repeated.pcap"))
}

// --per-file gives each file its own timeline: merged, these captures (all
// starting at the same second, reusing a client port) make one flow of
// three and a fallback that never happened; apart, each says what it shows.
func TestAnalyzePerFileGolden(t *testing.T) {
	files := []string{"../../testdata/zoom-clean.pcap", "../../testdata/tls-fortigate.pcap", "../../testdata/syn-refused.pcap", "../../testdata/udp-fallback.pcap"}
	out := analyzeGolden(t, append([]string{"--per-file", "--flows"}, files...)...)
	golden(t, "analyze-per-file.txt", out)
	if n := strings.Count(out, "=== ../../testdata/"); n != len(files) {
		t.Errorf("%d file sections, want %d", n, len(files))
	}
}
