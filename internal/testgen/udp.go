package testgen

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/dns/dnsmessage"
)

// UDPOptions shapes a UDP conversation. Zero values take the defaults.
type UDPOptions struct {
	RTT       time.Duration
	ClientTTL uint8
	ServerTTL uint8
	ThinkTime time.Duration
}

// UDPFlow is a simulated UDP conversation.
type UDPFlow struct {
	g              *Generator
	Client, Server netip.AddrPort
	opts           UDPOptions
	lastDir        Dir
	started        bool
	flowLbl        [2]uint32
}

// UDP prepares a UDP conversation; Send emits its datagrams.
func (g *Generator) UDP(client, server netip.AddrPort, opts UDPOptions) *UDPFlow {
	if opts.RTT <= 0 {
		opts.RTT = DefaultRTT
	}
	if opts.ClientTTL == 0 {
		opts.ClientTTL = DefaultClientTTL
	}
	if opts.ServerTTL == 0 {
		opts.ServerTTL = DefaultServerTTL
	}
	if opts.ThinkTime <= 0 {
		opts.ThinkTime = 300 * time.Microsecond
	}
	return &UDPFlow{g: g, Client: client, Server: server, opts: opts, flowLbl: [2]uint32{g.rng.Uint32(), g.rng.Uint32()}}
}

// Send emits one datagram from side d.
func (u *UDPFlow) Send(d Dir, payload []byte) Packet {
	if u.started && d != u.lastDir {
		if d == ServerToClient {
			u.g.Advance(u.g.jitter(u.opts.RTT))
		} else {
			u.g.Advance(u.g.jitter(u.opts.ThinkTime))
		}
	}
	u.started, u.lastDir = true, d
	src, dst, ttl := u.Client, u.Server, u.opts.ClientTTL
	if d == ServerToClient {
		src, dst, ttl = u.Server, u.Client, u.opts.ServerTTL
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	return u.g.emitIP(ipParams{src: src.Addr(), dst: dst.Addr(), ttl: ttl, flowLabel: u.flowLbl[d]}, layers.IPProtocolUDP, udp, gopacket.Payload(payload))
}

// Unreachable is the kind of ICMP destination-unreachable error; the
// generator maps it to the ICMPv4 or ICMPv6 code.
type Unreachable uint8

const (
	UnreachAdminProhibited Unreachable = iota // v4 3/13, v6 1/1
	UnreachPort                               // v4 3/3, v6 1/4
	UnreachHost                               // v4 3/1, v6 1/3
	UnreachNet                                // v4 3/0, v6 1/0
)

// ICMPUnreachable emits an ICMP (or ICMPv6) destination unreachable from the
// router or host `from`, sent back to the source of quoted and quoting as much
// of quoted's IP packet as RFC 1812 / RFC 4443 allow (576 / 1280 bytes in all).
func (g *Generator) ICMPUnreachable(from netip.Addr, quoted Packet, kind Unreachable, ttl uint8) Packet {
	ip, origSrc, err := parseIPFrame(quoted.Data)
	if err != nil {
		g.fail(err)
		return Packet{}
	}
	if ttl == 0 {
		ttl = DefaultClientTTL - 1
	}
	if origSrc.Is4() {
		ip = ip[:min(len(ip), 576-20-8)]
		code := [...]uint8{UnreachAdminProhibited: layers.ICMPv4CodeCommAdminProhibited, UnreachPort: layers.ICMPv4CodePort, UnreachHost: layers.ICMPv4CodeHost, UnreachNet: layers.ICMPv4CodeNet}[kind]
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, code)}
		return g.emitIP(ipParams{src: from, dst: origSrc, ttl: ttl}, layers.IPProtocolICMPv4, icmp, gopacket.Payload(ip))
	}
	ip = ip[:min(len(ip), 1280-40-8)]
	code := [...]uint8{UnreachAdminProhibited: layers.ICMPv6CodeAdminProhibited, UnreachPort: layers.ICMPv6CodePortUnreachable, UnreachHost: layers.ICMPv6CodeAddressUnreachable, UnreachNet: layers.ICMPv6CodeNoRouteToDst}[kind]
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, code)}
	// ICMPv6 error bodies start with 4 unused bytes before the quoted packet.
	body := append(make([]byte, 4, 4+len(ip)), ip...)
	return g.emitIP(ipParams{src: from, dst: origSrc, ttl: ttl}, layers.IPProtocolICMPv6, icmp, gopacket.Payload(body))
}

// DNSLookup describes one DNS question and its answer.
type DNSLookup struct {
	Name  string
	Type  dnsmessage.Type // 0: A if Addrs holds IPv4 (or is empty), AAAA otherwise
	Addrs []netip.Addr    // answer records, in order
	CNAME string          // optional alias answered before the addresses
	RCode dnsmessage.RCode
	TTL   uint32 // default 60
	// NoAnswer leaves the response out (lost or dropped query).
	NoAnswer bool
}

