package testbed

import (
	"crypto/x509"
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

const ok = finding.ReasonOK

// steps returns the full client's step results: all OK, then overrides.
func steps(over map[Step]finding.Reason) map[Step]finding.Reason {
	m := map[Step]finding.Reason{
		StepDNS: ok, StepHTTP: ok, StepWeb: ok, StepZoneCtrl: ok, StepSTUN: ok, StepMediaUDP: ok,
	}
	for s, r := range over {
		if r == "" {
			delete(m, s)
		} else {
			m[s] = r
		}
	}
	return m
}

// Analyzer names, for Expectation.Analyzers.
const (
	AnalyzerReach = "reach" // blocked ports, resets, ICMP, UDP fallback (analyzers/reach)
	AnalyzerTLS   = "tls"   // certificates, interception, client alerts
	AnalyzerHTTP  = "http"  // proxy denials, captive portals
	AnalyzerDNS   = "dns"   // sinkholes, NXDOMAIN for Zoom names
)

var (
	rstFrom = func(a addrPort, ttl uint8) Match {
		return Match{Proto: ProtoTCP, Src: a.addr, SrcPort: a.port, FlagsSet: FlagRST, TTL: ttl}
	}
	web443  = addrPort{WebAddr, 443}
	zc443   = addrPort{ZoneCtrlAddr, 443}
	anyRST  = Match{Proto: ProtoTCP, FlagsSet: FlagRST}
	anyICMP = Match{Proto: ProtoICMP}
)

type addrPort struct {
	addr netip.Addr
	port uint16
}

func (a addrPort) String() string { return netip.AddrPortFrom(a.addr, a.port).String() }

// ZoomIssuerOnWire is the Zoom intermediate's CN as it appears in the
// server's Certificate message (TLS 1.2).
const ZoomIssuerOnWire = ZoomIssuingCN

// Scenarios returns the standard scenario suite. Each is independent and
// runs on a fresh bed.
func Scenarios() ([]Scenario, error) {
	known, err := InterceptCA(KnownInspectCN, KnownInspectOrg)
	if err != nil {
		return nil, err
	}
	noRST := None("no TCP reset on the mirror", anyRST)
	noUnreach := None("no ICMP destination unreachable", Match{Proto: ProtoICMP, ICMP: &ICMPMatch{Type: 3, Code: 3}})
	clientHello := func(dst addrPort) TrafficCheck {
		return AtLeast(1, "client's ClientHello to "+dst.String(), Match{Proto: ProtoTCP, Src: ClientAddr, Dst: dst.addr, DstPort: dst.port, ClientHello: true})
	}
	lossy := ClientPlan{UDPTries: 6, UDPWait: 400 * time.Millisecond, DialTimeout: 4 * time.Second, MediaPackets: 8}

	return []Scenario{
		{
			Name: "clean",
			Desc: "nothing in the way: every step works, media over UDP 8801; the daemon must report no finding",
			Expect: Expectation{
				Client: steps(nil), Media: StepMediaUDP,
				Traffic: []TrafficCheck{
					noRST, noUnreach,
					None("no ICMP at all", anyICMP),
					clientHello(web443), clientHello(zc443),
					StreamHas("Zoom issuer in the web server's Certificate", Match{Src: WebAddr, SrcPort: 443}, ZoomIssuerOnWire),
					AtLeast(1, "Zoom STUN answer from 3478", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 3478, PayloadPrefix: []byte{0x00, 0x02}}),
					AtLeast(1, "media set-up answer 02 00 02", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801, PayloadPrefix: []byte{0x02, 0x00, 0x02}}),
					AtLeast(1, "media echoed from Zoom (0x05)", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801, PayloadPrefix: []byte{0x05}}),
				},
				Findings: nil,
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Value: 0},
					{Name: "zoomprobe_tls_handshakes_total", Labels: map[string]string{"verdict": "ok"}, Value: 2},
				},
				Analyzers: []string{AnalyzerReach, AnalyzerTLS, AnalyzerHTTP, AnalyzerDNS},
			},
		},
		{
			Name:   "drop-tcp-8801",
			Desc:   "firewall drops TCP 8801; a client without UDP tries TCP 8801, times out, and falls back to TLS 443",
			Router: []Behaviour{Drop("tcp", "8801")},
			Client: ClientPlan{Media: []Step{StepMediaTCP, StepMediaTLS}},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepMediaUDP: "", StepMediaTCP: finding.ReasonTimeout, StepMediaTLS: ok}),
				Media:  StepMediaTLS,
				Traffic: []TrafficCheck{
					AtLeast(2, "SYN retransmitted to 8801", Match{Proto: ProtoTCP, Dst: MediaRouterAddr, DstPort: 8801, FlagsSet: FlagSYN, FlagsClear: FlagACK}),
					None("no answer from 8801", Match{Proto: ProtoTCP, Src: MediaRouterAddr, SrcPort: 8801}),
					AtLeast(1, "fallback to 443 answered", Match{Proto: ProtoTCP, Src: MediaRouterAddr, SrcPort: 443, FlagsSet: FlagSYN | FlagACK}),
					noRST,
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonTimeout, Service: "media_router", Transport: "tcp", Server: MediaRouterAddr, ServerPort: 8801},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "media_router", "transport": "tcp", "port": "8801", "reason": "generic_timeout_error"}, Value: 1},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "drop-udp-8801-8810",
			Desc:   "firewall drops UDP 8801-8810: media set-up unanswered, client falls back to TCP 8801",
			Router: []Behaviour{Drop("udp", "8801:8810")},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepMediaUDP: finding.ReasonTimeout, StepMediaTCP: ok}),
				Media:  StepMediaTCP,
				Traffic: []TrafficCheck{
					AtLeast(2, "media set-up datagrams to 8801", Match{Proto: ProtoUDP, Src: ClientAddr, Dst: MediaRouterAddr, DstPort: 8801, PayloadPrefix: []byte{0x01, 0x00, 0x02}}),
					None("no answer from UDP 8801", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801}),
					AtLeast(1, "TCP 8801 answered", Match{Proto: ProtoTCP, Src: MediaRouterAddr, SrcPort: 8801, FlagsSet: FlagSYN | FlagACK}),
					noRST,
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonUDPNoAnswer, Service: "media", Transport: "udp", Server: MediaRouterAddr, ServerPort: 8801},
					{Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback, Transport: "tcp", Server: MediaRouterAddr, ServerPort: 8801},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "media", "transport": "udp", "port": "8801", "reason": "udp_no_answer"}, Value: 1},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "reject-tcp-reset-443",
			Desc:   "firewall rejects TCP 443 with a reset: web and zone controller refused at once",
			Router: []Behaviour{Reject("tcp", "443", RejectTCPReset)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonConnectionRefused, StepZoneCtrl: finding.ReasonConnectionRefused}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					AtLeast(1, "router's RST for the web server (TTL 64, the server's would be 63)", rstFrom(web443, 64)),
					AtLeast(1, "router's RST for the zone controller", rstFrom(zc443, 64)),
					None("no SYN-ACK from 443", Match{Proto: ProtoTCP, SrcPort: 443, FlagsSet: FlagSYN | FlagACK}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443},
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "zone_controller", Transport: "tcp", Server: ZoneCtrlAddr, ServerPort: 443},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"transport": "tcp", "port": "443", "reason": "connection_refused"}, Value: 2},
					// The web server's TTL is known from the port-80 flow before, so its
					// refusal is judged a middlebox's; the zone controller's is not known.
					{Name: "zoomprobe_connection_resets_total", Labels: map[string]string{"service": "web", "phase": "syn", "origin": "middlebox"}, Value: 1},
					{Name: "zoomprobe_connection_resets_total", Labels: map[string]string{"service": "zone_controller", "phase": "syn", "origin": "unknown"}, Value: 1},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "reject-icmp-admin-udp-8801",
			Desc:   "firewall rejects UDP 8801 with ICMP administratively prohibited: client falls back to TCP 8801",
			Router: []Behaviour{Reject("udp", "8801", RejectAdminProhibited)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepMediaUDP: finding.ReasonICMPAdminProhibited, StepMediaTCP: ok}),
				Media:  StepMediaTCP,
				Traffic: []TrafficCheck{
					AtLeast(1, "router's ICMP 3/13 quoting UDP 8801", Match{Proto: ProtoICMP, Src: RouterClientAddr, ICMP: &ICMPMatch{Type: 3, Code: 13, QuotedProto: ProtoUDP, QuotedDstPort: 8801}}),
					None("no answer from UDP 8801", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonICMPAdminProhibited, Service: "media", Transport: "udp", Server: MediaRouterAddr, ServerPort: 8801},
					{Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback, Transport: "tcp", Server: MediaRouterAddr, ServerPort: 8801},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "reject-icmp-port-unreachable-stun",
			Desc:   "firewall rejects UDP 3478-3479 with ICMP port unreachable: STUN fails, media still works on 8801",
			Router: []Behaviour{Reject("udp", "3478:3479", RejectPortUnreachable)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepSTUN: finding.ReasonICMPPortUnreachable}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					AtLeast(1, "router's ICMP 3/3 quoting UDP 3478", Match{Proto: ProtoICMP, Src: RouterClientAddr, ICMP: &ICMPMatch{Type: 3, Code: 3, QuotedProto: ProtoUDP, QuotedDstPort: 3478}}),
					None("no STUN answer", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 3478}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonICMPPortUnreachable, Service: "media", Transport: "udp", Server: MediaRouterAddr, ServerPort: 3478},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "sni-reset",
			Desc:   "firewall resets TLS whose ClientHello names zoom.us (iptables -m string, REJECT tcp-reset)",
			Router: []Behaviour{SNIReset("zoom.us")},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonConnectionReset, StepZoneCtrl: finding.ReasonConnectionReset}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					clientHello(web443), clientHello(zc443),
					AtLeast(1, "router's RST as the web server after the ClientHello (TTL 64)", rstFrom(web443, 64)),
					AtLeast(1, "router's RST as the zone controller (TTL 64)", rstFrom(zc443, 64)),
					None("no server data on 443", Match{Proto: ProtoTCP, SrcPort: 443, HasPayload: true}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443, SNI: WebName},
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "zone_controller", Transport: "tcp", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_connection_resets_total", Labels: map[string]string{"phase": "after_client_hello", "origin": "middlebox"}, Value: 2},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "injected-rst",
			Desc:   "on-path injector races forged RSTs (TTL 64, server's packets arrive with 63) after each ClientHello, to both ends",
			Router: []Behaviour{InjectRST(64)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonConnectionReset, StepZoneCtrl: finding.ReasonConnectionReset}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					AtLeast(1, "forged RST as the web server with TTL 64", rstFrom(web443, 64)),
					AtLeast(1, "forged RST as the zone controller with TTL 64", rstFrom(zc443, 64)),
					AtLeast(1, "server's own SYN-ACK with TTL 63", Match{Proto: ProtoTCP, Src: WebAddr, SrcPort: 443, FlagsSet: FlagSYN | FlagACK, TTL: 63}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443, SNI: WebName},
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "zone_controller", Transport: "tcp", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Labels: map[string]string{"kind": "connection_reset", "reason": "sni_filtering"}, Value: 2},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "injected-rst-race",
			Desc:   "on-path injector resets the client (TTL 64) after each ClientHello and lets the hello through: the server's genuine ServerHello (TTL 63) arrives after the forged reset",
			Router: []Behaviour{InjectRSTRace(64)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonConnectionReset, StepZoneCtrl: finding.ReasonConnectionReset}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					AtLeast(1, "forged RST as the web server with TTL 64", rstFrom(web443, 64)),
					AtLeast(1, "server's genuine answer after the ClientHello, TTL 63", Match{Proto: ProtoTCP, Src: WebAddr, SrcPort: 443, HasPayload: true, TTL: 63}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443, SNI: WebName},
					{Kind: finding.KindConnectionReset, Reason: finding.ReasonSNIFiltering, Service: "zone_controller", Transport: "tcp", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_connection_resets_total", Labels: map[string]string{"phase": "after_client_hello", "origin": "middlebox"}, Value: 2},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "intercept-known-product",
			Desc:   "transparent TLS inspection by a box whose CA is named like FortiGate's; the managed client trusts it, so everything works",
			Router: []Behaviour{Intercept(KnownInspectCN, KnownInspectOrg)},
			Client: ClientPlan{ExtraRoots: []*x509.Certificate{known.Cert}},
			Expect: Expectation{
				Client: steps(nil), Media: StepMediaUDP,
				Traffic: []TrafficCheck{
					StreamHas("inspection CA in the web Certificate", Match{Src: WebAddr, SrcPort: 443}, KnownInspectCN),
					StreamHas("inspection CA in the zone controller Certificate", Match{Src: ZoneCtrlAddr, SrcPort: 443}, KnownInspectCN),
					{Desc: "Zoom's issuer never reaches the client", Match: Match{SrcPort: 443}, StreamContains: ZoomIssuerOnWire, Min: 0, Max: 0},
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Service: "web", Server: WebAddr, ServerPort: 443, SNI: WebName, Product: "FortiGate", ZoomRoomsCode: 6},
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Service: "zone_controller", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName, Product: "FortiGate", ZoomRoomsCode: 6},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_tls_interceptions_total", Labels: map[string]string{"product": "FortiGate", "reason": "ssl_unknown_authority"}, Value: 2},
				},
				Analyzers: []string{AnalyzerTLS},
			},
		},
		{
			Name:   "intercept-unknown-product",
			Desc:   "transparent TLS inspection by an unnamed CA the client does not trust: the client refuses the certificate",
			Router: []Behaviour{Intercept(UnknownInspectCN, UnknownInspectO)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonUnknownAuthority, StepZoneCtrl: finding.ReasonUnknownAuthority}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					StreamHas("inspection CA in the web Certificate", Match{Src: WebAddr, SrcPort: 443}, UnknownInspectCN),
					AtLeast(2, "client's TLS alerts refusing the certificate", Match{Proto: ProtoTCP, Src: ClientAddr, DstPort: 443, PayloadPrefix: []byte{0x15, 0x03}}),
					{Desc: "Zoom's issuer never reaches the client", Match: Match{SrcPort: 443}, StreamContains: ZoomIssuerOnWire, Min: 0, Max: 0},
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Service: "web", Server: WebAddr, ServerPort: 443, SNI: WebName, ZoomRoomsCode: 6},
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Service: "zone_controller", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName, ZoomRoomsCode: 6},
					{Kind: finding.KindCertRejected, Reason: finding.ReasonClientRejectedCert, Service: "web", ServerPort: 443, SNI: WebName},
					{Kind: finding.KindCertRejected, Reason: finding.ReasonClientRejectedCert, Service: "zone_controller", ServerPort: 443, SNI: ZoneCtrlName},
				},
				Analyzers: []string{AnalyzerTLS},
			},
		},
		{
			Name:   "proxy-denied",
			Desc:   "direct 443 dropped; the explicit proxy answers CONNECT with 403",
			Router: []Behaviour{Drop("tcp", "443"), HTTPProxy(false)},
			Client: ClientPlan{Proxy: ProxyAddr},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonProxyDenied, StepZoneCtrl: finding.ReasonProxyDenied}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					AtLeast(1, "CONNECT zoom.us:443 to the proxy", Match{Proto: ProtoTCP, Dst: RouterClientAddr, DstPort: ProxyPort, PayloadPrefix: []byte("CONNECT zoom.us:443 ")}),
					StreamHas("proxy's 403", Match{Src: RouterClientAddr, SrcPort: ProxyPort}, "HTTP/1.1 403 Forbidden"),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindProxyDenial, Reason: finding.ReasonProxyDenied, Service: "web", Transport: "tcp", Server: RouterClientAddr, ServerPort: ProxyPort},
					{Kind: finding.KindProxyDenial, Reason: finding.ReasonProxyDenied, Service: "zone_controller", Transport: "tcp", Server: RouterClientAddr, ServerPort: ProxyPort},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_proxy_denials_total", Labels: map[string]string{"reason": "proxy_denied"}, Value: 2},
				},
				Analyzers: []string{AnalyzerHTTP},
			},
		},
		{
			Name:   "proxy-allowed",
			Desc:   "direct 443 dropped; the explicit proxy allows CONNECT and everything works (no finding)",
			Router: []Behaviour{Drop("tcp", "443"), HTTPProxy(true)},
			Client: ClientPlan{Proxy: ProxyAddr},
			Expect: Expectation{
				Client: steps(nil), Media: StepMediaUDP,
				Traffic: []TrafficCheck{
					StreamHas("proxy's 200", Match{Src: RouterClientAddr, SrcPort: ProxyPort}, "HTTP/1.1 200 Connection established"),
					StreamHas("Zoom's issuer through the tunnel", Match{Src: RouterClientAddr, SrcPort: ProxyPort}, ZoomIssuerOnWire),
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Value: 0},
				},
				Analyzers: []string{AnalyzerHTTP, AnalyzerTLS},
			},
		},
		{
			Name:   "captive-portal",
			Desc:   "guest network: HTTP redirected to a portal, HTTPS answered with the portal's self-signed certificate",
			Router: []Behaviour{CaptivePortal()},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepHTTP: finding.ReasonCaptivePortal, StepWeb: finding.ReasonInvalidHostname, StepZoneCtrl: finding.ReasonInvalidHostname}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					StreamHas("portal redirect on port 80", Match{Src: WebAddr, SrcPort: 80}, "Location: "+PortalURL),
					StreamHas("portal's certificate on 443", Match{Src: WebAddr, SrcPort: 443}, PortalHost),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindCaptivePortal, Reason: finding.ReasonCaptivePortal, Service: "web", Server: WebAddr, ServerPort: 80, ZoomRoomsCode: 1},
					// The portal's certificate is self-signed and for another name:
					// the host name is the verdict (code 1, as Zoom documents for
					// captive portals), ssl_self_signed is among the evidence.
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonInvalidHostname, Service: "web", Server: WebAddr, ServerPort: 443, SNI: WebName, ZoomRoomsCode: 1},
					{Kind: finding.KindTLSInterception, Reason: finding.ReasonInvalidHostname, Service: "zone_controller", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName, ZoomRoomsCode: 1},
					{Kind: finding.KindCertRejected, Reason: finding.ReasonClientRejectedCert, Service: "web", ServerPort: 443, SNI: WebName},
					{Kind: finding.KindCertRejected, Reason: finding.ReasonClientRejectedCert, Service: "zone_controller", ServerPort: 443, SNI: ZoneCtrlName},
				},
				Analyzers: []string{AnalyzerHTTP, AnalyzerTLS},
			},
		},
		{
			Name:   "dns-sinkhole",
			Desc:   "the network's DNS answers Zoom names with 0.0.0.0: the client never connects",
			Router: []Behaviour{DNSSinkhole(SinkholeZero)},
			Expect: Expectation{
				Client: map[Step]finding.Reason{StepDNS: finding.ReasonDNSSinkhole},
				Traffic: []TrafficCheck{
					AtLeast(1, "sinkholed answer (A 0.0.0.0) from the resolver's address", Match{Proto: ProtoUDP, Src: DNSAddr, SrcPort: 53}),
					None("no connection attempted", Match{Proto: ProtoTCP, Src: ClientAddr}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSSinkhole, Service: "web"},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_dns_filtered_total", Labels: map[string]string{"reason": "dns_sinkhole"}, Value: 1},
				},
				Analyzers: []string{AnalyzerDNS},
			},
		},
		{
			Name:   "dns-nxdomain",
			Desc:   "the network's DNS answers Zoom names with NXDOMAIN",
			Router: []Behaviour{DNSSinkhole(SinkholeNXDomain)},
			Expect: Expectation{
				Client: map[Step]finding.Reason{StepDNS: finding.ReasonDNSNXDomain},
				Traffic: []TrafficCheck{
					AtLeast(1, "NXDOMAIN from the resolver's address", Match{Proto: ProtoUDP, Src: DNSAddr, SrcPort: 53}),
					None("no connection attempted", Match{Proto: ProtoTCP, Src: ClientAddr}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSNXDomain, Service: "web"},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_dns_filtered_total", Labels: map[string]string{"reason": "dns_nxdomain"}, Value: 1},
				},
				Analyzers: []string{AnalyzerDNS},
			},
		},
		{
			Name:   "lossy-but-fine",
			Desc:   "5% loss both ways (every 20th forwarded packet): retransmissions, but every step works and the daemon must stay silent",
			Router: []Behaviour{Loss(20)},
			Client: lossy,
			Expect: Expectation{
				Client: steps(nil), Media: StepMediaUDP,
				Traffic: []TrafficCheck{
					clientHello(web443),
					AtLeast(1, "media set-up answered", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801, PayloadPrefix: []byte{0x02, 0x00, 0x02}}),
				},
				Findings: nil,
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Value: 0},
				},
				Analyzers: []string{AnalyzerReach, AnalyzerTLS, AnalyzerHTTP, AnalyzerDNS},
			},
		},
		{
			Name:   "client-host-drop",
			Desc:   "the client host's own firewall (INPUT in its namespace) drops what Zoom answers from TCP and UDP 8801: the SYN-ACKs and set-up answers pass the router and its mirror, the client retries as if nothing came, then falls back to TLS 443",
			Router: []Behaviour{HostDrop("tcp", "8801"), HostDrop("udp", "8801:8810")},
			// 4 s to connect: Linux retransmits the SYN at 1 and 3 s, twice, as Windows does.
			Client: ClientPlan{DialTimeout: 4 * time.Second},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepMediaUDP: finding.ReasonTimeout, StepMediaTCP: finding.ReasonTimeout, StepMediaTLS: ok}),
				Media:  StepMediaTLS,
				Traffic: []TrafficCheck{
					AtLeast(3, "SYN to 8801 sent and retransmitted", Match{Proto: ProtoTCP, Src: ClientAddr, Dst: MediaRouterAddr, DstPort: 8801, FlagsSet: FlagSYN, FlagsClear: FlagACK}),
					AtLeast(2, "SYN-ACKs from 8801 on the mirror", Match{Proto: ProtoTCP, Src: MediaRouterAddr, SrcPort: 8801, FlagsSet: FlagSYN | FlagACK}),
					None("the client never acknowledges 8801", Match{Proto: ProtoTCP, Src: ClientAddr, Dst: MediaRouterAddr, DstPort: 8801, FlagsSet: FlagACK}),
					AtLeast(3, "the same set-up sent three times", Match{Proto: ProtoUDP, Src: ClientAddr, Dst: MediaRouterAddr, DstPort: 8801, PayloadPrefix: []byte{0x01, 0x00, 0x02}}),
					AtLeast(3, "set-up answers on the mirror", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801, PayloadPrefix: []byte{0x02, 0x00, 0x02}}),
					None("no media from the client", Match{Proto: ProtoUDP, Src: ClientAddr, DstPort: 8801, PayloadPrefix: []byte{0x05}}),
					noRST,
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonClientSideDrop, Service: "media_router", Transport: "tcp", Server: MediaRouterAddr, ServerPort: 8801},
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonClientSideDrop, Service: "media", Transport: "udp", Server: MediaRouterAddr, ServerPort: 8801},
					{Kind: finding.KindUDPFallback, Reason: finding.ReasonUDPFallback, Transport: "tcp", Server: MediaRouterAddr, ServerPort: 443},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "media_router", "transport": "tcp", "port": "8801", "reason": "client_side_drop", "where": "client_host"}, Value: 1},
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "media", "transport": "udp", "port": "8801", "reason": "client_side_drop", "where": "client_host"}, Value: 1},
					{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"where": "beyond_probe"}, Value: 0},
				},
				Analyzers: []string{AnalyzerReach},
			},
		},
		{
			Name:   "lossy-client-host",
			Desc:   "5% of what arrives at the client (every 20th packet) is lost after the mirror saw it: answers pass the probe and some never reach the client, which retries and proceeds; the daemon must stay silent",
			Router: []Behaviour{HostLoss(20)},
			Client: lossy,
			Expect: Expectation{
				Client: steps(nil), Media: StepMediaUDP,
				Traffic: []TrafficCheck{
					clientHello(web443),
					AtLeast(1, "media set-up answered", Match{Proto: ProtoUDP, Src: MediaRouterAddr, SrcPort: 8801, PayloadPrefix: []byte{0x02, 0x00, 0x02}}),
				},
				Findings: nil,
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Value: 0},
				},
				Analyzers: []string{AnalyzerReach, AnalyzerTLS, AnalyzerHTTP, AnalyzerDNS},
			},
		},
		{
			Name:   "sni-alert",
			Desc:   "firewall answers TLS whose ClientHello names zoom.us with a fatal handshake_failure alert and closes, instead of a reset",
			Router: []Behaviour{SNIAlert("zoom.us", 40)},
			Expect: Expectation{
				Client: steps(map[Step]finding.Reason{StepWeb: finding.ReasonSSLFailedHandshake, StepZoneCtrl: finding.ReasonSSLFailedHandshake}),
				Media:  StepMediaUDP,
				Traffic: []TrafficCheck{
					clientHello(web443), clientHello(zc443),
					AtLeast(1, "the filter's alert as the web server", Match{Proto: ProtoTCP, Src: WebAddr, SrcPort: 443, PayloadPrefix: []byte{21, 3, 3, 0, 2, 2, 40}}),
					AtLeast(1, "the filter's alert as the zone controller", Match{Proto: ProtoTCP, Src: ZoneCtrlAddr, SrcPort: 443, PayloadPrefix: []byte{21, 3, 3, 0, 2, 2, 40}}),
				},
				Findings: []ExpectedFinding{
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonSNIFiltering, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443, SNI: WebName},
					{Kind: finding.KindBlockedConnection, Reason: finding.ReasonSNIFiltering, Service: "zone_controller", Transport: "tcp", Server: ZoneCtrlAddr, ServerPort: 443, SNI: ZoneCtrlName},
				},
				Metrics: []ExpectedMetric{
					{Name: "zoomprobe_findings_total", Labels: map[string]string{"kind": "blocked_connection", "reason": "sni_filtering"}, Value: 2},
					{Name: "zoomprobe_tls_server_alerts_total", Labels: map[string]string{"alert": "handshake_failure"}, Value: 2},
				},
				Analyzers: []string{AnalyzerTLS},
			},
		},
	}, nil
}
