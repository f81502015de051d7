package engine

import (
	"crypto/tls"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// replay runs generated packets through one worker as a reader does (decode,
// DNS snooping, flow table, analyzers), flushes, and returns the findings
// and the service each flow ended as, by server address and port.
func replay(t *testing.T, pkts []testgen.Packet) (*Engine, []finding.Finding, map[netip.AddrPort]zoom.Service) {
	t.Helper()
	cfg := config.Default()
	cfg.Capture.Workers = 1
	var mu sync.Mutex
	var found []finding.Finding
	services := map[netip.AddrPort]zoom.Service{}
	e, err := New(Options{Config: cfg,
		Sink: finding.SinkFunc(func(f finding.Finding) { mu.Lock(); found = append(found, f); mu.Unlock() }),
		OnFlowEnd: func(f *flow.Flow, _ flow.ExpireReason) {
			mu.Lock()
			services[f.Server()] = f.Service()
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	dec := decode.NewDecoder(decode.Options{Decapsulate: true})
	sn := e.newSnooper()
	var p decode.Packet
	for _, fr := range pkts {
		if err := dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &p); err != nil {
			t.Fatal(err)
		}
		sn.observe(&p)
		w.handle(&p)
	}
	w.flush(time.Time{})
	return e, found, services
}

// The snooped name cache trusts a DNS answer only when it matches a query
// the probe saw: client address and port, server, transaction ID, question
// name and type, within zoom.dns_answer_window (5s by default).
func TestDNSAnswerMustMatchAQuery(t *testing.T) {
	client, resolver := testgen.PlanV4.Client, testgen.PlanV4.Resolver
	target := testgen.PlanV4.Example // not in Zoom's ranges: only a name makes it Zoom
	lookup := testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{target}}
	cases := []struct {
		name   string
		play   func(g *testgen.Generator)
		trust  bool
		reason unmatchedReason
	}{
		{"matched", func(g *testgen.Generator) { g.DNS(client, resolver, lookup) }, true, 0},
		{"unsolicited", func(g *testgen.Generator) {
			_, r := mustDNS(t, 0x1234, lookup)
			g.DNSFlow(client, resolver).Send(testgen.ServerToClient, r)
		}, false, unmatchedNoQuery},
		{"wrong-txid", func(g *testgen.Generator) {
			q, _ := mustDNS(t, 0x1234, lookup)
			_, r := mustDNS(t, 0x1235, lookup)
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			u.Send(testgen.ServerToClient, r)
		}, false, unmatchedNoQuery},
		{"wrong-client-port", func(g *testgen.Generator) {
			q, r := mustDNS(t, 0x1234, lookup)
			g.DNSFlow(client, resolver).Send(testgen.ClientToServer, q)
			g.DNSFlow(client, resolver).Send(testgen.ServerToClient, r)
		}, false, unmatchedNoQuery},
		{"wrong-server", func(g *testgen.Generator) {
			q, r := mustDNS(t, 0x1234, lookup)
			g.DNSFlow(client, resolver).Send(testgen.ClientToServer, q)
			u := g.DNSFlow(client, testgen.PlanV4.Router)
			u.Send(testgen.ServerToClient, r)
		}, false, unmatchedNoQuery},
		{"wrong-question-name", func(g *testgen.Generator) {
			q, _ := mustDNS(t, 0x1234, testgen.DNSLookup{Name: "www.zoom.us", Addrs: lookup.Addrs})
			_, r := mustDNS(t, 0x1234, lookup)
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			u.Send(testgen.ServerToClient, r)
		}, false, unmatchedQuestion},
		{"wrong-question-type", func(g *testgen.Generator) {
			q, _ := mustDNS(t, 0x1234, testgen.DNSLookup{Name: "zoom.us", Type: dnsmessage.TypeAAAA})
			_, r := mustDNS(t, 0x1234, lookup)
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			u.Send(testgen.ServerToClient, r)
		}, false, unmatchedQuestion},
		{"after-window", func(g *testgen.Generator) {
			q, r := mustDNS(t, 0x1234, lookup)
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			g.Advance(6 * time.Second)
			u.Send(testgen.ServerToClient, r)
		}, false, unmatchedLate},
		{"second-answer", func(g *testgen.Generator) {
			q, r := mustDNS(t, 0x1234, lookup)
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			u.Send(testgen.ServerToClient, r)
			// The first answer was for another address: the second is not trusted.
			_, r2 := mustDNS(t, 0x1234, testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{testgen.PlanV4.Other}})
			u.Send(testgen.ServerToClient, r2)
		}, true, unmatchedDuplicate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := testgen.New(7, testgen.DefaultStart)
			c.play(g)
			g.Advance(time.Millisecond)
			at := g.Now()
			// A flow right after the answer.
			g.TCPConn(netip.AddrPortFrom(client, 50000), netip.AddrPortFrom(target, 443), testgen.TCPOptions{}).Close()
			if err := g.Flush(); err != nil {
				t.Fatal(err)
			}
			e, _, services := replay(t, g.Packets())
			_, named := e.names.Get(target, at)
			svc := services[netip.AddrPortFrom(target, 443)]
			if named != c.trust || (svc == zoom.ServiceWeb) != c.trust {
				t.Errorf("name cached %v, flow service %s; want trusted=%v", named, svc, c.trust)
			}
			if c.name == "second-answer" {
				if _, ok := e.names.Get(testgen.PlanV4.Other, at); ok {
					t.Error("the second answer's address was cached")
				}
			}
			for r := range numUnmatchedReasons {
				want := uint64(0)
				if !c.trust && r == c.reason || c.name == "second-answer" && r == unmatchedDuplicate {
					want = 1
				}
				if got := e.queries.unmatched[r].Load(); got != want {
					t.Errorf("unmatched{reason=%q} = %d, want %d", unmatchedReasonNames[r], got, want)
				}
			}
		})
	}
}

