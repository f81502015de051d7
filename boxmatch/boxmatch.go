// Package boxmatch names the box that drops Zoom: a firewall or NAT gateway
// captured on both sides (inside, toward the clients; outside, toward Zoom).
// A Zoom packet seen on one side and not on the other within a window was
// dropped by the box; a reset or ICMP error seen only inside was made by it.
//
// Packets are matched on what survives NAT and sequence-number randomisation:
// the server's address and port, the protocol, the direction, TCP flags and
// timestamps, the payload's length and a hash of its first bytes, and the
// IPv4 ID when the box keeps it (match_ip_id). The client's address and
// port, TCP sequence and acknowledgement numbers and checksums are not used.
//
// A Matcher runs in the reader stage, before sharding, and may be fed by two
// readers (one per side) at once. It judges on a watermark, the older of the
// two sides' latest packet times: a packet is judged only once both sides
// have been read past its time plus the window, so the two readers may run
// apart without a false drop. Its memory is one fixed table, allocated by
// New; Observe allocates nothing.
package boxmatch

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
)

// Side is one capture point of a box.
type Side uint8

const (
	Inside  Side = iota // the clients' side
	Outside             // Zoom's side
)

func (s Side) String() string {
	if s == Inside {
		return "inside"
	}
	return "outside"
}

func (s Side) other() Side { return 1 - s }

// Results: values of the result label of zoomprobe_box_packets_total.
const (
	ResultMatched         = "matched"          // seen on both sides within the window
	ResultDroppedOutbound = "dropped_outbound" // a client's packet seen inside, never outside
	ResultDroppedInbound  = "dropped_inbound"  // Zoom's packet seen outside, never inside
	ResultMadeByBox       = "made_by_box"      // a reset or ICMP error toward the client seen only inside
	ResultInsideOnly      = "inside_only"      // other traffic from Zoom's side seen only inside (another path)
	ResultOutsideOnly     = "outside_only"     // a packet toward Zoom seen only outside (not from the inside)
	ResultEvicted         = "evicted"          // the table was full: given up unjudged
	ResultCaptureLoss     = "capture_loss"     // unmatched while the other side's capture dropped packets: not judged
)

// Results lists the result label values.
var Results = []string{ResultMatched, ResultDroppedOutbound, ResultDroppedInbound, ResultMadeByBox,
	ResultInsideOnly, ResultOutsideOnly, ResultEvicted, ResultCaptureLoss}

// Verdicts: what a box did to a conversation (Verdict.Kind, the verdict label
// of zoomprobe_box_verdicts_total).
const (
	VerdictDroppedOutbound = "dropped_outbound" // the box dropped the client's packets
	VerdictDroppedInbound  = "dropped_inbound"  // the box dropped Zoom's answers
	VerdictResetByBox      = "reset_by_box"     // the box reset the connection itself
	VerdictICMPByBox       = "icmp_by_box"      // the box answered with an ICMP error itself
)

// Verdicts lists the verdict values.
var Verdicts = []string{VerdictDroppedOutbound, VerdictDroppedInbound, VerdictResetByBox, VerdictICMPByBox}

// Verdict is a box's judgement on one conversation: min_drops of its
// packets were dropped or answered by the box.
type Verdict struct {
	Box     string
	Kind    string // one of Verdicts
	Time    time.Time
	Last    time.Time // the last packet counted
	Proto   uint8     // decode.ProtoTCP or ProtoUDP: the conversation's transport
	Server  netip.AddrPort
	Client  netip.AddrPort // as seen on SeenOn: the inside client, or the box's outside (NAT) address
	Service uint8          // the zoom.Service the caller passed
	SeenOn  Side           // the side the packets were seen on
	Packets int            // packets counted: dropped, or made by the box
	SYNOnly bool           // TCP: every dropped client packet was a SYN (a reset then refused the connection)
	// ICMP error made by the box (Kind VerdictICMPByBox).
	ICMPType, ICMPCode uint8
	ICMPSender         netip.Addr
	MatchedOn          string // what was compared: matchedOn or matchedOnIPID
}

