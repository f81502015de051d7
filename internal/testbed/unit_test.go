package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/finding"
)

// These tests need no root: rules, matching, decoding, DNS answers, error
// classification.

func TestBehaviourRules(t *testing.T) {
	tests := []struct {
		bh      Behaviour
		want    []string
		wantErr string
	}{
		{bh: Drop("udp", "8801:8810"), want: []string{
			"iptables -w 5 -A FORWARD -i cli0 -p udp --dport 8801:8810 -j DROP",
			"ip6tables -w 5 -A FORWARD -i cli0 -p udp --dport 8801:8810 -j DROP"}},
		{bh: Reject("udp", "8801", RejectAdminProhibited), want: []string{
			"iptables -w 5 -A FORWARD -i cli0 -p udp --dport 8801 -j REJECT --reject-with icmp-admin-prohibited",
			"ip6tables -w 5 -A FORWARD -i cli0 -p udp --dport 8801 -j REJECT --reject-with icmp6-adm-prohibited"}},
		{bh: Reject("udp", "3478:3479", RejectPortUnreachable), want: []string{
			"iptables -w 5 -A FORWARD -i cli0 -p udp --dport 3478:3479 -j REJECT --reject-with icmp-port-unreachable",
			"ip6tables -w 5 -A FORWARD -i cli0 -p udp --dport 3478:3479 -j REJECT --reject-with icmp6-port-unreachable"}},
		{bh: Reject("tcp", "443", RejectTCPReset), want: []string{
			"iptables -w 5 -A FORWARD -i cli0 -p tcp --dport 443 -j REJECT --reject-with tcp-reset",
			"ip6tables -w 5 -A FORWARD -i cli0 -p tcp --dport 443 -j REJECT --reject-with tcp-reset"}},
		{bh: SNIReset("zoom.us"), want: []string{
			"iptables -w 5 -A FORWARD -i cli0 -p tcp --dport 443 -m string --string zoom.us --algo bm -j REJECT --reject-with tcp-reset",
			"ip6tables -w 5 -A FORWARD -i cli0 -p tcp --dport 443 -m string --string zoom.us --algo bm -j REJECT --reject-with tcp-reset"}},
		{bh: Loss(20), want: []string{
			"iptables -w 5 -A FORWARD -m statistic --mode nth --every 20 --packet 19 -j DROP",
			"ip6tables -w 5 -A FORWARD -m statistic --mode nth --every 20 --packet 19 -j DROP"}},
		{bh: Intercept(KnownInspectCN, KnownInspectOrg), want: []string{
			"iptables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 443 -j REDIRECT --to-ports 15443",
			"ip6tables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 443 -j REDIRECT --to-ports 15443"}},
		{bh: DNSSinkhole(SinkholeZero), want: []string{
			"iptables -w 5 -t nat -A PREROUTING -i cli0 -p udp --dport 53 -j REDIRECT --to-ports 15353",
			"ip6tables -w 5 -t nat -A PREROUTING -i cli0 -p udp --dport 53 -j REDIRECT --to-ports 15353"}},
		{bh: CaptivePortal(), want: []string{
			"iptables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 80 -j REDIRECT --to-ports 18080",
			"iptables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 443 -j REDIRECT --to-ports 18443",
			"ip6tables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 80 -j REDIRECT --to-ports 18080",
			"ip6tables -w 5 -t nat -A PREROUTING -i cli0 -p tcp --dport 443 -j REDIRECT --to-ports 18443"}},
		{bh: InjectRST(64), want: []string{"iptables -w 5 -A FORWARD -i cli0 -p tcp --dport 443 -j DROP"}},
		{bh: HTTPProxy(false), want: nil},
		{bh: HostDrop("udp", "8801:8810"), want: []string{
			"(client) iptables -w 5 -A INPUT -i eth0 -p udp --sport 8801:8810 -j DROP",
			"(client) ip6tables -w 5 -A INPUT -i eth0 -p udp --sport 8801:8810 -j DROP"}},
		{bh: HostLoss(20), want: []string{
			"(client) iptables -w 5 -A INPUT -i eth0 -m statistic --mode nth --every 20 --packet 19 -j DROP",
			"(client) ip6tables -w 5 -A INPUT -i eth0 -m statistic --mode nth --every 20 --packet 19 -j DROP"}},
		{bh: HostDrop("icmp", "1"), wantErr: "Proto tcp|udp"},
		{bh: Reject("udp", "8801", RejectTCPReset), wantErr: "tcp-reset needs Proto tcp"},
		{bh: Reject("tcp", "443", "icmp-bogus"), wantErr: `RejectWith "icmp-bogus"`},
		{bh: Drop("sctp", "1"), wantErr: "Proto tcp|udp"},
		{bh: Loss(1), wantErr: "must be at least 2"},
		{bh: DNSSinkhole("127.0.0.1"), wantErr: "is not"},
		{bh: Behaviour{Kind: "teleport"}, wantErr: "unknown behaviour"},
	}
	for _, tt := range tests {
		t.Run(tt.bh.String(), func(t *testing.T) {
			rules, err := tt.bh.Rules()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rules {
				got = append(got, r.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{
		{"443", 443, 443, true}, {"8801:8810", 8801, 8810, true},
		{"8810:8801", 0, 0, false}, {"x", 0, 0, false}, {"70000", 0, 0, false}, {"1:", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := parsePorts(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("parsePorts(%q) = %d, %d, %v; want %d, %d, ok=%v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

// frame serialises an Ethernet frame with gopacket (independent of Decode).
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
}

func sampleFrames(t testing.TB) map[string][]byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 4242, Protocol: layers.IPProtocolTCP, SrcIP: WebAddr.AsSlice(), DstIP: ClientAddr.AsSlice()}
	rst := &layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 1000, Ack: 2000, RST: true, ACK: true}
	_ = rst.SetNetworkLayerForChecksum(ip)
	ipu := &layers.IPv4{Version: 4, TTL: 63, Protocol: layers.IPProtocolUDP, SrcIP: ClientAddr.AsSlice(), DstIP: MediaRouterAddr.AsSlice()}
	udp := &layers.UDP{SrcPort: 50000, DstPort: 8801}
	_ = udp.SetNetworkLayerForChecksum(ipu)
	setup := append([]byte{1, 0, 2}, make([]byte, 16)...)
	quoted := frame(t, ipu, udp, gopacket.Payload(setup))[:28] // IP header + 8 bytes, as ICMP quotes
	ipi := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: RouterClientAddr.AsSlice(), DstIP: ClientAddr.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 13)}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP, SrcIP: WebAddr6.AsSlice(), DstIP: ClientAddr6.AsSlice()}
	hello := &layers.TCP{SrcPort: 40001, DstPort: 443, Seq: 7, PSH: true, ACK: true}
	_ = hello.SetNetworkLayerForChecksum(ip6)
	return map[string][]byte{
		"rst4":   frame(t, eth(layers.EthernetTypeIPv4), ip, rst),
		"udp4":   frame(t, eth(layers.EthernetTypeIPv4), ipu, udp, gopacket.Payload(setup)),
		"icmp4":  frame(t, eth(layers.EthernetTypeIPv4), ipi, icmp, gopacket.Payload(quoted)),
		"hello6": frame(t, eth(layers.EthernetTypeIPv6), ip6, hello, gopacket.Payload([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})),
	}
}

func TestDecodeAndMatch(t *testing.T) {
	fr := sampleFrames(t)
	dec := func(name string) Seen {
		s, ok := Decode(Packet{Data: fr[name]})
		if !ok {
			t.Fatalf("%s: not decoded", name)
		}
		return s
	}
	rst, udp, icmp, hello := dec("rst4"), dec("udp4"), dec("icmp4"), dec("hello6")
	if rst.Src != WebAddr || rst.SrcPort != 443 || rst.DstPort != 40000 || rst.TTL != 64 || rst.IPID != 4242 || rst.Flags != FlagRST|FlagACK || rst.Seq != 1000 || rst.Ack != 2000 {
		t.Errorf("rst decoded as %s", rst)
	}
	if icmp.Quoted == nil || icmp.Quoted.DstPort != 8801 || icmp.Quoted.Proto != ProtoUDP || icmp.ICMPType != 3 || icmp.ICMPCode != 13 {
		t.Errorf("icmp decoded as %s", icmp)
	}
	tests := []struct {
		name string
		m    Match
		s    Seen
		want bool
	}{
		{"rst from web ttl 64", Match{Proto: ProtoTCP, Src: WebAddr, SrcPort: 443, FlagsSet: FlagRST, TTL: 64}, rst, true},
		{"rst wrong ttl", Match{FlagsSet: FlagRST, TTL: 63}, rst, false},
		{"not ttl", Match{NotTTL: 64}, rst, false},
		{"syn-ack wanted", Match{FlagsSet: FlagSYN | FlagACK}, rst, false},
		{"flags clear", Match{FlagsClear: FlagACK}, rst, false},
		{"udp flags never match", Match{FlagsSet: FlagRST}, udp, false},
		{"port range", Match{DstPort: 8801, DstPortHi: 8810}, udp, true},
		{"port range miss", Match{DstPort: 8802, DstPortHi: 8810}, udp, false},
		{"payload prefix", Match{PayloadPrefix: []byte{1, 0, 2}}, udp, true},
		{"payload prefix miss", Match{PayloadPrefix: []byte{2}}, udp, false},
		{"icmp admin quoting 8801", Match{ICMP: &ICMPMatch{Type: 3, Code: 13, QuotedProto: ProtoUDP, QuotedDstPort: 8801}}, icmp, true},
		{"icmp port-unreach", Match{ICMP: &ICMPMatch{Type: 3, Code: 3}}, icmp, false},
		{"icmp on a tcp packet", Match{ICMP: &ICMPMatch{Type: 3, Code: 13}}, rst, false},
		{"client hello v6 wrong dst", Match{Dst: WebAddr6, DstPort: 443, ClientHello: true}, hello, false},
		{"client hello v6 by src", Match{Src: WebAddr6, DstPort: 443, ClientHello: true}, hello, true},
		{"has payload", Match{HasPayload: true}, rst, false},
	}
	for _, tt := range tests {
		if got := tt.m.Matches(tt.s); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v (packet %s)", tt.name, got, tt.want, tt.s)
		}
	}
}

func TestForgeRST(t *testing.T) {
	p := forgeRST(WebAddr, ClientAddr, 443, 40000, 111, 222, 64)
	pkt := gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("forged RST does not decode: %v", pkt)
	}
	if ip.TTL != 64 || !tcp.RST || !tcp.ACK || tcp.Seq != 111 || tcp.Ack != 222 || tcp.SrcPort != 443 || tcp.DstPort != 40000 {
		t.Errorf("forged RST = %+v %+v", ip, tcp)
	}
	// A correct checksum sums (with the pseudo header) to zero.
	s4, d4 := WebAddr.As4(), ClientAddr.As4()
	pseudo := uint32(s4[0])<<8 | uint32(s4[1])
	pseudo += uint32(s4[2])<<8 | uint32(s4[3])
	pseudo += uint32(d4[0])<<8 | uint32(d4[1])
	pseudo += uint32(d4[2])<<8 | uint32(d4[3])
	pseudo += ProtoTCP + 20
	if c := checksum(p[20:], pseudo); c != 0 {
		t.Errorf("TCP checksum does not verify: residue %#x", c)
	}
	if c := checksum(p[:20], 0); c != 0 {
		t.Errorf("IP checksum does not verify: residue %#x", c)
	}
	noAck := forgeRST(ClientAddr, WebAddr, 40000, 443, 5, 0, 64)
	if noAck[33] != FlagRST {
		t.Errorf("RST without ack has flags %#x, want RST only", noAck[33])
	}
}

func TestTrafficCheckStream(t *testing.T) {
	mk := func(seq uint32, payload string) Seen {
		return Seen{Proto: ProtoTCP, Src: WebAddr, Dst: ClientAddr, SrcPort: 443, DstPort: 40000, Seq: seq, Payload: []byte(payload)}
	}
	// "FortiGate CA" split across two segments, delivered out of order and
	// with a retransmission.
	seen := []Seen{mk(1000+10, "ate CA..."), mk(1000, "...FortiG"), mk(1000, "...FortiG")}
	tests := []struct {
		c    TrafficCheck
		want error
	}{
		{StreamHas("issuer", Match{Src: WebAddr}, "FortiGate CA"), nil},
		{StreamHas("other issuer", Match{Src: WebAddr}, "Zoom"), errors.New("x")},
		{StreamHas("wrong direction", Match{Src: ClientAddr}, "FortiGate CA"), errors.New("x")},
		{TrafficCheck{Desc: "absent", Match: Match{}, StreamContains: "Zoom", Max: 0}, nil},
		{AtLeast(3, "three segments", Match{SrcPort: 443}), nil},
		{AtLeast(4, "four segments", Match{SrcPort: 443}), errors.New("x")},
		{None("no rst", Match{FlagsSet: FlagRST}), nil},
		{TrafficCheck{Desc: "at most 2", Match: Match{SrcPort: 443}, Min: 0, Max: 2}, errors.New("x")},
	}
	for _, tt := range tests {
		err := tt.c.Check(seen)
		if (err == nil) != (tt.want == nil) {
			t.Errorf("%s: Check = %v, want error: %v", tt.c.Desc, err, tt.want != nil)
		}
	}
}

func TestDNSAnswer(t *testing.T) {
	query := func(name string, typ dnsmessage.Type) []byte {
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 77, RecursionDesired: true})
		_ = b.StartQuestions()
		_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
		out, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	parse := func(t *testing.T, msg []byte) (dnsmessage.RCode, []netip.Addr) {
		var p dnsmessage.Parser
		h, err := p.Start(msg)
		if err != nil || h.ID != 77 || !h.Response {
			t.Fatalf("bad response header %+v: %v", h, err)
		}
		_ = p.SkipAllQuestions()
		var addrs []netip.Addr
		for {
			rh, err := p.AnswerHeader()
			if err != nil {
				break
			}
			switch rh.Type {
			case dnsmessage.TypeA:
				r, _ := p.AResource()
				addrs = append(addrs, netip.AddrFrom4(r.A))
			case dnsmessage.TypeAAAA:
				r, _ := p.AAAAResource()
				addrs = append(addrs, netip.AddrFrom16(r.AAAA))
			default:
				_ = p.SkipAnswer()
			}
		}
		return h.RCode, addrs
	}
	sink := func(name string, qt dnsmessage.Type) ([]netip.Addr, bool) {
		return []netip.Addr{netip.IPv4Unspecified()}, true
	}
	tests := []struct {
		name  string
		typ   dnsmessage.Type
		r     resolver
		rcode dnsmessage.RCode
		addrs []netip.Addr
	}{
		{"zoom.us.", dnsmessage.TypeA, zoomResolver, dnsmessage.RCodeSuccess, []netip.Addr{WebAddr}},
		{"ZoomFR85zc.zoom.us.", dnsmessage.TypeA, zoomResolver, dnsmessage.RCodeSuccess, []netip.Addr{ZoneCtrlAddr}},
		{"zoomfrn99mmr.zoom.us.", dnsmessage.TypeAAAA, zoomResolver, dnsmessage.RCodeSuccess, []netip.Addr{MediaRouterAddr6}},
		{"zoom.us.", dnsmessage.TypeMX, zoomResolver, dnsmessage.RCodeSuccess, nil},
		{"example.org.", dnsmessage.TypeA, zoomResolver, dnsmessage.RCodeNameError, nil},
		{"zoom.us.", dnsmessage.TypeA, sink, dnsmessage.RCodeSuccess, []netip.Addr{netip.IPv4Unspecified()}},
	}
	for _, tt := range tests {
		out, ok := dnsAnswer(query(tt.name, tt.typ), tt.r)
		if !ok {
			t.Fatalf("%s: no answer", tt.name)
		}
		rc, addrs := parse(t, out)
		if rc != tt.rcode || fmt.Sprint(addrs) != fmt.Sprint(tt.addrs) {
			t.Errorf("%s %v: rcode %v addrs %v, want %v %v", tt.name, tt.typ, rc, addrs, tt.rcode, tt.addrs)
		}
	}
	for _, junk := range [][]byte{nil, {1, 2, 3}, make([]byte, 12)} {
		if _, ok := dnsAnswer(junk, zoomResolver); ok {
			t.Errorf("answered junk %x", junk)
		}
	}
}