// DNS emits a query from client to resolver (port 53, new ephemeral source
// port) and, unless NoAnswer, the resolver's response. It returns the query
// and response packets.
func (g *Generator) DNS(client, resolver netip.Addr, l DNSLookup) (query, response Packet) {
	return g.DNSOn(g.DNSFlow(client, resolver), l)
}

// DNSFlow prepares the UDP flow of a DNS lookup (resolver nearby: 8 ms RTT,
// TTL 63).
func (g *Generator) DNSFlow(client, resolver netip.Addr) *UDPFlow {
	return g.UDP(netip.AddrPortFrom(client, g.EphemeralPort()), netip.AddrPortFrom(resolver, 53), UDPOptions{RTT: 8 * time.Millisecond, ServerTTL: 63})
}

// DNSOn emits one lookup on flow u (random DNS ID).
func (g *Generator) DNSOn(u *UDPFlow, l DNSLookup) (query, response Packet) {
	id := uint16(g.rng.Uint32())
	q, r, err := DNSMessages(id, l)
	if err != nil {
		g.fail(err)
		return Packet{}, Packet{}
	}
	query = u.Send(ClientToServer, q)
	if !l.NoAnswer {
		response = u.Send(ServerToClient, r)
	}
	return query, response
}

// DNSMessages builds the wire-format query and response for l with the given ID.
func DNSMessages(id uint16, l DNSLookup) (query, response []byte, err error) {
	name, err := dnsmessage.NewName(dnsName(l.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("testgen: DNS name %q: %w", l.Name, err)
	}
	qtype := l.Type
	if qtype == 0 {
		qtype = dnsmessage.TypeA
		if len(l.Addrs) > 0 && !l.Addrs[0].Unmap().Is4() {
			qtype = dnsmessage.TypeAAAA
		}
	}
	ttl := l.TTL
	if ttl == 0 {
		ttl = 60
	}
	question := dnsmessage.Question{Name: name, Type: qtype, Class: dnsmessage.ClassINET}
	qb := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	qb.EnableCompression()
	if err := qb.StartQuestions(); err != nil {
		return nil, nil, err
	}
	if err := qb.Question(question); err != nil {
		return nil, nil, err
	}
	if query, err = qb.Finish(); err != nil {
		return nil, nil, err
	}
	rb := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, RecursionDesired: true, RecursionAvailable: true, RCode: l.RCode})
	rb.EnableCompression()
	if err := rb.StartQuestions(); err != nil {
		return nil, nil, err
	}
	if err := rb.Question(question); err != nil {
		return nil, nil, err
	}
	if err := rb.StartAnswers(); err != nil {
		return nil, nil, err
	}
	owner := name
	if l.CNAME != "" {
		target, err := dnsmessage.NewName(dnsName(l.CNAME))
		if err != nil {
			return nil, nil, fmt.Errorf("testgen: DNS CNAME %q: %w", l.CNAME, err)
		}
		if err := rb.CNAMEResource(dnsmessage.ResourceHeader{Name: owner, Class: dnsmessage.ClassINET, TTL: ttl}, dnsmessage.CNAMEResource{CNAME: target}); err != nil {
			return nil, nil, err
		}
		owner = target
	}
	for _, a := range l.Addrs {
		h := dnsmessage.ResourceHeader{Name: owner, Class: dnsmessage.ClassINET, TTL: ttl}
		a = a.Unmap()
		if a.Is4() {
			err = rb.AResource(h, dnsmessage.AResource{A: a.As4()})
		} else {
			err = rb.AAAAResource(h, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if l.RCode == dnsmessage.RCodeNameError {
		// Negative answers carry the zone's SOA, as resolvers return them.
		if err := rb.StartAuthorities(); err != nil {
			return nil, nil, err
		}
		zone, err := dnsmessage.NewName(zoneOf(dnsName(l.Name)))
		if err != nil {
			return nil, nil, err
		}
		if err := rb.SOAResource(dnsmessage.ResourceHeader{Name: zone, Class: dnsmessage.ClassINET, TTL: 900}, dnsmessage.SOAResource{
			NS: dnsmessage.MustNewName("ns1.blocked.invalid."), MBox: dnsmessage.MustNewName("hostmaster.blocked.invalid."),
			Serial: 2026010101, Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: 900,
		}); err != nil {
			return nil, nil, err
		}
	}
	response, err = rb.Finish()
	return query, response, err
}

func dnsName(s string) string {
	if len(s) == 0 || s[len(s)-1] != '.' {
		return s + "."
	}
	return s
}

// zoneOf returns the last two labels of a fully qualified name ("zoom.us.").
func zoneOf(fqdn string) string {
	dots := 0
	for i := len(fqdn) - 2; i >= 0; i-- {
		if fqdn[i] == '.' {
			dots++
			if dots == 2 {
				return fqdn[i+1:]
			}
		}
	}
	return fqdn
}