// What packets are compared on, for the verdict's evidence.
const (
	matchedOn     = "server address and port, protocol, direction, TCP flags and timestamps, payload length and first 64 bytes"
	matchedOnIPID = matchedOn + ", IPv4 ID"
)

// Packet kinds in a table entry.
const (
	kindData uint8 = iota
	kindRST
	kindICMP
)

// payloadPrefix bytes of the payload go into the match key.
const payloadPrefix = 64

// entry is a packet waiting for its copy from the other side. It holds the
// conversation it belongs to, for the verdict when it is not matched.
type entry struct {
	key      uint64
	t        int64 // unix ns
	next     int32 // hash chain; -1 ends it
	live     bool  // in the chain (false: matched or evicted, waiting to leave the ring)
	side     Side
	toServer bool
	kind     uint8
	proto    uint8
	flags    uint8
	svc      uint8
	icmpType uint8
	icmpCode uint8
	client   [16]byte
	server   [16]byte
	sender   [16]byte // ICMP: the error's sender
	cport    uint16
	sport    uint16
	is4      bool
}

// conv is a conversation with packets the box dropped or made.
type conv struct {
	key      uint64
	next     int32
	used     bool
	reported bool
	drops    int32
	made     int32
	synOnly  bool
	first    int64
	last     int64
	e        entry // the last counted packet: addresses, ports, ICMP details
}

// Sizes used to divide table_bytes (measured with unsafe.Sizeof in the tests).
const (
	entryBytes = 88 + 4 // an entry and its hash bucket
	convBytes  = 136 + 4
	convShare  = 16 // 1/16 of table_bytes holds conversations
)

// Matcher matches one box's two sides. Its methods are safe for concurrent
// use by the two readers.
type Matcher struct {
	name      string
	window    int64
	minDrops  int32
	matchIPID bool
	onVerdict func(Verdict)
	m         *Metrics

	// last packet time read on each side (every packet, not only Zoom's),
	// and whether a side has ended (a file read to its end).
	last [2]atomic.Int64
	done [2]atomic.Bool
	// nextDue is when the oldest waiting packet is due (unix ns); readers
	// skip the lock while the watermark is not past it.
	nextDue atomic.Int64
	// A file reader waiting for the other side (Wait) and its wake-up.
	waiting [2]atomic.Bool
	wake    [2]chan struct{}
	// Capture drop counters (CaptureDrops): a side that reports them holds
	// judgement back until they have been read past a packet's window.
	gated   [2]atomic.Bool
	statsAt [2]atomic.Int64

	mu      sync.Mutex
	ring    []entry
	head, n int
	buckets []int32
	mask    uint64

	convs    []conv
	convHash []int32
	convMask uint64
	convNext int // round robin: the oldest conversation is replaced first
	bytes    int
	// Verdicts given under mu, handed over by unlock.
	out  [8]Verdict
	nout int
	// Capture loss: each side's latest drop count and the spans in which
	// its capture dropped packets (the last few; older ones are judged).
	drops [2]uint64
	loss  [2][4]lossSpan
}

// lossSpan is a span of time (unix ns, from exclusive, to inclusive) in
// which a side's capture dropped packets: between two readings of its drop
// counter.
type lossSpan struct{ from, to int64 }

// New allocates a box's table: cfg.TableBytes split between waiting packets
// and conversations. onVerdict is called for each verdict from a reader
// goroutine (either side's, after the matcher's lock is released, except
// beyond 8 verdicts at once).
func New(cfg config.BoxConfig, m *Metrics, onVerdict func(Verdict)) *Matcher {
	cfg.SetDefaults()
	if m == nil {
		m = NewMetrics()
	}
	nconv := max(cfg.TableBytes/convShare/convBytes, 16)
	nent := max((cfg.TableBytes-nconv*convBytes)/entryBytes, 64)
	x := &Matcher{
		name: cfg.Name, window: int64(cfg.Window), minDrops: int32(cfg.MinDrops), matchIPID: cfg.MatchIPID,
		onVerdict: onVerdict, m: m,
		ring:     make([]entry, nent),
		buckets:  make([]int32, nent),
		convs:    make([]conv, nconv),
		convHash: make([]int32, nconv),
		wake:     [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)},
	}
	// Bucket counts are powers of two at most the entry count, so the table
	// stays within table_bytes.
	x.buckets = x.buckets[:floorPow2(nent)]
	x.mask = uint64(len(x.buckets) - 1)
	x.convHash = x.convHash[:floorPow2(nconv)]
	x.convMask = uint64(len(x.convHash) - 1)
	for i := range x.buckets {
		x.buckets[i] = -1
	}
	for i := range x.convHash {
		x.convHash[i] = -1
	}
	x.bytes = nent*entryBytes + nconv*convBytes
	x.nextDue.Store(math.MaxInt64)
	for s := range x.last {
		x.last[s].Store(math.MinInt64)
	}
	m.box(cfg.Name, x.bytes)
	return x
}

