// Package evidence keeps the packets behind findings: each worker's Recorder
// holds the headers and handshake bytes of flows not yet judged in a fixed
// pool of chunks, and Dir writes a flow's packets as one pcapng per finding.
package evidence

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/proto/http"
)

// ChunkSize is the pool's unit: a flow's packets are a chain of chunks.
const ChunkSize = 512

// recHeader is each kept packet's header in a chain: packet time (Unix ns),
// length on the wire, bytes kept, link type.
const recHeader = 16

// Handle values of flow.Flow.Evidence besides a record index.
const (
	handleNone    uint32 = 0
	handleIgnored uint32 = ^uint32(0)     // never recorded: final and not watched, or its first packet found the pool full
	handleSettled uint32 = ^uint32(0) - 1 // past the handshake, nothing kept yet: only resets, FINs and ICMP errors will be
)

// When a flow settles (see settle).
const (
	plainSettleSegs  = 4
	udpSettlePackets = 32
)

// Control packets (RST, FIN, ICMP errors) keep at most controlMaxBytes, and
// the last reservePackets of a flow's packet cap (and their bytes) are
// theirs: the packet that proves a block comes last.
const (
	controlMaxBytes = 384
	reservePackets  = 4
	reserveBytes    = reservePackets * (recHeader + controlMaxBytes)
)

// Config bounds a Recorder.
type Config struct {
	BufferBytes int // the pool, cut into ChunkSize chunks
	MaxPackets  int // per flow
	MaxBytes    int // per flow, record headers included
}

// Stats are written by one worker's recorder and read by the metrics collector.
type Stats struct {
	PoolBytes     atomic.Int64  // chunk bytes in use
	PoolCapacity  atomic.Int64  // chunk bytes allocated
	PoolExhausted atomic.Uint64 // packets not kept because the pool was full
	Capped        atomic.Uint64 // packets not kept because their flow reached its cap
}

// Status says how complete a flow's packets are.
type Status struct {
	PoolExhausted bool // some packets were lost to a full pool
	Capped        bool // some packets were beyond the per-flow caps
	Settled       bool // the handshake's packets were let go once the flow carried data both ways
	Gone          bool // the flow had left the table
}

// TLS record walk per direction.
const (
	modeUnknown uint8 = iota
	modePlain         // not TLS (HTTP to a proxy or a portal): kept within the caps
	modeTLS           // inside TLS records other than application data
	modeApp           // application data seen: no payload kept from here on
)

type dirState struct {
	mode      uint8
	recType   uint8
	appSegs   uint8  // segments with payload after application data began
	plainSegs uint8  // segments of plain (not TLS) payload
	remain    uint32 // bytes of the current record not yet seen
}

// rec is one flow's chain and what the walk knows.
type rec struct {
	head, tail int32
	tailUsed   uint16
	packets    uint16
	bytes      uint32
	exhausted  bool
	capped     bool
	http       bool // an unwatched flow kept because its client sent an HTTP request
	settled    bool
	dir        [2]dirState
	nextFree   uint32
}

// Recorder belongs to one worker: nothing in it takes a lock, and after
// NewRecorder nothing on its packet path allocates.
type Recorder struct {
	cfg     Config
	pool    []byte
	next    []int32 // next chunk in a chain, or the free list; -1 ends
	free    int32
	nfree   int
	recs    []rec // index 0 unused; a record holds a chunk, so len(chunks) records suffice
	freeRec uint32
	stats   *Stats
}

// NewRecorder allocates the pool. stats may be shared by a worker's
// successive recorders; nil: private.
func NewRecorder(cfg Config, stats *Stats) *Recorder {
	if stats == nil {
		stats = &Stats{}
	}
	n := max(cfg.BufferBytes/ChunkSize, 1)
	r := &Recorder{cfg: cfg, pool: make([]byte, n*ChunkSize), next: make([]int32, n), recs: make([]rec, n+1), stats: stats}
	for i := range r.next {
		r.next[i] = int32(i + 1)
	}
	r.next[n-1] = -1
	r.nfree = n
	for i := 1; i <= n; i++ {
		r.recs[i].nextFree = uint32(i + 1)
	}
	r.recs[n].nextFree = 0
	r.freeRec = 1
	stats.PoolCapacity.Add(int64(n * ChunkSize))
	return r
}