func TestClassify(t *testing.T) {
	self, err := SelfSigned("portal.captive.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		err  error
		want finding.Reason
	}{
		{&icmpError{Type: 3, Code: 13, err: syscall.EHOSTUNREACH}, finding.ReasonICMPAdminProhibited},
		{&icmpError{Type: 3, Code: 3, err: syscall.ECONNREFUSED}, finding.ReasonICMPPortUnreachable},
		{&icmpError{Type: 3, Code: 1}, finding.ReasonICMPHostUnreachable},
		{&icmpError{Type: 3, Code: 0}, finding.ReasonICMPNetUnreachable},
		{&icmpError{Type: 3, Code: 4}, finding.ReasonICMPUnreachable},
		{&icmpError{V6: true, Type: 1, Code: 1}, finding.ReasonICMPAdminProhibited},
		{&icmpError{V6: true, Type: 1, Code: 4}, finding.ReasonICMPPortUnreachable},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), finding.ReasonConnectionRefused},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, finding.ReasonConnectionReset},
		{os.ErrDeadlineExceeded, finding.ReasonTimeout},
		{&proxyError{403}, finding.ReasonProxyDenied},
		{&proxyError{407}, finding.ReasonProxyAuthRequired},
		{&proxyError{502}, finding.ReasonProxyBadGateway},
		{&portalError{"http://portal/"}, finding.ReasonCaptivePortal},
		{fmt.Errorf("lookup: %w", errNXDomain), finding.ReasonDNSNXDomain},
		{errSinkhole, finding.ReasonDNSSinkhole},
		{errLoopback, finding.ReasonDNSLoopback},
		{x509.UnknownAuthorityError{}, finding.ReasonUnknownAuthority},
		{&selfSignedError{x509.UnknownAuthorityError{}}, finding.ReasonSelfSigned},
		{x509.HostnameError{Certificate: self.Leaf, Host: "zoom.us"}, finding.ReasonInvalidHostname},
		{x509.CertificateInvalidError{Reason: x509.Expired}, finding.ReasonExpired},
		{tls.AlertError(40), finding.ReasonSSLFailedHandshake},
		{errors.New("something else"), finding.ReasonUnknown},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestMatchFindings(t *testing.T) {
	fl := func(port uint16) *finding.Flow {
		return &finding.Flow{Transport: "tcp", Client: ClientAddr, ClientPort: 40000, Server: WebAddr, ServerPort: port}
	}
	got := []finding.Finding{
		{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "web", Flow: fl(443)},
		{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "web", Flow: fl(443)},
	}
	one := ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Service: "web", Transport: "tcp", Server: WebAddr, ServerPort: 443}
	if err := MatchFindings(got, []ExpectedFinding{one, one}); err != nil {
		t.Errorf("exact match refused: %v", err)
	}
	if err := MatchFindings(got, []ExpectedFinding{one}); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Errorf("extra finding not reported: %v", err)
	}
	wrongPort := one
	wrongPort.ServerPort = 8801
	if err := MatchFindings(got, []ExpectedFinding{one, wrongPort}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing finding not reported: %v", err)
	}
	if err := MatchFindings(nil, nil); err != nil {
		t.Errorf("clean: %v", err)
	}
	if err := MatchFindings(got[:1], nil); err == nil {
		t.Error("a finding on a clean scenario passed")
	}
}

