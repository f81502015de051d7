package probes

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/probetest"
)

// resolverAt is a Go resolver that asks only the DNS server at addr.
func resolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// When a target's name does not resolve, the TCP, STUN and TLS checks are
// "not tested" with the DNS cause (resolver address and rcode, or timeout),
// never a blocked port: no finding blames the firewall. Real DNS servers on
// loopback: one silent, one answering SERVFAIL, one REFUSED, one NXDOMAIN.
func TestDependentChecksNotTestedWhenDNSFails(t *testing.T) {
	open := probetest.OpenPort(t)
	servers := []struct {
		name   string
		addr   string
		reason finding.Reason
		cause  string
	}{
		{"timeout", probetest.SilentUDP(t), finding.ReasonDNSTimeout, "timed out"},
		{"servfail", probetest.DNSServer(t, map[string]probetest.DNSAnswer{"zoom.us": {RCode: dnsmessage.RCodeServerFailure}}), finding.ReasonDNSServFail, "answered SERVFAIL"},
		{"refused", probetest.DNSServer(t, map[string]probetest.DNSAnswer{"zoom.us": {RCode: dnsmessage.RCodeRefused}}), finding.ReasonDNSRefused, "answered REFUSED"},
		{"nxdomain", probetest.DNSServer(t, nil), finding.ReasonDNSNXDomain, "does not exist"},
	}
	checks := []struct {
		name string
		p    Prober
		port uint16
	}{{"tcp", ProbeTCP, 8801}, {"stun", ProbeSTUN, 3478}, {"tls", ProbeTLS, 443}}
	for _, s := range servers {
		for _, c := range checks {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				tg := Target{Label: "zoom.us:" + port(open), Host: "zoom.us", Port: c.port}
				r := run(t, c.p, tg, Env{Config: testConfig(t), Resolver: resolverAt(s.addr)}, 700*time.Millisecond)
				if r.Status != StatusNotTested || r.Reason != s.reason || len(r.Findings) != 0 || r.Success {
					t.Fatalf("got %s/%s findings %v (%s); want not_tested/%s without findings", r.Status, r.Reason, findReason(r), r.Summary, s.reason)
				}
				want := "DNS: resolver " + s.addr + " " + s.cause
				if s.reason == finding.ReasonDNSNXDomain {
					want = "DNS: resolver " + s.addr + " says zoom.us " + s.cause
				}
				if !strings.HasPrefix(r.Cause, want) || !strings.Contains(r.Summary, "not tested: zoom.us did not resolve") {
					t.Errorf("cause %q summary %q; want the cause to start %q", r.Cause, r.Summary, want)
				}
				if strings.Contains(strings.ToLower(r.Summary), "firewall") || strings.Contains(r.Summary, "dropped") {
					t.Errorf("summary blames the path: %q", r.Summary)
				}
			})
		}
	}
}

// The dns check names the resolver and what it did, with dns_timeout for a
// silent resolver, and registers its sockets like every check.
func TestDNSCheckTimeoutNamesResolver(t *testing.T) {
	silent := probetest.SilentUDP(t)
	cfg := testConfig(t)
	cfg.DNS.Resolvers = []string{silent}
	own := ownflows.New(64, time.Second)
	r := run(t, ProbeDNS, Target{Label: "zoom.us", Host: "zoom.us"}, Env{Config: cfg, Own: own}, 700*time.Millisecond)
	if r.Status != StatusFail || r.Reason != finding.ReasonDNSTimeout || len(r.Findings) != 1 {
		t.Fatalf("got %s/%s %v (%s)", r.Status, r.Reason, findReason(r), r.Summary)
	}
	if want := "DNS: resolver " + silent + " timed out"; r.Cause != want || !strings.Contains(r.Summary, want) {
		t.Errorf("cause %q summary %q, want %q", r.Cause, r.Summary, want)
	}
	if f := r.Findings[0]; f.Evidence["server"] != silent || !strings.Contains(f.Remediation, "did not answer") {
		t.Errorf("finding evidence %v remediation %q", f.Evidence, f.Remediation)
	}
	server := netip.MustParseAddrPort(silent)
	found := false
	for _, k := range own.Sockets() {
		found = found || k.Remote == server && k.Proto == ownflows.ProtoUDP && own.Own(k.Proto, k.Remote, k.Local)
	}
	if !found {
		t.Errorf("the lookup's socket was not registered: %v", own.Sockets())
	}
}
