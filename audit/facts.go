package audit

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/exporters/report"
	"github.com/zoomprobe/zoomprobe/probes"
)

// resolvConf is where the system resolver's servers are listed.
var resolvConf = "/etc/resolv.conf"

// networkFacts is what the checks learnt about the network on their way:
// the address Zoom's STUN servers saw (XOR-MAPPED-ADDRESS), the resolvers
// and what each did, the proxy, and the clock's offset.
func networkFacts(results []probes.Result, pc *config.ProbesConfig) []report.Fact {
	var facts []report.Fact
	if f, ok := egressFact(results); ok {
		facts = append(facts, f)
	}
	if f, ok := resolverFact(results); ok {
		facts = append(facts, f)
	}
	facts = append(facts, proxyFact(results, pc))
	if f, ok := clockFact(results); ok {
		facts = append(facts, f)
	}
	return facts
}

func egressFact(results []probes.Result) (report.Fact, bool) {
	seenBy := map[netip.Addr][]string{}
	var addrs []netip.Addr
	stun, untested := 0, 0
	for _, r := range results {
		if r.Check != probes.CheckSTUN {
			continue
		}
		if r.Status == probes.StatusNotTested {
			untested++
		}
		if r.Status == probes.StatusNotTested {
			continue // its name did not resolve: the DNS row says why
		}
		stun++
		s, _ := r.Evidence["mapped_address"].(string)
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			continue
		}
		a := ap.Addr().Unmap()
		if _, ok := seenBy[a]; !ok {
			addrs = append(addrs, a)
		}
		if !slices.Contains(seenBy[a], r.Target) {
			seenBy[a] = append(seenBy[a], r.Target)
		}
	}
	if stun+untested == 0 {
		return report.Fact{}, false
	}
	f := report.Fact{ID: "egress_address", Title: "Egress address seen by Zoom's STUN servers"}
	if stun == 0 {
		f.Value = "not learnt: no STUN check was tested (see the DNS row)"
		return f, true
	}
	if len(addrs) == 0 {
		f.Value = "unknown: no STUN server answered with the address it saw"
		return f, true
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	var parts []string
	for _, a := range addrs {
		parts = append(parts, fmt.Sprintf("%s (seen by %s)", a, strings.Join(seenBy[a], ", ")))
	}
	f.Value = strings.Join(parts, "; ")
	if len(addrs) > 1 {
		f.Value += ". Different servers saw different addresses: traffic leaves by more than one public address (several links or a NAT pool), which Zoom allow-lists must all cover."
	}
	return f, true
}

// resolverFact names each resolver the checks used and what it did: the
// DNS check's per-resolver answers, and the servers the other checks'
// lookups asked when a name did not resolve.
func resolverFact(results []probes.Result) (report.Fact, bool) {
	outcome := map[string][]string{} // resolver → distinct outcomes
	var order []string
	note := func(resolver, what string) {
		if _, ok := outcome[resolver]; !ok {
			order = append(order, resolver)
		}
		if what != "" && !slices.Contains(outcome[resolver], what) {
			outcome[resolver] = append(outcome[resolver], what)
		}
	}
	for _, r := range results {
		switch {
		case r.Check == probes.CheckDNS:
			per, _ := r.Evidence["resolvers"].(map[string]any)
			labels := make([]string, 0, len(per))
			for l := range per {
				labels = append(labels, l)
			}
			sort.Strings(labels)
			for _, l := range labels {
				m, _ := per[l].(map[string]any)
				reason, _ := m["reason"].(string)
				note(canonicalResolver(l), reason)
			}
		case r.Status == probes.StatusNotTested && r.Cause != "":
			s, _ := r.Evidence["resolver"].(string) // the servers asked: "10.0.0.53:53, 10.0.0.54:53"
			for _, server := range strings.Split(s, ", ") {
				if server != "" {
					note(canonicalResolver(server), string(r.Reason))
				}
			}
		}
	}
	if len(order) == 0 {
		return report.Fact{}, false
	}
	var parts []string
	for _, l := range order {
		name := l
		if l == probes.SystemResolver {
			name = "system resolver"
			if ns := systemNameservers(); len(ns) > 0 {
				name += " (" + strings.Join(ns, ", ") + " from " + resolvConf + ")"
			}
		}
		if o := outcome[l]; len(o) > 0 {
			name += ": " + strings.Join(o, ", ")
		}
		parts = append(parts, name)
	}
	return report.Fact{ID: "resolvers", Title: "Resolvers used", Value: strings.Join(parts, "; ")}, true
}

// canonicalResolver writes a resolver as its address alone when it uses
// port 53, so a configured "10.0.0.53" and a lookup's "10.0.0.53:53" match.
func canonicalResolver(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() == 53 {
		return ap.Addr().String()
	}
	return s
}

// systemNameservers reads the nameserver lines of resolv.conf (none when it
// cannot be read: the fact then names the system resolver only).
func systemNameservers() []string {
	f, err := os.Open(resolvConf)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < 8 {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				out = append(out, a.String())
			}
		}
	}
	return out
}

// proxyFact names the proxy the TLS checks went through and what it
// announced (its Via header), or says there was none.
func proxyFact(results []probes.Result, pc *config.ProbesConfig) report.Fact {
	f := report.Fact{ID: "proxy", Title: "Web proxy"}
	if pc.Proxy.Parsed == nil {
		f.Value = "none configured (probes.proxy.url): the checks went direct"
		return f
	}
	f.Value = pc.Proxy.Parsed.Scheme + "://" + pc.Proxy.Parsed.Host
	var via []string
	used := false
	for _, r := range results {
		if _, ok := r.Evidence["proxy"]; ok {
			used = true
		}
		if v, ok := r.Evidence["proxy_via"].(string); ok && v != "" && !slices.Contains(via, v) {
			via = append(via, v)
		}
	}
	if len(via) > 0 {
		f.Value += " (Via: " + strings.Join(via, "; ") + ")"
	}
	if !used {
		f.Value += "; no check went through it (every target bypassed, or no TLS check ran)"
	}
	return f
}

// clockFact is the offset from the answering NTP server with the lowest
// RTT, the one the TLS verdicts were corrected by.
func clockFact(results []probes.Result) (report.Fact, bool) {
	var best *probes.Result
	ntp := 0
	for i := range results {
		r := &results[i]
		if r.Check != probes.CheckNTP {
			continue
		}
		ntp++
		if _, ok := r.Evidence["offset_seconds"].(float64); !ok {
			continue
		}
		rtt, _ := r.Evidence["rtt_seconds"].(float64)
		if best == nil {
			best = r
			continue
		}
		if brtt, _ := best.Evidence["rtt_seconds"].(float64); rtt < brtt {
			best = r
		}
	}
	if ntp == 0 {
		return report.Fact{}, false
	}
	f := report.Fact{ID: "clock_offset", Title: "Clock offset from NTP"}
	if best == nil {
		f.Value = "unknown: no NTP server answered"
		return f, true
	}
	off := best.Evidence["offset_seconds"].(float64)
	rtt, _ := best.Evidence["rtt_seconds"].(float64)
	f.Value = fmt.Sprintf("%+.3f s from %s (round trip %.1f ms)", off, best.Target, rtt*1000)
	return f, true
}