func TestScenariosAreWellFormed(t *testing.T) {
	scs, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sc := range scs {
		if names[sc.Name] || sc.Name == "" || strings.ContainsAny(sc.Name, " /") {
			t.Errorf("scenario name %q empty, duplicated or not file-safe", sc.Name)
		}
		names[sc.Name] = true
		for _, bh := range sc.Router {
			if _, err := bh.Rules(); err != nil {
				t.Errorf("%s: %v", sc.Name, err)
			}
		}
		if len(sc.Expect.Client) == 0 || len(sc.Expect.Traffic) == 0 {
			t.Errorf("%s: asserts nothing about the client or the traffic", sc.Name)
		}
		if len(sc.Expect.Analyzers) == 0 {
			t.Errorf("%s: names no analyzer for its daemon-level expectation", sc.Name)
		}
	}
	for _, want := range []string{"clean", "drop-tcp-8801", "drop-udp-8801-8810", "reject-tcp-reset-443", "reject-icmp-admin-udp-8801",
		"reject-icmp-port-unreachable-stun", "sni-reset", "injected-rst", "injected-rst-race", "intercept-known-product", "intercept-unknown-product",
		"proxy-denied", "captive-portal", "dns-sinkhole", "lossy-but-fine"} {
		if !names[want] {
			t.Errorf("scenario %s missing from the suite", want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range sampleFrames(f) {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ok := Decode(Packet{Data: data, Time: time.Unix(0, 0)})
		if !ok {
			return
		}
		_ = s.String()
		_ = Match{ClientHello: true, ICMP: &ICMPMatch{Type: 3, QuotedDstPort: 1}}.Matches(s)
	})
}

func TestCheckMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zoomprobe_blocked_connections_total", Help: "x"}, []string{"service", "port"})
	reg.MustRegister(c)
	c.WithLabelValues("web", "443").Add(2)
	c.WithLabelValues("zone_controller", "443").Add(1)
	tests := []struct {
		want []ExpectedMetric
		ok   bool
	}{
		{[]ExpectedMetric{{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"port": "443"}, Value: 3}}, true},
		{[]ExpectedMetric{{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "web"}, Value: 2}}, true},
		{[]ExpectedMetric{{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"service": "web"}, Value: 1}}, false},
		{[]ExpectedMetric{{Name: "zoomprobe_blocked_connections_total", Labels: map[string]string{"port": "8801"}, Value: 1}}, false},
		{[]ExpectedMetric{{Name: "zoomprobe_findings_total", Value: 0}}, true},
		{[]ExpectedMetric{{Name: "zoomprobe_findings_total", Value: 1}}, false},
	}
	for i, tt := range tests {
		if err := CheckMetrics(reg, tt.want); (err == nil) != tt.ok {
			t.Errorf("case %d: CheckMetrics = %v, want ok=%v", i, err, tt.ok)
		}
	}
}
