package testgen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// DefaultStart is the capture start time scenarios use unless told otherwise.
var DefaultStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// DefaultSeed is the PRNG seed scenarios use unless told otherwise.
const DefaultSeed = 2026

// Params choose the variant of a scenario.
type Params struct {
	Seed  uint64    // 0: DefaultSeed
	Start time.Time // zero: DefaultStart
	IPv6  bool      // use the IPv6 address plan
}

func (p Params) withDefaults() Params {
	if p.Seed == 0 {
		p.Seed = DefaultSeed
	}
	if p.Start.IsZero() {
		p.Start = DefaultStart
	}
	return p
}

// Names of the Zoom servers scenarios use.
const (
	NameWeb     = "zoom.us"
	NameWWW     = "www.zoom.us"
	NameZC      = "zoomfr85zc.zoom.us"
	NameMMR     = "zoomfrn99mmr.zoom.us"
	NameExample = "example.org"
)

// AddressPlan holds the fixed addresses of a scenario family.
type AddressPlan struct {
	Client, Client2 netip.Addr // the site's Zoom users
	Resolver        netip.Addr // the site's DNS resolver
	Router          netip.Addr // the site's firewall: ICMP errors, injected RSTs
	Proxy           netip.Addr // explicit web proxy (port 3128)
	Web             netip.Addr // zoom.us front end: a cloud address outside Zoom's ranges
	ZC              netip.Addr // zone controller, inside Zoom's Meetings ranges
	MMR             netip.Addr // multimedia router, inside Zoom's Meetings ranges
	STUN            netip.Addr // Zoom STUN server, inside Zoom's ranges
	PublicClient    netip.Addr // the client's address as Zoom's STUN server sees it (after NAT)
	Example         netip.Addr // example.org, not Zoom
	NTP             netip.Addr // an NTP server, not Zoom
	Other           netip.Addr // some other non-Zoom host
}

// PlanV4 is the IPv4 plan: the Zoom addresses lie in 170.114.0.0/16,
// 144.195.0.0/16 and 206.247.0.0/16 of data/zoom-ranges.csv; the non-Zoom
// ones are documentation addresses.
var PlanV4 = AddressPlan{
	Client: netip.MustParseAddr("10.20.30.40"), Client2: netip.MustParseAddr("10.20.30.41"),
	Resolver: netip.MustParseAddr("10.20.0.53"), Router: netip.MustParseAddr("10.20.0.1"),
	Proxy: netip.MustParseAddr("10.20.0.8"),
	Web:   netip.MustParseAddr("198.51.100.80"),
	ZC:    netip.MustParseAddr("170.114.10.85"), MMR: netip.MustParseAddr("144.195.33.99"),
	STUN: netip.MustParseAddr("206.247.115.10"), PublicClient: netip.MustParseAddr("203.0.113.40"),
	Example: netip.MustParseAddr("203.0.113.10"), NTP: netip.MustParseAddr("203.0.113.123"),
	Other: netip.MustParseAddr("203.0.113.200"),
}

// PlanV6 is the IPv6 plan: Zoom addresses in 2620:123:2000::/40 (Meetings),
// the rest in 2001:db8::/32.
var PlanV6 = AddressPlan{
	Client: netip.MustParseAddr("2001:db8:20:30::40"), Client2: netip.MustParseAddr("2001:db8:20:30::41"),
	Resolver: netip.MustParseAddr("2001:db8:20::53"), Router: netip.MustParseAddr("2001:db8:20::1"),
	Proxy: netip.MustParseAddr("2001:db8:20::8"),
	Web:   netip.MustParseAddr("2001:db8:5100::80"),
	ZC:    netip.MustParseAddr("2620:123:2000:10::85"), MMR: netip.MustParseAddr("2620:123:2000:33::99"),
	STUN: netip.MustParseAddr("2620:123:2000:115::10"), PublicClient: netip.MustParseAddr("203.0.113.40"),
	Example: netip.MustParseAddr("2001:db8:113::10"), NTP: netip.MustParseAddr("2001:db8:113::123"),
	Other: netip.MustParseAddr("2001:db8:113::200"),
}

