package offline

import (
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// A finding's sni is the name the client sent in its ClientHello. When the
// flow is known only by the DNS name of its server (a SYN that got no
// answer; UDP, which has no SNI), that name is evidence with its source,
// never the sni: an admin reading sni=zoom.us would look for an SNI filter.
func TestFindingSNIIsWhatTheClientSent(t *testing.T) {
	g := testgen.New(11, testgen.DefaultStart)
	client := netip.MustParseAddr("10.1.1.2")
	tcpServer, udpServer := netip.MustParseAddr("52.1.2.8"), netip.MustParseAddr("52.1.2.9")
	g.DNS(client, netip.MustParseAddr("10.1.1.1"), testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{tcpServer}})
	g.DNS(client, netip.MustParseAddr("10.1.1.1"), testgen.DNSLookup{Name: "zoomsj10mmr.sj.zoom.us", Addrs: []netip.Addr{udpServer}})
	g.Advance(10 * time.Millisecond)
	c := g.NewTCP(netip.AddrPortFrom(client, 40001), netip.AddrPortFrom(tcpServer, 443), testgen.TCPOptions{})
	for _, rto := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 0} {
		c.SYN() // again: a retransmission
		g.Advance(rto)
	}
	u := g.UDP(netip.AddrPortFrom(client, 50001), netip.AddrPortFrom(udpServer, 8801), testgen.UDPOptions{})
	for range 3 {
		u.Send(testgen.ClientToServer, append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...))
		g.Advance(2 * time.Second)
	}
	g.Advance(30 * time.Second)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	res := analyze(t, nil, writeCapture(t, g.Packets(), testgen.FormatPCAP))
	want := map[string]string{tcpServer.String(): "zoom.us", udpServer.String(): "zoomsj10mmr.sj.zoom.us"}
	seen := map[string]bool{}
	for _, f := range res.Findings {
		if f.Kind != finding.KindBlockedConnection || f.Flow == nil {
			continue
		}
		srv := f.Flow.Server.String()
		name, ok := want[srv]
		if !ok {
			continue
		}
		seen[srv] = true
		if f.SNI != "" {
			t.Errorf("%s %s: sni %q, but the client sent none", srv, f.Reason, f.SNI)
		}
		if f.Evidence["server_name"] != name || f.Evidence["server_name_source"] != "dns" {
			t.Errorf("%s %s: evidence %v, want server_name %s from dns", srv, f.Reason, f.Evidence, name)
		}
	}
	for srv := range want {
		if !seen[srv] {
			t.Errorf("no blocked_connection finding for %s: %v", srv, res.Findings)
		}
	}
}
