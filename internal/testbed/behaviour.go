package testbed

import (
	"fmt"
	"strings"
)

// BehaviourKind names a middlebox behaviour the router can take on.
type BehaviourKind string

const (
	KindDrop          BehaviourKind = "drop"           // iptables DROP of chosen TCP/UDP destination ports
	KindReject        BehaviourKind = "reject"         // iptables REJECT (tcp-reset, icmp-admin-prohibited, icmp-port-unreachable)
	KindSNIReset      BehaviourKind = "sni_reset"      // REJECT --reject-with tcp-reset of ClientHellos carrying a string (-m string)
	KindInjectRST     BehaviourKind = "inject_rst"     // raw-socket injector racing forged RSTs after a ClientHello
	KindIntercept     BehaviourKind = "tls_intercept"  // transparent TLS-intercepting proxy (REDIRECT) with its own CA
	KindHTTPProxy     BehaviourKind = "http_proxy"     // explicit HTTP proxy that allows or denies CONNECT
	KindCaptivePortal BehaviourKind = "captive_portal" // HTTP redirect to a portal, self-signed certificate on 443
	KindDNSSinkhole   BehaviourKind = "dns_sinkhole"   // DNS hijack answering Zoom names with 0.0.0.0 or NXDOMAIN
	KindLoss          BehaviourKind = "loss"           // iptables -m statistic --mode nth: every Nth forwarded packet DROPped
	KindSNIAlert      BehaviourKind = "sni_alert"      // transparent box (REDIRECT) answering ClientHellos carrying a string with a fatal TLS alert
	KindNAT           BehaviourKind = "nat"            // iptables MASQUERADE --random of the client LAN on the server-facing port
	// In the client's namespace, not the router: past the mirror.
	KindHostDrop BehaviourKind = "host_drop" // the client host's firewall: INPUT DROP of answers from TCP/UDP source ports
	KindHostLoss BehaviourKind = "host_loss" // the client host's INPUT drops every Nth packet
)

// Reject types (iptables --reject-with, IPv4 spelling).
const (
	RejectTCPReset        = "tcp-reset"
	RejectAdminProhibited = "icmp-admin-prohibited"
	RejectPortUnreachable = "icmp-port-unreachable"
)

// Router-local ports of the Go middlebox helpers.
const (
	InterceptPort  = 15443 // transparent TLS interception (REDIRECT target)
	ProxyPort      = 3128  // explicit HTTP proxy, on RouterClientAddr
	PortalHTTPPort = 18080 // captive portal HTTP (REDIRECT target of :80)
	PortalTLSPort  = 18443 // captive portal TLS (REDIRECT target of :443)
	SinkholeDNS    = 15353 // DNS hijack (REDIRECT target of udp :53)
	AlertPort      = 16443 // SNI filter answering with a TLS alert (REDIRECT target of :443)
)

// Sinkhole modes.
const (
	SinkholeZero     = "0.0.0.0"
	SinkholeNXDomain = "nxdomain"
)

// Behaviour is one middlebox behaviour, as data. Only the fields its Kind
// uses matter; the constructors below fill them.
type Behaviour struct {
	Kind BehaviourKind
	// Drop, Reject: transport ("tcp", "udp") and destination ports in
	// iptables syntax ("8801" or "8801:8810").
	Proto, Ports string
	// Reject: RejectTCPReset, RejectAdminProhibited or RejectPortUnreachable.
	RejectWith string
	// SNIReset, SNIAlert: the string searched in the first TCP segments to Ports (default "zoom.us" on 443).
	Match string
	// SNIAlert: the alert description sent (40 handshake_failure, 49 access_denied...).
	Alert uint8
	// InjectRST: TTL of the forged RST toward the client (default 64: a hop
	// nearer than the server, whose packets arrive with 63).
	TTL uint8
	// InjectRST: reset only the client, then let its ClientHello reach the
	// server, whose genuine answer follows the forged reset (a race the
	// injector wins by construction, as seen from the mirror).
	Race bool
	// Intercept: the inspection CA's subject.
	CACommonName, CAOrg string
	// HTTPProxy: allow CONNECT (true) or answer it with 403.
	Allow bool
	// DNSSinkhole: SinkholeZero or SinkholeNXDomain.
	Sinkhole string
	// Loss, HostLoss: one packet in Every is dropped.
	Every int
}

// Drop drops forwarded packets from the client to proto/ports.
func Drop(proto, ports string) Behaviour {
	return Behaviour{Kind: KindDrop, Proto: proto, Ports: ports}
}

