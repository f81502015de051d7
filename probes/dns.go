package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// maxDNSAnswers bounds the addresses kept per resolver as evidence.
const maxDNSAnswers = 16

// SystemResolver is the resolver label for the system resolver.
const SystemResolver = "system"

// dnsAnswer is what one resolver said about one name.
type dnsAnswer struct {
	resolver string
	addrs    []netip.Addr
	err      error
	reason   finding.Reason // ok, or what is wrong with the answer
	bad      []string       // the offending addresses
}

// ProbeDNS resolves a Zoom name (A and AAAA) through the system resolver and
// each configured resolver (probes.dns). NXDOMAIN, SERVFAIL, REFUSED,
// sinkhole (0.0.0.0, ::, configured sinkholes), loopback and private answers
// are findings (dns_filtered), as are resolvers that disagree completely
// (dns_inconsistent, a warning: CDNs answer differently by design).
func ProbeDNS(ctx context.Context, t Target, env Env) Result {
	r := newResult(CheckDNS, t, &env)
	start := time.Now()
	defer r.finish(start)
	name := t.Host
	type res struct {
		label string
		r     *net.Resolver
	}
	var resolvers []res
	if env.Config == nil || env.Config.DNS.System {
		resolvers = append(resolvers, res{SystemResolver, env.resolver()})
	}
	if env.Config != nil {
		for _, s := range env.Config.DNS.Resolvers {
			resolvers = append(resolvers, res{s, resolverFor(s, &env)})
		}
	}
	if len(resolvers) == 0 {
		r.Status, r.Reason = StatusUnknown, finding.ReasonProbeSkipped
		r.Summary = "no resolver configured (probes.dns.system is false and probes.dns.resolvers is empty)"
		return r
	}
	answers := make([]dnsAnswer, len(resolvers))
	done := make(chan struct{})
	for i, rs := range resolvers {
		go func() {
			defer func() { done <- struct{}{} }()
			ips, err := lookup(ctx, rs.r, name)
			a := dnsAnswer{resolver: rs.label, err: err}
			if len(ips) > maxDNSAnswers {
				ips = ips[:maxDNSAnswers]
			}
			for _, ip := range ips {
				a.addrs = append(a.addrs, ip.Unmap())
			}
			judgeAnswer(&a, name, &env)
			answers[i] = a
		}()
	}
	for range resolvers {
		<-done
	}

	perResolver := map[string]any{}
	worst := finding.ReasonOK
	var clean []dnsAnswer
	for _, a := range answers {
		if a.err != nil {
			perResolver[a.resolver] = map[string]any{"error": a.err.Error(), "reason": string(a.reason)}
		} else {
			perResolver[a.resolver] = map[string]any{"addresses": addrStrings(a.addrs), "reason": string(a.reason)}
		}
		if a.reason == finding.ReasonOK {
			clean = append(clean, a)
			continue
		}
		if worst == finding.ReasonOK {
			worst = a.reason
		}
		r.Findings = append(r.Findings, dnsFinding(&env, name, a))
	}
	r.Evidence["resolvers"] = perResolver
	if worst != finding.ReasonOK {
		r.Status, r.Reason = StatusFail, worst
		var parts []string
		for _, a := range answers {
			if a.reason == finding.ReasonOK {
				continue
			}
			part := a.resolver + ": " + string(a.reason)
			if _, cause, ok := dnsFailure(a.err); ok {
				part += " (" + cause + ")"
			}
			parts = append(parts, part)
		}
		r.Summary = fmt.Sprintf("%s: %s", name, strings.Join(parts, "; "))
		for _, a := range answers {
			if _, cause, ok := dnsFailure(a.err); ok && r.Cause == "" {
				r.Cause = cause
			}
		}
		return r
	}
	r.Success = true
	r.Status, r.Reason = StatusPass, finding.ReasonOK
	r.Summary = fmt.Sprintf("%s resolves to %s", name, strings.Join(addrStrings(firstN(clean[0].addrs, 4)), ", "))
	if disjoint(clean) {
		r.Status, r.Reason = StatusWarn, finding.ReasonDNSInconsistent
		r.Summary = fmt.Sprintf("%s: resolvers give disjoint answers", name)
		r.Findings = append(r.Findings, dnsFinding(&env, name, dnsAnswer{resolver: "all", reason: finding.ReasonDNSInconsistent}))
		r.Findings[len(r.Findings)-1].Evidence = map[string]any{"resolvers": perResolver}
		r.Findings[len(r.Findings)-1].Confidence = "low"
	}
	return r
}

// resolverFor asks one DNS server directly (Go's resolver, custom Dial).
func resolverFor(server string, env *Env) *net.Resolver {
	addr := server
	if _, _, err := net.SplitHostPort(server); err != nil {
		addr = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return env.dialer(ctx).DialContext(ctx, network, addr)
	}}
}

