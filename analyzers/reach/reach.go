// Package reach tells, from packets alone, why a Zoom connection did not get
// through: a SYN nobody answered, a SYN answered by a reset, an ICMP
// destination-unreachable quoting the flow, UDP media nobody answered and the
// TCP fallback that followed, and resets during the handshake or later with
// their phase and origin (server or middlebox) scored from TTL, IP ID, timing
// and payload. It keeps the per-(service, transport, port) port matrix.
//
// Every verdict is given on packet time when the flow leaves the table (so a
// genuine SYN-ACK racing an injected reset, or a late answer, can still clear
// it), except udp_no_answer, given as soon as a datagram arrives past the
// answer window, and udp_fallback, given when the second half of the pair
// (UDP failure, TCP success) is seen.
package reach

import (
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// Name is the analyzer's name in analyzers.disabled and log lines.
const Name = "reach"

// Where a block happened, as seen from the probe (evidence key and label
// "where" of zoomprobe_blocked_connections_total).
const (
	// WhereBeyondProbe: our packet passed the probe outward and no answer (or
	// a refusal) came back: the perimeter firewall, a router or Zoom's side.
	WhereBeyondProbe = "beyond_probe"
	// WhereClientHost: Zoom's answers passed the probe toward the client and
	// were lost before it: its own firewall or security software, or a
	// filter between the probe and the client.
	WhereClientHost = "client_host"
	// WhereBetweenCapturePoints: a box captured on both sides (capture.boxes)
	// dropped or answered Zoom's packets itself; the finding names it.
	WhereBetweenCapturePoints = "between_capture_points"
)

// Wheres lists the where label values.
var Wheres = []string{WhereBeyondProbe, WhereClientHost, WhereBetweenCapturePoints}

// Named bounds and thresholds that are not worth a config field.
const (
	// minUDPDatagrams: an unanswered UDP flow needs this many client datagrams
	// before it counts (one lost datagram is ordinary).
	minUDPDatagrams = 2
	// earlyUDPUnanswered: before the flow ends, a verdict needs this many
	// unanswered datagrams before the current one. With fewer, a lost
	// datagram and the client's retry past the window (whose answer is on its
	// way) looked like a block: a false alarm on a lossy path. At 5% loss
	// each way a round trip fails one time in ten: three in a row (the
	// threshold before) happened in about one flow in a thousand, a false
	// alarm a day on a busy site; five in a row, one in a hundred thousand.
	// A real block is still told when the flow ends, if the client gives up
	// sooner.
	earlyUDPUnanswered = 5
	// bothEndsWindow: a reset to the server this close to the reset to the
	// client counts as "sent to both ends".
	bothEndsWindow = time.Second
	// raceWindow: a genuine server packet this soon after a reset to the
	// client shows the reset raced ahead of it.
	raceWindow = 2 * time.Second
	// rstSeqSlack: a reset whose sequence number is further than this from
	// the server's next byte would be ignored by the client; not counted.
	rstSeqSlack = 1 << 24
	// ipidStep: the server's next IP ID is expected within this many of its
	// last one.
	ipidStep = 2048
	// fallbackSlack tolerates a TCP connection starting this long before the
	// first datagram of the UDP flow it replaces (packets a few µs out of order
	// across directions, and clients racing both).
	fallbackSlack = time.Second
	// heRecords is how many recent answered connections a client keeps for the
	// Happy Eyeballs check.
	heRecords = 8
)

func init() { analyzers.Register(plugin{}) }

type plugin struct{}

func (plugin) Name() string { return Name }

func (plugin) Init(env analyzers.Env) (func() analyzers.Analyzer, error) {
	cfg := config.Default().Reach
	if env.Config != nil {
		cfg = env.Config.Reach
	}
	sink := env.Sink
	if sink == nil {
		sink = finding.Discard
	}
	m := newMetrics()
	if env.Registerer != nil {
		if err := m.register(env.Registerer); err != nil {
			return nil, err
		}
	}
	// Per-client records (fallback pairing, answers) carry over a reload.
	sh := analyzers.Keep(env.Memory, "reach.clients", cfg.MaxTrackedClients, func() *shared { return newShared(cfg.MaxTrackedClients) })
	registerBoxVerdicts(env, m, sink, env.Config)
	return func() analyzers.Analyzer {
		return &Analyzer{cfg: cfg, ext: flow.NewExt[rec](env.Slot), sink: sink, m: m, sh: sh, boxSides: env.BoxSides}
	}, nil
}

// Analyzer is one worker's instance.
type Analyzer struct {
	cfg     config.ReachConfig
	ext     flow.Ext[rec]
	sink    finding.Sink
	m       *metrics
	sh      *shared
	free    []*state // recycled per-flow state: steady state allocates nothing
	freeRec []*rec
	freeInc []*incident
	// boxSides tells which inputs are a side of a box (nil: no box).
	boxSides *analyzers.BoxSides
	// holdNone makes the full state at every flow's first packet (tests
	// compare the verdicts with and without held packets).
	holdNone bool
}

// New makes a standalone analyzer (tests, tools): its own metrics and shared
// state. Register the metrics with Collectors.
func New(cfg config.ReachConfig, slot int, sink finding.Sink) *Analyzer {
	return &Analyzer{cfg: cfg, ext: flow.NewExt[rec](slot), sink: sink, m: newMetrics(), sh: newShared(cfg.MaxTrackedClients)}
}

var _ analyzers.Analyzer = (*Analyzer)(nil)

// maxFree bounds the recycled records and states a worker keeps (at most
// 1,024 × 448 B): enough for the churn of a busy link, where one expiry
// sweep ends hundreds of flows; with 64, a mix of short TLS flows made a
// third of its states anew and left the rest to the GC.
const maxFree = 1024

func (a *Analyzer) newRec() *rec {
	if n := len(a.freeRec); n > 0 {
		r := a.freeRec[n-1]
		a.freeRec = a.freeRec[:n-1]
		return r
	}
	return new(rec)
}

// expand gives the flow's full state, made on first need by replaying the
// packets the record held.
func (a *Analyzer) expand(f *flow.Flow, r *rec) *state {
	if r.full != nil {
		return r.full
	}
	var s *state
	if n := len(a.free); n > 0 {
		s = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		s = new(state)
	}
	r.full = s
	a.replay(f, r, s)
	return s
}

// incident gives the flow's reset and ICMP record, made on first need.
func (a *Analyzer) incident(s *state) *incident {
	if s.inc != nil {
		return s.inc
	}
	if n := len(a.freeInc); n > 0 {
		s.inc = a.freeInc[n-1]
		a.freeInc = a.freeInc[:n-1]
	} else {
		s.inc = new(incident)
	}
	return s.inc
}

func (a *Analyzer) release(f *flow.Flow, r *rec) {
	a.ext.Set(f, nil)
	if s := r.full; s != nil {
		if x := s.inc; x != nil && len(a.freeInc) < maxFree {
			*x = incident{}
			a.freeInc = append(a.freeInc, x)
		}
		if len(a.free) < maxFree {
			*s = state{}
			a.free = append(a.free, s)
		}
	}
	if len(a.freeRec) < maxFree {
		*r = rec{}
		a.freeRec = append(a.freeRec, r)
	}
}

// Packet implements analyzers.Analyzer.
func (a *Analyzer) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	r := a.ext.Get(f)
	if f.IdentityFinal() && !f.Watched() {
		// Every verdict needs a watched flow, and this one can no longer
		// become one: what was kept for it is of no use.
		if r != nil {
			a.release(f, r)
		}
		return
	}
	if r == nil {
		r = a.newRec()
		a.ext.Set(f, r)
	}
	if a.boxSides != nil {
		r.boxSides |= 1 << a.boxSides.Of(p.Input)
	}
	if r.full == nil && !a.holdNone && r.hold(f, p, d) {
		return
	}
	s := a.expand(f, r)
	switch f.Proto {
	case decode.ProtoTCP:
		a.tcpPacket(f, s, p, d)
	case decode.ProtoUDP:
		a.udpPacket(f, s, p, d)
	}
}