// ExpectedFlow is one flow the analyzers should see.
type ExpectedFlow struct {
	Transport string // "tcp" or "udp"
	Client    netip.AddrPort
	Server    netip.AddrPort
	Service   zoom.Service // expected class (ServiceNone for non-Zoom)
	Name      string       // DNS name the client resolved for the server, if any
	SNI       string       // TLS server name, if any
	// TLSVersion negotiated (0: no TLS or the handshake did not finish).
	TLSVersion uint16
	// Chain the server presented, leaf first (nil without TLS).
	Chain []*x509.Certificate
}

// ExpectedFinding is a verdict an analyzer should give.
type ExpectedFinding struct {
	Kind       finding.Kind
	Reason     finding.Reason
	Transport  string
	Client     netip.Addr
	Server     netip.Addr
	ServerPort uint16
	Service    zoom.Service
	SNI        string
	Product    string // interception product, if the issuer names one
	// ZoomRoomsCode is the Zoom Rooms certificate code (0: none applies).
	ZoomRoomsCode int
	// Evidence the finding should carry (keys are suggestions: "issuer",
	// "icmp_sender", "rst_ttl", "server_ttl", "http_status", "location", "answer").
	Evidence map[string]string
}

// Scenario is a generated capture and what it should make zoomprobe say.
type Scenario struct {
	Name        string
	Description string
	Params      Params
	Plan        AddressPlan
	Packets     []Packet
	Flows       []ExpectedFlow
	Findings    []ExpectedFinding // empty: zoomprobe must report nothing
	// Deterministic is true when the same Params give byte-identical packets
	// (no real TLS handshake inside).
	Deterministic bool
}

// ScenarioFunc builds a scenario.
type ScenarioFunc func(Params) (*Scenario, error)

type scenarioDef struct {
	name, desc string
	fn         ScenarioFunc
}

var registry = map[string]scenarioDef{}

func register(name, desc string, fn ScenarioFunc) {
	registry[name] = scenarioDef{name, desc, fn}
}

// ScenarioInfo names and describes a registered scenario.
type ScenarioInfo struct{ Name, Description string }