// Close gives the pool's capacity back to the stats (the recorder is dropped).
func (r *Recorder) Close() {
	r.stats.PoolCapacity.Add(-int64(len(r.next) * ChunkSize))
	r.stats.PoolBytes.Add(-int64((len(r.next) - r.nfree) * ChunkSize))
	r.nfree = len(r.next)
}

// Packet keeps what may be kept of a TCP or UDP packet of f, travelling in
// direction d. Call it after the identity stage, before the analyzers, so a
// finding given on this packet has it.
func (r *Recorder) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if f.Evidence == handleIgnored {
		return
	}
	if f.IdentityFinal() && !f.Watched() && !r.seenByAll(f, p, d) {
		r.Release(f)
		f.Evidence = handleIgnored
		return
	}
	off, ok := p.PayloadOffset()
	if !ok {
		return
	}
	control := p.IsTCP() && p.TCPFlags&(decode.TCPRst|decode.TCPFin) != 0
	rc := r.record(f, control)
	if rc == nil {
		return
	}
	keep := 0
	if !rc.settled {
		keep = payloadKeep(f, p, &rc.dir[d])
		if r.settle(f, rc) && !control {
			return
		}
	} else if !control {
		return
	}
	r.add(rc, p, p.Frame[:min(off+keep, len(p.Frame))], control)
}

// seenByAll reports the flows that analyzers judge whether watched or not:
// DNS (dnsfilter) and HTTP requests (httpinspect: a proxy's 403, a portal).
func (r *Recorder) seenByAll(f *flow.Flow, p *decode.Packet, d flow.Dir) bool {
	if isDNS(f) {
		return true
	}
	if f.Proto != decode.ProtoTCP {
		return false
	}
	h := f.Evidence
	var rc *rec
	if h != handleNone && h != handleSettled {
		rc = &r.recs[h]
		if rc.http {
			return true
		}
		if rc.dir[flow.ToServer].mode != modeUnknown {
			return false // the client's first bytes were not a request
		}
	}
	if d != flow.ToServer || len(p.Payload) == 0 {
		return h == handleNone || rc != nil // not decided before the client's first bytes
	}
	if http.LooksLikeRequest(p.Payload) {
		if rc = r.record(f, false); rc != nil {
			rc.http = true
		}
		return true
	}
	return false
}

func isDNS(f *flow.Flow) bool { return f.ClientPort() == 53 || f.ServerPort() == 53 }

// record is f's record, made on its first kept packet; nil when f keeps
// nothing now (settled and not a control packet, or the pool is full).
func (r *Recorder) record(f *flow.Flow, control bool) *rec {
	h := f.Evidence
	if h != handleNone && h != handleSettled {
		return &r.recs[h]
	}
	if h == handleSettled && !control {
		return nil
	}
	if r.freeRec == 0 || r.nfree == 0 {
		r.stats.PoolExhausted.Add(1)
		if h == handleNone {
			f.Evidence = handleIgnored // no partial evidence for a flow whose start was lost
		}
		return nil
	}
	nh := r.freeRec
	rc := &r.recs[nh]
	r.freeRec = rc.nextFree
	*rc = rec{head: -1, tail: -1, settled: h == handleSettled}
	f.Evidence = nh
	return rc
}

// ICMP keeps an ICMP error quoting f: its headers and the quoted IP header
// and first 8 bytes of the quoted transport header.
func (r *Recorder) ICMP(f *flow.Flow, p *decode.Packet) {
	if f.Evidence == handleIgnored {
		return
	}
	off, ok := p.PayloadOffset()
	if !ok {
		return
	}
	if rc := r.record(f, true); rc != nil {
		r.add(rc, p, p.Frame[:min(off+quoteLen(p.Payload), len(p.Frame))], true)
	}
}

// quoteLen is the quoted IP header plus 8 bytes: what RFC 792 promises and
// all the decoder reads; the rest may be application data.
func quoteLen(q []byte) int {
	if len(q) == 0 {
		return 0
	}
	hl := 40
	if q[0]>>4 == 4 {
		hl = int(q[0]&0x0f) * 4
	}
	return min(hl+8, len(q))
}