// ICMP implements analyzers.Analyzer: a destination-unreachable about a
// packet the client sent is recorded; the verdict waits for the flow's end
// so that an answer arriving anyway clears it.
func (a *Analyzer) ICMP(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if d != flow.ToServer || !p.ICMP.Quoted {
		return
	}
	reason, ok := unreachableReason(p.Proto, p.ICMP.Type, p.ICMP.Code)
	if !ok {
		return
	}
	if p.Src == f.Client().Addr() {
		return // the client cannot be the hop that rejected its own packet
	}
	r := a.ext.Get(f)
	if r == nil {
		return // never saw the flow's packets (unwatched)
	}
	s := a.expand(f, r)
	if f.Proto == decode.ProtoTCP && s.synSeen && !seqWithin(p.ICMP.QSeq, s.isn, uint32(f.Bytes[flow.ToServer])+2) {
		a.m.icmpMismatch.Inc()
		return // quotes a sequence number this flow never sent: stale or forged
	}
	x := a.incident(s)
	x.icmpCount++
	if x.icmp.seen {
		return
	}
	x.icmp = icmpRecord{seen: true, time: at(p.Time), sender: p.Src, typ: p.ICMP.Type, code: p.ICMP.Code, ttl: p.TTL, reason: reason}
}

// seqWithin reports whether q lies in [base, base+span] modulo 2^32.
func seqWithin(q, base, span uint32) bool { return q-base <= span }

