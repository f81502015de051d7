package probes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

func testConfig(t *testing.T) *config.ProbesConfig {
	t.Helper()
	c, err := config.Parse([]byte("probes:\n  dns:\n    system: false\n  ntp:\n    system_servers: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &c.Probes
}

func target(host, addr string) Target {
	ap := netip.MustParseAddrPort(addr)
	return Target{Label: net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))), Host: host, Port: ap.Port(), Address: addr}
}

func port(addr string) string { return strconv.Itoa(int(netip.MustParseAddrPort(addr).Port())) }

func run(t *testing.T, p Prober, tg Target, env Env, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p(ctx, tg, env)
}

func findReason(r Result) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, string(f.Kind)+"/"+string(f.Reason))
	}
	return out
}

func TestTCP(t *testing.T) {
	open := probetest.OpenPort(t)
	closed := probetest.ClosedPort(t)
	dropped := probetest.OpenPort(t)
	prohibited := probetest.OpenPort(t)
	cases := []struct {
		name       string
		addr       string
		rule       []string // iptables rule in the private namespace
		status     Status
		reason     finding.Reason
		wantFinder bool
	}{
		{"open", open, nil, StatusPass, finding.ReasonOK, false},
		{"refused", closed, nil, StatusFail, finding.ReasonConnectionRefused, true},
		{"dropped", dropped, []string{"OUTPUT", "-p", "tcp", "--dport", port(dropped), "-j", "DROP"}, StatusFail, finding.ReasonTimeout, true},
		{"admin-prohibited", prohibited, []string{"OUTPUT", "-p", "tcp", "--dport", port(prohibited), "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}, StatusFail, finding.ReasonHostUnreachable, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.rule != nil {
				probetest.Iptables(t, c.rule...)
			}
			r := run(t, ProbeTCP, target("zoomfrn99mmr.zoom.us", c.addr), Env{Config: testConfig(t)}, 700*time.Millisecond)
			if r.Status != c.status || r.Reason != c.reason || r.Success != (c.status == StatusPass) {
				t.Fatalf("got %s/%s success=%v (%s), want %s/%s", r.Status, r.Reason, r.Success, r.Summary, c.status, c.reason)
			}
			if got := len(r.Findings) > 0; got != c.wantFinder {
				t.Fatalf("findings %v, want some=%v", findReason(r), c.wantFinder)
			}
			if c.wantFinder {
				f := r.Findings[0]
				if f.Kind != finding.KindProbeFailure || f.Service != "media_router" || f.Flow == nil || f.Flow.ServerPort != netip.MustParseAddrPort(c.addr).Port() || !strings.Contains(f.UserSees, "5003") {
					t.Errorf("finding = %+v", f)
				}
			}
		})
	}
}