// Reject rejects forwarded packets from the client to proto/ports.
func Reject(proto, ports, with string) Behaviour {
	return Behaviour{Kind: KindReject, Proto: proto, Ports: ports, RejectWith: with}
}

// SNIReset resets TLS connections to port 443 whose first segments carry s.
func SNIReset(s string) Behaviour {
	return Behaviour{Kind: KindSNIReset, Proto: "tcp", Ports: "443", Match: s}
}

// InjectRST forges RSTs (toward the client with this TTL, and toward the
// server) for each ClientHello on port 443. The injector sits in the path:
// it forwards the client's segments itself, each after the resets it
// triggers, so the resets always win, however busy the machine.
func InjectRST(ttl uint8) Behaviour {
	return Behaviour{Kind: KindInjectRST, Proto: "tcp", Ports: "443", TTL: ttl}
}

// InjectRSTRace forges a reset toward the client only, then forwards the
// ClientHello: the server's ServerHello (and its own TTL) arrives after the
// forged reset, the classic injector's race.
func InjectRSTRace(ttl uint8) Behaviour {
	return Behaviour{Kind: KindInjectRST, Proto: "tcp", Ports: "443", TTL: ttl, Race: true}
}

// Intercept intercepts TLS on port 443 with leaves minted by a CA of that name.
func Intercept(cn, org string) Behaviour {
	return Behaviour{Kind: KindIntercept, Proto: "tcp", Ports: "443", CACommonName: cn, CAOrg: org}
}

// HTTPProxy runs an explicit proxy on RouterClientAddr:ProxyPort.
func HTTPProxy(allow bool) Behaviour { return Behaviour{Kind: KindHTTPProxy, Allow: allow} }

// CaptivePortal redirects the client's HTTP and HTTPS to a portal.
func CaptivePortal() Behaviour { return Behaviour{Kind: KindCaptivePortal} }

// DNSSinkhole hijacks the client's DNS and sinkholes Zoom names.
func DNSSinkhole(mode string) Behaviour { return Behaviour{Kind: KindDNSSinkhole, Sinkhole: mode} }

// SNIAlert answers TLS ClientHellos to port 443 that carry s with a fatal
// alert (desc, e.g. 40 handshake_failure) and closes: a firewall that
// filters by name with an alert instead of a reset.
func SNIAlert(s string, desc uint8) Behaviour {
	return Behaviour{Kind: KindSNIAlert, Proto: "tcp", Ports: "443", Match: s, Alert: desc}
}

// NAT translates the client LAN's IPv4 to the router's server-facing address
// (MASQUERADE --random: random source ports). iptables has no target that
// randomises TCP sequence numbers, as some firewalls do; the generated
// two-sided captures (internal/testgen) cover that.
func NAT() Behaviour { return Behaviour{Kind: KindNAT} }

// Loss drops one forwarded packet in every, both ways. Every Nth, not at
// random: a lossy path's retransmissions are exercised, and no run can lose
// the three tries of one connection in a row (at random 5% loss each way
// that happens about once a thousand connections, and the client's step
// fails; a scenario that passes only most of the time tests nothing).
func Loss(every int) Behaviour { return Behaviour{Kind: KindLoss, Every: every} }

// HostDrop is the client host's own firewall dropping what Zoom answers from
// proto/ports (source ports, iptables syntax): an INPUT rule in the client's
// namespace, so the answers pass the router and its mirror first (a Windows
// Defender Firewall or antivirus rule against Zoom.exe).
func HostDrop(proto, ports string) Behaviour {
	return Behaviour{Kind: KindHostDrop, Proto: proto, Ports: ports}
}

// HostLoss drops one packet in every arriving at the client, after the
// mirror saw them (a lossy last hop); every Nth, as Loss.
func HostLoss(every int) Behaviour { return Behaviour{Kind: KindHostLoss, Every: every} }

func (bh Behaviour) String() string {
	switch bh.Kind {
	case KindDrop:
		return fmt.Sprintf("drop %s/%s", bh.Proto, bh.Ports)
	case KindReject:
		return fmt.Sprintf("reject %s/%s with %s", bh.Proto, bh.Ports, bh.RejectWith)
	case KindSNIReset:
		return fmt.Sprintf("reset ClientHellos containing %q", bh.Match)
	case KindInjectRST:
		return fmt.Sprintf("inject RSTs (TTL %d) after ClientHellos to %s", bh.TTL, bh.Ports)
	case KindIntercept:
		return fmt.Sprintf("intercept TLS on %s as %q", bh.Ports, bh.CACommonName)
	case KindHTTPProxy:
		return fmt.Sprintf("HTTP proxy (allow CONNECT: %v)", bh.Allow)
	case KindCaptivePortal:
		return "captive portal at " + PortalHost
	case KindDNSSinkhole:
		return "DNS sinkhole " + bh.Sinkhole
	case KindLoss:
		return fmt.Sprintf("loss of 1 packet in %d", bh.Every)
	case KindSNIAlert:
		return fmt.Sprintf("answer ClientHellos containing %q with TLS alert %d", bh.Match, bh.Alert)
	case KindNAT:
		return "NAT (MASQUERADE --random) to " + RouterServerIf
	case KindHostDrop:
		return fmt.Sprintf("client host drops answers from %s/%s", bh.Proto, bh.Ports)
	case KindHostLoss:
		return fmt.Sprintf("client host loses 1 packet in %d of what arrives", bh.Every)
	}
	return string(bh.Kind)
}

