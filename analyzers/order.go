package analyzers

// Order is the order in which the analyzers see each packet, each ICMP error
// and each expiring flow, and the order of their flow.Ext slots. It is the
// one place the order is written (like CoreDNS's plugin.cfg): an analyzer
// that is not listed here cannot register.
//
// No analyzer depends on another: identity is decided before any of them runs
// (flow/identity), and each keeps its own per-flow state. The order still
// shows in the output: findings given on the same packet reach the event log
// in this order.
var Order = []string{
	"dnsfilter",   // DNS answers: filtering and spoofing
	"httpinspect", // plain HTTP: block pages, proxies, captive portals
	"reach",       // reachability: drops, resets, ICMP, UDP blocked and the fallback
	"tls",         // handshakes: interception, certificate verdicts, fingerprints
}

// orderIndex is the position of name in Order, or -1.
func orderIndex(name string) int {
	for i, n := range Order {
		if n == name {
			return i
		}
	}
	return -1
}