// List returns the registered scenarios sorted by name.
func List() []ScenarioInfo {
	out := make([]ScenarioInfo, 0, len(registry))
	for _, d := range registry {
		out = append(out, ScenarioInfo{d.name, d.desc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Build runs the named scenario.
func Build(name string, p Params) (*Scenario, error) {
	d, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("testgen: unknown scenario %q (zoomprobe-gen -list shows them)", name)
	}
	return d.fn(p)
}

// builder carries what every scenario needs.
type builder struct {
	g   *Generator
	a   AddressPlan
	s   *Scenario
	tls bool
}

func newBuilder(name, desc string, p Params) *builder {
	p = p.withDefaults()
	a := PlanV4
	if p.IPv6 {
		a = PlanV6
	}
	return &builder{
		g: New(p.Seed, p.Start),
		a: a,
		s: &Scenario{Name: name, Description: desc, Params: p, Plan: a},
	}
}

func (b *builder) done() (*Scenario, error) {
	if err := b.g.Flush(); err != nil {
		return nil, fmt.Errorf("testgen: scenario %s: %w", b.s.Name, err)
	}
	b.s.Packets = b.g.Packets()
	b.s.Deterministic = !b.tls
	return b.s, nil
}

func (b *builder) port(addr netip.Addr, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(addr, port)
}

func (b *builder) ephemeral(addr netip.Addr) netip.AddrPort {
	return netip.AddrPortFrom(addr, b.g.EphemeralPort())
}

// lookup resolves name for the client, answering addrs (A or AAAA by
// family), and notes the DNS flow (to the site's resolver: not Zoom).
func (b *builder) lookup(client netip.Addr, name string, addrs ...netip.Addr) {
	b.dns(client, DNSLookup{Name: name, Addrs: addrs})
	b.g.Advance(2 * time.Millisecond)
}

func (b *builder) dns(client netip.Addr, l DNSLookup) {
	u := b.g.DNSFlow(client, b.a.Resolver)
	b.g.DNSOn(u, l)
	b.flow("udp", u.Client, u.Server, zoom.ServiceNone, "")
}

func (b *builder) qtype() dnsmessage.Type {
	if b.a.Client.Is4() {
		return dnsmessage.TypeA
	}
	return dnsmessage.TypeAAAA
}

// tlsFlow records and plays a TLS connection and notes the expected flow.
func (b *builder) tlsFlow(client netip.Addr, server netip.AddrPort, svc zoom.Service, name string, spec TLSSpec, close bool) (*TCPConn, *TLSTranscript) {
	if spec.Time.IsZero() {
		spec.Time = b.g.Now()
	}
	c, t := b.g.TLS(b.ephemeral(client), server, TCPOptions{}, spec)
	if t == nil {
		return c, nil
	}
	b.noteTLS(t)
	if close {
		c.Close()
	}
	ef := ExpectedFlow{Transport: "tcp", Client: c.Client, Server: server, Service: svc, Name: name, SNI: spec.ServerName}
	ef.TLSVersion = t.Version
	ef.Chain = t.Chain
	b.s.Flows = append(b.s.Flows, ef)
	b.g.Advance(5 * time.Millisecond)
	return c, t
}

// noteTLS records whether a transcript was live (then the scenario's bytes
// differ between runs).
func (b *builder) noteTLS(t *TLSTranscript) {
	if !t.Cached {
		b.tls = true
	}
}

// pattern is application data whose content does not matter (it is
// encrypted): fixed, so TLS specs and their cached transcripts do not depend
// on the seed.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func (b *builder) flow(transport string, client, server netip.AddrPort, svc zoom.Service, name string) {
	b.s.Flows = append(b.s.Flows, ExpectedFlow{Transport: transport, Client: client, Server: server, Service: svc, Name: name})
}

func (b *builder) expect(f ExpectedFinding) { b.s.Findings = append(b.s.Findings, f) }

// zoomNames are the leaf names of Zoom's test certificate.
var zoomNames = []string{"*.zoom.us", "zoom.us"}

// mapped4 is the STUN-reported public address (IPv4 only in Zoom's STUN).
func (b *builder) mapped4() [4]byte { return b.a.PublicClient.As4() }

// background adds ordinary non-Zoom traffic: DNS and HTTPS to example.org,
// NTP, an SSH-like TCP session and a syslog datagram.
func (b *builder) background() {
	a := b.a
	b.lookup(a.Client2, NameExample, a.Example)
	b.tlsFlow(a.Client2, b.port(a.Example, 443), zoom.ServiceNone, NameExample,
		TLSSpec{ServerName: NameExample, Version: tls.VersionTLS13, Chain: ChainPublic, Names: []string{NameExample, "www." + NameExample}}, true)

	ntp := b.g.UDP(b.ephemeral(a.Client2), b.port(a.NTP, 123), UDPOptions{ServerTTL: 55})
	req := make([]byte, 48)
	req[0] = 0x23 // LI 0, version 4, client
	resp := make([]byte, 48)
	resp[0], resp[1] = 0x24, 2 // version 4, server, stratum 2
	ntp.Send(ClientToServer, req)
	ntp.Send(ServerToClient, resp)
	b.flow("udp", ntp.Client, ntp.Server, zoom.ServiceNone, "")

	ssh := b.g.TCPConn(b.ephemeral(a.Client2), b.port(a.Other, 22), TCPOptions{ServerTTL: 57})
	ssh.Send(ServerToClient, []byte("SSH-2.0-OpenSSH_9.6\r\n"))
	ssh.Send(ClientToServer, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"))
	ssh.Send(ClientToServer, b.fill(1200))
	ssh.Send(ServerToClient, b.fill(1100))
	ssh.Close()
	b.flow("tcp", ssh.Client, ssh.Server, zoom.ServiceNone, "")

	syslog := b.g.UDP(b.ephemeral(a.Client2), b.port(a.Other, 514), UDPOptions{})
	syslog.Send(ClientToServer, []byte("<14>Mar  2 09:00:01 host app: background datagram"))
	b.flow("udp", syslog.Client, syslog.Server, zoom.ServiceNone, "")
}

func (b *builder) fill(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(b.g.rng.Uint32())
	}
	return p
}