// payloadKeep is how many payload bytes of p may be kept: DNS messages whole,
// other UDP none, TCP the TLS handshake records (and alerts), or plain bytes
// until the caps; nothing once the direction carried application data.
func payloadKeep(f *flow.Flow, p *decode.Packet, st *dirState) int {
	if len(p.Payload) == 0 {
		return 0
	}
	if p.IsUDP() {
		if isDNS(f) {
			return len(p.Payload)
		}
		return 0
	}
	if !p.IsTCP() {
		return 0
	}
	return st.keep(p.Payload)
}

// keep walks TLS record headers through one in-order segment and returns
// how many leading bytes belong to records that are not application data.
// Out of order or lost segments make it lose track: then it keeps nothing
// more of the segment, never more than it can vouch for.
func (s *dirState) keep(b []byte) int {
	if s.mode == modeApp {
		if s.appSegs < 255 {
			s.appSegs++
		}
		return 0
	}
	i := 0
	for i < len(b) {
		if s.remain > 0 {
			n := min(int(s.remain), len(b)-i)
			s.remain -= uint32(n)
			i += n
			continue
		}
		if typ := b[i]; typ == 0x17 {
			s.mode = modeApp
			return i
		}
		if len(b)-i < 5 {
			if s.mode == modeTLS {
				return i // a header cut by the segment's end: its type is not known
			}
			break
		}
		if typ, ver := b[i], b[i+1]; typ >= 0x14 && typ <= 0x18 && ver == 3 {
			s.mode, s.recType = modeTLS, typ
			s.remain = 5 + uint32(binary.BigEndian.Uint16(b[i+3:]))
			continue
		}
		if s.mode == modeTLS {
			return i // lost track of the records
		}
		break
	}
	if i < len(b) {
		// Not TLS (a CONNECT and its answer, a portal's redirect): plain
		// bytes, kept within the caps. A later TLS record switches to modeTLS.
		s.mode = modePlain
		if s.plainSegs < 255 {
			s.plainSegs++
		}
		return len(b)
	}
	return i
}

// settle lets go of a flow's handshake packets once it carried data both
// ways: the handshake was judged (TLS is judged on the server's flight), and
// a long flow must not hold the pool. TLS: two segments each way after the
// first application data, so a client's encrypted alert (TLS 1.3) does not
// count. Plain TCP: the server's answer went on for plainSettleSegs segments
// (a proxy's 403 or a portal's redirect is judged on the first). UDP other
// than DNS: udpSettlePackets each way, more than a client's retries of an
// answered set-up (reachability.client_drop_min_retries is at most 16).
func (r *Recorder) settle(f *flow.Flow, rc *rec) bool {
	if rc.settled {
		return true
	}
	switch f.Proto {
	case decode.ProtoTCP:
		tls := rc.dir[0].appSegs >= 2 && rc.dir[1].appSegs >= 2
		plain := rc.dir[flow.ToClient].mode == modePlain && rc.dir[flow.ToClient].plainSegs >= plainSettleSegs
		if !tls && !plain {
			return false
		}
	case decode.ProtoUDP:
		if isDNS(f) || f.Packets[0] < udpSettlePackets || f.Packets[1] < udpSettlePackets {
			return false
		}
	default:
		return false
	}
	r.freeChain(rc)
	rc.settled = true
	return true
}

// add appends data as one packet to rc's chain.
func (r *Recorder) add(rc *rec, p *decode.Packet, data []byte, control bool) {
	if control && len(data) > controlMaxBytes {
		data = data[:controlMaxBytes]
	}
	need := recHeader + len(data)
	maxP, maxB := r.cfg.MaxPackets, r.cfg.MaxBytes
	if !control {
		maxP, maxB = maxP-reservePackets, maxB-reserveBytes
	}
	if int(rc.packets) >= maxP || int(rc.bytes)+need > maxB {
		rc.capped = true
		r.stats.Capped.Add(1)
		return
	}
	space := 0
	if rc.tail >= 0 {
		space = ChunkSize - int(rc.tailUsed)
	}
	if need > space && r.nfree < chunksFor(need-space) {
		rc.exhausted = true
		r.stats.PoolExhausted.Add(1)
		return
	}
	var hdr [recHeader]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(p.Time.UnixNano()))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(max(p.WireLen, len(data))))
	binary.LittleEndian.PutUint16(hdr[12:], uint16(len(data)))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(p.Link))
	r.write(rc, hdr[:])
	r.write(rc, data)
	rc.packets++
	rc.bytes += uint32(need)
}

