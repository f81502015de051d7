package flow

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"
	"unsafe"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Config bounds the table. Timeouts are measured on packet time.
type Config struct {
	MaxFlows         int
	EmbryonicTimeout time.Duration // nothing came back yet (SYN only, unanswered UDP)
	TCPTimeout       time.Duration // established TCP, idle
	UDPTimeout       time.Duration // answered UDP, idle
	ClosedTimeout    time.Duration // after FIN both ways or a RST: linger for late packets
}

// DefaultConfig is what the daemon uses when the config file says nothing
// (the defaults are written once, in config).
func DefaultConfig() Config { return ConfigFrom(config.Default().Flows) }

// ConfigFrom takes a table's settings from the flows: section.
func ConfigFrom(c config.FlowsConfig) Config {
	return Config{
		MaxFlows:         c.MaxFlows,
		EmbryonicTimeout: c.EmbryonicTimeout,
		TCPTimeout:       c.TCPTimeout,
		UDPTimeout:       c.UDPTimeout,
		ClosedTimeout:    c.ClosedTimeout,
	}
}

// ExpireReason tells why a flow left the table.
type ExpireReason uint8

const (
	ExpireIdle    ExpireReason = iota // its class's timeout passed on packet time
	ExpireEvicted                     // the table was full and this was the oldest
	ExpireFlush                       // end of capture or shutdown
)

func (r ExpireReason) String() string {
	switch r {
	case ExpireIdle:
		return "idle"
	case ExpireEvicted:
		return "evicted"
	}
	return "flush"
}

const (
	classEmbryonic = iota
	classTCP
	classUDP
	classClosed
	numClasses
)

// The table's storage. Flows live in a slab of fixed-size chunks, allocated
// as the table first grows and never moved, so a *Flow stays valid while its
// flow lives. Everything the per-packet path walks besides the Flow itself is
// pointer-free and indexed by int32: the hash index (open addressing, linear
// probing, deletion by backward shift, so no tombstones build up) and the
// LRU links. The GC never scans them, and no packet allocates once the table
// has reached its working size.
//
// The index, too, grows with the flows held (doubling when half full) up to
// its size for max_flows: a table allowed a million flows that holds a few
// thousand keeps its index in cache, where one slot per cache line of a
// full-size index would miss on most packets. Its entries move to the
// doubled index a few per packet (moveSome), so no packet waits for a
// million of them: lookups try the new index, then the old one.
const (
	chunkShift = 10
	chunkFlows = 1 << chunkShift
	none       = int32(-1)
)

type chunk [chunkFlows]Flow

// link is a flow's place in its class's LRU list, and its hash (so removal
// finds the index slot without rehashing the flow's addresses).
type link struct {
	prev, next int32
	hash       uint32
	class      uint8
}

type list struct{ head, tail int32 } // head is the least recently seen

// IndexBytesPerFlow and LinkBytesPerFlow are the table's costs per flow of
// max_flows besides the Flow itself: the hash index has at least two 8-byte
// slots per flow (a power of two, so up to four), the links 16 bytes.
const (
	IndexBytesPerFlow = 2 * 8 // ×2 at worst: rounded up to a power of two
	LinkBytesPerFlow  = int(unsafe.Sizeof(link{}))
	FlowBytes         = int(unsafe.Sizeof(Flow{}))
)

// Table is one worker's flow table. It is not safe for concurrent use: each
// worker owns one, so the per-packet path takes no lock.
type Table struct {
	cfg      Config
	timeouts [numClasses]time.Duration
	onExpire func(f *Flow, now time.Time, why ExpireReason)

	chunks []*chunk // slab; chunks[i>>chunkShift][i&(chunkFlows-1)]
	links  []link   // by flow index; grows with the slab, within its capacity
	slots  []uint64 // hash index: 0 empty, else hash<<32 | (index+1)
	mask   uint32   // len(slots)-1
	grow   int      // flows held at which the index doubles (half its slots)
	maxIdx int      // the index's size for max_flows, where it stops growing
	// The index being moved out of while the index doubles (nil when not):
	// its slots before moved are moved (left as movedOut), the rest are
	// still looked up there.
	old      []uint64
	oldMask  uint32
	moved    int
	moveStep int // old slots moved per packet
	lists    [numClasses]list
	free     int32 // free flows, chained through links[i].next
	used     int32 // flow indexes ever handed out
	n        int
	seed     [5]uint64 // hash key, random per table (seed[4] odd)

	Created uint64 // flows created, for metrics
	Evicted uint64 // flows evicted because the table was full
}

