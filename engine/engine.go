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
	"github.com/zoomprobe/zoomprobe/boxmatch"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/identity"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Options build an engine.
type Options struct {
	Config     *config.Config
	Registerer prometheus.Registerer // engine metrics and analyzer metrics go here
	Sink       finding.Sink
	Clock      *certcheck.Clock
	Logger     *slog.Logger
	Ranges     *zoom.Ranges // nil: embedded, or config zoom.ranges_file
	// OnFlowEnd, when set, sees every flow as it leaves a table (analyze uses it
	// to list flows). It is called from worker goroutines.
	OnFlowEnd func(*flow.Flow, flow.ExpireReason)
	// OnHandshake, when set, hears each watched flow's TLS handshake summary
	// (analyzers.Env.OnHandshake), before the flow ends.
	OnHandshake func(*flow.Flow, analyzers.HandshakeSummary)
	// Plugins are the analyzers to run, in this order; nil: every registered
	// analyzer in analyzers.Order. analyzers.disabled applies to both.
	Plugins []analyzers.Plugin
	// Evidence, when set, receives one pcapng per finding about a flow,
	// with the packets each worker kept of it (config evidence: sizes).
	Evidence *evidence.Dir
	// OwnFlows, when set, holds the sockets of zoomprobe's own active checks:
	// their packets are kept from the passive analyzers (the probes report
	// what they found themselves).
	OwnFlows *ownflows.Registry
	// Memory carries what analyzers learnt across flows from one analyzer
	// set to the next (analyzers.Memory); nil: a new one for this engine, so
	// SwapAnalyzers still carries it. The daemon passes one for its lifetime.
	Memory *analyzers.Memory
}

// Input is one packet source. Open is called again after a live source fails.
type Input struct {
	Label string // metric label: the interface name, or "file"
	// Open opens the source; with Readers > 1, one socket of the input's
	// kernel fanout group, and it is called once per socket.
	Open func() (capture.Source, error)
	Live bool
	// Readers is how many sockets, each with its own reader goroutine, read
	// a live input (capture.live_readers); 0 or 1: one.
	Readers int
}

func (in Input) readers() int {
	if !in.Live {
		return 1
	}
	return min(max(in.Readers, 1), maxReaders)
}

