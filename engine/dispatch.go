package engine

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

const (
	batchPackets = 256
	batchBytes   = 1 << 20 // larger than any snaplen, so one payload always fits
	// batchAge bounds how long (packet time) a packet may wait in a reader's
	// open batch: with several inputs (one TAP port per direction), a SYN-ACK
	// held back on a quiet input must not let the other input's packets run
	// a worker's clock past the flow's timeout.
	batchAge = 20 * time.Millisecond
)

// batch carries decoded packets, their payloads copied into one buffer, from
// a reader to a worker. Batches are recycled: steady state allocates nothing.
type batch struct {
	pkts []decode.Packet
	buf  []byte
	tick time.Time // after the packets: advance the worker's clock to this wall time
	// swap, when set, carries no packets: the worker takes new analyzers.
	swap *analyzerSwap
}

type batchPool struct{ free chan *batch }

func newBatchPool(n int) *batchPool { return &batchPool{free: make(chan *batch, n)} }

func (p *batchPool) get() *batch {
	select {
	case b := <-p.free:
		return b
	default:
		return &batch{pkts: make([]decode.Packet, 0, batchPackets), buf: make([]byte, 0, batchBytes)}
	}
}

func (p *batchPool) put(b *batch) {
	b.pkts, b.buf, b.tick = b.pkts[:0], b.buf[:0], time.Time{}
	select {
	case p.free <- b:
	default: // pool full: let the GC have it
	}
}

// dispatcher belongs to one reader; it fills one open batch per worker.
type dispatcher struct {
	out       []chan *batch
	open      []*batch
	pool      *batchPool
	lastFlush time.Time // packet time of the last flush of every open batch
}

func newDispatcher(out []chan *batch, pool *batchPool) *dispatcher {
	return &dispatcher{out: out, open: make([]*batch, len(out)), pool: pool}
}

// add copies p (and its payload) into the batch of the worker its address
// pair belongs to. The copy comes before any send that may block: p points
// into the capture ring, which must not be read after the reader stalls.
func (d *dispatcher) add(p *decode.Packet) {
	i := shard(p, len(d.out))
	full := d.open[i]
	if full != nil && (len(full.pkts) == cap(full.pkts) || cap(full.buf)-len(full.buf) < copyLen(p)) {
		d.open[i] = nil
	} else {
		full = nil
	}
	b := d.open[i]
	if b == nil {
		b = d.pool.get()
		d.open[i] = b
	}
	b.pkts = append(b.pkts, *p)
	q := &b.pkts[len(b.pkts)-1]
	off := len(b.buf)
	if po, ok := p.PayloadOffset(); ok {
		// The whole frame, for evidence; the payload is its slice of the copy.
		b.buf = append(b.buf, p.Frame...)
		q.Frame = b.buf[off:len(b.buf):len(b.buf)]
		q.Payload = q.Frame[po : po+len(p.Payload) : po+len(p.Payload)]
	} else {
		b.buf = append(b.buf, p.Payload...)
		q.Payload = b.buf[off:len(b.buf):len(b.buf)]
		q.Frame = nil
	}
	if full != nil {
		d.out[i] <- full
	}
	if d.lastFlush.IsZero() {
		d.lastFlush = p.Time
	} else if p.Time.Sub(d.lastFlush) >= batchAge {
		d.lastFlush = p.Time
		d.flushAll()
	}
}

// tick sends every open batch with the idle wall time, so workers expire
// flows while the link is quiet.
func (d *dispatcher) tick(now time.Time) {
	for i := range d.out {
		if d.open[i] == nil {
			d.open[i] = d.pool.get()
		}
		d.open[i].tick = now
		d.send(i)
	}
}

// copyLen is how many bytes add copies of p: its frame, or its payload alone
// when the payload is not inside the frame.
func copyLen(p *decode.Packet) int {
	if _, ok := p.PayloadOffset(); ok {
		return len(p.Frame)
	}
	return len(p.Payload)
}

func (d *dispatcher) flushAll() {
	for i := range d.out {
		if d.open[i] != nil && len(d.open[i].pkts) > 0 {
			d.send(i)
		}
	}
}

func (d *dispatcher) send(i int) {
	d.out[i] <- d.open[i]
	d.open[i] = nil
}

// shard picks a worker by the unordered address pair, so both directions of a
// flow, every flow between a client and a server (UDP then its TCP fallback),
// and an ICMP error quoting a flow all reach the same worker.
func shard(p *decode.Packet, n int) int {
	if n == 1 {
		return 0
	}
	a, b := p.Src, p.Dst
	if p.IsICMP() && p.ICMP.Quoted {
		a, b = p.ICMP.QSrc, p.ICMP.QDst
	}
	return shardAddrs(a, b, n)
}

// shardAddrs is shard for an address pair (a finding's flow).
func shardAddrs(a, b netip.Addr, n int) int {
	if n == 1 {
		return 0
	}
	h := mixAddr(a) + mixAddr(b)              // addition is symmetric
	return int(((h >> 32) * uint64(n)) >> 32) // h's top bits scaled to [0, n): no division
}

func mixAddr(a netip.Addr) uint64 {
	// IPv4 through As4: As16's 16-byte copy costs more than the rest
	// (BenchmarkShard 24.3 -> 15.4 ns). This runs for every packet with
	// several workers.
	if a.Is4() {
		x := a.As4()
		return mixWords(0, uint64(binary.BigEndian.Uint32(x[:])))
	}
	return mix16(a.As16())
}

// mix16 hashes an address in its 16-byte form, two word loads (a byte loop
// was 13% of a two-worker profile).
func mix16(x [16]byte) uint64 {
	return mixWords(binary.LittleEndian.Uint64(x[:8]), binary.LittleEndian.Uint64(x[8:]))
}

func mixWords(hi, lo uint64) uint64 {
	h := hi*0x9E3779B97F4A7C15 ^ lo
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