// Rule is one iptables or ip6tables command (without the binary), run in
// the router unless Client says the client's namespace.
type Rule struct {
	IPv6   bool
	Client bool
	Args   []string
}

func (r Rule) String() string {
	bin := "iptables"
	if r.IPv6 {
		bin = "ip6tables"
	}
	if r.Client {
		bin = "(client) " + bin
	}
	return bin + " " + strings.Join(r.Args, " ")
}

func v6Reject(with string) string {
	switch with {
	case RejectAdminProhibited:
		return "icmp6-adm-prohibited"
	case RejectPortUnreachable:
		return "icmp6-port-unreachable"
	}
	return with
}

func portMatch(proto, ports string) []string {
	return []string{"-p", proto, "--dport", ports}
}

// Rules returns the netfilter rules the behaviour installs in the router,
// for both address families. Behaviours served by Go helpers return the
// REDIRECT rules that steer traffic to them.
func (bh Behaviour) Rules() ([]Rule, error) {
	both := func(args []string, v6args []string) []Rule {
		return []Rule{{Args: args}, {IPv6: true, Args: v6args}}
	}
	fwd := []string{"-w", "5", "-A", "FORWARD", "-i", RouterClientIf}
	nat := []string{"-w", "5", "-t", "nat", "-A", "PREROUTING", "-i", RouterClientIf}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	switch bh.Kind {
	case KindDrop:
		if bh.Proto != "tcp" && bh.Proto != "udp" || bh.Ports == "" {
			return nil, fmt.Errorf("testbed: drop needs Proto tcp|udp and Ports, got %q %q", bh.Proto, bh.Ports)
		}
		a := cat(fwd, portMatch(bh.Proto, bh.Ports), []string{"-j", "DROP"})
		return both(a, a), nil
	case KindReject:
		if bh.Proto != "tcp" && bh.Proto != "udp" || bh.Ports == "" {
			return nil, fmt.Errorf("testbed: reject needs Proto tcp|udp and Ports, got %q %q", bh.Proto, bh.Ports)
		}
		switch bh.RejectWith {
		case RejectTCPReset, RejectAdminProhibited, RejectPortUnreachable:
		default:
			return nil, fmt.Errorf("testbed: reject: RejectWith %q is not one of %s, %s, %s", bh.RejectWith, RejectTCPReset, RejectAdminProhibited, RejectPortUnreachable)
		}
		if bh.RejectWith == RejectTCPReset && bh.Proto != "tcp" {
			return nil, fmt.Errorf("testbed: reject: tcp-reset needs Proto tcp")
		}
		base := cat(fwd, portMatch(bh.Proto, bh.Ports))
		return both(cat(base, []string{"-j", "REJECT", "--reject-with", bh.RejectWith}),
			cat(base, []string{"-j", "REJECT", "--reject-with", v6Reject(bh.RejectWith)})), nil
	case KindSNIReset:
		m := bh.Match
		if m == "" {
			m = "zoom.us"
		}
		ports := bh.Ports
		if ports == "" {
			ports = "443"
		}
		a := cat(fwd, portMatch("tcp", ports), []string{"-m", "string", "--string", m, "--algo", "bm", "-j", "REJECT", "--reject-with", "tcp-reset"})
		return both(a, a), nil
	case KindHostDrop:
		if bh.Proto != "tcp" && bh.Proto != "udp" || bh.Ports == "" {
			return nil, fmt.Errorf("testbed: host drop needs Proto tcp|udp and Ports, got %q %q", bh.Proto, bh.Ports)
		}
		a := []string{"-w", "5", "-A", "INPUT", "-i", ClientIf, "-p", bh.Proto, "--sport", bh.Ports, "-j", "DROP"}
		return []Rule{{Client: true, Args: a}, {Client: true, IPv6: true, Args: a}}, nil
	case KindHostLoss:
		if bh.Every < 2 {
			return nil, fmt.Errorf("testbed: host loss: Every %d must be at least 2", bh.Every)
		}
		a := []string{"-w", "5", "-A", "INPUT", "-i", ClientIf, "-m", "statistic", "--mode", "nth", "--every", fmt.Sprint(bh.Every), "--packet", fmt.Sprint(bh.Every - 1), "-j", "DROP"}
		return []Rule{{Client: true, Args: a}, {Client: true, IPv6: true, Args: a}}, nil
	case KindLoss:
		if bh.Every < 2 {
			return nil, fmt.Errorf("testbed: loss: Every %d must be at least 2", bh.Every)
		}
		a := []string{"-w", "5", "-A", "FORWARD", "-m", "statistic", "--mode", "nth", "--every", fmt.Sprint(bh.Every), "--packet", fmt.Sprint(bh.Every - 1), "-j", "DROP"}
		return both(a, a), nil
	case KindIntercept:
		ports := bh.Ports
		if ports == "" {
			ports = "443"
		}
		a := cat(nat, portMatch("tcp", ports), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(InterceptPort)})
		return both(a, a), nil
	case KindCaptivePortal:
		return []Rule{
			{Args: cat(nat, portMatch("tcp", "80"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(PortalHTTPPort)})},
			{Args: cat(nat, portMatch("tcp", "443"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(PortalTLSPort)})},
			{IPv6: true, Args: cat(nat, portMatch("tcp", "80"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(PortalHTTPPort)})},
			{IPv6: true, Args: cat(nat, portMatch("tcp", "443"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(PortalTLSPort)})},
		}, nil
	case KindSNIAlert:
		if bh.Match == "" || bh.Alert == 0 {
			return nil, fmt.Errorf("testbed: sni alert needs Match and Alert, got %q %d", bh.Match, bh.Alert)
		}
		a := cat(nat, portMatch("tcp", "443"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(AlertPort)})
		return both(a, a), nil
	case KindDNSSinkhole:
		if bh.Sinkhole != SinkholeZero && bh.Sinkhole != SinkholeNXDomain {
			return nil, fmt.Errorf("testbed: dns sinkhole: Sinkhole %q is not %q or %q", bh.Sinkhole, SinkholeZero, SinkholeNXDomain)
		}
		a := cat(nat, portMatch("udp", "53"), []string{"-j", "REDIRECT", "--to-ports", fmt.Sprint(SinkholeDNS)})
		return both(a, a), nil
	case KindInjectRST:
		// The kernel stops forwarding the client's IPv4 segments to the
		// ports; the injector (whose packet socket sees them first) sends
		// its resets, then forwards each segment itself.
		ports := bh.Ports
		if ports == "" {
			ports = "443"
		}
		return []Rule{{Args: cat(fwd, portMatch("tcp", ports), []string{"-j", "DROP"})}}, nil
	case KindHTTPProxy:
		return nil, nil // a pure Go helper, no rules
	case KindNAT:
		return []Rule{{Args: []string{"-w", "5", "-t", "nat", "-A", "POSTROUTING", "-o", RouterServerIf, "-s", ClientAddr.String() + "/24",
			"-j", "MASQUERADE", "--random"}}}, nil
	}
	return nil, fmt.Errorf("testbed: unknown behaviour kind %q", bh.Kind)
}