func floorPow2(n int) int {
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// Name is the box's name.
func (x *Matcher) Name() string { return x.name }

// TableBytes is the memory the table holds.
func (x *Matcher) TableBytes() int { return x.bytes }

// Seen records that side is reading a packet stamped t (any packet: an
// idle Zoom conversation must not hold judgement back) and judges what is
// due. Every packet of side stamped before t must have been observed. Cheap
// when nothing is due: a few atomic operations.
func (x *Matcher) Seen(side Side, t time.Time) {
	ns := t.UnixNano()
	if ns > x.last[side].Load() {
		x.last[side].Store(ns) // one reader per side: no race between stores
		if o := side.other(); x.waiting[o].Load() {
			x.wakeUp(o)
		}
	}
	if x.watermark() > x.nextDue.Load() {
		x.mu.Lock()
		x.expire()
		x.unlock()
	}
}

// Done records that side has ended (a file read to its end): it no longer
// holds judgement back.
func (x *Matcher) Done(side Side) {
	x.done[side].Store(true)
	x.wakeUp(side.other())
	x.mu.Lock()
	x.expire()
	x.unlock()
}

// Flush judges every waiting packet now (the end of an analysis).
func (x *Matcher) Flush() {
	x.done[Inside].Store(true)
	x.done[Outside].Store(true)
	x.mu.Lock()
	x.expire()
	x.unlock()
}

func (x *Matcher) wakeUp(side Side) {
	select {
	case x.wake[side] <- struct{}{}:
	default:
	}
}

// Wait holds the reader of side, about to handle a packet stamped t (given
// to Seen first), while t runs more than a window ahead of the other side,
// which has not ended: files are read as fast as they go, and without it
// one side could run minutes ahead and fill the table. The side further
// behind never waits, so two readers cannot wait for each other. False
// when ctx ended.
func (x *Matcher) Wait(ctx context.Context, side Side, t time.Time) bool {
	o, ns := side.other(), t.UnixNano()
	ahead := func() bool {
		last := x.last[o].Load()
		return !x.done[o].Load() && (last == math.MinInt64 || ns-last > x.window)
	}
	for ahead() {
		x.waiting[side].Store(true)
		if !ahead() { // the other side moved between the test and the flag
			x.waiting[side].Store(false)
			return true
		}
		select {
		case <-x.wake[side]:
		case <-ctx.Done():
			x.waiting[side].Store(false)
			return false
		}
		x.waiting[side].Store(false)
	}
	return true
}

// Window is the box's matching window.
func (x *Matcher) Window() time.Duration { return time.Duration(x.window) }

func (x *Matcher) watermark() int64 {
	w := int64(math.MaxInt64)
	for s := range x.last {
		if !x.done[s].Load() {
			w = min(w, x.last[s].Load())
			if x.gated[s].Load() {
				w = min(w, x.statsAt[s].Load())
			}
		}
	}
	return w
}

// CaptureDrops records a reading, taken at t, of side's capture drop
// counter: total packets dropped so far (cumulative). From the first reading
// on, a packet is judged only once both sides' counters have been read past
// its window; an unmatched packet whose copy the other side may have
// dropped (its counter rose within the packet's window) is counted as
// capture_loss instead of being blamed on the box. Live sides call it at
// least once a second; files have no counters and never call it.
func (x *Matcher) CaptureDrops(side Side, t time.Time, total uint64) {
	x.counterRead(side, t, total, false)
}

// CaptureUnknown records that side's drop counter could not be read at t:
// the time since the last reading counts as possibly lost, so judgement
// goes on without blaming the box for what the capture may have missed.
func (x *Matcher) CaptureUnknown(side Side, t time.Time) {
	x.counterRead(side, t, 0, true)
}

func (x *Matcher) counterRead(side Side, t time.Time, total uint64, unknown bool) {
	ns := t.UnixNano()
	x.mu.Lock()
	if unknown {
		total = x.drops[side]
	}
	if x.gated[side].Load() && (unknown || total > x.drops[side]) {
		from := x.statsAt[side].Load()
		spans := &x.loss[side]
		if spans[0].to >= from {
			spans[0].to = ns // losses in consecutive readings: one span
		} else {
			copy(spans[1:], spans[:len(spans)-1])
			spans[0] = lossSpan{from, ns}
		}
	}
	x.drops[side] = total
	x.statsAt[side].Store(max(ns, x.statsAt[side].Load()))
	x.gated[side].Store(true)
	if x.watermark() > x.nextDue.Load() {
		x.expire()
	}
	x.unlock()
}

// lostNear reports whether side's capture may have dropped the copy of a
// packet stamped t: a loss span overlaps the window around t (a copy may
// come before, a box's answer, or after, a forwarded packet).
func (x *Matcher) lostNear(side Side, t int64) bool {
	for _, s := range x.loss[side] {
		if s.to != 0 && s.from < t+x.window && s.to >= t-x.window {
			return true
		}
	}
	return false
}

// Observe takes a Zoom packet seen on side. toServer tells its direction
// (for an ICMP error: false, it travels toward the client); svc is the
// caller's service class, passed to the verdict.
func (x *Matcher) Observe(side Side, p *decode.Packet, toServer bool, svc uint8) {
	var e entry
	if !x.fill(&e, p, toServer) {
		return
	}
	e.side, e.svc = side, svc
	x.Seen(side, p.Time)
	x.mu.Lock()
	if i := x.find(e.key, side.other(), toServer); i >= 0 {
		x.unlink(i)
		x.m.count(x.name, ResultMatched)
	} else {
		x.insert(&e)
		x.expire()
	}
	x.unlock()
}

// unlock releases mu, then hands over the verdicts given meanwhile: the
// receiver (findings, the event log) never holds up the other side's reader.
func (x *Matcher) unlock() {
	n := x.nout
	if n == 0 {
		x.mu.Unlock()
		return
	}
	var vs [len(x.out)]Verdict
	copy(vs[:], x.out[:n])
	x.out, x.nout = [len(x.out)]Verdict{}, 0
	x.mu.Unlock()
	if x.onVerdict != nil {
		for i := range n {
			x.onVerdict(vs[i])
		}
	}
}

// fill sets e's conversation and match key from p; false for a packet that
// cannot be matched (a fragment, no ports).
func (x *Matcher) fill(e *entry, p *decode.Packet, toServer bool) bool {
	e.t, e.toServer, e.is4 = p.Time.UnixNano(), toServer, p.Src.Is4()
	var h hasher
	h.init()
	switch {
	case p.IsTCP() || p.IsUDP():
		e.proto = p.Proto
		srv, cli := p.Dst, p.Src
		e.sport, e.cport = p.DstPort, p.SrcPort
		if !toServer {
			srv, cli = p.Src, p.Dst
			e.sport, e.cport = p.SrcPort, p.DstPort
		}
		e.server, e.client = srv.As16(), cli.As16()
		h.u64(uint64(p.Proto) | uint64(e.sport)<<8 | boolBit(toServer)<<24)
		h.bytes(e.server[:])
		if p.IsTCP() {
			e.flags = p.TCPFlags
			if p.TCPFlags&decode.TCPRst != 0 {
				e.kind = kindRST
			}
			h.u64(uint64(p.TCPFlags) | boolBit(p.HasTimestamps)<<8)
			if p.HasTimestamps {
				h.u64(uint64(p.TSval)<<32 | uint64(p.TSecr))
			}
		}
		h.u64(uint64(len(p.Payload)))
		h.bytes(p.Payload[:min(len(p.Payload), payloadPrefix)])
	case p.IsICMP() && p.ICMP.Quoted && (p.ICMP.QProto == decode.ProtoTCP || p.ICMP.QProto == decode.ProtoUDP):
		// An error about a packet the client sent: the quoted destination
		// is the server; the error travels toward the client.
		q := &p.ICMP
		e.kind, e.proto, e.toServer = kindICMP, q.QProto, false
		e.icmpType, e.icmpCode = q.Type, q.Code
		e.server, e.client, e.sender = q.QDst.As16(), q.QSrc.As16(), p.Src.As16()
		e.sport, e.cport = q.QDstPort, q.QSrcPort
		h.u64(uint64(p.Proto) | uint64(q.Type)<<8 | uint64(q.Code)<<16 | uint64(q.QProto)<<24 | uint64(q.QDstPort)<<32)
		h.bytes(e.server[:])
		h.bytes(e.sender[:])
		if x.matchIPID {
			h.u64(uint64(q.QIPID))
		}
	default:
		return false
	}
	if x.matchIPID && p.IPVersion == 4 {
		h.u64(uint64(p.IPID) << 40)
	}
	e.key = h.sum() | 1 // never 0
	return true
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// find returns the oldest live entry with key from side travelling the same
// way, or -1.
func (x *Matcher) find(key uint64, side Side, toServer bool) int32 {
	found := int32(-1)
	for i := x.buckets[key&x.mask]; i >= 0; i = x.ring[i].next {
		e := &x.ring[i]
		if e.key == key && e.side == side && e.toServer == toServer && (found < 0 || e.t < x.ring[found].t) {
			found = i
		}
	}
	return found
}

// unlink takes entry i out of its hash chain; its ring slot is freed when
// the ring's head reaches it.
func (x *Matcher) unlink(i int32) {
	e := &x.ring[i]
	b := &x.buckets[e.key&x.mask]
	for p := b; *p >= 0; p = &x.ring[*p].next {
		if *p == i {
			*p = e.next
			break
		}
	}
	e.live = false
}

func (x *Matcher) insert(e *entry) {
	if x.n == len(x.ring) {
		// Full: the oldest waiting packet is given up, unjudged.
		h := &x.ring[x.head]
		if h.live {
			x.unlink(int32(x.head))
			x.m.count(x.name, ResultEvicted)
		}
		x.pop()
	}
	i := (x.head + x.n) % len(x.ring)
	x.n++
	e.live = true
	b := &x.buckets[e.key&x.mask]
	e.next = *b
	*b = int32(i)
	x.ring[i] = *e
	if x.n == 1 {
		x.nextDue.Store(e.t + x.window)
	}
}

func (x *Matcher) pop() {
	x.head = (x.head + 1) % len(x.ring)
	x.n--
}

// expire judges every waiting packet whose window both sides have read
// past. Called with mu held.
func (x *Matcher) expire() {
	w := x.watermark()
	for x.n > 0 {
		h := &x.ring[x.head]
		// Strictly past: the packet stamped w itself may not be observed yet.
		if h.live && h.t+x.window >= w {
			break
		}
		if h.live {
			x.unlink(int32(x.head))
			x.judge(h)
		}
		x.pop()
	}
	// Skip the tombstones of matched packets so that nextDue is a live one's.
	for x.n > 0 && !x.ring[x.head].live {
		x.pop()
	}
	if x.n == 0 {
		x.nextDue.Store(math.MaxInt64)
	} else {
		x.nextDue.Store(x.ring[x.head].t + x.window)
	}
}

// judge counts a packet never seen on the other side.
func (x *Matcher) judge(e *entry) {
	var r string
	switch {
	case e.side == Inside && e.toServer:
		r = ResultDroppedOutbound
	case e.side == Outside && !e.toServer:
		r = ResultDroppedInbound
	case e.side == Inside && e.kind != kindData:
		r = ResultMadeByBox
	case e.side == Inside:
		r = ResultInsideOnly
	default:
		r = ResultOutsideOnly
	}
	if x.lostNear(e.side.other(), e.t) {
		r = ResultCaptureLoss // the copy may have been seen by the box and lost by our capture
	}
	x.m.count(x.name, r)
	if r == ResultInsideOnly || r == ResultOutsideOnly || r == ResultCaptureLoss {
		return
	}
	c := x.conv(e)
	c.last = e.t
	if r == ResultMadeByBox {
		c.made++
		if e.kind == kindICMP || c.e.kind != kindICMP {
			c.e = *e // the verdict names the error the box made
		}
	} else {
		c.drops++
		c.synOnly = c.synOnly && e.proto == decode.ProtoTCP && e.flags&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn
		if c.made == 0 {
			c.e = *e
		}
	}
	if c.reported || c.drops+c.made < x.minDrops {
		return
	}
	c.reported = true
	x.verdict(c, r)
}

func (x *Matcher) verdict(c *conv, r string) {
	e := &c.e
	v := Verdict{
		Box: x.name, Time: time.Unix(0, c.first).UTC(), Last: time.Unix(0, c.last).UTC(), Proto: e.proto,
		Server: netip.AddrPortFrom(addr(e.server, e.is4), e.sport), Client: netip.AddrPortFrom(addr(e.client, e.is4), e.cport),
		Service: e.svc, SeenOn: e.side, Packets: int(c.drops + c.made), SYNOnly: c.synOnly && c.drops > 0, MatchedOn: matchedOn,
	}
	if x.matchIPID {
		v.MatchedOn = matchedOnIPID
	}
	switch {
	case c.made > 0 && e.kind == kindICMP:
		v.Kind, v.ICMPType, v.ICMPCode, v.ICMPSender = VerdictICMPByBox, e.icmpType, e.icmpCode, addr(e.sender, e.is4)
	case c.made > 0:
		v.Kind = VerdictResetByBox
	case r == ResultDroppedInbound:
		v.Kind = VerdictDroppedInbound
	default:
		v.Kind = VerdictDroppedOutbound
	}
	x.m.verdict(x.name, v.Kind)
	if x.nout < len(x.out) {
		x.out[x.nout] = v
		x.nout++
	} else if x.onVerdict != nil {
		x.onVerdict(v) // more verdicts at once than out holds: hand this one over under the lock
	}
}

func addr(b [16]byte, is4 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}

// conv finds or makes the conversation of e: side, transport, client and
// server (ICMP errors count toward the conversation they quote). When the
// table is full the oldest conversation is replaced (counted).
func (x *Matcher) conv(e *entry) *conv {
	var h hasher
	h.init()
	h.u64(uint64(e.side) | uint64(e.proto)<<8 | uint64(e.cport)<<16 | uint64(e.sport)<<32)
	h.bytes(e.client[:])
	h.bytes(e.server[:])
	key := h.sum() | 1
	b := key & x.convMask
	for i := x.convHash[b]; i >= 0; i = x.convs[i].next {
		if c := &x.convs[i]; c.key == key {
			return c
		}
	}
	i := x.convNext
	x.convNext = (x.convNext + 1) % len(x.convs)
	c := &x.convs[i]
	if c.used {
		x.m.evicted(x.name)
		ob := &x.convHash[c.key&x.convMask]
		for p := ob; *p >= 0; p = &x.convs[*p].next {
			if *p == int32(i) {
				*p = c.next
				break
			}
		}
	}
	*c = conv{key: key, used: true, synOnly: true, first: e.t, next: x.convHash[b]}
	x.convHash[b] = int32(i)
	return c
}

// hasher mixes 64-bit words (FNV-1a's multiply, a word at a time): no
// allocation, and stable across runs, so verdicts do not depend on a seed.
type hasher struct{ h uint64 }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (h *hasher) init() { h.h = fnvOffset }

func (h *hasher) u64(v uint64) {
	h.h = (h.h ^ v) * fnvPrime
	h.h ^= h.h >> 29
}

func (h *hasher) bytes(b []byte) {
	for len(b) >= 8 {
		h.u64(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail uint64
	for i, c := range b {
		tail |= uint64(c) << (8 * i)
	}
	h.u64(tail | uint64(len(b))<<56)
}

func (h *hasher) sum() uint64 {
	// A final mix: the low bits pick the bucket.
	v := h.h
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	return v
}
