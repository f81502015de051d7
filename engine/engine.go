// Package engine drives packet analysis: readers pull frames from capture
// sources and decode them, shard them by the unordered address pair to
// workers (each owning a flow table and its analyzers), and the workers turn
// packets into findings. The same code serves the daemon and `analyze`.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Options build an engine.
type Options struct {
	Config     *config.Config
	Registerer prometheus.Registerer // engine metrics and analyzer metrics go here
	Sink       finding.Sink
	Clock      *analyzers.Clock
	Logger     *slog.Logger
	Ranges     *zoom.Ranges // nil: embedded, or config zoom.ranges_file
	// OnFlowEnd, when set, sees every flow as it leaves a table (analyze uses it
	// to list flows). It is called from worker goroutines.
	OnFlowEnd func(*flow.Flow, flow.ExpireReason)
}

// Input is one packet source. Open is called again after a live source fails.
type Input struct {
	Label string // metric label: the interface name, or "file"
	Open  func() (capture.Source, error)
	Live  bool
	// Readers is how many sockets a live input opens, each read by its own
	// goroutine (Open is called once per reader and must join its sockets in
	// one kernel fanout group); 0 means 1. Files have one reader and
	// capture.readers decoders.
	Readers int
}

func (in Input) readers() int {
	if !in.Live {
		return 1
	}
	return max(in.Readers, 1)
}

// Engine is one configured pipeline. Build a new one to apply a new config.
type Engine struct {
	cfg        *config.Config
	log        *slog.Logger
	workers    []*worker
	names      *zoom.NameCache
	classifier *zoom.Classifier
	m          *metrics
	opts       Options
}