// unreachableReason maps an ICMP or ICMPv6 destination-unreachable code to a
// reason. Fragmentation-needed (path MTU discovery) and other types are not
// blocks.
func unreachableReason(proto, typ, code uint8) (finding.Reason, bool) {
	switch proto {
	case decode.ProtoICMP:
		if typ != 3 {
			return "", false
		}
		switch code {
		case 0, 6, 11: // net unreachable, unknown, for TOS
			return finding.ReasonICMPNetUnreachable, true
		case 1, 7, 12: // host unreachable, unknown, for TOS
			return finding.ReasonICMPHostUnreachable, true
		case 3:
			return finding.ReasonICMPPortUnreachable, true
		case 9, 10, 13: // net, host, communication administratively prohibited
			return finding.ReasonICMPAdminProhibited, true
		case 4: // fragmentation needed: PMTU discovery, not a block
			return "", false
		}
		return finding.ReasonICMPUnreachable, true
	case decode.ProtoICMPv6:
		if typ != 1 {
			return "", false
		}
		switch code {
		case 0: // no route
			return finding.ReasonICMPNetUnreachable, true
		case 1, 5, 6: // administratively prohibited, ingress/egress policy, reject route
			return finding.ReasonICMPAdminProhibited, true
		case 3:
			return finding.ReasonICMPHostUnreachable, true
		case 4:
			return finding.ReasonICMPPortUnreachable, true
		}
		return finding.ReasonICMPUnreachable, true
	}
	return "", false
}

// Expire implements analyzers.Analyzer: the flow's verdicts are given now.
func (a *Analyzer) Expire(f *flow.Flow, now time.Time, why flow.ExpireReason) {
	r := a.ext.Get(f)
	if r == nil {
		return
	}
	// An unwatched flow gives no verdict: its held packets need no replay.
	if r.full != nil || f.Watched() {
		s := a.expand(f, r)
		switch f.Proto {
		case decode.ProtoTCP:
			a.tcpExpire(f, s, now)
		case decode.ProtoUDP:
			a.udpExpire(f, s, now)
		}
	}
	a.release(f, r)
}

// emit sends a finding and counts it under blocked_connections_total when it
// is a block.
func (a *Analyzer) emit(x finding.Finding, f *flow.Flow) {
	x.Source = Name
	if x.Flow == nil && f != nil {
		x.Flow = analyzers.FindingFlow(f)
	}
	if f != nil {
		if id := f.Identity(); id.Name != "" && id.NameSource != flow.SourceSNI {
			// The finding's sni is what the client sent; a name the server's
			// address had in DNS is kept apart, with where it came from.
			if x.Evidence == nil {
				x.Evidence = map[string]any{}
			}
			x.Evidence["server_name"] = id.Name
			x.Evidence["server_name_source"] = id.NameSource.String()
		}
	}
	a.sink.Emit(x)
}

// sentName is the SNI the client sent, "" when the flow's name was learnt
// otherwise (DNS) or not at all.
func sentName(f *flow.Flow) string {
	if id := f.Identity(); id.NameSource == flow.SourceSNI {
		return id.Name
	}
	return ""
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