// Engine is one configured pipeline. Build a new one to apply a new config.
type Engine struct {
	cfg        *config.Config
	log        *slog.Logger
	workers    []*worker
	names      *zoom.NameCache
	queries    *queryTable // DNS queries waiting for their answer, shared by the readers
	classifier *zoom.Classifier
	own        *ownflows.Registry
	ownPackets atomic.Uint64 // packets of own sockets kept from the analyzers
	m          *metrics
	opts       Options

	boxes       *boxes       // capture.boxes: matchers run by their sides' readers
	analyzerSet *analyzerSet // the analyzers running now; guarded by live.mu once live
	live        *liveState   // set by Start (the daemon's mode)
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
		o.Clock = &certcheck.Clock{}
	}
	if o.Memory == nil {
		o.Memory = analyzers.NewMemory()
	}
	cfg := o.Config
	if cfg.Capture.Workers > maxWorkers {
		return nil, fmt.Errorf("engine: capture.workers %d, at most %d", cfg.Capture.Workers, maxWorkers)
	}
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
	e := &Engine{cfg: cfg, log: o.Logger, names: zoom.NewNameCache(cfg.Zoom.NameCacheSize), opts: o,
		queries: newQueryTable(cfg.Zoom.DNSQueryTableBytes, cfg.Zoom.DNSAnswerWindow), own: o.OwnFlows}
	e.opts.Config = cfg
	e.m = newMetrics(e)
	if err := o.Registerer.Register(e.m); err != nil {
		return nil, err
	}
	classifier := zoom.NewClassifier(ranges, cfg.Zoom.Watch)
	e.classifier = classifier
	boxMetrics := boxmatch.NewMetrics()
	e.boxes = newBoxes(cfg, boxMetrics)
	if len(cfg.Capture.Boxes) > 0 {
		for _, c := range boxMetrics.Collectors() {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	idMetrics := identity.NewMetrics()
	if err := o.Registerer.Register(idMetrics); err != nil {
		return nil, err
	}

	if o.Evidence != nil {
		e.opts.Sink = &evidenceSink{e: e, dir: o.Evidence, next: o.Sink}
	}
	set, err := e.initAnalyzers(cfg)
	if err != nil {
		return nil, err
	}
	if err := set.collectors.registerOn(o.Registerer); err != nil {
		return nil, err
	}
	e.analyzerSet = set
	e.boxes.handlers.Store(&set.boxHandlers)
	e.m.setAnalyzers(set.health)
	fc := flow.ConfigFrom(cfg.Flows)
	for range cfg.Capture.Workers {
		id := identity.New(identity.Config{Classifier: classifier, Names: e.names, MaxHelloBytes: cfg.Zoom.MaxClientHelloBytes, BudgetBytes: cfg.Zoom.ClientHelloBudgetBytes, Metrics: idMetrics})
		e.workers = append(e.workers, newWorker(fc, id, set, set.instances(), o.Logger, o.OnFlowEnd))
	}
	if o.Evidence != nil {
		stats := make([]*evidence.Stats, len(e.workers))
		for i, w := range e.workers {
			stats[i] = &evidence.Stats{}
			w.evDir = o.Evidence
			w.rec = evidence.NewRecorder(evidence.Config{BufferBytes: cfg.Evidence.MaxBufferBytes,
				MaxPackets: cfg.Evidence.MaxPacketsPerFlow, MaxBytes: cfg.Evidence.MaxBytesPerFlow}, stats[i])
		}
		if err := o.Registerer.Register(evidence.NewPoolMetrics(stats)); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// newSnooper makes a reader's DNS snooper.
func (e *Engine) newSnooper() *snooper {
	return &snooper{classifier: e.classifier, names: e.names, queries: e.queries}
}

// analyzerSet is one configuration's analyzers: their constructors, names,
// flow.Ext slots, panic records and the metrics their Init registered.
type analyzerSet struct {
	ctors      []func() analyzers.Analyzer
	names      []string
	slots      []int             // each analyzer's slot: its index in analyzers.Order (Options.Plugins)
	health     []*analyzerHealth // shared by every worker running the set
	collectors *collectorList
	// boxHandlers receive box verdicts (analyzers.Env.OnBoxVerdict).
	boxHandlers []func(boxmatch.Verdict)
}

// initAnalyzers runs Init of every enabled analyzer for cfg. The metrics they
// register are recorded, not registered, so a second set can be prepared
// while the first one runs. An analyzer's slot is its index among all
// registered analyzers, so it stays the same when others are disabled or
// enabled by a reload: flows in the table keep their per-analyzer state.
func (e *Engine) initAnalyzers(cfg *config.Config) (*analyzerSet, error) {
	set := &analyzerSet{collectors: &collectorList{}}
	plugins := e.opts.Plugins
	if plugins == nil {
		plugins = analyzers.Registered() // in analyzers.Order
	}
	if len(plugins) > flow.MaxExt {
		return nil, fmt.Errorf("engine: %d analyzers, at most flow.MaxExt (%d)", len(plugins), flow.MaxExt)
	}
	for slot, p := range plugins {
		if !cfg.Analyzers.Enabled(p.Name()) {
			continue
		}
		ctor, err := p.Init(analyzers.Env{
			Config: cfg, Registerer: set.collectors, Sink: e.opts.Sink, Clock: e.opts.Clock,
			Logger: e.opts.Logger.With("analyzer", p.Name()), Slot: slot, Memory: e.opts.Memory, OnHandshake: e.opts.OnHandshake,
			BoxSides: e.boxSides(), OnBoxVerdict: func(h func(boxmatch.Verdict)) { set.boxHandlers = append(set.boxHandlers, h) },
		})
		if err != nil {
			return nil, fmt.Errorf("analyzer %s: %w", p.Name(), err)
		}
		set.ctors = append(set.ctors, ctor)
		set.names = append(set.names, p.Name())
		set.slots = append(set.slots, slot)
		set.health = append(set.health, &analyzerHealth{name: p.Name()})
	}
	return set, nil
}

// instances builds one worker's analyzers.
func (s *analyzerSet) instances() []analyzers.Analyzer {
	as := make([]analyzers.Analyzer, len(s.ctors))
	for i, c := range s.ctors {
		as[i] = c()
	}
	return as
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
		e.m.source(in.Label)
	}
	if len(e.workers) == 1 && len(inputs) == 1 && !inputs[0].Live {
		// One file, one worker: no copies, no channels.
		w := e.workers[0]
		err := e.read(ctx, inputs[0], nil, func(p *decode.Packet) { w.handle(p) }, func(time.Time) {})
		w.flush(time.Time{})
		e.finishEvidence()
		return err
	}

	if len(inputs) == 1 && !inputs[0].Live {
		if e.cfg.Capture.Readers == 0 && len(e.workers) <= min(sharedReadWorkers, runtime.GOMAXPROCS(0)) {
			return e.runFileEach(ctx, inputs[0])
		}
		return e.runFile(ctx, inputs[0])
	}

	// In flight at most: per worker a full channel, one being handled and
	// one open per input; the pool holds them all, so none is allocated
	// twice (it held 16 while up to 20 were in flight).
	pool := newBatchPool(len(e.workers) * (workerQueue + 1 + len(inputs)))
	var wg sync.WaitGroup
	chans := e.startWorkers(pool, &wg)

	errs := make(chan error, len(inputs))
	var rg sync.WaitGroup
	for _, in := range inputs {
		rg.Add(1)
		go func() {
			defer rg.Done()
			d := newDispatcher(chans, pool)
			errs <- e.read(ctx, in, nil, d.add, d.tick)
			d.flushAll()
		}()
	}
	rg.Wait()
	// Every side has ended: what the boxes still hold is judged before the
	// workers judge their flows.
	e.boxes.flush()
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	e.flushWorkers()
	e.finishEvidence()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// workerQueue is the depth of each worker's channel.
const workerQueue = 8

// startWorkers starts one goroutine per worker, each draining its channel
// until it is closed, then flushing its flows.
func (e *Engine) startWorkers(pool *batchPool, wg *sync.WaitGroup) []chan *batch {
	chans := make([]chan *batch, len(e.workers))
	for i, w := range e.workers {
		chans[i] = make(chan *batch, workerQueue)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range chans[i] {
				if b.swap != nil {
					// Between two batches: no packet is in flight in this worker.
					w.setAnalyzers(b.swap.set, b.swap.perWorker[i])
					b.swap.applied.Done()
					continue
				}
				for j := range b.pkts {
					w.handle(&b.pkts[j])
				}
				if !b.tick.IsZero() {
					w.advance(b.tick)
				}
				pool.put(b)
			}
		}()
	}
	return chans
}

// flushWorkers judges every worker's flows once all have handled their last
// packet, each in its goroutine, at one packet time for all: the latest any
// worker reached. Flushed at its own last packet, a worker's pending
// verdicts (how long an unanswered flow waited) depended on which flows the
// worker count gave it.
func (e *Engine) flushWorkers() {
	var end time.Time
	for _, w := range e.workers {
		if t := w.end(); t.After(end) {
			end = t
		}
	}
	var wg sync.WaitGroup
	for _, w := range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.flush(end)
		}()
	}
	wg.Wait()
}

