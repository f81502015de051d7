package testgen

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

func init() {
	register("zoom-clean", "Healthy Zoom meeting: DNS for zoom.us, www.zoom.us, the zone controller and media router; TLS 1.3 to the web front end (cloud address, known only by DNS/SNI); TLS 1.2 to the zone controller (443) and media router (443, TCP 8801); UDP 8801 media; STUN 3478; background non-Zoom traffic", ZoomClean)
	register("syn-dropped", "SYN to the zone controller on 443 retransmitted three times, never answered", SYNDropped)
	register("syn-refused", "SYN to the zone controller on 443 answered by RST-ACK", SYNRefused)
	register("icmp-admin-prohibited", "UDP 8801 to the media router answered by ICMP administratively prohibited from the site firewall", ICMPAdminProhibited)
	register("udp-fallback", "UDP 8801 set-up to the media router never answered, then TLS over TCP 8801 to the same server works", UDPFallback)
	register("rst-after-clienthello", "RST injected right after the ClientHello to the zone controller, TTL 64 while the server's packets arrive with 52, IP ID copied from the ClientHello", RSTAfterClientHello)
	register("tls-fortigate", "TLS 1.2 to the zone controller answered with a certificate re-signed by \"FortiGate CA\" (O=Fortinet); the client, which trusts that CA, completes", TLSFortiGate)
	register("tls-unknown-ca", "TLS 1.2 to the zone controller answered with a certificate from \"Gateway Authentication\", a CA not in any trust store; the client completes (pinning disabled)", TLSUnknownCA)
	register("tls-expired", "TLS 1.2 to the zone controller with Zoom's (test) chain but an expired leaf", TLSExpired)
	register("tls-wrong-host", "TLS 1.2 to the zone controller answered with a valid public certificate for another host (captive portal)", TLSWrongHost)
	register("tls-client-alert", "TLS 1.2 to the zone controller: interceptor certificate, the client answers with a fatal unknown_ca alert after the Certificate and resets", TLSClientAlert)
	register("proxy-denied", "CONNECT zoomfr85zc.zoom.us:443 to the site proxy answered 403 Forbidden", ProxyDenied)
	register("captive-portal", "HTTP to zoom.us answered by a 302 redirect to a portal, injected with TTL 64", CaptivePortal)
	register("dns-sinkhole", "zoom.us and the zone controller resolve to 0.0.0.0 (or ::)", DNSSinkhole)
	register("dns-nxdomain", "zoom.us answered NXDOMAIN", DNSNXDomain)
	register("ordinary-fin-close", "Ordinary life: a Zoom TLS session closed with a normal FIN handshake; no finding", OrdinaryFINClose)
	register("ordinary-rst-after-fin", "Ordinary life: the client sends FIN and the server answers with RST (common with web servers); no finding", OrdinaryRSTAfterFIN)
	register("ordinary-synack-dropped", "Ordinary life: the capture dropped a SYN-ACK while the client's ACK and the data are seen; no finding", OrdinarySYNACKDropped)
}

// ZoomClean is a healthy Zoom session plus background traffic: every flow
// identified, no finding.
func ZoomClean(p Params) (*Scenario, error) {
	b := newBuilder("zoom-clean", registry["zoom-clean"].desc, p)
	a := b.a
	b.lookup(a.Client, NameWeb, a.Web)
	b.lookup(a.Client, NameWWW, a.Web)
	b.lookup(a.Client, NameZC, a.ZC)
	b.lookup(a.Client, NameMMR, a.MMR)

	b.tlsFlow(a.Client, b.port(a.Web, 443), zoom.ServiceWeb, NameWeb,
		TLSSpec{ServerName: NameWeb, Version: tls.VersionTLS13, Chain: ChainZoom, Names: zoomNames, ALPN: []string{"http/1.1"}}, true)
	b.tlsFlow(a.Client, b.port(a.Web, 443), zoom.ServiceWeb, NameWWW,
		TLSSpec{ServerName: NameWWW, Version: tls.VersionTLS13, Chain: ChainZoom, Names: zoomNames, ALPN: []string{"http/1.1"}}, true)
	zc, _ := b.tlsFlow(a.Client, b.port(a.ZC, 443), zoom.ServiceZoneController, NameZC,
		TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(600), Response: pattern(2400), NoClose: true}, false)
	b.tlsFlow(a.Client, b.port(a.MMR, 443), zoom.ServiceMediaRouter, NameMMR,
		TLSSpec{ServerName: NameMMR, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(300), Response: pattern(900)}, true)
	b.tlsFlow(a.Client, b.port(a.MMR, 8801), zoom.ServiceMediaRouter, NameMMR,
		TLSSpec{ServerName: NameMMR, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(300), Response: pattern(300)}, true)

	stun := b.g.UDP(b.ephemeral(a.Client), b.port(a.STUN, 3478), UDPOptions{})
	b.g.ZoomSTUN(stun, b.mapped4(), stun.Client.Port(), true)
	b.flow("udp", stun.Client, stun.Server, zoom.ServiceMedia, "")

	media := b.g.UDP(b.ephemeral(a.Client), b.port(a.MMR, 8801), UDPOptions{})
	b.g.ZoomUDPMedia(media, ZoomMediaOptions{AudioPackets: 50, VideoFrames: 10})
	b.flow("udp", media.Client, media.Server, zoom.ServiceMedia, NameMMR)

	b.background()
	if zc != nil {
		zc.Close()
	}
	return b.done()
}

