package engine

import (
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

const (
	batchFrames = 256
	// batchBytes holds the frames of one batch; a frame larger than what is
	// left starts the next batch, and one larger than a whole batch (beyond
	// the largest snaplen) gets a buffer of its own size.
	batchBytes = 512 << 10
	// batchAge bounds how long (packet time) a packet may wait in a reader's
	// open batch: with several inputs (one TAP port per direction), a SYN-ACK
	// held back on a quiet input must not let the other input's packets run
	// a worker's clock past the flow's timeout.
	batchAge = 20 * time.Millisecond
)

// rawFrame is one captured frame inside a batch's raw buffer.
type rawFrame struct {
	off, n  int32
	wireLen int32
	link    decode.LinkType
	ts      time.Time
}

// batch carries up to batchFrames frames from a reader to the workers. The
// reader copies each frame out of the capture source once (the source reuses
// its buffer); decoding then happens in place (payloads point into raw), and
// one batch goes to every worker that owns a packet of it: own[w] lists
// worker w's packets in capture order. Nothing is copied per worker. The
// last worker done returns the batch to its pool.
type batch struct {
	frames []rawFrame
	raw    []byte
	pkts   []decode.Packet
	own    [][]uint16 // by worker: indexes into pkts
	dns    []uint16   // indexes of DNS answers, for the in-order snooper
	tick   time.Time  // after the packets: advance the workers' clocks to this wall time
	seq    uint64     // order of the batch in its source (files with several decoders)
	refs   atomic.Int32
	pool   *batchPool
}

// batchPool holds a fixed number of batches, all made up front. A reader
// that finds none free waits for a worker to release one: that wait is the
// pipeline's back-pressure, and the pool never allocates again.
type batchPool struct {
	free chan *batch
}

func newBatchPool(size, workers int) *batchPool {
	p := &batchPool{free: make(chan *batch, size)}
	for range size {
		b := &batch{
			frames: make([]rawFrame, 0, batchFrames),
			raw:    make([]byte, 0, batchBytes),
			pkts:   make([]decode.Packet, batchFrames),
			own:    make([][]uint16, workers),
			dns:    make([]uint16, 0, batchFrames),
			pool:   p,
		}
		for w := range b.own {
			b.own[w] = make([]uint16, 0, batchFrames)
		}
		p.free <- b
	}
	return p
}

// poolSize is how many batches a pipeline needs so that no stage waits for
// want of one in the steady state: per reader one being filled and a spare,
// one per decoder, and a queue ahead of the decoders and the workers.
func poolSize(readers, decoders, workers int) int {
	return readers*(2+decoders) + decodeQueue + workers + 2
}

// decodeQueue is the depth of the queue between a file reader and its decoders.
const decodeQueue = 4

func (p *batchPool) get() *batch { return <-p.free }

func (p *batchPool) put(b *batch) {
	b.frames, b.raw, b.dns, b.tick = b.frames[:0], b.raw[:0], b.dns[:0], time.Time{}
	for w := range b.own {
		b.own[w] = b.own[w][:0]
	}
	p.free <- b // never blocks: only cap(free) batches exist
}

// release is called by each worker done with the batch.
func (b *batch) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.put(b)
	}
}

// addFrame copies a frame into the batch; false when it does not fit (send
// the batch and add the frame to the next).
func (b *batch) addFrame(data []byte, ts time.Time, wireLen int, link decode.LinkType) bool {
	if len(b.frames) == batchFrames {
		return false
	}
	if cap(b.raw)-len(b.raw) < len(data) {
		if len(b.frames) > 0 {
			return false
		}
		b.raw = make([]byte, 0, len(data)) // a frame beyond any snaplen: rare, and its buffer is kept
	}
	off := len(b.raw)
	b.raw = append(b.raw, data...)
	b.frames = append(b.frames, rawFrame{off: int32(off), n: int32(len(data)), wireLen: int32(wireLen), link: link, ts: ts})
	return true
}

// decodeBatch decodes every rawFrame of b in place and sorts the packets by
// owning worker. It touches nothing shared but the decode-error counters, so
// several decoders run at once.
func (e *Engine) decodeBatch(dec *decode.Decoder, b *batch) {
	n := 0
	for i := range b.frames {
		fr := &b.frames[i]
		data := b.raw[fr.off : fr.off+fr.n : fr.off+fr.n]
		p := &b.pkts[n]
		if err := dec.Decode(data, fr.link, fr.ts, int(fr.wireLen), p); err != nil {
			e.m.decodeError(err)
			continue
		}
		w := shard(p, len(b.own))
		b.own[w] = append(b.own[w], uint16(n))
		if p.Proto == decode.ProtoUDP && p.SrcPort == 53 && !p.Fragment {
			b.dns = append(b.dns, uint16(n))
		}
		n++
	}
}

// dispatch runs in packet order (one source's batches one after the other):
// it snoops the DNS answers of b, then hands b to every worker that owns a
// packet of it (every worker for a tick). A flow that starts after an answer
// is in this batch or a later one, which no worker sees before the answer is
// recorded.
func dispatch(b *batch, sn *snooper, out []chan *batch) {
	for _, i := range b.dns {
		sn.observe(&b.pkts[i])
	}
	n := int32(0)
	for w := range out {
		if len(b.own[w]) > 0 || !b.tick.IsZero() {
			n++
		}
	}
	if n == 0 {
		b.pool.put(b)
		return
	}
	b.refs.Store(n)
	for w := range out {
		if len(b.own[w]) > 0 || !b.tick.IsZero() {
			out[w] <- b
		}
	}
}

// workerLoop runs worker wi over the batches sent to it.
func workerLoop(w *worker, wi int, in <-chan *batch) {
	for b := range in {
		for _, i := range b.own[wi] {
			w.handle(&b.pkts[i])
		}
		if !b.tick.IsZero() {
			w.advance(b.tick)
		}
		b.release()
	}
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
	return int(h % uint64(n))
}

func mixAddr(x [16]byte) uint64 {
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(x[i])
		lo = lo<<8 | uint64(x[8+i])
	}
	h := hi*0x9E3779B97F4A7C15 ^ lo
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
