package tls

import (
	"net/netip"
	"sync"
	"time"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/bounded"
	ptls "github.com/zoomprobe/zoomprobe/proto/tls"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// hopDriftTolerance: a SYN-ACK whose hop count differs from the one learned
// for its server by at least this much is drift (routes wobble by a hop).
const hopDriftTolerance = 2

// maxFingerprintsPerKey bounds the distinct server fingerprints remembered
// for one (service, client fingerprint).
const maxFingerprintsPerKey = 8

// shared is what all workers of one engine share. Everything here is
// touched per handshake or per finding, never per packet, so a mutex is fine.
type shared struct {
	opts     certcheck.Options
	maxBytes int
	// budgetBytes is each worker's reassembly budget (tls.reassembly_budget_bytes).
	budgetBytes int
	clock       *certcheck.Clock
	window      time.Duration
	baseline    int
	m           *metrics
	dedup       *bounded.Dedup[dedupKey]
	learn       *learner
	hops        *hopLearner

	mu          sync.Mutex
	earliest    map[zoom.Service]time.Time
	products    map[string]bool
	maxProducts int
}

func newShared(cfg *config.Config, clock *certcheck.Clock) (*shared, error) {
	opts, err := certcheck.OptionsFromConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	return &shared{
		opts: opts, maxBytes: cfg.TLS.MaxHandshakeBytes, budgetBytes: cfg.TLS.ReassemblyBudgetBytes,
		clock: clock, window: cfg.TLS.DedupWindow, baseline: cfg.TLS.FingerprintBaseline,
		m: newMetrics(), dedup: bounded.NewDedup[dedupKey](cfg.TLS.MaxDedupEntries), learn: newLearner(cfg.TLS.MaxLearnedFingerprints),
		hops:     newHopLearner(cfg.TLS.MaxLearnedFingerprints),
		earliest: map[zoom.Service]time.Time{}, products: map[string]bool{}, maxProducts: cfg.Metrics.MaxProductLabels,
	}, nil
}

// notAfter keeps the earliest certificate expiry seen per service.
func (s *shared) notAfter(svc zoom.Service, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.earliest[svc]; ok && !t.Before(cur) {
		return
	}
	s.earliest[svc] = t
	s.m.notAfter.WithLabelValues(svc.String()).Set(float64(t.Unix()))
}

// productLabel bounds the product label: the first metrics.max_product_labels
// distinct products keep their name, later ones are "other".
func (s *shared) productLabel(p string) string {
	if p == "" {
		p = "unknown"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.products[p] {
		return p
	}
	if len(s.products) >= s.maxProducts {
		return "other"
	}
	s.products[p] = true
	return p
}

// dedupKey identifies a finding that should be given once per window.
type dedupKey struct {
	server netip.Addr
	leaf   string // leaf SHA-256, or a server fingerprint and drift type
	kind   finding.Kind
	alert  uint8
}

type hopRecord struct {
	hops, count   int // learned hop count and how often it was seen
	alt, altCount int // a different value seen since, and how often in a row
}

// hopLearner keeps the SYN-ACK hop count per server address: a TLS-terminating
// proxy answers the TCP handshake itself, from fewer hops away.
type hopLearner struct {
	mu sync.Mutex
	m  *bounded.Map[netip.Addr, *hopRecord]
}

func newHopLearner(max int) *hopLearner {
	return &hopLearner{m: bounded.NewMap[netip.Addr, *hopRecord](max)}
}

// observe records hops for server and reports drift (with the learned value)
// once the server has shown the same hop count baseline times. A new value
// seen baseline times in a row replaces the learned one (a route change).
func (l *hopLearner) observe(server netip.Addr, hops, baseline int) (drift bool, learned int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.m.Get(server)
	if !ok {
		l.m.Put(server, &hopRecord{hops: hops, count: 1})
		return false, hops
	}
	learned = r.hops
	d := hops - r.hops
	if d < 0 {
		d = -d
	}
	if d < hopDriftTolerance {
		r.count++
		r.altCount = 0
		return false, learned
	}
	drift = r.count >= baseline
	if r.alt == hops {
		r.altCount++
	} else {
		r.alt, r.altCount = hops, 1
	}
	if r.altCount >= baseline {
		r.hops, r.count, r.altCount = hops, r.altCount, 0
	}
	return drift, learned
}

type learnKey struct {
	svc zoom.Service
	ja4 [ptls.JA4Len]byte
}

type learned struct {
	total int
	fps   [maxFingerprintsPerKey]struct {
		fp    [ptls.ServerFingerprintLen]byte
		count int
		since int // handshakes learned before this fingerprint first appeared
	}
	n int
}

// learner keeps, per (service, client JA4), the server fingerprints seen and
// how often: the server's choices depend on the client's offer, so only the
// same client fingerprint is comparable. Bounded: the oldest entry goes first.
type learner struct {
	mu sync.Mutex
	m  *bounded.Map[learnKey, *learned]
}

func newLearner(max int) *learner {
	return &learner{m: bounded.NewMap[learnKey, *learned](max)}
}

// observe records fp and reports drift: the key has a baseline of at least
// baseline handshakes and fp is still new (seen fewer than baseline times:
// a fingerprint that keeps coming back becomes part of the baseline, as
// after a legitimate server change). known is the number of fingerprints
// learned before this one.
func (l *learner) observe(svc zoom.Service, ja4 [ptls.JA4Len]byte, fp [ptls.ServerFingerprintLen]byte, baseline int) (drift bool, known int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := learnKey{svc, ja4}
	e, ok := l.m.Get(k)
	if !ok {
		e = &learned{}
		l.m.Put(k, e)
	}
	known = e.n
	idx := -1
	for i := 0; i < e.n; i++ {
		if e.fps[i].fp == fp {
			idx = i
			break
		}
	}
	if idx < 0 {
		if e.n < maxFingerprintsPerKey {
			idx = e.n
			e.n++
			e.fps[idx].fp, e.fps[idx].since = fp, e.total
		}
	}
	established := e.total >= baseline
	e.total++
	if idx < 0 {
		return established, known // no room left: every new one is drift
	}
	e.fps[idx].count++
	// Drift: the fingerprint appeared after the baseline was established and
	// has not come back often enough to join it.
	return e.fps[idx].since >= baseline && e.fps[idx].count <= baseline, known
}
