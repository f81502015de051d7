// Package dnsfilter recognises DNS filtering of Zoom's names from the
// answers a resolver sends: NXDOMAIN, REFUSED, SERVFAIL, or addresses that
// are not Zoom's: 0.0.0.0 / ::, loopback, private (RFC 1918, CGNAT, link
// local, ULA) or a configured sinkhole.
//
// It does not fill the name cache: the engine snoops DNS answers into it
// for the identity stage (engine/snoop.go).
package dnsfilter

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/bounded"
	"github.com/zoomprobe/zoomprobe/proto/dns"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Name is the analyzer's name.
const Name = "dnsfilter"

// Reasons counted by zoomprobe_dns_filtered_total.
var Reasons = []finding.Reason{finding.ReasonDNSNXDomain, finding.ReasonDNSRefused, finding.ReasonDNSServFail, finding.ReasonDNSSinkhole, finding.ReasonDNSLoopback, finding.ReasonDNSPrivate}

func init() { analyzers.Register(plugin{}) }

type plugin struct{}

func (plugin) Name() string { return Name }

func (plugin) Init(env analyzers.Env) (func() analyzers.Analyzer, error) {
	cfg := config.Default()
	if env.Config != nil {
		cfg = env.Config
	}
	sink := env.Sink
	if sink == nil {
		sink = finding.Discard
	}
	m := newMetrics()
	if env.Registerer != nil {
		if err := env.Registerer.Register(m.filtered); err != nil {
			return nil, err
		}
	}
	// The answers already reported carry over a reload, with the interval
	// now configured.
	n, interval := cfg.Reach.MaxTrackedClients, cfg.Reach.DNSRepeatInterval
	kept := analyzers.Keep(env.Memory, "dnsfilter.dedupe", n, func() *dedupe { return newDedupe(n, interval) })
	dd := &dedupe{interval: interval, seed: kept.seed, seen: kept.seen}
	return func() analyzers.Analyzer { return newAnalyzer(cfg, env.Slot, sink, m, dd) }, nil
}

type metrics struct{ filtered *prometheus.CounterVec }

func newMetrics() *metrics {
	m := &metrics{filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zoomprobe_dns_filtered_total",
		Help: "DNS answers for Zoom names that show filtering, by reason (dns_nxdomain, dns_refused, dns_servfail, dns_sinkhole, dns_loopback, dns_private_address).",
	}, []string{"reason"})}
	for _, r := range Reasons {
		m.filtered.WithLabelValues(string(r))
	}
	return m
}

// Analyzer is one worker's instance.
type Analyzer struct {
	slot       int
	sink       finding.Sink
	m          *metrics
	dd         *dedupe
	sinkholes  []netip.Prefix
	privateOK  []string
	watchNames []string
	msg        dns.Message // reused: parsing allocates nothing
}

// New makes a standalone analyzer (tests, tools).
func New(cfg *config.Config, slot int, sink finding.Sink) *Analyzer {
	return newAnalyzer(cfg, slot, sink, newMetrics(), newDedupe(cfg.Reach.MaxTrackedClients, cfg.Reach.DNSRepeatInterval))
}

func newAnalyzer(cfg *config.Config, slot int, sink finding.Sink, m *metrics, dd *dedupe) *Analyzer {
	a := &Analyzer{slot: slot, sink: sink, m: m, dd: dd, sinkholes: cfg.Reach.SinkholePrefixes}
	for _, n := range cfg.Reach.DNSPrivateAllowed {
		a.privateOK = append(a.privateOK, strings.ToLower(strings.TrimSuffix(n, ".")))
	}
	for _, n := range cfg.Zoom.Watch.Names {
		a.watchNames = append(a.watchNames, strings.ToLower(strings.TrimSuffix(n, ".")))
	}
	return a
}

// Collectors returns the metrics (standalone use).
func (a *Analyzer) Collectors() []prometheus.Collector { return []prometheus.Collector{a.m.filtered} }

var _ analyzers.Analyzer = (*Analyzer)(nil)

// Packet implements analyzers.Analyzer: answers from port 53, over UDP or in
// one TCP segment.
func (a *Analyzer) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if d != flow.ToClient || f.ServerPort() != 53 || len(p.Payload) < 12 {
		return
	}
	var err error
	if f.Proto == decode.ProtoUDP {
		err = dns.Parse(p.Payload, &a.msg)
	} else {
		err = dns.ParseTCP(p.Payload, &a.msg)
	}
	m := &a.msg
	if err != nil && err != dns.ErrAnswers || !m.Response || !m.HasQuestion() || m.OpCode != 0 {
		return
	}
	qname := m.QName.Bytes()
	svc := zoom.ServiceForNameBytes(qname)
	if svc == zoom.ServiceNone {
		if !underAny(qname, a.watchNames) {
			return
		}
		svc = zoom.ServiceWatched
	}
	reason, answer := a.judge(m, qname)
	if reason == "" {
		return
	}
	a.m.filtered.WithLabelValues(string(reason)).Inc()
	if !a.dd.first(f.Client().Addr(), qname, reason, p.Time) {
		return
	}
	ev := map[string]any{
		"name": string(qname), "qtype": typeName(m.QType), "rcode": rcodeName(m.RCode),
		"resolver": f.Server().Addr().String(), "answers": m.NumAnswers,
	}
	if answer.IsValid() {
		ev["answer"] = answer.String()
	}
	us, rem := texts(reason)
	a.sink.Emit(finding.Finding{
		Time: p.Time, Kind: finding.KindDNSFiltered, Reason: reason, Source: Name, Service: svc.String(),
		Flow: analyzers.FindingFlow(f), Confidence: confidence(reason), UserSees: us, Remediation: rem, Evidence: ev,
	})
}