// NewTable makes a table; onExpire sees every flow before it is recycled.
// Flows are allocated a chunk at a time as the table grows, the index
// doubles with them (MemoryBytes tells the most both take).
func NewTable(cfg Config, onExpire func(f *Flow, now time.Time, why ExpireReason)) *Table {
	return newTable(cfg, onExpire, firstIndexSlots, moveSlotsPerPacket)
}

// newTable starts the index at firstSlots (a power of two) and moves
// moveStep slots per packet while it doubles (tests start it small and move
// slowly, so lookups, inserts and removals meet both indexes).
func newTable(cfg Config, onExpire func(f *Flow, now time.Time, why ExpireReason), firstSlots, moveStep int) *Table {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = DefaultConfig().MaxFlows
	}
	cfg.MaxFlows = min(cfg.MaxFlows, MaxFlowsLimit)
	if onExpire == nil {
		onExpire = func(*Flow, time.Time, ExpireReason) {}
	}
	t := &Table{
		cfg: cfg, onExpire: onExpire, free: none,
		chunks: make([]*chunk, 0, (cfg.MaxFlows+chunkFlows-1)/chunkFlows),
		// The links' capacity is reserved for max_flows now (MemoryBytes
		// counts it): growing the slice would copy all of them (64 MiB at
		// 4M flows, a 300 ms stall on one packet).
		links:  make([]link, 0, (cfg.MaxFlows+chunkFlows-1)/chunkFlows*chunkFlows),
		maxIdx: indexSlots(cfg.MaxFlows), moveStep: moveStep,
		seed: [5]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64() | 1},
	}
	t.setIndex(min(firstSlots, t.maxIdx))
	for c := range t.lists {
		t.lists[c] = list{none, none}
	}
	t.timeouts = [numClasses]time.Duration{cfg.EmbryonicTimeout, cfg.TCPTimeout, cfg.UDPTimeout, cfg.ClosedTimeout}
	return t
}

// MaxFlowsLimit bounds max_flows per table: flow indexes are int32 and the
// hash index must stay addressable by a uint32 mask.
const MaxFlowsLimit = 1 << 28

// indexSlots is the hash index size for max flows: a power of two at least
// twice max, so linear probing stays short at a full table.
func indexSlots(max int) int {
	n := 16
	for n < 2*max {
		n <<= 1
	}
	return n
}

// firstIndexSlots is the index's size in a new table (8 KiB): room for 512
// flows before it first doubles. moveSlotsPerPacket: while it doubles from
// S slots (S/2 flows), at least S/2 packets come before the next doubling
// (each makes at most one flow), so 8 slots a packet finish the move
// within a quarter of them; moving costs a cache line of the old index and
// up to 4 inserts per packet.
const (
	firstIndexSlots    = 1024
	moveSlotsPerPacket = 8
)

// movedOut marks an old index slot whose entry has moved (or whose flow
// ended while it was there): lookups in the old index probe past it.
// Entries never have a zero low word (index+1), so it is none of theirs.
const movedOut = uint64(1) << 32

// MemoryBytes is the most memory a table of cfg can hold, Flow structs,
// index and links together (what analyzers hang on Ext is theirs to count).
// The index counts half again: while it doubles, the old one is still held.
func MemoryBytes(cfg Config) int {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = DefaultConfig().MaxFlows
	}
	chunks := (cfg.MaxFlows + chunkFlows - 1) / chunkFlows
	return indexSlots(cfg.MaxFlows)*8*3/2 + chunks*chunkFlows*(FlowBytes+LinkBytesPerFlow)
}

// Len is the number of flows held.
func (t *Table) Len() int { return t.n }

func (t *Table) flow(i int32) *Flow { return &t.chunks[i>>chunkShift][i&(chunkFlows-1)] }

// key is a five-tuple prepared once per lookup: each address as the two
// little-endian words of its 16-byte form (how a Flow stores it), so each
// candidate flow is compared word by word. Plain fields, filled in place: an
// array or a returned struct would go through memory in pieces the CPU
// cannot forward (that cost more than the hash).
type key struct {
	srcHi, srcLo uint64
	dstHi, dstLo uint64
	sport, dport uint16
	proto        uint8
	v4, v4rev    uint8 // the flow's bitV4 flags when src is the client, when dst is
}

