package reach

import (
	"net/netip"
	"sync"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/bounded"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// shared is the small, bounded memory the workers of one engine share: what
// joins flows that may land on different workers (a UDP failure and the TCP
// fallback to another Zoom address, Happy Eyeballs attempts, a server's TTL
// seen on an earlier flow). It is touched once per flow event (an answer, a
// verdict), never per packet.
type shared struct {
	mu      sync.Mutex
	clients *bounded.Map[netip.Addr, *clientRec]
	servers *bounded.Map[netip.Addr, uint8]
}

type answerRec struct {
	t    time.Time
	svc  zoom.Service
	port uint16
}

type clientRec struct {
	answers [heRecords]answerRec
	an      int

	// The current UDP failure episode.
	failValid   bool
	failFirst   time.Time
	failServer  netip.Addr
	failPort    uint16
	failService zoom.Service
	failReason  finding.Reason
	failServers [4]netip.Addr
	failN       int
	consumed    bool
	consumedAt  time.Time

	udpOK time.Time // last answer on a UDP media flow

	// The last TCP connection to Zoom that could carry media.
	tcpValid bool
	tcpUsed  bool
	tcpTime  time.Time
	tcpAns   time.Time
	tcpFlow  finding.Flow
	tcpSvc   zoom.Service
}

// fallback is a joined UDP failure and TCP success, ready to report.
type fallback struct {
	time       time.Time
	tcpFlow    finding.Flow
	tcpService zoom.Service
	udpServer  netip.Addr
	udpPort    uint16
	udpService zoom.Service
	udpReason  finding.Reason
}

func newShared(n int) *shared {
	n = max(n, 16)
	return &shared{
		clients: bounded.NewMap[netip.Addr, *clientRec](n),
		servers: bounded.NewMap[netip.Addr, uint8](n),
	}
}

// client returns the record of addr, creating it (and evicting the oldest
// when full). Called with mu held.
func (sh *shared) client(addr netip.Addr) *clientRec {
	if r, _ := sh.clients.Get(addr); r != nil {
		return r
	}
	r := &clientRec{}
	sh.clients.Put(addr, r)
	return r
}

func (sh *shared) putServerTTL(addr netip.Addr, ttl uint8) { sh.servers.Put(addr, ttl) }

// serverTTL is the TTL of the last SYN-ACK seen from addr on any flow.
func (sh *shared) serverTTL(addr netip.Addr) (uint8, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t, ok := sh.servers.Get(addr)
	return t, ok && t != 0
}

// fallbackEligible: a TCP connection that can carry Zoom media.
func fallbackEligible(svc zoom.Service, port uint16) bool {
	if !zoom.IsZoomPort(zoom.ProtoTCP, port) {
		return false
	}
	switch svc {
	case zoom.ServiceMediaRouter, zoom.ServiceMedia, zoom.ServiceOther:
		return true
	}
	return false
}

func fallbackMatch(failFirst, tcpTime time.Time, window time.Duration) bool {
	return !tcpTime.Before(failFirst.Add(-fallbackSlack)) && tcpTime.Sub(failFirst) <= window
}

// tcpAnswered records an answered TCP connection and returns the fallback it
// completes, if any.
func (sh *shared) tcpAnswered(client, server netip.Addr, svc zoom.Service, port uint16, synTime, ansTime time.Time, synAckTTL uint8, ff finding.Flow, window time.Duration) *fallback {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if synAckTTL != 0 {
		sh.putServerTTL(server, synAckTTL)
	}
	r := sh.client(client)
	r.answers[r.an%heRecords] = answerRec{t: ansTime, svc: svc, port: port}
	r.an++
	if !fallbackEligible(svc, port) && !(r.failValid && server == r.failServer && zoom.IsZoomPort(zoom.ProtoTCP, port)) {
		return nil
	}
	r.tcpValid, r.tcpUsed, r.tcpTime, r.tcpAns, r.tcpFlow, r.tcpSvc = true, false, synTime, ansTime, ff, svc
	return sh.tryJoin(r, window)
}

// tryJoin pairs the client's UDP failure episode with its TCP connection.
func (sh *shared) tryJoin(r *clientRec, window time.Duration) *fallback {
	if !r.failValid || r.consumed || !r.tcpValid || r.tcpUsed || !fallbackMatch(r.failFirst, r.tcpTime, window) {
		return nil
	}
	if !r.udpOK.IsZero() && r.udpOK.After(r.failFirst.Add(-window)) {
		return nil // UDP media works for this client: the TCP connection is not a fallback
	}
	r.consumed, r.consumedAt, r.tcpUsed = true, r.tcpAns, true
	t := r.tcpAns
	if r.failFirst.After(t) {
		t = r.failFirst
	}
	return &fallback{
		time: t, tcpFlow: r.tcpFlow, tcpService: r.tcpSvc,
		udpServer: r.failServer, udpPort: r.failPort, udpService: r.failService, udpReason: r.failReason,
	}
}

// udpFailed records a failed UDP media flow; it returns the fallback it
// completes, if any, and how many distinct servers failed in this episode.
func (sh *shared) udpFailed(client, server netip.Addr, svc zoom.Service, port uint16, first time.Time, reason finding.Reason, window time.Duration) (*fallback, int) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.client(client)
	if r.failValid && (first.Sub(r.failFirst) > window || r.consumed && first.After(r.consumedAt)) {
		r.failValid, r.consumed, r.failN = false, false, 0 // a new episode
	}
	if !r.failValid {
		r.failValid, r.failFirst, r.failServer, r.failPort, r.failService, r.failReason = true, first, server, port, svc, reason
	}
	known := false
	for i := 0; i < r.failN; i++ {
		known = known || r.failServers[i] == server
	}
	if !known && r.failN < len(r.failServers) {
		r.failServers[r.failN] = server
		r.failN++
	}
	return sh.tryJoin(r, window), r.failN
}

// udpAnswered records that a UDP media flow of the client was answered.
func (sh *shared) udpAnswered(client netip.Addr, t time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.client(client)
	if t.After(r.udpOK) {
		r.udpOK = t
	}
}

// answeredNear reports whether a connection of the client to the same
// service and port was answered within [from, to] (Happy Eyeballs).
func (sh *shared) answeredNear(client netip.Addr, svc zoom.Service, port uint16, from, to time.Time) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, _ := sh.clients.Get(client)
	if r == nil {
		return false
	}
	for i := 0; i < min(r.an, heRecords); i++ {
		x := &r.answers[i]
		if x.svc == svc && x.port == port && !x.t.Before(from) && !x.t.After(to) {
			return true
		}
	}
	return false
}
