package engine

import (
	"encoding/binary"
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
	if full != nil && (len(full.pkts) == cap(full.pkts) || cap(full.buf)-len(full.buf) < len(p.Payload)) {
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
	b.buf = append(b.buf, p.Payload...)
	q.Payload = b.buf[off:len(b.buf):len(b.buf)]
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
	h := mixAddr(a.As16()) + mixAddr(b.As16()) // addition is symmetric
	return int(((h >> 32) * uint64(n)) >> 32) // h's top bits scaled to [0, n): no division
}

func mixAddr(x [16]byte) uint64 {
	// Two word loads, not a byte loop: this runs for every packet with
	// several workers (it was 13% of a two-worker profile).
	hi := binary.LittleEndian.Uint64(x[:8])
	lo := binary.LittleEndian.Uint64(x[8:])
	h := hi*0x9E3779B97F4A7C15 ^ lo
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