// judgeAnswer sets a.reason from the error or the addresses.
func judgeAnswer(a *dnsAnswer, name string, env *Env) {
	if a.err != nil {
		a.reason = classifyDNS(a.err)
		return
	}
	if len(a.addrs) == 0 {
		a.reason = finding.ReasonDNSNXDomain
		return
	}
	var cfgSinkholes []netip.Prefix
	var privateOK bool
	if env.Config != nil {
		cfgSinkholes = env.Config.DNS.SinkholePrefixes
		privateOK = nameIn(name, env.Config.DNS.PrivateAllowed)
	}
	a.reason = finding.ReasonOK
	rank := map[finding.Reason]int{finding.ReasonOK: 0, finding.ReasonDNSPrivate: 1, finding.ReasonDNSLoopback: 2, finding.ReasonDNSSinkhole: 3}
	for _, ip := range a.addrs {
		why := finding.ReasonOK
		switch {
		case ip.IsUnspecified() || inAny(ip, cfgSinkholes):
			why = finding.ReasonDNSSinkhole
		case ip.IsLoopback():
			why = finding.ReasonDNSLoopback
		case !privateOK && (ip.IsPrivate() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip)):
			why = finding.ReasonDNSPrivate
		}
		if why != finding.ReasonOK {
			a.bad = append(a.bad, ip.String())
			if rank[why] > rank[a.reason] {
				a.reason = why
			}
		}
	}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// classifyDNS refines Classify for lookups: Go reports SERVFAIL as a
// temporary "server misbehaving" and REFUSED as a permanent one.
func classifyDNS(err error) finding.Reason {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return finding.ReasonDNSNXDomain
		case de.IsTimeout:
			return finding.ReasonDNSTimeout
		case strings.Contains(de.Err, "server misbehaving") && de.IsTemporary:
			return finding.ReasonDNSServFail
		case strings.Contains(de.Err, "server misbehaving"):
			return finding.ReasonDNSRefused
		}
		return finding.ReasonDNSLookupError
	}
	return Classify(err)
}

func dnsFinding(env *Env, name string, a dnsAnswer) finding.Finding {
	f := finding.Finding{
		Time:       env.now(),
		Kind:       finding.KindDNSFiltered,
		Reason:     a.reason,
		Source:     "probe/dns",
		Service:    serviceFor(Target{Host: name}, 0),
		SNI:        name,
		Confidence: "high",
		UserSees:   userSeesConnect,
		Evidence:   map[string]any{"resolver": a.resolver},
	}
	if a.err != nil {
		f.Evidence["error"] = a.err.Error()
		var de *net.DNSError
		if errors.As(a.err, &de) && de.Server != "" {
			f.Evidence["server"] = de.Server
		}
	}
	if len(a.addrs) > 0 {
		f.Evidence["answers"] = addrStrings(a.addrs)
	}
	if len(a.bad) > 0 {
		f.Evidence["offending"] = a.bad
	}
	switch a.reason {
	case finding.ReasonDNSSinkhole, finding.ReasonDNSLoopback:
		f.Remediation = "A DNS filter answers for Zoom's names: allow " + name + " and Zoom's domains (zoom.us, zoom.com...) in the DNS filtering policy of resolver " + a.resolver + "."
	case finding.ReasonDNSPrivate:
		f.Remediation = "Resolver " + a.resolver + " answers " + name + " with a private address: a DNS filter, captive portal or split-horizon zone. If intended, list the domain in probes.dns.private_allowed; otherwise fix the zone or filter."
	case finding.ReasonDNSNXDomain:
		f.Remediation = "Resolver " + a.resolver + " says " + name + " does not exist: check for a DNS filter or a broken forwarder."
	case finding.ReasonDNSTimeout:
		f.Kind = finding.KindProbeFailure
		f.Remediation = "Resolver " + a.resolver + " did not answer for " + name + ": check that this host reaches it (UDP and TCP 53) and that it reaches the Internet's name servers. Every connection to Zoom by name fails until it answers."
	case finding.ReasonDNSServFail:
		f.Kind = finding.KindProbeFailure
		f.Remediation = "Resolver " + a.resolver + " answered SERVFAIL for " + name + ": it could not resolve it (upstream unreachable, a DNSSEC failure, or a filter). Check its forwarders and logs."
	case finding.ReasonDNSRefused:
		f.Kind = finding.KindProbeFailure
		f.Remediation = "Resolver " + a.resolver + " refused the query for " + name + ": it does not serve this network (an ACL) or filters the name. Allow this network, or Zoom's domains, on it."
	case finding.ReasonDNSInconsistent:
		f.Kind = finding.KindProbeFailure
		f.UserSees = "Usually nothing: CDNs answer differently per resolver. If clients use a resolver that gives wrong addresses, they see error 5003."
		f.Remediation = "Compare the resolvers' answers with Zoom's published ranges; make clients use one consistent resolver."
	default:
		f.Kind = finding.KindProbeFailure
		f.Remediation = "Resolver " + a.resolver + " fails for " + name + " (" + string(a.reason) + "): check that it is reachable and can resolve public names."
	}
	return f
}

func nameIn(name string, domains []string) bool {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if n == d || strings.HasSuffix(n, "."+d) {
			return true
		}
	}
	return false
}

func inAny(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	sort.Strings(out)
	return out
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// disjoint reports whether at least two resolvers answered and no address
// is common to all pairs of them.
func disjoint(as []dnsAnswer) bool {
	if len(as) < 2 {
		return false
	}
	for i := 0; i < len(as); i++ {
		for j := i + 1; j < len(as); j++ {
			for _, x := range as[i].addrs {
				if slices.Contains(as[j].addrs, x) {
					return false
				}
			}
		}
	}
	return true
}