func (k *key) set(proto uint8, src, dst netip.Addr, sport, dport uint16) {
	k.srcHi, k.srcLo = words(src)
	k.dstHi, k.dstLo = words(dst)
	k.sport, k.dport, k.proto = sport, dport, proto
	k.v4, k.v4rev = 0, 0
	if src.Is4() {
		k.v4 |= bitV4
		k.v4rev |= bitV4 << 1
	}
	if dst.Is4() {
		k.v4 |= bitV4 << 1
		k.v4rev |= bitV4
	}
}

// words is a's 16-byte form (As16) read as two little-endian words. IPv4
// goes through As4: As16's copy costs four times as much.
func words(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		x := a.As4()
		return 0, 0xffff0000 | uint64(binary.LittleEndian.Uint32(x[:]))<<32
	}
	x := a.As16()
	return binary.LittleEndian.Uint64(x[:8]), binary.LittleEndian.Uint64(x[8:])
}

// isAt reports whether the stored address ip is the words hi, lo.
func isAt(ip *[16]byte, hi, lo uint64) bool {
	return binary.LittleEndian.Uint64(ip[8:]) == lo && binary.LittleEndian.Uint64(ip[:8]) == hi
}

// match reports whether f is k's flow, and the direction k travels in it.
func (f *Flow) match(k *key) (Dir, bool) {
	if f.Proto != k.proto {
		return 0, false
	}
	v4 := f.bits & (bitV4 | bitV4<<1)
	if f.clientPort == k.sport && f.serverPort == k.dport && v4 == k.v4 &&
		isAt(&f.clientIP, k.srcHi, k.srcLo) && isAt(&f.serverIP, k.dstHi, k.dstLo) {
		return ToServer, true
	}
	if f.clientPort == k.dport && f.serverPort == k.sport && v4 == k.v4rev &&
		isAt(&f.clientIP, k.dstHi, k.dstLo) && isAt(&f.serverIP, k.srcHi, k.srcLo) {
		return ToClient, true
	}
	return 0, false
}

// hash is symmetric in the two endpoints, so both directions find the flow.
// It is keyed by the table's seed: without it, a sender could choose
// addresses and ports whose flows share one probe run and make every lookup
// walk it.
func (t *Table) hash(k *key) uint32 {
	e := t.endpoint(k.srcHi, k.srcLo, k.sport) + t.endpoint(k.dstHi, k.dstLo, k.dport)
	hi, lo := bits.Mul64(e^t.seed[2], uint64(k.proto)^t.seed[3])
	return uint32(hi ^ lo)
}

// endpoint mixes one address and port: a 64×64→128-bit multiply, folded
// (as wyhash does). The port is spread by a secret odd factor, so a sender
// cannot pick address bits that cancel a port change.
func (t *Table) endpoint(ipHi, ipLo uint64, port uint16) uint64 {
	hi, lo := bits.Mul64(ipLo^t.seed[0], ipHi^t.seed[1]^uint64(port)*t.seed[4])
	return hi ^ lo
}

// lookup returns the index of k's flow, or none, with the direction k
// travels in it and k's hash.
func (t *Table) lookup(k *key) (int32, Dir, uint32) {
	h := t.hash(k)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return none, 0, h
		}
		if uint32(s>>32) != h {
			continue
		}
		idx := int32(uint32(s)) - 1
		if d, ok := t.flow(idx).match(k); ok {
			return idx, d, h
		}
	}
}

// lookupOld is lookup in the index being moved out of.
func (t *Table) lookupOld(k *key, h uint32) (int32, Dir) {
	for i := h & t.oldMask; ; i = (i + 1) & t.oldMask {
		s := t.old[i]
		if s == 0 {
			return none, 0
		}
		if uint32(s>>32) != h || uint32(s) == 0 { // another hash, or movedOut
			continue
		}
		idx := int32(uint32(s)) - 1
		if d, ok := t.flow(idx).match(k); ok {
			return idx, d
		}
	}
}