func TestSTUN(t *testing.T) {
	responder := probetest.STUNServer(t)
	silent := probetest.SilentUDP(t)
	closed := probetest.ClosedUDP(t)
	prohibited := probetest.SilentUDP(t)
	dropped := probetest.STUNServer(t)
	cases := []struct {
		name   string
		addr   string
		rule   []string
		status Status
		reason finding.Reason
		icmp   bool
	}{
		{"answer", responder, nil, StatusPass, finding.ReasonOK, false},
		{"silence-is-unknown", silent, nil, StatusUnknown, finding.ReasonUDPNoAnswer, false},
		{"port-unreachable", closed, nil, StatusFail, finding.ReasonICMPPortUnreachable, true},
		{"admin-prohibited", prohibited, []string{"INPUT", "-p", "udp", "--dport", port(prohibited), "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}, StatusFail, finding.ReasonICMPAdminProhibited, true},
		{"dropped-is-unknown", dropped, []string{"INPUT", "-p", "udp", "--dport", port(dropped), "-j", "DROP"}, StatusUnknown, finding.ReasonUDPNoAnswer, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.rule != nil {
				probetest.Iptables(t, c.rule...)
			}
			r := run(t, ProbeSTUN, target("zoomfrn99mmr.zoom.us", c.addr), Env{Config: testConfig(t)}, 600*time.Millisecond)
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%s (%s, %v), want %s/%s", r.Status, r.Reason, r.Summary, r.Evidence, c.status, c.reason)
			}
			if c.status == StatusPass {
				if r.Evidence["mapped_address"] == nil || !strings.HasPrefix(r.Evidence["mapped_address"].(string), "127.0.0.1:") || r.Evidence["answer"] != "zoom_response" {
					t.Errorf("evidence = %v", r.Evidence)
				}
				return
			}
			if len(r.Findings) != 1 || r.Findings[0].Reason != c.reason || r.Findings[0].Flow.Transport != "udp" {
				t.Fatalf("findings = %v", findReason(r))
			}
			if c.icmp && r.Evidence["icmp_sender"] != "127.0.0.1" {
				t.Errorf("icmp evidence = %v", r.Evidence)
			}
			if c.status == StatusUnknown && r.Findings[0].Confidence != "low" {
				t.Errorf("silence must be low confidence, got %q", r.Findings[0].Confidence)
			}
			if n, _ := r.Evidence["requests_sent"].(int); c.status == StatusUnknown && n != 3 {
				t.Errorf("requests_sent = %v, want 3 attempts", r.Evidence["requests_sent"])
			}
		})
	}
}