// Apply switches a behaviour on in the router: its rules first, then any Go
// helper it needs (which stops with the bed).
func (b *Bed) Apply(bh Behaviour) error {
	rules, err := bh.Rules()
	if err != nil {
		return err
	}
	if len(rules) > 0 {
		if _, err := lookTool("iptables"); err != nil {
			return fmt.Errorf("%w: iptables not found (scripts/testbed-deps.sh installs it)", ErrSkip)
		}
	}
	for _, r := range rules {
		bin := "iptables"
		if r.IPv6 {
			bin = "ip6tables"
		}
		ns := NSRouter
		if r.Client {
			ns = NSClient
		}
		if out, err := b.Exec(ns, append([]string{mustTool(bin)}, r.Args...)...); err != nil {
			return fmt.Errorf("testbed: %s: %v: %s", r, err, out)
		}
	}
	switch bh.Kind {
	case KindInjectRST:
		return startInjector(b, bh)
	case KindIntercept:
		return startInterceptor(b, bh)
	case KindHTTPProxy:
		return startHTTPProxy(b, bh)
	case KindCaptivePortal:
		return startPortal(b)
	case KindDNSSinkhole:
		return startSinkhole(b, bh)
	case KindSNIAlert:
		return startSNIAlert(b, bh)
	}
	return nil
}