func chunksFor(n int) int { return (n + ChunkSize - 1) / ChunkSize }

// write appends b to rc's chain; the caller made sure the chunks are there.
func (r *Recorder) write(rc *rec, b []byte) {
	for len(b) > 0 {
		if rc.tail < 0 || int(rc.tailUsed) == ChunkSize {
			c := r.free
			r.free = r.next[c]
			r.nfree--
			r.next[c] = -1
			if rc.tail < 0 {
				rc.head = c
			} else {
				r.next[rc.tail] = c
			}
			rc.tail, rc.tailUsed = c, 0
			r.stats.PoolBytes.Add(ChunkSize)
		}
		base := int(rc.tail)*ChunkSize + int(rc.tailUsed)
		n := copy(r.pool[base:int(rc.tail+1)*ChunkSize], b)
		rc.tailUsed += uint16(n)
		b = b[n:]
	}
}

// freeChain returns rc's chunks to the pool.
func (r *Recorder) freeChain(rc *rec) {
	n := 0
	for c := rc.head; c >= 0; {
		nx := r.next[c]
		r.next[c] = r.free
		r.free = c
		c = nx
		n++
	}
	r.nfree += n
	r.stats.PoolBytes.Add(-int64(n * ChunkSize))
	rc.head, rc.tail, rc.tailUsed, rc.packets, rc.bytes = -1, -1, 0, 0, 0
}

// Release frees f's packets (its flow ends, or it is judged of no interest).
func (r *Recorder) Release(f *flow.Flow) {
	h := f.Evidence
	f.Evidence = handleNone
	if h == handleNone || h == handleIgnored || h == handleSettled || int(h) >= len(r.recs) {
		return
	}
	rc := &r.recs[h]
	r.freeChain(rc)
	rc.nextFree = r.freeRec
	r.freeRec = h
}

// Packet is one kept packet, copied out of the pool.
type Packet struct {
	Time    time.Time
	WireLen int
	Link    decode.LinkType
	Data    []byte // headers and handshake bytes, as captured
}

// Packets copies f's kept packets out (when a finding is written; this
// allocates). Status says what is missing.
func (r *Recorder) Packets(f *flow.Flow) ([]Packet, Status) {
	h := f.Evidence
	switch {
	case h == handleSettled:
		return nil, Status{Settled: true}
	case h == handleNone || h == handleIgnored || int(h) >= len(r.recs):
		return nil, Status{PoolExhausted: h == handleIgnored && f.Watched()}
	}
	rc := &r.recs[h]
	st := Status{PoolExhausted: rc.exhausted, Capped: rc.capped, Settled: rc.settled}
	raw := make([]byte, 0, rc.bytes)
	for c := rc.head; c >= 0; c = r.next[c] {
		end := ChunkSize
		if c == rc.tail {
			end = int(rc.tailUsed)
		}
		raw = append(raw, r.pool[int(c)*ChunkSize:int(c)*ChunkSize+end]...)
	}
	out := make([]Packet, 0, rc.packets)
	for len(raw) >= recHeader {
		ts := int64(binary.LittleEndian.Uint64(raw[0:]))
		wire := int(binary.LittleEndian.Uint32(raw[8:]))
		n := int(binary.LittleEndian.Uint16(raw[12:]))
		link := decode.LinkType(binary.LittleEndian.Uint16(raw[14:]))
		if recHeader+n > len(raw) {
			break
		}
		out = append(out, Packet{Time: time.Unix(0, ts).UTC(), WireLen: wire, Link: link, Data: raw[recHeader : recHeader+n : recHeader+n]})
		raw = raw[recHeader+n:]
	}
	return out, st
}

// InUse is the pool's chunk bytes in use (tests and measurements).
func (r *Recorder) InUse() int { return (len(r.next) - r.nfree) * ChunkSize }