// zcConn opens a TCP connection to the zone controller after resolving it.
func (b *builder) resolveZC() {
	b.lookup(b.a.Client, NameZC, b.a.ZC)
}

// SYNDropped: the SYN is retransmitted at 1, 3 and 7 s and never answered.
func SYNDropped(p Params) (*Scenario, error) {
	b := newBuilder("syn-dropped", registry["syn-dropped"].desc, p)
	b.resolveZC()
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 0} {
		c.SYN()
		if i < 3 {
			b.g.Advance(wait)
		}
	}
	b.flow("tcp", c.Client, c.Server, zoom.ServiceZoneController, NameZC)
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonTimeout, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController,
		Evidence: map[string]string{"syn_count": "4", "where": "beyond_probe"}})
	return b.done()
}

// SYNRefused: the SYN is answered by RST-ACK.
func SYNRefused(p Params) (*Scenario, error) {
	b := newBuilder("syn-refused", registry["syn-refused"].desc, p)
	b.resolveZC()
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.SYN()
	c.Reset(ServerToClient, ResetOptions{})
	b.flow("tcp", c.Client, c.Server, zoom.ServiceZoneController, NameZC)
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController,
		Evidence: map[string]string{"rst_ttl": "52"}})
	return b.done()
}

// ICMPAdminProhibited: each UDP 8801 set-up datagram draws an ICMP
// administratively prohibited from the site's firewall.
func ICMPAdminProhibited(p Params) (*Scenario, error) {
	b := newBuilder("icmp-admin-prohibited", registry["icmp-admin-prohibited"].desc, p)
	b.lookup(b.a.Client, NameMMR, b.a.MMR)
	u := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 8801), UDPOptions{})
	var id [16]byte
	copy(id[:], b.fill(16))
	for i := 0; i < 3; i++ {
		q := u.Send(ClientToServer, ZoomSetupRequest(id))
		b.g.Advance(400 * time.Microsecond)
		b.g.ICMPUnreachable(b.a.Router, q, UnreachAdminProhibited, 64)
		b.g.Advance(time.Second)
	}
	b.flow("udp", u.Client, u.Server, zoom.ServiceMedia, NameMMR)
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonICMPAdminProhibited, Transport: "udp",
		Client: b.a.Client, Server: b.a.MMR, ServerPort: 8801, Service: zoom.ServiceMedia,
		Evidence: map[string]string{"icmp_sender": b.a.Router.String()}})
	return b.done()
}

// UDPFallback: UDP 8801 set-up unanswered, then TLS 1.2 over TCP 8801.
func UDPFallback(p Params) (*Scenario, error) {
	b := newBuilder("udp-fallback", registry["udp-fallback"].desc, p)
	b.lookup(b.a.Client, NameMMR, b.a.MMR)
	u := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 8801), UDPOptions{})
	b.g.ZoomUDPMedia(u, ZoomMediaOptions{NoAnswer: true})
	b.flow("udp", u.Client, u.Server, zoom.ServiceMedia, NameMMR)
	b.tlsFlow(b.a.Client, b.port(b.a.MMR, 8801), zoom.ServiceMediaRouter, NameMMR,
		TLSSpec{ServerName: NameMMR, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(1200), Response: pattern(4000)}, true)
	// The block (what to fix) and the fallback (what users suffer) are both reported.
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonUDPNoAnswer, Transport: "udp",
		Client: b.a.Client, Server: b.a.MMR, ServerPort: 8801, Service: zoom.ServiceMedia,
		Evidence: map[string]string{"where": "beyond_probe"}})
	// The fallback finding names the TCP connection that carries the media now.
	b.expect(ExpectedFinding{Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback, Transport: "tcp",
		Client: b.a.Client, Server: b.a.MMR, ServerPort: 8801, Service: zoom.ServiceMediaRouter})
	return b.done()
}

