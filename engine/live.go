package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
)

// Live mode: the daemon starts the workers once (Start), then adds, hands
// over and removes inputs one by one, and swaps analyzer settings, all while
// packets flow. Run, for files, stays the one-shot path.
//
// A handover replaces one input's source by another without losing or
// repeating a packet: the new source is opened first, so the kernel queues
// every packet for it from then on (time T); the old reader goes on until it
// reads a packet stamped T or later (which the new ring also has) or until
// its ring stays empty for a poll timeout; the new reader then skips the
// packets the old one read, by their kernel timestamp.

// errHandedOver ends a reader whose packets another source now reads.
var errHandedOver = errors.New("engine: input handed over")

// readerCtl is what the engine tells one running reader.
type readerCtl struct {
	socket      int            // which socket of the input's fanout group (0 without fanout)
	first       capture.Source // opened ahead; read before calling Open
	skipThrough time.Time      // skip packets stamped at or before this (reader goroutine only)
	until       atomic.Int64   // unix ns; non-zero: hand over at the first packet stamped this or later
	handover    chan struct{}  // closed when until is set
	last        time.Time      // stamp of the last packet read; read after done
}

func (c *readerCtl) handingOver() bool { return c.until.Load() != 0 }

// liveReader reads one input: one goroutine per socket of its fanout group
// (capture.live_readers), each decoding, snooping DNS and handing packets to
// the worker that owns their address pair, like a reader of its own.
type liveReader struct {
	in      Input
	ctls    []*readerCtl
	cancel  context.CancelFunc
	done    chan struct{} // closed when every socket's goroutine has ended
	errs    []error       // per socket; set before done closes
	stopped atomic.Int32  // sockets whose goroutine has ended
}

// err is the first socket's error, if any; read after done.
func (r *liveReader) err() error { return errors.Join(r.errs...) }

type liveState struct {
	chans   []chan *batch
	pool    *batchPool
	workers sync.WaitGroup

	mu      sync.Mutex // guards readers, stopped, e.analyzerSet
	readers map[string]*liveReader
	stopped bool

	stopPrune chan struct{} // ends the evidence directory's housekeeping
}

// Start starts the workers for live mode. Inputs come with AddInput.
func (e *Engine) Start() {
	if e.live != nil {
		return
	}
	ls := &liveState{readers: map[string]*liveReader{}}
	// In flight at most: per worker a full channel, one being handled and
	// one open per reading socket. The pool keeps only batches that were in
	// flight at once, so room for as many sockets as a reload may add
	// costs nothing until they read.
	sockets := max(len(e.cfg.Capture.Interfaces), 1) * maxReaders
	ls.pool = newBatchPool(len(e.workers) * (workerQueue + 1 + sockets))
	ls.chans = e.startWorkers(ls.pool, &ls.workers)
	if e.opts.Evidence != nil {
		// Files age out while no finding is written, too.
		ls.stopPrune = make(chan struct{})
		go e.opts.Evidence.PruneEvery(evidencePruneInterval, ls.stopPrune)
	}
	e.live = ls
}

// evidencePruneInterval is how often a live engine removes evidence files
// past evidence.retention.
const evidencePruneInterval = time.Minute

// AddInput starts reading in (live mode) with in.Readers sockets. srcs, when
// given, are sockets already opened for it (srcs[i] for reader i);
// skipThrough, when not zero, is the stamp of the last packet the input it
// replaces read.
func (e *Engine) AddInput(in Input, srcs []capture.Source, skipThrough time.Time) error {
	ls := e.live
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return errors.New("engine: stopped")
	}
	if _, dup := ls.readers[in.Label]; dup {
		return fmt.Errorf("engine: input %q is already read", in.Label)
	}
	n := in.readers()
	e.m.source(in.Label).setReaders(n)
	ctx, cancel := context.WithCancel(context.Background())
	r := &liveReader{in: in, cancel: cancel, done: make(chan struct{}), errs: make([]error, n)}
	for i := range n {
		ctl := &readerCtl{socket: i, skipThrough: skipThrough, handover: make(chan struct{})}
		if i < len(srcs) {
			ctl.first = srcs[i]
		}
		r.ctls = append(r.ctls, ctl)
	}
	ls.readers[in.Label] = r
	for i, ctl := range r.ctls {
		go func() {
			defer func() {
				if int(r.stopped.Add(1)) == n {
					close(r.done)
				}
			}()
			d := newDispatcher(ls.chans, ls.pool)
			err := e.read(ctx, in, ctl, d.add, d.tick)
			d.flushAll()
			if err != nil {
				r.errs[i] = fmt.Errorf("socket %d of %d: %w", i+1, n, err)
				if n == 1 {
					r.errs[i] = err
				}
				e.log.Error("capture stopped", "input", in.Label, "socket", i+1, "err", err)
			}
		}()
	}
	return nil
}

// HandOver stops reading the input called label once it has read every
// packet stamped before until, and returns the stamp of the last packet it
// read (zero if none). Pass that to AddInput of the source opened, before
// until, to replace it.
//
// With several sockets, each has read every packet of its share stamped
// before until; the newest of their last stamps is where the replacement
// starts: every packet stamped at or before it was read by one of them.
func (e *Engine) HandOver(label string, until time.Time) time.Time {
	r := e.takeReader(label)
	if r == nil {
		return time.Time{}
	}
	for _, ctl := range r.ctls {
		ctl.until.Store(until.UnixNano())
		close(ctl.handover)
	}
	<-r.done
	r.cancel()
	var last time.Time
	for _, ctl := range r.ctls {
		if ctl.last.After(last) {
			last = ctl.last
		}
	}
	return last
}