// judge returns the filtering reason an answer shows, and the address behind it.
func (a *Analyzer) judge(m *dns.Message, qname []byte) (finding.Reason, netip.Addr) {
	switch m.RCode {
	case dnsmessage.RCodeNameError:
		return finding.ReasonDNSNXDomain, netip.Addr{}
	case dnsmessage.RCodeRefused:
		return finding.ReasonDNSRefused, netip.Addr{}
	case dnsmessage.RCodeServerFailure:
		return finding.ReasonDNSServFail, netip.Addr{}
	case dnsmessage.RCodeSuccess:
	default:
		return "", netip.Addr{}
	}
	for _, ans := range m.AnswerList() {
		ip := ans.Addr.Unmap()
		if !ip.IsValid() {
			continue
		}
		for _, p := range a.sinkholes {
			if p.Contains(ip) {
				return finding.ReasonDNSSinkhole, ip
			}
		}
		switch {
		case ip.IsUnspecified():
			return finding.ReasonDNSSinkhole, ip
		case ip.IsLoopback():
			return finding.ReasonDNSLoopback, ip
		case isPrivate(ip) && !underAny(qname, a.privateOK):
			return finding.ReasonDNSPrivate, ip
		}
	}
	return "", netip.Addr{}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// isPrivate: RFC 1918, RFC 6598 (CGNAT), link-local and IPv6 ULA addresses.
func isPrivate(ip netip.Addr) bool {
	return ip.IsPrivate() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip)
}

// underAny reports whether name is one of domains or below one.
func underAny(name []byte, domains []string) bool {
	for _, d := range domains {
		n := len(name)
		if n < len(d) || !equalFold(name[n-len(d):], d) {
			continue
		}
		if n == len(d) || name[n-len(d)-1] == '.' {
			return true
		}
	}
	return false
}

// Expire implements analyzers.Analyzer.
func (a *Analyzer) Expire(*flow.Flow, time.Time, flow.ExpireReason) {}

// ICMP implements analyzers.Analyzer.
func (a *Analyzer) ICMP(*flow.Flow, *decode.Packet, flow.Dir) {}

func confidence(r finding.Reason) string {
	switch r {
	case finding.ReasonDNSServFail:
		return "low" // upstream failures look the same
	case finding.ReasonDNSNXDomain:
		return "medium" // a name Zoom no longer uses looks the same
	}
	return "high"
}

func typeName(t dnsmessage.Type) string {
	switch t {
	case dnsmessage.TypeA:
		return "A"
	case dnsmessage.TypeAAAA:
		return "AAAA"
	case dnsmessage.TypeCNAME:
		return "CNAME"
	case dnsmessage.TypeSVCB:
		return "SVCB"
	case 65:
		return "HTTPS"
	}
	return strings.TrimPrefix(t.String(), "Type")
}

func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeSuccess:
		return "NOERROR"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	}
	return strings.TrimPrefix(r.String(), "RCode")
}

func texts(r finding.Reason) (userSees, remediation string) {
	const allow = "Allow Zoom's domains (zoom.us, zoom.com, zoomgov.com, zoomcrc.com, zoomapp.cloud and their subdomains) in the DNS filter or protective-DNS policy"
	switch r {
	case finding.ReasonDNSServFail:
		return `Zoom fails with error 5003/5004 family ("Unable to connect") or 104101-104118 family; Zoom web pages do not load.`,
			"The resolver failed to answer for a Zoom name: check the resolver's upstream and DNSSEC validation, and that no DNS filter blocks Zoom. " + allow + "."
	case finding.ReasonDNSPrivate, finding.ReasonDNSLoopback, finding.ReasonDNSSinkhole:
		return `Zoom fails with error 5003/5004 family ("Unable to connect"), or shows a certificate warning when the sinkhole serves a block page.`,
			allow + "; if the private answer is on purpose (split horizon, on-premises connector), list the domain in reachability.dns_private_allowed."
	}
	return `Zoom fails with error 5003/5004 family ("Unable to connect") or 104101-104118 family; Zoom web pages do not load.`, allow + "."
}

// dedupe keeps one finding per (client, name, reason) per interval; shared by
// the workers, touched once per filtered answer. The name is hashed so the
// key holds no packet bytes.
type dedupe struct {
	interval time.Duration
	seed     maphash.Seed
	seen     *bounded.Dedup[dedupeKey]
}

type dedupeKey struct {
	client netip.Addr
	name   uint64
	reason finding.Reason
}

func newDedupe(n int, interval time.Duration) *dedupe {
	return &dedupe{interval: interval, seed: maphash.MakeSeed(), seen: bounded.NewDedup[dedupeKey](max(n, 16))}
}

// first reports whether this is the first time in the interval.
func (d *dedupe) first(client netip.Addr, name []byte, r finding.Reason, t time.Time) bool {
	if d.interval <= 0 {
		return true
	}
	return d.seen.First(dedupeKey{client, maphash.Bytes(d.seed, name), r}, t, d.interval)
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