// firstFlight records spec and returns the client's first flight (ClientHello).
func (b *builder) clientHello(spec TLSSpec) ([]byte, error) {
	t, err := RecordTLS(spec)
	if err != nil {
		return nil, err
	}
	b.noteTLS(t)
	return t.Flights[0].Data, nil
}

// RSTAfterClientHello: handshake fine, ClientHello sent, a middlebox RST
// arrives with TTL 64 (the server's packets show 52) and the ClientHello's IP ID.
func RSTAfterClientHello(p Params) (*Scenario, error) {
	b := newBuilder("rst-after-clienthello", registry["rst-after-clienthello"].desc, p)
	b.resolveZC()
	ch, err := b.clientHello(TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames})
	if err != nil {
		return nil, err
	}
	c := b.g.TCPConn(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.Send(ClientToServer, ch)
	chID := c.LastIPID(ClientToServer)
	b.g.Advance(3 * time.Millisecond) // the injector is close: well before a server RTT
	c.Reset(ServerToClient, ResetOptions{TTL: 64, IPID: U16(chID)})
	b.flow("tcp", c.Client, c.Server, zoom.ServiceZoneController, NameZC)
	f := b.s.Flows[len(b.s.Flows)-1]
	f.SNI = NameZC
	b.s.Flows[len(b.s.Flows)-1] = f
	ev := map[string]string{"rst_ttl": "64", "server_ttl": "52"}
	if b.a.Client.Is4() {
		ev["rst_ip_id"] = strconv.Itoa(int(chID))
	}
	b.expect(ExpectedFinding{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController, SNI: NameZC, Evidence: ev})
	return b.done()
}

// tlsZC is the common shape of the certificate scenarios.
func tlsZC(name string, p Params, spec TLSSpec, want ExpectedFinding, after func(b *builder, c *TCPConn)) (*Scenario, error) {
	b := newBuilder(name, registry[name].desc, p)
	b.resolveZC()
	spec.ServerName = NameZC
	spec.Version = tls.VersionTLS12
	c, t := b.tlsFlow(b.a.Client, b.port(b.a.ZC, 443), zoom.ServiceZoneController, NameZC, spec, after == nil)
	if t == nil {
		return nil, b.g.Err()
	}
	if after != nil {
		after(b, c)
	}
	want.Transport, want.Client, want.Server, want.ServerPort = "tcp", b.a.Client, b.a.ZC, 443
	want.Service, want.SNI = zoom.ServiceZoneController, NameZC
	if want.Evidence == nil {
		want.Evidence = map[string]string{}
	}
	want.Evidence["issuer"] = t.Chain[0].Issuer.String()
	b.expect(want)
	return b.done()
}

// TLSFortiGate: SSL inspection by a FortiGate whose CA the client trusts.
func TLSFortiGate(p Params) (*Scenario, error) {
	return tlsZC("tls-fortigate", p, TLSSpec{Chain: ChainFortiGate, Names: zoomNames},
		ExpectedFinding{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Product: "FortiGate", ZoomRoomsCode: 6}, nil)
}

// TLSUnknownCA: interception by a CA nobody knows.
func TLSUnknownCA(p Params) (*Scenario, error) {
	return tlsZC("tls-unknown-ca", p, TLSSpec{Chain: ChainUnknown, Names: zoomNames},
		ExpectedFinding{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, ZoomRoomsCode: 6}, nil)
}

// TLSExpired: Zoom's chain, expired leaf.
func TLSExpired(p Params) (*Scenario, error) {
	return tlsZC("tls-expired", p, TLSSpec{Chain: ChainZoom, Names: zoomNames, NotBefore: ExpiredNotBefore, NotAfter: ExpiredNotAfter},
		ExpectedFinding{Kind: finding.KindCertificateProblem, Reason: finding.ReasonExpired, ZoomRoomsCode: 5}, nil)
}

