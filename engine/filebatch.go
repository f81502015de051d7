package engine

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// The file pipeline: one reader copies frames into batches, several decoders
// decode them in place, and the batches reach the workers in capture order.

const (
	fileBatchFrames = 256
	// fileBatchBytes holds the frames of one batch; a frame larger than what is
	// left starts the next batch, and one larger than a whole batch (beyond
	// the largest snaplen) gets a buffer of its own size.
	fileBatchBytes = 512 << 10
)

// rawFrame is one captured frame inside a batch's raw buffer.
type rawFrame struct {
	off, n  int32
	wireLen int32
	link    decode.LinkType
	ts      time.Time
}

// batch carries up to fileBatchFrames frames from a reader to the workers. The
// reader copies each frame out of the capture source once (the source reuses
// its buffer); decoding then happens in place (payloads point into raw), and
// one batch goes to every worker that owns a packet of it: own[w] lists
// worker w's packets in capture order. Nothing is copied per worker. The
// last worker done returns the batch to its pool.
type frameBatch struct {
	frames []rawFrame
	raw    []byte
	pkts   []decode.Packet
	own    [][]uint16 // by worker: indexes into pkts
	dns    []uint16   // indexes of DNS queries and answers, for the in-order snooper
	tick   time.Time  // after the packets: advance the workers' clocks to this wall time
	seq    uint64     // order of the batch in its source (files with several decoders)
	refs   atomic.Int32
	pool   *framePool
}

// batchPool holds a fixed number of batches, all made up front. A reader
// that finds none free waits for a worker to release one: that wait is the
// pipeline's back-pressure, and the pool never allocates again.
type framePool struct {
	free chan *frameBatch
}

func newFramePool(size, workers int) *framePool {
	p := &framePool{free: make(chan *frameBatch, size)}
	for range size {
		b := &frameBatch{
			frames: make([]rawFrame, 0, fileBatchFrames),
			raw:    make([]byte, 0, fileBatchBytes),
			pkts:   make([]decode.Packet, fileBatchFrames),
			own:    make([][]uint16, workers),
			dns:    make([]uint16, 0, fileBatchFrames),
			pool:   p,
		}
		for w := range b.own {
			b.own[w] = make([]uint16, 0, fileBatchFrames)
		}
		p.free <- b
	}
	return p
}

// poolSize is how many batches a pipeline needs so that no stage waits for
// want of one in the steady state: per reader one being filled and a spare,
// one per decoder, and a queue ahead of the decoders and the workers.
func framePoolSize(readers, decoders, workers int) int {
	return readers*(2+decoders) + decodeQueue + workers + 2
}

// decodeQueue is the depth of the queue between a file reader and its decoders.
const decodeQueue = 4

func (p *framePool) get() *frameBatch { return <-p.free }

func (p *framePool) put(b *frameBatch) {
	b.frames, b.raw, b.dns, b.tick = b.frames[:0], b.raw[:0], b.dns[:0], time.Time{}
	for w := range b.own {
		b.own[w] = b.own[w][:0]
	}
	p.free <- b // never blocks: only cap(free) batches exist
}

// release is called by each worker done with the batch.
func (b *frameBatch) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.put(b)
	}
}