// RemoveInput stops reading the input called label now.
func (e *Engine) RemoveInput(label string) {
	if r := e.takeReader(label); r != nil {
		r.cancel()
		<-r.done
	}
}

func (e *Engine) takeReader(label string) *liveReader {
	ls := e.live
	ls.mu.Lock()
	defer ls.mu.Unlock()
	r := ls.readers[label]
	delete(ls.readers, label)
	return r
}

// Labels lists the inputs being read.
func (e *Engine) Labels() []string {
	ls := e.live
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]string, 0, len(ls.readers))
	for l := range ls.readers {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Stop ends live mode: every reader hands over at until (zero: stops at
// once), the workers judge their flows, and Stop returns the stamp of the
// last packet each input read.
func (e *Engine) Stop(until time.Time) map[string]time.Time {
	ls := e.live
	if ls == nil {
		return nil
	}
	ls.mu.Lock()
	if ls.stopped {
		ls.mu.Unlock()
		return nil
	}
	ls.stopped = true
	var labels []string
	for l := range ls.readers {
		labels = append(labels, l)
	}
	ls.mu.Unlock()
	last := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range labels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var t time.Time
			if until.IsZero() {
				e.RemoveInput(l)
			} else {
				t = e.HandOver(l, until)
			}
			mu.Lock()
			last[l] = t
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range ls.chans {
		close(c)
	}
	ls.workers.Wait()
	e.finishEvidence()
	if ls.stopPrune != nil {
		close(ls.stopPrune)
	}
	return last
}

// NotReady says why the engine is not analysing everything it should: a
// live input not capturing (with its last error), a file input that failed,
// the engine stopped. Empty when all is well.
func (e *Engine) NotReady() []string {
	ls := e.live
	if ls == nil {
		return []string{"packet analysis not started"}
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return []string{"packet analysis stopped"}
	}
	var out []string
	labels := make([]string, 0, len(ls.readers))
	for l := range ls.readers {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		r := ls.readers[l]
		st := e.m.source(l)
		select {
		case <-r.done:
			if err := r.err(); err != nil {
				out = append(out, fmt.Sprintf("input %s stopped: %v", l, err))
			} else if r.in.Live {
				out = append(out, fmt.Sprintf("capture on %s stopped", l))
			}
			continue // a file read to its end is done, not failing
		default:
		}
		if st.up() == 1 {
			continue
		}
		if msg := st.downReason(); msg != "" {
			out = append(out, fmt.Sprintf("capture on %s is down: %s", l, msg))
		} else {
			out = append(out, fmt.Sprintf("capture on %s is not open yet", l))
		}
	}
	return out
}

// analyzerSwap carries new analyzer instances to every worker.
type analyzerSwap struct {
	set       *analyzerSet
	perWorker [][]analyzers.Analyzer
	applied   sync.WaitGroup
}

// PreparedAnalyzers is a new configuration's analyzers, initialised but not
// running yet (SwapAnalyzers runs them).
type PreparedAnalyzers struct{ set *analyzerSet }

// PrepareAnalyzers initialises the analyzers for cfg. Only analyzer settings
// (the analyzers, tls, reachability and metrics sections, and zoom.watch as
// the analyzers read it) are taken; the rest of cfg must equal the running
// configuration, which needs a new engine to change.
func (e *Engine) PrepareAnalyzers(cfg *config.Config) (*PreparedAnalyzers, error) {
	set, err := e.initAnalyzers(cfg)
	if err != nil {
		return nil, err
	}
	return &PreparedAnalyzers{set: set}, nil
}

// SwapAnalyzers makes every worker run the prepared analyzers from its next
// batch on: flows in the tables stay, with their per-analyzer state (an
// analyzer keeps its slot); what the analyzers learnt across flows
// (de-duplication, learned fingerprints) carries over through
// Options.Memory, while their metrics start afresh.
func (e *Engine) SwapAnalyzers(p *PreparedAnalyzers) error {
	ls := e.live
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return errors.New("engine: stopped")
	}
	sw := &analyzerSwap{set: p.set}
	for range e.workers {
		sw.perWorker = append(sw.perWorker, p.set.instances())
	}
	sw.applied.Add(len(e.workers))
	for _, c := range ls.chans {
		c <- &batch{swap: sw}
	}
	sw.applied.Wait()
	old := e.analyzerSet
	old.collectors.unregisterFrom(e.opts.Registerer)
	err := p.set.collectors.registerOn(e.opts.Registerer)
	e.analyzerSet = p.set
	e.boxes.handlers.Store(&p.set.boxHandlers)
	e.m.setAnalyzers(p.set.health)
	return err
}

// collectorList is the Registerer analyzers get in their Env: it records
// their collectors so they can be registered when the set runs and
// unregistered when it is replaced.
type collectorList struct{ cs []prometheus.Collector }

func (l *collectorList) Register(c prometheus.Collector) error {
	l.cs = append(l.cs, c)
	return nil
}

func (l *collectorList) MustRegister(cs ...prometheus.Collector) { l.cs = append(l.cs, cs...) }

func (l *collectorList) Unregister(c prometheus.Collector) bool {
	for i, x := range l.cs {
		if x == c {
			l.cs = append(l.cs[:i], l.cs[i+1:]...)
			return true
		}
	}
	return false
}

func (l *collectorList) registerOn(r prometheus.Registerer) error {
	var errs []error
	for _, c := range l.cs {
		if err := r.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *collectorList) unregisterFrom(r prometheus.Registerer) {
	for _, c := range l.cs {
		r.Unregister(c)
	}
}
