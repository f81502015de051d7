package zoom

import (
	"net/netip"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
)

// Classifier decides which service a flow's server belongs to, from its
// address (Zoom's ranges), its name (TLS SNI or a DNS answer) and its port,
// and whether the configuration asks to watch it although it is not Zoom's.
// It is immutable after NewClassifier and safe for concurrent use; Classify
// allocates nothing.
//
// Precedence:
//  1. A Zoom name (IsZoomName) → ServiceForName. UDP to Zoom's media ports
//     (3478, 3479, 8801-8810) refines media_router and other to media.
//  2. An address in Zoom's ranges → that range's service, refined by port:
//     UDP 3478/3479/8801-8810 → media; TCP 8801/8802 → media_router; TCP to
//     a Meetings range (media) → media_router, as Meetings ranges hold the
//     zone controllers and multimedia routers and only a name tells them
//     apart.
//  3. watch.all, or a watched network, name or port → ServiceWatched.
//  4. Otherwise ServiceNone.
type Classifier struct {
	ranges   *Ranges
	watchAll bool
	nets     *Ranges // watched networks (service placeholder ServiceOther)
	names    []string
	tcpPorts *[1024]uint64 // bitsets by port; nil when none watched
	udpPorts *[1024]uint64
}

// NewClassifier combines Zoom's ranges (nil: none) with the watch section of
// the configuration. Watched networks come from watch.Prefixes when the
// config was validated, else they are parsed from watch.Networks (invalid
// ones are skipped: config validation reports them).
func NewClassifier(r *Ranges, watch config.WatchConfig) *Classifier {
	c := &Classifier{ranges: r, watchAll: watch.All}
	prefixes := watch.Prefixes
	if len(prefixes) == 0 {
		for _, n := range watch.Networks {
			if p, err := netip.ParsePrefix(strings.TrimSpace(n)); err == nil {
				prefixes = append(prefixes, p)
			}
		}
	}
	if len(prefixes) > 0 {
		es := make([]RangeEntry, 0, len(prefixes))
		for _, p := range prefixes {
			es = append(es, RangeEntry{Prefix: p, Service: ServiceOther})
		}
		c.nets = NewRanges(es)
	}
	for _, n := range watch.Names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(n), "."), "."))
		if n != "" {
			c.names = append(c.names, n)
		}
	}
	if len(watch.TCPPorts) > 0 {
		c.tcpPorts = new([1024]uint64)
		for _, p := range watch.TCPPorts {
			c.tcpPorts[p/64] |= 1 << (p % 64)
		}
	}
	if len(watch.UDPPorts) > 0 {
		c.udpPorts = new([1024]uint64)
		for _, p := range watch.UDPPorts {
			c.udpPorts[p/64] |= 1 << (p % 64)
		}
	}
	return c
}

// Ranges returns the Zoom ranges the classifier uses.
func (c *Classifier) Ranges() *Ranges { return c.ranges }

// Classify returns the service of a flow to server:serverPort over proto (6
// TCP, 17 UDP), with name the server's name from SNI or the DNS cache ("" if
// unknown). An invalid server address is allowed (a name-only question).
func (c *Classifier) Classify(proto uint8, server netip.Addr, serverPort uint16, name string) Service {
	s, _ := c.ClassifyRule(proto, server, serverPort, name)
	return s
}

// Rule is the step of the precedence that decided a classification.
type Rule uint8

const (
	RuleNone  Rule = iota // not Zoom, not watched
	RuleName              // a Zoom name
	RuleRange             // an address in Zoom's ranges
	RuleWatch             // the watch settings
)

// ClassifyRule is Classify, also telling which rule decided.
func (c *Classifier) ClassifyRule(proto uint8, server netip.Addr, serverPort uint16, name string) (Service, Rule) {
	portSvc := ServiceForPort(proto, serverPort)
	if name != "" {
		if s := serviceForName(name); s != ServiceNone {
			if portSvc == ServiceMedia && (s == ServiceMediaRouter || s == ServiceOther) {
				return ServiceMedia, RuleName
			}
			return s, RuleName
		}
	}
	if s, ok := c.ranges.Lookup(server); ok {
		switch {
		case portSvc == ServiceMedia || portSvc == ServiceMediaRouter:
			return portSvc, RuleRange
		case s == ServiceMedia && proto == ProtoTCP:
			return ServiceMediaRouter, RuleRange
		}
		return s, RuleRange
	}
	if c.watched(proto, server, serverPort, name) {
		return ServiceWatched, RuleWatch
	}
	return ServiceNone, RuleNone
}

// ClassifyWithCache is Classify with the name taken from the DNS cache when
// sni is empty (now is the packet time the cache entry must still be valid
// at).
func (c *Classifier) ClassifyWithCache(proto uint8, server netip.Addr, serverPort uint16, sni string, cache *NameCache, now time.Time) Service {
	name := sni
	if name == "" {
		name, _ = cache.Get(server, now)
	}
	return c.Classify(proto, server, serverPort, name)
}

// IsWatchedName reports whether name is one of the configured watch.names
// or a subdomain of one.
func (c *Classifier) IsWatchedName(name string) bool {
	name = trimDot(name)
	for _, d := range c.names {
		n := len(name)
		if n >= len(d) && equalFold(name[n-len(d):], d) && (n == len(d) || name[n-len(d)-1] == '.') {
			return true
		}
	}
	return false
}

func (c *Classifier) watched(proto uint8, server netip.Addr, port uint16, name string) bool {
	if c.watchAll {
		return true
	}
	if name != "" && c.IsWatchedName(name) {
		return true
	}
	if c.nets != nil {
		if _, ok := c.nets.Lookup(server); ok {
			return true
		}
	}
	var bits *[1024]uint64
	switch proto {
	case ProtoTCP:
		bits = c.tcpPorts
	case ProtoUDP:
		bits = c.udpPorts
	}
	return bits != nil && port != 0 && bits[port/64]&(1<<(port%64)) != 0
}