// TLSWrongHost: a valid certificate for another name (a captive portal's).
// A Zoom name answered with a chain that is not Zoom's is interception; the
// reason (and the Zoom Rooms code) is the host name. certificate_problem is
// for Zoom's own chain with a defect (tls-expired).
func TLSWrongHost(p Params) (*Scenario, error) {
	return tlsZC("tls-wrong-host", p, TLSSpec{Chain: ChainPublic, Names: []string{"portal.wifi.example"}},
		ExpectedFinding{Kind: finding.KindTLSInterception, Reason: finding.ReasonInvalidHostname, ZoomRoomsCode: 1}, nil)
}

// TLSClientAlert: the client rejects an interceptor's certificate with a
// fatal unknown_ca alert, then resets the connection.
// Both the interception (the cause) and the rejection (what users see now)
// are reported.
func TLSClientAlert(p Params) (*Scenario, error) {
	sc, err := tlsZC("tls-client-alert", p, TLSSpec{Chain: ChainUnknown, Names: zoomNames, ClientAlert: AlertUnknownCA},
		ExpectedFinding{Kind: finding.KindCertRejected, Reason: finding.ReasonClientRejectedCert, ZoomRoomsCode: 6,
			Evidence: map[string]string{"alert": "unknown_ca"}},
		func(b *builder, c *TCPConn) {
			c.Reset(ClientToServer, ResetOptions{})
		})
	if err != nil {
		return nil, err
	}
	intercepted := sc.Findings[0]
	intercepted.Kind, intercepted.Reason, intercepted.Evidence = finding.KindTLSInterception, finding.ReasonUnknownAuthority, map[string]string{"issuer": sc.Findings[0].Evidence["issuer"]}
	sc.Findings = append(sc.Findings, intercepted)
	return sc, nil
}

// ProxyDenied: an explicit proxy refuses CONNECT with 403.
func ProxyDenied(p Params) (*Scenario, error) {
	b := newBuilder("proxy-denied", registry["proxy-denied"].desc, p)
	c := b.g.TCPConn(b.ephemeral(b.a.Client), b.port(b.a.Proxy, 3128), TCPOptions{RTT: time.Millisecond, ServerTTL: 64})
	target := NameZC + ":443"
	c.Send(ClientToServer, []byte("CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nUser-Agent: Zoom.Windows 6.3\r\nProxy-Connection: Keep-Alive\r\n\r\n"))
	body := "<html><body><h1>Access Denied</h1><p>Web filter policy blocks video conferencing.</p></body></html>"
	c.Send(ServerToClient, []byte("HTTP/1.1 403 Forbidden\r\nServer: squid\r\nContent-Type: text/html\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\nConnection: close\r\n\r\n"+body))
	c.CloseFrom(ServerToClient)
	// The flow goes to the proxy; only the CONNECT target names Zoom.
	b.flow("tcp", c.Client, c.Server, zoom.ServiceNone, "")
	b.expect(ExpectedFinding{Kind: finding.KindProxyDenial, Reason: finding.ReasonProxyDenied, Transport: "tcp",
		Client: b.a.Client, Server: b.a.Proxy, ServerPort: 3128, Service: zoom.ServiceZoneController, SNI: NameZC,
		Evidence: map[string]string{"http_status": "403", "connect_target": target}})
	return b.done()
}