func TestNTP(t *testing.T) {
	cases := []struct {
		name   string
		skew   time.Duration
		closed bool
		status Status
		reason finding.Reason
		kind   finding.Kind
		code   int
	}{
		{"in-sync", 0, false, StatusPass, finding.ReasonOK, "", 0},
		{"warning", 42 * time.Second, false, StatusWarn, finding.ReasonClockSkewWarning, finding.KindClockSkew, 0},
		{"critical-ahead", 20 * time.Minute, false, StatusFail, finding.ReasonClockSkewCritical, finding.KindClockSkew, 5},
		{"critical-behind", -3 * time.Hour, false, StatusFail, finding.ReasonClockSkewCritical, finding.KindClockSkew, 5},
		{"unreachable", 0, true, StatusFail, finding.ReasonNTPUnreachable, finding.KindProbeFailure, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := probetest.ClosedUDP(t)
			if !c.closed {
				addr = probetest.NTPServer(t, c.skew)
			}
			tg := Target{Label: "ntp.test", Host: "127.0.0.1", Address: addr}
			r := run(t, ProbeNTP, tg, Env{Config: testConfig(t)}, time.Second)
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%s (%s %v), want %s/%s", r.Status, r.Reason, r.Summary, r.Evidence, c.status, c.reason)
			}
			if !c.closed {
				if !r.HasValue || abs(r.Value-c.skew.Seconds()) > 0.25 {
					t.Errorf("offset %v (has %v), want %v", r.Value, r.HasValue, c.skew.Seconds())
				}
				if r.Evidence["stratum"] != 2 {
					t.Errorf("stratum evidence = %v", r.Evidence["stratum"])
				}
			}
			if c.kind == "" {
				if len(r.Findings) != 0 {
					t.Errorf("unexpected findings %v", findReason(r))
				}
				return
			}
			if len(r.Findings) != 1 || r.Findings[0].Kind != c.kind || r.Findings[0].ZoomRoomsCode != c.code {
				t.Fatalf("findings = %+v", r.Findings)
			}
		})
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestDNS(t *testing.T) {
	pub := netip.MustParseAddr("170.114.52.2")
	srv := probetest.DNSServer(t, map[string]probetest.DNSAnswer{
		"zoom.us":          {Addrs: []netip.Addr{pub, netip.MustParseAddr("2620:123:2000::2")}},
		"sinkhole.zoom.us": {Addrs: []netip.Addr{netip.MustParseAddr("0.0.0.0")}},
		"umbrella.zoom.us": {Addrs: []netip.Addr{netip.MustParseAddr("146.112.61.104")}},
		"lo.zoom.us":       {Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		"private.zoom.us":  {Addrs: []netip.Addr{netip.MustParseAddr("10.1.2.3")}},
		"onprem.zoom.us":   {Addrs: []netip.Addr{netip.MustParseAddr("10.1.2.4")}},
		"servfail.zoom.us": {RCode: dnsmessage.RCodeServerFailure},
		"refused.zoom.us":  {RCode: dnsmessage.RCodeRefused},
		"www.zoom.us":      {Addrs: []netip.Addr{netip.MustParseAddr("170.114.52.3")}},
	})
	other := probetest.DNSServer(t, map[string]probetest.DNSAnswer{
		"zoom.us":     {Addrs: []netip.Addr{pub}},
		"www.zoom.us": {Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.9")}},
	})
	cases := []struct {
		name      string
		resolvers []string
		status    Status
		reason    finding.Reason
		kind      finding.Kind
	}{
		{"zoom.us", []string{srv}, StatusPass, finding.ReasonOK, ""},
		{"zoom.us", []string{srv, other}, StatusPass, finding.ReasonOK, ""},
		{"sinkhole.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSSinkhole, finding.KindDNSFiltered},
		{"umbrella.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSSinkhole, finding.KindDNSFiltered},
		{"lo.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSLoopback, finding.KindDNSFiltered},
		{"private.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSPrivate, finding.KindDNSFiltered},
		{"onprem.zoom.us", []string{srv}, StatusPass, finding.ReasonOK, ""},
		{"missing.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSNXDomain, finding.KindDNSFiltered},
		{"servfail.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSServFail, finding.KindProbeFailure},
		{"refused.zoom.us", []string{srv}, StatusFail, finding.ReasonDNSRefused, finding.KindProbeFailure},
		{"www.zoom.us", []string{srv, other}, StatusWarn, finding.ReasonDNSInconsistent, finding.KindProbeFailure},
		{"missing.zoom.us", []string{other, srv}, StatusFail, finding.ReasonDNSNXDomain, finding.KindDNSFiltered},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+strconv.Itoa(len(c.resolvers)), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.DNS.Resolvers = c.resolvers
			cfg.DNS.SinkholePrefixes = []netip.Prefix{netip.MustParsePrefix("146.112.61.104/32")}
			cfg.DNS.PrivateAllowed = []string{"onprem.zoom.us"}
			r := run(t, ProbeDNS, Target{Label: c.name, Host: c.name}, Env{Config: cfg}, 2*time.Second)
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%s (%s, %v), want %s/%s", r.Status, r.Reason, r.Summary, r.Evidence, c.status, c.reason)
			}
			if c.kind == "" {
				if len(r.Findings) != 0 {
					t.Fatalf("findings %v", findReason(r))
				}
				return
			}
			if len(r.Findings) == 0 || r.Findings[0].Kind != c.kind || r.Findings[0].Reason != c.reason || r.Findings[0].SNI != c.name {
				t.Fatalf("findings = %+v", r.Findings)
			}
		})
	}
}

// tlsBed is a "Zoom" root, an "inspection" CA and servers for each case.
type tlsBed struct {
	zoomCA, inspect *probetest.CA
	judge           ChainJudge
}

func newTLSBed(t *testing.T) *tlsBed {
	b := &tlsBed{
		zoomCA:  probetest.NewCA(t, "Test Zoom Root CA", "DigiCert Inc (test)"),
		inspect: probetest.NewCA(t, "FortiGate CA", "Fortinet"),
	}
	b.judge = CertcheckJudge(certcheck.Options{Roots: b.zoomCA.Pool(), Expected: []certcheck.Issuer{certcheck.IssuerFromCert(b.zoomCA.Cert)}, Products: certcheck.DefaultProducts()})
	return b
}

func TestTLS(t *testing.T) {
	bed := newTLSBed(t)
	now := time.Now()
	good := probetest.TLSServer(t, bed.zoomCA.Leaf(t, time.Time{}, time.Time{}, "zoom.us", "www.zoom.us"), 0)
	intercepted := probetest.TLSServer(t, bed.inspect.Leaf(t, time.Time{}, time.Time{}, "zoom.us"), 0)
	expired := probetest.TLSServer(t, bed.zoomCA.Leaf(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "zoom.us"), 0)
	future := probetest.TLSServer(t, bed.zoomCA.Leaf(t, now.Add(2*time.Hour), now.Add(48*time.Hour), "zoom.us"), 0)
	portal := probetest.TLSServer(t, bed.zoomCA.Leaf(t, time.Time{}, time.Time{}, "portal.example.net"), 0)
	// the site's inspection CA is trusted here (deployed to clients), but it is not Zoom's
	siteCA := probetest.NewCA(t, "Example Corp Inspection CA", "Example Corp")
	siteInspected := probetest.TLSServer(t, siteCA.Leaf(t, time.Time{}, time.Time{}, "zoom.us"), 0)
	trustingSite := CertcheckJudge(certcheck.Options{Roots: pools(bed.zoomCA, siteCA), Expected: []certcheck.Issuer{certcheck.IssuerFromCert(bed.zoomCA.Cert)}, Products: certcheck.DefaultProducts()})
	reset := probetest.ResetAfterHello(t)
	cases := []struct {
		name    string
		prober  Prober
		addr    string
		offset  time.Duration
		status  Status
		reason  finding.Reason
		kind    finding.Kind
		code    int
		version string
		product string
		judge   ChainJudge
	}{
		{"trusted-tls13", ProbeTLS, good, 0, StatusPass, finding.ReasonOK, "", 0, "TLS 1.3", "", nil},
		{"trusted-tls12", ProbeTLS12, good, 0, StatusPass, finding.ReasonOK, "", 0, "TLS 1.2", "", nil},
		{"interception", ProbeTLS12, intercepted, 0, StatusFail, finding.ReasonUnknownAuthority, finding.KindTLSInterception, 6, "TLS 1.2", "FortiGate", nil},
		{"interception-tls13", ProbeTLS, intercepted, 0, StatusFail, finding.ReasonUnknownAuthority, finding.KindTLSInterception, 6, "TLS 1.3", "FortiGate", nil},
		{"trusted-but-not-zoom-issuer", ProbeTLS, siteInspected, 0, StatusFail, finding.ReasonUnexpectedIssuer, finding.KindTLSInterception, 6, "TLS 1.3", "unknown", trustingSite},
		{"expired", ProbeTLS, expired, 0, StatusFail, finding.ReasonExpired, finding.KindCertificateProblem, 5, "TLS 1.3", "", nil},
		{"not-yet-valid", ProbeTLS, future, 0, StatusFail, finding.ReasonNotYetValid, finding.KindCertificateProblem, 5, "TLS 1.3", "", nil},
		// the local clock is 3h behind: NTP's offset makes the same certificate valid
		{"not-yet-valid-but-clock-behind", ProbeTLS, future, 3 * time.Hour, StatusPass, finding.ReasonOK, "", 0, "TLS 1.3", "", nil},
		{"hostname", ProbeTLS12, portal, 0, StatusFail, finding.ReasonInvalidHostname, finding.KindCertificateProblem, 1, "TLS 1.2", "", nil},
		{"reset-after-hello", ProbeTLS, reset, 0, StatusFail, finding.ReasonConnectionReset, finding.KindProbeFailure, 0, "", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &certcheck.Clock{}
			clock.SetOffset(c.offset)
			judge := bed.judge
			if c.judge != nil {
				judge = c.judge
			}
			env := Env{Config: testConfig(t), Judge: judge, Clock: clock}
			r := run(t, c.prober, target("zoom.us", c.addr), env, 3*time.Second)
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%s (%s, %v), want %s/%s", r.Status, r.Reason, r.Summary, r.Evidence, c.status, c.reason)
			}
			if c.version != "" && r.Evidence["version"] != c.version {
				t.Errorf("version %v, want %s", r.Evidence["version"], c.version)
			}
			if c.kind == "" {
				if len(r.Findings) != 0 {
					t.Fatalf("findings %v", findReason(r))
				}
				return
			}
			if len(r.Findings) != 1 {
				t.Fatalf("findings %v", findReason(r))
			}
			f := r.Findings[0]
			if f.Kind != c.kind || f.ZoomRoomsCode != c.code || f.SNI != "zoom.us" || f.Service != "web" {
				t.Fatalf("finding = %+v", f)
			}
			if c.kind == finding.KindTLSInterception && (!strings.Contains(f.UserSees, "code 6") || f.Product != c.product) {
				t.Errorf("user_sees = %q, product %q want %q", f.UserSees, f.Product, c.product)
			}
			checkInterceptionPEM(t, r, f, c.kind == finding.KindTLSInterception)
		})
	}
}

func pools(cas ...*probetest.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func TestTLSThroughProxy(t *testing.T) {
	bed := newTLSBed(t)
	good := probetest.TLSServer(t, bed.zoomCA.Leaf(t, time.Time{}, time.Time{}, "zoom.us", "www.zoom.us", "zoom.com"), 0)
	cases := []struct {
		name   string
		policy int
		bypass []string
		status Status
		reason finding.Reason
		kind   finding.Kind
		seen   bool
	}{
		{"allowed", http.StatusOK, nil, StatusPass, finding.ReasonOK, "", true},
		{"denied", http.StatusForbidden, nil, StatusFail, finding.ReasonProxyDenied, finding.KindProxyDenial, true},
		{"auth", http.StatusProxyAuthRequired, nil, StatusFail, finding.ReasonProxyAuthRequired, finding.KindProxyDenial, true},
		{"bad-gateway", http.StatusBadGateway, nil, StatusFail, finding.ReasonProxyBadGateway, finding.KindProxyDenial, true},
		{"closed", 0, nil, StatusFail, finding.ReasonProxyClosed, finding.KindProxyDenial, true},
		{"bypass-goes-direct", http.StatusForbidden, []string{"zoom.us"}, StatusPass, finding.ReasonOK, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &probetest.Proxy{Policy: func(string) int { return c.policy }, Routes: map[string]string{"zoom.us:443": good}}
			cfg := testConfig(t)
			cfg.Proxy.URL = p.Start(t)
			cfg.Proxy.Bypass = c.bypass
			full, err := config.Parse([]byte(fmt.Sprintf("probes:\n  proxy:\n    url: %s\n", cfg.Proxy.URL)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Proxy.Parsed = full.Probes.Proxy.Parsed
			tg := Target{Label: "zoom.us:443", Host: "zoom.us", Port: 443, Address: good}
			r := run(t, ProbeTLS, tg, Env{Config: cfg, Judge: bed.judge}, 3*time.Second)
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%s (%s, %v), want %s/%s", r.Status, r.Reason, r.Summary, r.Evidence, c.status, c.reason)
			}
			seen := p.Seen()
			if got := len(seen) > 0; got != c.seen || (got && seen[0] != "zoom.us:443") {
				t.Fatalf("proxy saw %v, want used=%v", seen, c.seen)
			}
			if c.kind != "" {
				if len(r.Findings) != 1 || r.Findings[0].Kind != c.kind || r.Findings[0].Reason != c.reason {
					t.Fatalf("findings = %+v", r.Findings)
				}
				if c.policy != 0 && r.Evidence["proxy_status"] != c.policy {
					t.Errorf("proxy_status = %v", r.Evidence["proxy_status"])
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	cases := []struct {
		err  error
		want finding.Reason
	}{
		{nil, finding.ReasonOK},
		{op(syscall.ECONNREFUSED), finding.ReasonConnectionRefused},
		{op(syscall.ECONNRESET), finding.ReasonConnectionReset},
		{op(syscall.EHOSTUNREACH), finding.ReasonHostUnreachable},
		{op(syscall.ENETUNREACH), finding.ReasonNetworkUnreachable},
		{op(syscall.ETIMEDOUT), finding.ReasonTimeout},
		{context.DeadlineExceeded, finding.ReasonTimeout},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), finding.ReasonTimeout},
		{io.EOF, finding.ReasonEOF},
		{&net.DNSError{Err: "no such host", Name: "zoom.us", IsNotFound: true}, finding.ReasonDNSNXDomain},
		{&net.DNSError{Err: "server misbehaving", Name: "zoom.us"}, finding.ReasonDNSLookupError},
		{&ProxyError{Reason: finding.ReasonProxyAuthRequired, Status: 407}, finding.ReasonProxyAuthRequired},
		{tls.AlertError(40), finding.ReasonSSLFailedHandshake},
		{errors.New("tls: handshake failure"), finding.ReasonSSLFailedHandshake},
		{errors.New("something odd"), finding.ReasonUnknown},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %s, want %s", c.err, got, c.want)
		}
	}
	udp := []struct {
		err  error
		want finding.Reason
	}{
		{op(syscall.ECONNREFUSED), finding.ReasonICMPPortUnreachable},
		{op(syscall.EHOSTUNREACH), finding.ReasonICMPHostUnreachable},
		{op(syscall.ENETUNREACH), finding.ReasonICMPNetUnreachable},
		{op(syscall.EPERM), finding.ReasonICMPAdminProhibited},
	}
	for _, c := range udp {
		if got := ClassifyUDP(c.err); got != c.want {
			t.Errorf("ClassifyUDP(%v) = %s, want %s", c.err, got, c.want)
		}
	}
	for _, c := range []struct {
		e    icmpError
		want finding.Reason
	}{
		{icmpError{Type: 3, Code: 13}, finding.ReasonICMPAdminProhibited},
		{icmpError{Type: 3, Code: 3}, finding.ReasonICMPPortUnreachable},
		{icmpError{Type: 3, Code: 1}, finding.ReasonICMPHostUnreachable},
		{icmpError{V6: true, Type: 1, Code: 1}, finding.ReasonICMPAdminProhibited},
		{icmpError{V6: true, Type: 1, Code: 4}, finding.ReasonICMPPortUnreachable},
		{icmpError{Type: 11}, finding.ReasonICMPUnreachable},
	} {
		if got := c.e.reason(); got != c.want {
			t.Errorf("%+v.reason() = %s, want %s", c.e, got, c.want)
		}
	}
}

// checkInterceptionPEM: an intercepted check's result carries the chain the
// server sent and the issuing CA as PEM (the finding does not: it stays
// small); other results carry neither.
func checkInterceptionPEM(t *testing.T, r Result, f finding.Finding, intercepted bool) {
	t.Helper()
	if _, ok := f.Evidence["chain_pem"]; ok {
		t.Error("the finding carries the chain's PEM")
	}
	chain, _ := r.Evidence["chain_pem"].(string)
	issuer, _ := r.Evidence["issuer_pem"].(string)
	if !intercepted {
		if chain != "" || issuer != "" {
			t.Error("PEM without interception")
		}
		return
	}
	var certs []*x509.Certificate
	for rest := []byte(chain); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		t.Fatalf("chain_pem holds %d certificates, want the leaf and the CA", len(certs))
	}
	b, _ := pem.Decode([]byte(issuer))
	if b == nil || !bytes.Equal(b.Bytes, certs[1].Raw) || !certs[1].IsCA {
		t.Errorf("issuer_pem is not the intercepting CA's certificate")
	}
}