func mustDNS(t *testing.T, id uint16, l testgen.DNSLookup) (q, r []byte) {
	t.Helper()
	q, r, err := testgen.DNSMessages(id, l)
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

// A spoofed answer ("zoom.us is example.org's address") followed by a TLS
// handshake to that address with a certificate nobody trusts must not be
// reported as interception of Zoom: the connection is not Zoom's. With the
// real query and answer, the same handshake is. The client sends no SNI, so
// only the DNS name can make the connection Zoom's.
func TestSpoofedDNSAnswerIsNoZoomInterception(t *testing.T) {
	client, resolver := testgen.PlanV4.Client, testgen.PlanV4.Resolver
	target := testgen.PlanV4.Example
	lookup := testgen.DNSLookup{Name: "zoom.us", Addrs: []netip.Addr{target}}
	spec := testgen.TLSSpec{Version: tls.VersionTLS12, Chain: testgen.ChainUnknown, Names: []string{testgen.NameExample}}
	for _, spoofed := range []bool{true, false} {
		g := testgen.New(11, testgen.DefaultStart)
		if spoofed {
			q, _ := mustDNS(t, 0x4242, lookup)
			_, r := mustDNS(t, 0x4243, lookup) // an off-path guess of the ID
			u := g.DNSFlow(client, resolver)
			u.Send(testgen.ClientToServer, q)
			u.Send(testgen.ServerToClient, r)
		} else {
			g.DNS(client, resolver, lookup)
		}
		g.Advance(2 * time.Millisecond)
		c, tr := g.TLS(netip.AddrPortFrom(client, 50001), netip.AddrPortFrom(target, 443), testgen.TCPOptions{}, spec)
		if tr == nil {
			t.Fatal(g.Err())
		}
		c.Close()
		if err := g.Flush(); err != nil {
			t.Fatal(err)
		}
		_, found, _ := replay(t, g.Packets())
		intercepted := 0
		for _, f := range found {
			if f.Kind == finding.KindTLSInterception {
				intercepted++
			}
		}
		if spoofed && intercepted != 0 {
			t.Errorf("spoofed answer: %d interception findings, want none: %+v", intercepted, found)
		}
		if !spoofed && intercepted == 0 {
			t.Errorf("matched answer: no interception finding (the test no longer proves anything): %+v", found)
		}
	}
}

// BenchmarkSnoopDNS is the snooper on DNS traffic for Zoom names: a query
// then its answer, over 64 client ports. One op is one packet; it must not
// allocate.
func BenchmarkSnoopDNS(b *testing.B) {
	g := testgen.New(3, testgen.DefaultStart)
	for range 64 {
		g.DNS(testgen.PlanV4.Client, testgen.PlanV4.Resolver, testgen.DNSLookup{Name: "zoomfr85zc.zoom.us", Addrs: []netip.Addr{testgen.PlanV4.ZC, testgen.PlanV4.MMR}})
		g.DNS(testgen.PlanV4.Client2, testgen.PlanV4.Resolver, testgen.DNSLookup{Name: "example.org", Addrs: []netip.Addr{testgen.PlanV4.Example}})
	}
	if err := g.Flush(); err != nil {
		b.Fatal(err)
	}
	frames := g.Packets()
	e, err := New(Options{Config: config.Default()})
	if err != nil {
		b.Fatal(err)
	}
	dec := decode.NewDecoder(decode.Options{})
	sn := e.newSnooper()
	pkts := make([]decode.Packet, len(frames))
	for i, fr := range frames {
		if err := dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), &pkts[i]); err != nil {
			b.Fatal(err)
		}
		pkts[i].Payload = append([]byte(nil), pkts[i].Payload...)
		sn.observe(&pkts[i])
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sn.observe(&pkts[i%len(pkts)])
	}
	if n := e.queries.unmatched[unmatchedNoQuery].Load(); n != 0 {
		b.Fatalf("%d answers unmatched", n)
	}
}
