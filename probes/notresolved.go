package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/zoomprobe/zoomprobe/finding"
)

// dnsFailure describes a failed lookup as its root cause: the reason and a
// line naming the resolver and what it did ("DNS: resolver 10.0.0.53:53
// timed out"). ok is false when err is not a lookup failure.
func dnsFailure(err error) (reason finding.Reason, cause string, ok bool) {
	var de *net.DNSError
	if !errors.As(err, &de) {
		return "", "", false
	}
	reason = classifyDNS(err)
	who := "the resolver"
	switch {
	case strings.Contains(de.Server, ","):
		who = "resolvers " + de.Server
	case de.Server != "":
		who = "resolver " + de.Server
	}
	switch reason {
	case finding.ReasonDNSTimeout:
		cause = "DNS: " + who + " timed out"
	case finding.ReasonDNSServFail:
		cause = "DNS: " + who + " answered SERVFAIL"
	case finding.ReasonDNSRefused:
		cause = "DNS: " + who + " answered REFUSED"
	case finding.ReasonDNSNXDomain:
		cause = fmt.Sprintf("DNS: %s says %s does not exist (NXDOMAIN or no address)", who, de.Name)
	default:
		cause = "DNS: lookup failed (" + de.Err + ")"
	}
	return reason, cause, true
}

// notResolved makes r "not tested" when err is a lookup failure: the name did
// not resolve, so the port, the path or the chain were never tried, and the
// failure is DNS's, not theirs. The result has no finding: the dns check
// (and the audit's DNS row) report the cause.
func notResolved(r *Result, host string, err error) bool {
	reason, cause, ok := dnsFailure(err)
	if !ok {
		return false
	}
	r.Status, r.Reason, r.Cause = StatusNotTested, reason, cause
	r.Evidence["error"] = err.Error()
	var de *net.DNSError
	if errors.As(err, &de) && de.Server != "" {
		r.Evidence["resolver"] = de.Server
	}
	r.Summary = fmt.Sprintf("not tested: %s did not resolve (%s)", host, cause)
	return true
}

// lookup resolves host with r and, when it fails, names in the error the
// DNS servers really asked: Go's error names the server from resolv.conf
// even when a custom Dial went elsewhere, and none on a timeout.
func lookup(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	var mu sync.Mutex
	var asked []string
	note := func(s string) {
		mu.Lock()
		if !slices.Contains(asked, s) {
			asked = append(asked, s)
		}
		mu.Unlock()
	}
	tr := &net.Resolver{PreferGo: true, StrictErrors: r.StrictErrors, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		var c net.Conn
		var err error
		if r.Dial != nil {
			c, err = r.Dial(ctx, network, address)
		} else {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, address)
		}
		if err == nil {
			note(c.RemoteAddr().String())
		} else {
			note(address)
		}
		return c, err
	}}
	ips, err := tr.LookupNetIP(ctx, "ip", host)
	var de *net.DNSError
	if err != nil && errors.As(err, &de) && len(asked) > 0 {
		cp := *de
		cp.Server = strings.Join(asked, ", ")
		return ips, &cp
	}
	return ips, err
}
