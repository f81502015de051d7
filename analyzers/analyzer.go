// Package analyzers defines the small interface every passive analyzer
// implements, the one place they are registered and their order (Order, in
// order.go). Each analyzer lives in a subpackage and registers itself in
// init(); cmd/zoomprobe imports them all through analyzers/all.
package analyzers

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/boxmatch"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// Analyzer is one worker's instance of an analyzer. A worker calls it from a
// single goroutine, so per-flow state (kept in the flow through flow.Ext) needs no lock.
//
// Analyzers see every TCP and UDP flow, because identity can be learned late
// (a SNI in the second segment, Zoom's UDP header). Identity is decided by the
// identity stage (flow/identity) before any analyzer sees the packet;
// analyzers only read it (f.Service(), f.Name(), f.Identity()). They report
// only on watched flows (f.Watched()) and should return at once for flows
// whose identity is final and unwatched.
//
// The engine recovers a panic in any of these calls: the panic is counted
// (zoomprobe_analyzer_panics_total), the flow is no longer shown to that
// analyzer, and the others carry on.
type Analyzer interface {
	// Packet sees a packet of flow f travelling in direction d. p is valid only
	// during the call.
	Packet(f *flow.Flow, p *decode.Packet, d flow.Dir)
	// ICMP sees an ICMP error whose quoted header belongs to f; d is the
	// direction of the quoted (offending) packet.
	ICMP(f *flow.Flow, p *decode.Packet, d flow.Dir)
	// Expire sees f before it leaves the table; now is packet time.
	Expire(f *flow.Flow, now time.Time, why flow.ExpireReason)
}

// Forgetter is implemented by analyzers whose per-flow state is charged to
// a budget: when a panic has dropped a flow from the analyzer, the engine
// still calls Forget as the flow ends, so the state's bytes come back
// without the analyzer judging anything.
type Forgetter interface {
	Forget(f *flow.Flow)
}

// Env is what an analyzer gets once per engine.
type Env struct {
	Config     *config.Config
	Registerer prometheus.Registerer // engine-scoped; register metrics here
	Sink       finding.Sink
	Clock      *certcheck.Clock
	Logger     *slog.Logger
	// Slot is this analyzer's per-flow slot (flow.NewExt).
	Slot int
	// Memory keeps what the analyzer learns across flows from one Init to
	// the next (Keep); nil: every Init starts afresh.
	Memory *Memory
	// OnHandshake, when set, hears what the TLS analyzer learnt of each
	// watched flow's handshake, findings or not (analyze --flows lists it).
	// Called from worker goroutines.
	OnHandshake func(*flow.Flow, HandshakeSummary)
	// BoxSides tells, by decode.Packet.Input, whether a packet was captured
	// on a side of a box (capture.boxes); nil when no box is configured.
	BoxSides *BoxSides
	// OnBoxVerdict, when set, registers a function that receives each box's
	// verdicts (package boxmatch). It is called from reader goroutines, any
	// number at once, so it must be safe for concurrent use.
	OnBoxVerdict func(func(boxmatch.Verdict))
}

// MaxIssuerBytes bounds HandshakeSummary.Issuer: network text.
const MaxIssuerBytes = 64

// HandshakeSummary is the compact account of a TLS handshake kept for flow
// listings once the analyzer has let go of the flow's state.
type HandshakeSummary struct {
	Version string         // "tls1.2", "tls1.3"
	Issuer  string         // the leaf issuer's CN, else its DN; at most MaxIssuerBytes; "" when not seen (TLS 1.3)
	Verdict finding.Reason // the certificate verdict; ssl_cert_not_observable for TLS 1.3 and resumption
}

// BoxSide is what an input is to the boxes captured on both sides.
type BoxSide uint8

const (
	NotABoxSide BoxSide = iota
	BoxInside           // the clients' side of a box
	BoxOutside          // Zoom's side of a box
)

// BoxSides maps decode.Packet.Input to the box side it captures.
type BoxSides [256]BoxSide

// Of returns the side input captures.
func (b *BoxSides) Of(input uint8) BoxSide {
	if b == nil {
		return NotABoxSide
	}
	return b[input]
}

// Plugin builds an analyzer.
type Plugin interface {
	Name() string
	// Init runs once per engine: it reads its config, registers its metrics,
	// and returns the constructor of per-worker instances.
	Init(env Env) (func() Analyzer, error)
}

var (
	mu      sync.Mutex
	plugins = map[string]Plugin{}
)

// Register adds a plugin; call it from the analyzer package's init(). Its
// name must be listed in Order.
func Register(p Plugin) {
	mu.Lock()
	defer mu.Unlock()
	if orderIndex(p.Name()) < 0 {
		panic("analyzers: " + p.Name() + " is not listed in analyzers.Order (analyzers/order.go)")
	}
	if _, dup := plugins[p.Name()]; dup {
		panic("analyzers: duplicate registration of " + p.Name())
	}
	if len(plugins) >= flow.MaxExt {
		panic("analyzers: more analyzers than flow.MaxExt")
	}
	plugins[p.Name()] = p
}

// Registered returns the registered plugins in Order.
func Registered() []Plugin {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Plugin, 0, len(plugins))
	for _, p := range plugins {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return orderIndex(out[i].Name()) < orderIndex(out[j].Name()) })
	return out
}

// Lookup finds a plugin by name.
func Lookup(name string) (Plugin, error) {
	mu.Lock()
	defer mu.Unlock()
	p, ok := plugins[name]
	if !ok {
		return nil, fmt.Errorf("no analyzer named %q", name)
	}
	return p, nil
}

// FindingFlow converts a flow to the finding's flow description.
func FindingFlow(f *flow.Flow) *finding.Flow {
	x := FlowOf(f)
	return &x
}

// FlowOf is FindingFlow as a value, for a caller that keeps a copy: no
// allocation.
func FlowOf(f *flow.Flow) finding.Flow {
	c, s := f.Client(), f.Server()
	return finding.Flow{Transport: f.Transport(), Client: c.Addr(), ClientPort: c.Port(), Server: s.Addr(), ServerPort: s.Port()}
}