// read pulls packets from one input until it ends; live inputs are reopened
// after failures. handle sees each decoded packet; tick is called with wall
// time while a live source is idle, so timeouts fire without traffic. ctl,
// when set (live mode), may hold a source opened ahead and tells the reader
// when to hand over to another one.
func (e *Engine) read(ctx context.Context, in Input, ctl *readerCtl, handle func(*decode.Packet), tick func(time.Time)) error {
	st := e.m.source(in.Label)
	ss := st.socket(0)
	if ctl != nil {
		ss = st.socket(ctl.socket)
	}
	for {
		var src capture.Source
		var err error
		if ctl != nil && ctl.first != nil {
			src, ctl.first = ctl.first, nil
		} else {
			src, err = in.Open()
		}
		if err != nil {
			ss.setErr(err)
			if !in.Live {
				return err
			}
			e.log.Error("cannot open capture; retrying", "input", in.Label, "err", err, "retry_in", e.cfg.Capture.RetryInterval)
		} else {
			ss.setErr(nil)
			ss.up.Store(1)
			err = e.readSource(ctx, src, in, st, ss, ctl, handle, tick)
			ss.up.Store(0)
			src.Close()
			ss.droppedBase = ss.dropped.Load() // a reopened socket counts from zero
			if errors.Is(err, errHandedOver) {
				return nil
			}
			if !in.Live {
				if bs, ok := e.boxes.byLabel[in.Label]; ok {
					bs.x.Done(bs.side) // a file's end no longer holds its box's judgement back
				}
			}
			if !in.Live || ctx.Err() != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					return nil
				}
				ss.setErr(err)
				return err
			}
			ss.setErr(err)
			e.log.Error("capture failed; reopening", "input", in.Label, "err", err, "retry_in", e.cfg.Capture.RetryInterval)
		}
		if ctl != nil && ctl.handingOver() {
			return nil // nothing open: nothing to hand over
		}
		var handover <-chan struct{}
		if ctl != nil {
			handover = ctl.handover
		}
		select {
		case <-ctx.Done():
			return nil
		case <-handover:
			return nil
		case <-time.After(e.cfg.Capture.RetryInterval):
		}
	}
}

