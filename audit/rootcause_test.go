package audit

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/probes/probetest"
)

// When the resolver fails, DNS is the root cause: the DNS row fails and names
// the resolver and what it did, the checks that needed the names are "not
// tested" (SKIP rows, no findings blaming a firewall), the headline names the
// cause and how many checks depended on it, and its findings come first.
// Real DNS servers on 127.0.0.53: silent, SERVFAIL, REFUSED.
func TestAuditDNSRootCause(t *testing.T) {
	probetest.RequireIsolated(t)
	const resolver = "127.0.0.53:53"
	cases := []struct {
		name   string
		serve  func(t *testing.T)
		cause  string
		reason finding.Reason
	}{
		{"timeout", func(t *testing.T) { probetest.SilentUDP(t, resolver) }, "DNS: resolver 127.0.0.53:53 timed out", finding.ReasonDNSTimeout},
		{"servfail", func(t *testing.T) {
			probetest.DNSServer(t, map[string]probetest.DNSAnswer{
				"zoom.us": {RCode: dnsmessage.RCodeServerFailure}, "www.zoom.us": {RCode: dnsmessage.RCodeServerFailure},
				"zoomfrn99mmr.zoom.us": {RCode: dnsmessage.RCodeServerFailure},
			}, resolver)
		}, "DNS: resolver 127.0.0.53:53 answered SERVFAIL", finding.ReasonDNSServFail},
		{"refused", func(t *testing.T) {
			probetest.DNSServer(t, map[string]probetest.DNSAnswer{
				"zoom.us": {RCode: dnsmessage.RCodeRefused}, "www.zoom.us": {RCode: dnsmessage.RCodeRefused},
				"zoomfrn99mmr.zoom.us": {RCode: dnsmessage.RCodeRefused},
			}, resolver)
		}, "DNS: resolver 127.0.0.53:53 answered REFUSED", finding.ReasonDNSRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.serve(t)
			cfg, err := config.Parse([]byte(`probes:
  tls: {timeout: 1s, targets: [zoom.us, www.zoom.us]}
  tcp: {timeout: 1s, targets: [zoom.us, zoomfrn99mmr.zoom.us]}
  stun: {timeout: 1s, targets: [zoomfrn99mmr.zoom.us]}
  dns: {timeout: 1s, system: false, resolvers: ["127.0.0.53"], names: [zoom.us, www.zoom.us]}
`))
			if err != nil {
				t.Fatal(err)
			}
			res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, resolver)
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := Run(ctx, Options{Config: cfg, Resolver: res, Checks: []string{"dns", "tcp", "stun", "tls12", "tls"}, Host: "testbed"})
			if err != nil {
				t.Fatal(err)
			}
			got := rows(r)
			dns := got["dns"]
			if dns.Status != report.Fail || !strings.Contains(strings.Join(dns.Evidence, "\n"), c.cause) || dns.Remediation == "" {
				t.Errorf("dns row %s %q remediation %q; want FAIL naming %q", dns.Status, dns.Evidence, dns.Remediation, c.cause)
			}
			for _, id := range []string{"tcp-443", "tcp-8801", "tcp-8802", "udp-3478", "udp-3479", "tls"} {
				q := got[id]
				if q.Status != report.Skip || !strings.Contains(strings.Join(q.Evidence, "\n"), "not tested: ") {
					t.Errorf("row %s = %s %q; want SKIP, not tested", id, q.Status, q.Evidence)
				}
			}
			// 6 TCP (2 hosts × 3 ports), 2 STUN, 4 TLS (2 hosts × 2 versions).
			if want := c.cause + "; 12 checks depended on it and were not tested."; !strings.HasPrefix(r.Headline, want) {
				t.Errorf("headline %q, want it to start %q", r.Headline, want)
			}
			if r.Overall != report.Fail || len(r.Findings) == 0 || r.Findings[0].Source != "probe/dns" || r.Findings[0].Reason != c.reason {
				t.Fatalf("overall %s, first finding %+v", r.Overall, r.Findings)
			}
			for _, f := range r.Findings {
				if f.Source != "probe/dns" {
					t.Errorf("a check the DNS failure stopped reported %s/%s: %s", f.Kind, f.Reason, f.Remediation)
				}
			}
			// The resolver is named once, with what it did.
			checkFacts(t, r, map[string]string{"resolvers": "127.0.0.53: " + string(c.reason), "egress_address": "not learnt: no STUN check was tested"})
			for _, f := range r.Facts {
				if f.ID == "resolvers" && strings.Contains(f.Value, "127.0.0.53:53") {
					t.Errorf("resolver named twice: %q", f.Value)
				}
			}
			for _, ch := range r.Checks {
				if ch.Check != "dns" && (ch.Status != report.Skip || ch.Reason != string(c.reason)) {
					t.Errorf("check %s %s = %s/%s; want SKIP/%s", ch.Check, ch.Target, ch.Status, ch.Reason, c.reason)
				}
			}
		})
	}
}