// find is lookup in both indexes while the index doubles.
func (t *Table) find(k *key) (int32, Dir, uint32) {
	idx, d, h := t.lookup(k)
	if idx == none && t.old != nil {
		idx, d = t.lookupOld(k, h)
	}
	return idx, d, h
}

// setIndex starts an empty index of n slots (a power of two).
func (t *Table) setIndex(n int) {
	t.slots, t.mask = make([]uint64, n), uint32(n-1)
	t.grow = n / 2
	if n == t.maxIdx {
		t.grow = math.MaxInt // indexSlots holds max_flows at half full
	}
}

// growIndex doubles the index; moveSome moves the entries over.
func (t *Table) growIndex() {
	for t.old != nil { // only when a test moves fewer slots a packet than the sizes need
		t.moveSome()
	}
	t.old, t.oldMask, t.moved = t.slots, t.mask, 0
	t.setIndex(2 * len(t.slots))
}

// moveSome moves the next moveStep slots of the old index into the new one.
func (t *Table) moveSome() {
	end := min(t.moved+t.moveStep, len(t.old))
	for ; t.moved < end; t.moved++ {
		if s := t.old[t.moved]; uint32(s) != 0 {
			t.insertSlot(int32(uint32(s))-1, uint32(s>>32))
			t.old[t.moved] = movedOut
		}
	}
	if t.moved == len(t.old) {
		t.old = nil
	}
}

func (t *Table) insertSlot(idx int32, h uint32) {
	i := h & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = uint64(h)<<32 | uint64(uint32(idx+1))
}