func (e *Engine) readSource(ctx context.Context, src capture.Source, in Input, st *sourceStats, ss *socketStats, ctl *readerCtl, handle func(*decode.Packet), tick func(time.Time)) error {
	input := e.boxes.index(in.Label)
	box, onBox := e.boxes.byLabel[in.Label]
	waitForBox := onBox && !in.Live
	dec := decode.NewDecoder(decode.Options{Decapsulate: e.cfg.Capture.Decapsulate, VXLANPorts: e.cfg.Capture.VXLANPorts,
		GenevePorts: e.cfg.Capture.GenevePorts, GTPUPorts: e.cfg.Capture.GTPUPorts})
	var p decode.Packet
	sn := e.newSnooper()
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	count := frameCount{st: st}
	defer count.publish()
	lastStats := time.Now()
	// A live box side reports its drop counter to the matcher at least once
	// a second, and once before its first packet: the matcher judges only
	// what the counters vouch for (capture loss is not the box's drop).
	boxDrops := onBox && in.Live
	poll := func(now time.Time) {
		polled, ok := e.pollStats(src, ss, &lastStats, now)
		switch {
		case !polled || !boxDrops:
		case ok:
			box.x.CaptureDrops(box.side, lastStats, ss.dropped.Load())
		default:
			box.x.CaptureUnknown(box.side, lastStats) // judgement goes on, the box not blamed
		}
	}
	if boxDrops {
		poll(time.Time{})
	}
	for {
		data, ts, wireLen, link, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, capture.ErrTimeout) {
				count.publish()
				if ctl != nil && ctl.handingOver() {
					// The ring stayed empty for a whole poll timeout: every
					// packet from before the handover time has been read.
					return errHandedOver
				}
				now := time.Now()
				if onBox {
					// An empty ring: this side has read everything stamped
					// before now.
					box.x.Seen(box.side, now)
				}
				tick(now)
				poll(now)
				continue
			}
			poll(time.Time{})
			return err
		}
		if ctl != nil {
			if !ctl.skipThrough.IsZero() {
				if !ts.After(ctl.skipThrough) {
					continue // the source this one replaced read it already
				}
				ctl.skipThrough = time.Time{}
			}
			if until := ctl.until.Load(); until != 0 && ts.UnixNano() >= until {
				// The source that replaces this one has this packet too.
				return errHandedOver
			}
			ctl.last = ts
		}
		count.frame(ts)
		if waitForBox {
			box.x.Seen(box.side, ts)
			if !box.x.Wait(ctx, box.side, ts) {
				return ctx.Err()
			}
		}
		if err := dec.Decode(data, link, ts, wireLen, &p); err != nil {
			e.m.decodeError(err)
			if onBox {
				box.x.Seen(box.side, ts)
			}
			continue
		}
		p.Input = input
		sn.observe(&p) // the probe's own DNS answers are real answers: names still learnt
		if e.isOwn(&p) {
			e.ownPackets.Add(1)
			if onBox {
				box.x.Seen(box.side, ts)
			}
			continue
		}
		if onBox {
			e.boxObserve(box, &p)
		}
		handle(&p)
		switch {
		case boxDrops:
			poll(ts) // packet times are wall clock: no clock read per packet
		case count.total&1023 == 0:
			poll(time.Now())
		}
	}
}

// isOwn reports whether p belongs to one of zoomprobe's own active-check
// sockets, or is an ICMP error quoting one.
func (e *Engine) isOwn(p *decode.Packet) bool {
	if e.own == nil {
		return false
	}
	return e.own.OwnPacket(p)
}