// New initialises every enabled analyzer and the workers.
func New(o Options) (*Engine, error) {
	if o.Config == nil {
		o.Config = config.Default()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sink == nil {
		o.Sink = finding.Discard
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Clock == nil {
		o.Clock = &analyzers.Clock{}
	}
	cfg := o.Config
	ranges := o.Ranges
	if ranges == nil {
		ranges = zoom.DefaultRanges()
		if cfg.Zoom.RangesFile != "" {
			r, err := zoom.LoadRangesFile(cfg.Zoom.RangesFile)
			if err != nil {
				return nil, fmt.Errorf("zoom.ranges_file: %w", err)
			}
			ranges = r
		}
	}
	e := &Engine{cfg: cfg, log: o.Logger, names: zoom.NewNameCache(cfg.Zoom.NameCacheSize), opts: o}
	e.m = newMetrics(e)
	if err := o.Registerer.Register(e.m); err != nil {
		return nil, err
	}
	classifier := zoom.NewClassifier(ranges, cfg.Zoom.Watch)
	e.classifier = classifier

	var ctors []func() analyzers.Analyzer
	for _, p := range analyzers.Registered() {
		if !cfg.Analyzers.Enabled(p.Name()) {
			continue
		}
		ctor, err := p.Init(analyzers.Env{
			Config: cfg, Registerer: o.Registerer, Sink: o.Sink, Names: e.names, Clock: o.Clock,
			Logger: o.Logger.With("analyzer", p.Name()), Slot: len(ctors),
		})
		if err != nil {
			return nil, fmt.Errorf("analyzer %s: %w", p.Name(), err)
		}
		ctors = append(ctors, ctor)
		e.m.analyzers = append(e.m.analyzers, p.Name())
	}
	fc := flow.Config{
		MaxFlows:         cfg.Flows.MaxFlows,
		EmbryonicTimeout: cfg.Flows.EmbryonicTimeout,
		TCPTimeout:       cfg.Flows.TCPTimeout,
		UDPTimeout:       cfg.Flows.UDPTimeout,
		ClosedTimeout:    cfg.Flows.ClosedTimeout,
	}
	for range cfg.Capture.Workers {
		as := make([]analyzers.Analyzer, len(ctors))
		for i, c := range ctors {
			as[i] = c()
		}
		e.workers = append(e.workers, newWorker(fc, as, classifier, e.names, o.OnFlowEnd))
	}
	return e, nil
}

// Names is the shared DNS name cache.
func (e *Engine) Names() *zoom.NameCache { return e.names }

// Run reads every input until the files end or ctx is cancelled, then flushes
// all flows (so pending verdicts are given) and returns. Live inputs that fail
// are retried every capture.retry_interval while ctx lives; Run returns the
// first error of a file input.
func (e *Engine) Run(ctx context.Context, inputs []Input) error {
	if len(inputs) == 0 {
		return errors.New("engine: no packet source")
	}
	for _, in := range inputs {
		e.m.source(in.Label).readers.Store(int64(in.readers()))
	}
	if len(e.workers) == 1 && len(inputs) == 1 && !inputs[0].Live {
		// One file, one worker: no copies, no channels.
		w := e.workers[0]
		err := e.read(ctx, inputs[0], &directSink{e: e, w: w})
		w.flush(time.Time{})
		return err
	}

	decoders := e.decoders()
	readers := 0
	for _, in := range inputs {
		readers += in.readers()
	}
	size := poolSize(readers, decoders, len(e.workers))
	pool := newBatchPool(size, len(e.workers))
	var wg sync.WaitGroup
	chans := make([]chan *batch, len(e.workers))
	for i, w := range e.workers {
		// Room for every batch there is: a dispatch never waits on one
		// worker while another starves.
		chans[i] = make(chan *batch, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			workerLoop(w, i, chans[i])
			w.flush(time.Time{})
		}()
	}

	errs := make(chan error, readers)
	var rg sync.WaitGroup
	for _, in := range inputs {
		if !in.Live && decoders > 1 {
			rg.Add(1)
			go func() {
				defer rg.Done()
				errs <- e.readFile(ctx, in, pool, chans, decoders)
			}()
			continue
		}
		sn := &snooper{classifier: e.classifier, names: e.names}
		for range in.readers() {
			rg.Add(1)
			go func() {
				defer rg.Done()
				dec := e.newDecoder()
				sink := newBatcher(pool, func(b *batch) {
					e.decodeBatch(dec, b)
					dispatch(b, sn, chans)
				})
				errs <- e.read(ctx, in, sink)
				sink.end()
			}()
			sn = &snooper{classifier: e.classifier, names: e.names}
		}
	}
	rg.Wait()
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	return first
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
	return decode.NewDecoder(decode.Options{Decapsulate: e.cfg.Capture.Decapsulate, VXLANPorts: e.cfg.Capture.VXLANPorts})
}

// readFile reads one file input with several decoders: this goroutine only
// copies frames into batches and numbers them; decoders decode batches in
// parallel and then take turns, in batch order, to snoop DNS and hand each
// batch to its workers. Every worker thus sees its packets, and every DNS
// answer is recorded, in capture order.
func (e *Engine) readFile(ctx context.Context, in Input, pool *batchPool, out []chan *batch, decoders int) error {
	queue := make(chan *batch, decodeQueue)
	turn := newTurns()
	sn := &snooper{classifier: e.classifier, names: e.names}
	var dg sync.WaitGroup
	for range decoders {
		dg.Add(1)
		go func() {
			defer dg.Done()
			dec := e.newDecoder()
			for b := range queue {
				e.decodeBatch(dec, b)
				turn.wait(b.seq)
				dispatch(b, sn, out)
				turn.done()
			}
		}()
	}
	var seq uint64
	sink := newBatcher(pool, func(b *batch) {
		b.seq = seq
		seq++
		queue <- b
	})
	err := e.read(ctx, in, sink)
	sink.end()
	close(queue)
	dg.Wait()
	return err
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

// frameSink takes the frames of one reader.
type frameSink interface {
	// frame sees each frame; data is valid only during the call.
	frame(data []byte, ts time.Time, wireLen int, link decode.LinkType)
	// idle is called with wall time while a live source is quiet.
	idle(now time.Time)
}

// directSink decodes, snoops and analyses each frame at once: one file, one worker.
type directSink struct {
	e   *Engine
	w   *worker
	dec *decode.Decoder
	sn  *snooper
	p   decode.Packet
}

func (s *directSink) frame(data []byte, ts time.Time, wireLen int, link decode.LinkType) {
	if s.dec == nil {
		s.dec = s.e.newDecoder()
		s.sn = &snooper{classifier: s.e.classifier, names: s.e.names}
	}
	if err := s.dec.Decode(data, link, ts, wireLen, &s.p); err != nil {
		s.e.m.decodeError(err)
		return
	}
	s.sn.observe(&s.p)
	s.w.handle(&s.p)
}

func (s *directSink) idle(now time.Time) { s.w.advance(now) }

// batcher copies frames into batches and ships each when full, when it has
// waited batchAge of packet time, or on an idle tick. It keeps a spare batch
// so that a frame is always copied before anything can block: data may
// point into the capture ring.
type batcher struct {
	pool        *batchPool
	open, spare *batch
	ship        func(*batch)
}

func newBatcher(pool *batchPool, ship func(*batch)) *batcher {
	return &batcher{pool: pool, ship: ship}
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
	if len(s.open.frames) == batchFrames || ts.Sub(s.open.frames[0].ts) >= batchAge {
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

func (s *batcher) idle(now time.Time) {
	if s.open == nil {
		s.open, s.spare = s.pool.get(), s.pool.get()
	}
	s.open.tick = now
	s.rotate()
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

// read pulls packets from one input until it ends; live inputs are reopened
// after failures. handle sees each decoded packet; tick is called with wall
// time while a live source is idle, so timeouts fire without traffic.
func (e *Engine) read(ctx context.Context, in Input, sink frameSink) error {
	st := e.m.source(in.Label)
	for {
		src, err := in.Open()
		if err != nil {
			if !in.Live {
				return err
			}
			e.log.Error("cannot open capture; retrying", "input", in.Label, "err", err, "retry_in", e.cfg.Capture.RetryInterval)
		} else {
			st.up.Add(1)
			err = e.readSource(ctx, src, st, sink)
			st.up.Add(-1)
			src.Close()
			if !in.Live || ctx.Err() != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					return nil
				}
				return err
			}
			e.log.Error("capture failed; reopening", "input", in.Label, "err", err, "retry_in", e.cfg.Capture.RetryInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.Capture.RetryInterval):
		}
	}
}

func (e *Engine) readSource(ctx context.Context, src capture.Source, st *sourceStats, sink frameSink) error {
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	ps := pollState{last: time.Now()}
	var n uint64
	for {
		data, ts, wireLen, link, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, capture.ErrTimeout) {
				now := time.Now()
				sink.idle(now)
				ps.poll(src, st, now)
				continue
			}
			ps.poll(src, st, time.Time{})
			return err
		}
		st.packets.Add(1)
		st.lastPacket.Store(ts.UnixNano())
		sink.frame(data, ts, wireLen, link)
		if n++; n&1023 == 0 {
			ps.poll(src, st, time.Now())
		}
	}
}

// pollState is one reader's view of its socket's kernel counters.
type pollState struct {
	last    time.Time
	dropped uint64 // this socket's drops already added to the source's count
}

// poll adds the socket's new kernel drops to the source's counter, at most
// once a second (zero time: now, unconditionally). Several readers (fanout
// sockets) add to one counter; a reopened socket counts from zero.
func (ps *pollState) poll(src capture.Source, st *sourceStats, now time.Time) {
	if !now.IsZero() && now.Sub(ps.last) < time.Second {
		return
	}
	ps.last = time.Now()
	if s, err := src.Stats(); err == nil && s.Dropped >= ps.dropped {
		st.dropped.Add(s.Dropped - ps.dropped)
		ps.dropped = s.Dropped
	}
}

type sourceStats struct {
	packets    atomic.Uint64
	dropped    atomic.Uint64 // cumulative over every socket this source opened
	up         atomic.Int64  // sockets open now
	readers    atomic.Int64  // sockets the source should have open
	lastPacket atomic.Int64
}