// CaptivePortal: a portal answers HTTP to zoom.us with a 302, spoofing the
// server's address but not its hop count.
func CaptivePortal(p Params) (*Scenario, error) {
	b := newBuilder("captive-portal", registry["captive-portal"].desc, p)
	b.lookup(b.a.Client, NameWeb, b.a.Web)
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.Web, 80), TCPOptions{RTT: 2 * time.Millisecond, ServerTTL: 64})
	c.Handshake()
	c.Send(ClientToServer, []byte("GET / HTTP/1.1\r\nHost: zoom.us\r\nUser-Agent: Mozilla/5.0 (ZOOM.Win 10.0 x64)\r\nAccept: */*\r\n\r\n"))
	loc := "http://portal.wifi.example/login?orig=http%3A%2F%2Fzoom.us%2F"
	c.Send(ServerToClient, []byte("HTTP/1.1 302 Found\r\nLocation: "+loc+"\r\nCache-Control: no-cache\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	c.CloseFrom(ServerToClient)
	b.flow("tcp", c.Client, c.Server, zoom.ServiceWeb, NameWeb)
	b.expect(ExpectedFinding{Kind: finding.KindCaptivePortal, Reason: finding.ReasonCaptivePortal, Transport: "tcp",
		Client: b.a.Client, Server: b.a.Web, ServerPort: 80, Service: zoom.ServiceWeb,
		Evidence: map[string]string{"http_status": "302", "location": "http://portal.wifi.example/login"}}) // query not kept
	return b.done()
}

// DNSSinkhole: Zoom names answered with the unspecified address.
func DNSSinkhole(p Params) (*Scenario, error) {
	b := newBuilder("dns-sinkhole", registry["dns-sinkhole"].desc, p)
	sink := netip.IPv4Unspecified()
	if !b.a.Client.Is4() {
		sink = netip.IPv6Unspecified()
	}
	for _, name := range []string{NameWeb, NameZC} {
		b.dns(b.a.Client, DNSLookup{Name: name, Addrs: []netip.Addr{sink}, TTL: 300})
		b.g.Advance(10 * time.Millisecond)
		b.expect(ExpectedFinding{Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSSinkhole, Transport: "udp",
			Client: b.a.Client, Server: b.a.Resolver, ServerPort: 53, Service: serviceOfName(name),
			Evidence: map[string]string{"qname": name, "answer": sink.String()}})
	}
	return b.done()
}

// DNSNXDomain: zoom.us answered NXDOMAIN.
func DNSNXDomain(p Params) (*Scenario, error) {
	b := newBuilder("dns-nxdomain", registry["dns-nxdomain"].desc, p)
	b.dns(b.a.Client, DNSLookup{Name: NameWeb, Type: b.qtype(), RCode: dnsmessage.RCodeNameError})
	b.expect(ExpectedFinding{Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSNXDomain, Transport: "udp",
		Client: b.a.Client, Server: b.a.Resolver, ServerPort: 53, Service: zoom.ServiceWeb,
		Evidence: map[string]string{"qname": NameWeb, "rcode": "NXDOMAIN"}})
	return b.done()
}

func serviceOfName(name string) zoom.Service {
	switch name {
	case NameZC:
		return zoom.ServiceZoneController
	case NameMMR:
		return zoom.ServiceMediaRouter
	}
	return zoom.ServiceWeb
}

// OrdinaryFINClose: a zone-controller session ending normally.
func OrdinaryFINClose(p Params) (*Scenario, error) {
	b := newBuilder("ordinary-fin-close", registry["ordinary-fin-close"].desc, p)
	b.resolveZC()
	b.tlsFlow(b.a.Client, b.port(b.a.ZC, 443), zoom.ServiceZoneController, NameZC,
		TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(500), Response: pattern(3000)}, true)
	return b.done()
}

// OrdinaryRSTAfterFIN: client FIN, server answers RST (benign).
func OrdinaryRSTAfterFIN(p Params) (*Scenario, error) {
	b := newBuilder("ordinary-rst-after-fin", registry["ordinary-rst-after-fin"].desc, p)
	b.lookup(b.a.Client, NameWeb, b.a.Web)
	c, t := b.tlsFlow(b.a.Client, b.port(b.a.Web, 443), zoom.ServiceWeb, NameWeb,
		TLSSpec{ServerName: NameWeb, Version: tls.VersionTLS13, Chain: ChainZoom, Names: zoomNames, NoClose: true}, false)
	if t == nil {
		return nil, b.g.Err()
	}
	c.FIN(ClientToServer)
	c.Reset(ServerToClient, ResetOptions{})
	return b.done()
}

// OrdinarySYNACKDropped: the capture misses the SYN-ACK; the connection works.
func OrdinarySYNACKDropped(p Params) (*Scenario, error) {
	b := newBuilder("ordinary-synack-dropped", registry["ordinary-synack-dropped"].desc, p)
	b.resolveZC()
	t, err := RecordTLS(TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Time: b.g.Now()})
	if err != nil {
		return nil, err
	}
	b.noteTLS(t)
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.SYN()
	b.g.DropNext(1)
	c.SYNACK()
	c.ACK(ClientToServer)
	c.Play(t)
	c.Close()
	b.s.Flows = append(b.s.Flows, ExpectedFlow{Transport: "tcp", Client: c.Client, Server: c.Server, Service: zoom.ServiceZoneController,
		Name: NameZC, SNI: NameZC, TLSVersion: t.Version, Chain: t.Chain})
	return b.done()
}