// pollStats copies the kernel's drop counters at most once a second (zero
// time: now, unconditionally). polled: it was time to, at *last; ok: the
// counters were read.
func (e *Engine) pollStats(src capture.Source, ss *socketStats, last *time.Time, now time.Time) (polled, ok bool) {
	if !now.IsZero() && now.Sub(*last) < time.Second {
		return false, false
	}
	*last = time.Now()
	s, err := src.Stats()
	if err != nil {
		return true, false
	}
	ss.dropped.Store(ss.droppedBase + s.Dropped)
	return true, true
}

// maxReaders bounds the sockets (readers) of one input: capture.live_readers.
const maxReaders = 64

// sourceStats is one input's metrics: its packets, and per socket of its
// fanout group (one without fanout) whether it captures and what it dropped.
type sourceStats struct {
	packets    atomic.Uint64
	lastPacket atomic.Int64

	mu      sync.Mutex // guards readers and retired against a change of readers
	readers int        // sockets in use: sockets[:readers]
	retired uint64     // drops of sockets no longer in use
	sockets [maxReaders]socketStats
}

// frameCount counts one reader's frames where only that reader touches
// them, and adds them to its input's shared counters every publishFrames
// frames or publishEvery of packet time, when the source is idle (a live
// source says so every poll timeout) and when the reader stops. An atomic add
// and store per frame were two full fences on every packet, and with
// several readers of one input, one cache line passed between their cores.
type frameCount struct {
	st        *sourceStats
	pending   uint64 // frames not yet in st
	total     uint64 // every frame this reader counted
	last      int64  // timestamp of the latest, Unix ns
	published int64  // timestamp of the latest in st
}

// publishFrames and publishEvery bound how far the metrics lag a reader.
const (
	publishFrames = 64
	publishEvery  = int64(time.Second)
)

func (c *frameCount) frame(ts time.Time) {
	c.pending++
	c.total++
	c.last = ts.UnixNano()
	if c.pending == publishFrames || c.last-c.published >= publishEvery {
		c.publish()
	}
}

func (c *frameCount) publish() {
	if c.pending == 0 {
		return
	}
	c.st.packets.Add(c.pending)
	c.st.lastPacket.Store(c.last)
	c.pending, c.published = 0, c.last
}

type socketStats struct {
	dropped     atomic.Uint64 // cumulative for the current socket, plus earlier sockets
	up          atomic.Int64
	droppedBase uint64                 // drops of closed sockets; its reader goroutine only
	lastErr     atomic.Pointer[string] // why the socket is not capturing; nil while it is
}

func (s *socketStats) setErr(err error) {
	if err == nil {
		s.lastErr.Store(nil)
		return
	}
	msg := err.Error()
	s.lastErr.Store(&msg)
}

// socket is the stats of reader i; setReaders must have made room for it.
func (s *sourceStats) socket(i int) *socketStats { return &s.sockets[i] }

// setReaders sets how many sockets the input reads with now; the drops of
// sockets no longer used are kept in the total.
func (s *sourceStats) setReaders(n int) {
	n = min(max(n, 1), maxReaders)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := n; i < s.readers; i++ {
		ss := &s.sockets[i]
		s.retired += ss.dropped.Load()
		ss.dropped.Store(0)
		ss.droppedBase = 0
		ss.up.Store(0)
		ss.lastErr.Store(nil)
	}
	s.readers = n
}

// dropped is what the kernel dropped on every socket the input used.
func (s *sourceStats) dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.retired
	for i := range s.readers {
		sum += s.sockets[i].dropped.Load()
	}
	return sum
}

// up is 1 while every socket of the input captures.
func (s *sourceStats) up() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers == 0 {
		return 0
	}
	for i := range s.readers {
		if s.sockets[i].up.Load() != 1 {
			return 0
		}
	}
	return 1
}

// downReason says why a socket of the input does not capture ("" when every
// one does or none said why).
func (s *sourceStats) downReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.readers {
		if msg := s.sockets[i].lastErr.Load(); msg != nil {
			if s.readers > 1 {
				return fmt.Sprintf("socket %d of %d: %s", i+1, s.readers, *msg)
			}
			return *msg
		}
	}
	return ""
}