// removeSlot deletes idx from the index and shifts later entries of its
// probe run back, so lookups never cross a hole and no tombstones remain.
// An entry not yet moved out of the old index is marked movedOut there
// (shifting would carry entries behind the move's cursor).
func (t *Table) removeSlot(idx int32, h uint32) {
	want := uint64(h)<<32 | uint64(uint32(idx+1))
	hole := h & t.mask
	for t.slots[hole] != want {
		if t.slots[hole] == 0 {
			t.removeOld(want, h)
			return
		}
		hole = (hole + 1) & t.mask
	}
	for j := (hole + 1) & t.mask; t.slots[j] != 0; j = (j + 1) & t.mask {
		home := uint32(t.slots[j]>>32) & t.mask
		// The entry at j may fill the hole unless its home lies cyclically in (hole, j].
		if (j-home)&t.mask >= (j-hole)&t.mask {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = 0
}

func (t *Table) removeOld(want uint64, h uint32) {
	i := h & t.oldMask
	for t.old[i] != want {
		i = (i + 1) & t.oldMask
	}
	t.old[i] = movedOut
}

// Packet finds or creates the flow of a TCP or UDP packet, updates its state,
// and returns it with the packet's direction.
func (t *Table) Packet(p *decode.Packet) (f *Flow, d Dir, created bool) {
	var k key
	k.set(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort)
	idx, d, h := t.find(&k)
	if t.old != nil {
		t.moveSome()
	}
	if idx == none {
		if t.n >= t.cfg.MaxFlows {
			t.evictOldest(p.Time)
		}
		idx = t.alloc()
		f = t.flow(idx)
		f.Proto, f.first, f.last = p.Proto, p.Time.UnixNano(), p.Time.UnixNano()
		src := netip.AddrPortFrom(p.Src, p.SrcPort)
		dst := netip.AddrPortFrom(p.Dst, p.DstPort)
		if srcIsClient(p) {
			f.setEndpoints(src, dst)
		} else {
			f.setEndpoints(dst, src)
		}
		d = f.DirOf(p.Src, p.SrcPort)
		if t.n >= t.grow {
			t.growIndex()
		}
		t.insertSlot(idx, h)
		l := &t.links[idx]
		l.hash, l.class = h, classEmbryonic
		t.push(classEmbryonic, idx)
		t.n++
		t.Created++
		created = true
	} else {
		f = t.flow(idx)
	}
	f.update(p, d)
	t.reclass(f, idx)
	return f, d, created
}

// Find returns the flow a quoted header belongs to (an ICMP error), without
// creating one. d is the direction of the quoted packet.
func (t *Table) Find(proto uint8, src, dst netip.Addr, sport, dport uint16) (*Flow, Dir) {
	var k key
	k.set(proto, src, dst, sport, dport)
	idx, d, _ := t.find(&k)
	if idx == none {
		return nil, 0
	}
	return t.flow(idx), d
}

// Advance expires the flows whose class timeout has passed at packet time now.
func (t *Table) Advance(now time.Time) {
	for c := range t.lists {
		for i := t.lists[c].head; i != none; i = t.lists[c].head {
			if time.Duration(now.UnixNano()-t.flow(i).last) <= t.timeouts[c] {
				break
			}
			t.expire(i, now, ExpireIdle)
		}
	}
}

// Flush expires every flow, oldest first in each class.
func (t *Table) Flush(now time.Time) {
	for c := range t.lists {
		for i := t.lists[c].head; i != none; i = t.lists[c].head {
			t.expire(i, now, ExpireFlush)
		}
	}
}

// Each calls fn for every flow held (for reports); fn must not modify the table.
func (t *Table) Each(fn func(*Flow)) {
	for c := range t.lists {
		for i := t.lists[c].head; i != none; i = t.links[i].next {
			fn(t.flow(i))
		}
	}
}

func (t *Table) evictOldest(now time.Time) {
	oldest := none
	for c := range t.lists {
		if h := t.lists[c].head; h != none && (oldest == none || t.flow(h).last < t.flow(oldest).last) {
			oldest = h
		}
	}
	if oldest != none {
		t.Evicted++
		t.expire(oldest, now, ExpireEvicted)
	}
}

func (t *Table) expire(idx int32, now time.Time, why ExpireReason) {
	l := &t.links[idx]
	t.unlink(l.class, idx)
	t.removeSlot(idx, l.hash)
	t.n--
	f := t.flow(idx)
	t.onExpire(f, now, why)
	*f = Flow{}
	l.next = t.free
	t.free = idx
}

// alloc takes a free flow, or the next never-used one (a new chunk when the
// last is full). The caller has made room: t.n < MaxFlows.
func (t *Table) alloc() int32 {
	if idx := t.free; idx != none {
		t.free = t.links[idx].next
		return idx
	}
	idx := t.used
	if int(idx)>>chunkShift == len(t.chunks) {
		t.chunks = append(t.chunks, new(chunk))
		t.links = append(t.links, make([]link, chunkFlows)...)
	}
	t.used++
	return idx
}

func (t *Table) push(c uint8, idx int32) {
	l := &t.lists[c]
	t.links[idx].prev, t.links[idx].next = l.tail, none
	if l.tail != none {
		t.links[l.tail].next = idx
	} else {
		l.head = idx
	}
	l.tail = idx
}

func (t *Table) unlink(c uint8, idx int32) {
	l := &t.lists[c]
	k := &t.links[idx]
	if k.prev != none {
		t.links[k.prev].next = k.next
	} else {
		l.head = k.next
	}
	if k.next != none {
		t.links[k.next].prev = k.prev
	} else {
		l.tail = k.prev
	}
}

// reclass moves f to the tail of the list its state belongs to.
func (t *Table) reclass(f *Flow, idx int32) {
	c := uint8(classUDP)
	switch {
	case f.Proto == decode.ProtoTCP && (f.TCP == TCPClosed || f.TCP == TCPReset):
		c = classClosed
	case !f.Answered():
		c = classEmbryonic
	case f.Proto == decode.ProtoTCP:
		c = classTCP
	}
	k := &t.links[idx]
	if k.class == c && t.lists[c].tail == idx {
		return // already the most recent of its class
	}
	t.unlink(k.class, idx)
	k.class = c
	t.push(c, idx)
}

// srcIsClient orients a new flow: the SYN sender is the client; otherwise the
// side on a server-like port (well-known or Zoom's) is the server.
func srcIsClient(p *decode.Packet) bool {
	if p.Proto == decode.ProtoTCP {
		switch p.TCPFlags & (decode.TCPSyn | decode.TCPAck) {
		case decode.TCPSyn:
			return true
		case decode.TCPSyn | decode.TCPAck:
			return false
		}
	}
	srv := func(port uint16) bool { return port < 1024 || zoom.IsZoomPort(p.Proto, port) }
	if srv(p.SrcPort) && !srv(p.DstPort) {
		return false
	}
	if srv(p.DstPort) && !srv(p.SrcPort) {
		return true
	}
	return p.SrcPort >= p.DstPort
}