// addFrame copies a frame into the batch; false when it does not fit (send
// the batch and add the frame to the next).
func (b *frameBatch) addFrame(data []byte, ts time.Time, wireLen int, link decode.LinkType) bool {
	if len(b.frames) == fileBatchFrames {
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

// decodeFrames decodes every rawFrame of b in place and sorts the packets by
// owning worker. It touches nothing shared but the decode-error counters, so
// several decoders run at once.
func (e *Engine) decodeFrames(dec *decode.Decoder, b *frameBatch) {
	n := 0
	for i := range b.frames {
		fr := &b.frames[i]
		data := b.raw[fr.off : fr.off+fr.n : fr.off+fr.n]
		p := &b.pkts[n]
		if err := dec.Decode(data, fr.link, fr.ts, int(fr.wireLen), p); err != nil {
			e.m.decodeError(err)
			continue
		}
		if p.Proto == decode.ProtoUDP && (p.SrcPort == 53 || p.DstPort == 53) && !p.Fragment {
			b.dns = append(b.dns, uint16(n)) // the snooper sees queries and answers, own sockets' too
		}
		if e.isOwn(p) {
			e.ownPackets.Add(1)
		} else {
			w := shard(p, len(b.own))
			b.own[w] = append(b.own[w], uint16(n))
		}
		n++
	}
}

// dispatch runs in packet order (one source's batches one after the other):
// it snoops the DNS queries and answers of b, then hands b to every worker that owns a
// packet of it (every worker for a tick). A flow that starts after an answer
// is in this batch or a later one, which no worker sees before the answer is
// recorded.
func dispatchFrames(b *frameBatch, sn *snooper, out []chan *frameBatch) {
	for _, i := range b.dns {
		sn.observe(&b.pkts[i])
	}
	// The workers to send to are listed before the first send: the first
	// worker may finish and recycle b (its own lists) while later sends wait.
	var to [maxWorkers]bool
	n := int32(0)
	for w := range out {
		if len(b.own[w]) > 0 || !b.tick.IsZero() {
			to[w] = true
			n++
		}
	}
	if n == 0 {
		b.pool.put(b)
		return
	}
	b.refs.Store(n)
	for w := range out {
		if to[w] {
			out[w] <- b
		}
	}
}

// maxWorkers is capture.workers' upper bound.
const maxWorkers = 64

// workerLoop runs worker wi over the batches sent to it.
func frameWorkerLoop(w *worker, wi int, in <-chan *frameBatch) {
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

// runFile analyses one file with several workers: this goroutine reads and
// copies frames into batches and numbers them; decoders decode batches in
// parallel and then take turns, in batch order, to snoop DNS and hand each
// batch to its workers. Every worker thus sees its packets, and every DNS
// query and answer is recorded, in capture order.
func (e *Engine) runFile(ctx context.Context, in Input) error {
	decoders := e.decoders()
	size := framePoolSize(1, decoders, len(e.workers))
	pool := newFramePool(size, len(e.workers))
	var wg sync.WaitGroup
	out := make([]chan *frameBatch, len(e.workers))
	for i, w := range e.workers {
		// Room for every batch there is: a dispatch never waits on one
		// worker while another starves.
		out[i] = make(chan *frameBatch, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			frameWorkerLoop(w, i, out[i])
		}()
	}
	queue := make(chan *frameBatch, decodeQueue)
	turn := newTurns()
	sn := e.newSnooper()
	var dg sync.WaitGroup
	for range decoders {
		dg.Add(1)
		go func() {
			defer dg.Done()
			dec := e.newDecoder()
			for b := range queue {
				e.decodeFrames(dec, b)
				turn.wait(b.seq)
				dispatchFrames(b, sn, out)
				turn.done()
			}
		}()
	}
	var seq uint64
	sink := &batcher{pool: pool, ship: func(b *frameBatch) {
		b.seq = seq
		seq++
		queue <- b
	}}
	err := e.readFrames(ctx, in, sink)
	sink.end()
	close(queue)
	dg.Wait()
	for _, c := range out {
		close(c)
	}
	wg.Wait()
	e.flushWorkers()
	e.finishEvidence()
	return err
}

// decoders is how many goroutines decode one file: capture.readers, or one
// per worker (at most GOMAXPROCS) when it is 0.
func (e *Engine) decoders() int {
	if n := e.cfg.Capture.Readers; n > 0 {
		return n
	}
	return max(1, min(len(e.workers), runtime.GOMAXPROCS(0)))
}

func (e *Engine) newDecoder() *decode.Decoder {
	return decode.NewDecoder(decode.Options{Decapsulate: e.cfg.Capture.Decapsulate, VXLANPorts: e.cfg.Capture.VXLANPorts,
		GenevePorts: e.cfg.Capture.GenevePorts, GTPUPorts: e.cfg.Capture.GTPUPorts})
}

// readFrames reads a file input to its end, handing each frame to sink.
func (e *Engine) readFrames(ctx context.Context, in Input, sink *batcher) error {
	st := e.m.source(in.Label)
	ss := st.socket(0)
	src, err := in.Open()
	if err != nil {
		ss.setErr(err)
		return err
	}
	ss.setErr(nil)
	ss.up.Store(1)
	defer ss.up.Store(0)
	defer src.Close()
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	count := frameCount{st: st}
	defer count.publish()
	for {
		data, ts, wireLen, link, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			ss.setErr(err)
			return err
		}
		count.frame(ts)
		sink.frame(data, ts, wireLen, link)
	}
}

// turns lets goroutines take turns in sequence order.
type turns struct {
	mu   sync.Mutex
	cond *sync.Cond
	next uint64
}

func newTurns() *turns {
	t := &turns{}
	t.cond = sync.NewCond(&t.mu)
	return t
}

func (t *turns) wait(seq uint64) {
	t.mu.Lock()
	for t.next != seq {
		t.cond.Wait()
	}
	t.mu.Unlock()
}

func (t *turns) done() {
	t.mu.Lock()
	t.next++
	t.mu.Unlock()
	t.cond.Broadcast()
}

// batcher copies frames into batches and ships each when full. It keeps a
// spare batch so that a frame is always copied before anything can block.
type batcher struct {
	pool        *framePool
	open, spare *frameBatch
	ship        func(*frameBatch)
}

func (s *batcher) frame(data []byte, ts time.Time, wireLen int, link decode.LinkType) {
	if s.open == nil {
		s.open, s.spare = s.pool.get(), s.pool.get()
	}
	if !s.open.addFrame(data, ts, wireLen, link) {
		s.spare.addFrame(data, ts, wireLen, link) // an empty batch takes any frame
		s.rotate()
		return
	}
	if len(s.open.frames) == fileBatchFrames {
		s.rotate()
	}
}

// rotate ships the open batch; the spare becomes the open one.
func (s *batcher) rotate() {
	b := s.open
	s.open, s.spare = s.spare, nil
	s.ship(b)
	s.spare = s.pool.get()
}

// end ships what is open and returns the spare.
func (s *batcher) end() {
	if s.open == nil {
		return
	}
	if len(s.open.frames) > 0 {
		s.ship(s.open)
	} else {
		s.pool.put(s.open)
	}
	s.pool.put(s.spare)
	s.open, s.spare = nil, nil
}
