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
	first       capture.Source // opened ahead; read before calling Open
	skipThrough time.Time      // skip packets stamped at or before this (reader goroutine only)
	until       atomic.Int64   // unix ns; non-zero: hand over at the first packet stamped this or later
	handover    chan struct{}  // closed when until is set
	last        time.Time      // stamp of the last packet read; read after done
}

func (c *readerCtl) handingOver() bool { return c.until.Load() != 0 }

type liveReader struct {
	in     Input
	ctl    *readerCtl
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

type liveState struct {
	chans   []chan *batch
	pool    *batchPool
	workers sync.WaitGroup

	mu      sync.Mutex // guards readers, stopped, e.analyzerSet
	readers map[string]*liveReader
	stopped bool
}

// Start starts the workers for live mode. Inputs come with AddInput.
func (e *Engine) Start() {
	if e.live != nil {
		return
	}
	ls := &liveState{readers: map[string]*liveReader{}}
	ls.pool = newBatchPool(len(e.workers) * 16)
	ls.chans = e.startWorkers(ls.pool, &ls.workers)
	e.live = ls
}

// AddInput starts reading in (live mode). src, when not nil, is a source
// already opened for it; skipThrough, when not zero, is the stamp of the last
// packet the input it replaces read.
func (e *Engine) AddInput(in Input, src capture.Source, skipThrough time.Time) error {
	ls := e.live
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return errors.New("engine: stopped")
	}
	if _, dup := ls.readers[in.Label]; dup {
		return fmt.Errorf("engine: input %q is already read", in.Label)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &liveReader{in: in, cancel: cancel, done: make(chan struct{}),
		ctl: &readerCtl{first: src, skipThrough: skipThrough, handover: make(chan struct{})}}
	ls.readers[in.Label] = r
	go func() {
		defer close(r.done)
		d := newDispatcher(ls.chans, ls.pool)
		r.err = e.read(ctx, in, r.ctl, d.add, d.tick)
		d.flushAll()
		if r.err != nil {
			e.log.Error("capture stopped", "input", in.Label, "err", r.err)
		}
	}()
	return nil
}

// HandOver stops reading the input called label once it has read every
// packet stamped before until, and returns the stamp of the last packet it
// read (zero if none). Pass that to AddInput of the source opened, before
// until, to replace it.
func (e *Engine) HandOver(label string, until time.Time) time.Time {
	r := e.takeReader(label)
	if r == nil {
		return time.Time{}
	}
	r.ctl.until.Store(until.UnixNano())
	close(r.ctl.handover)
	<-r.done
	r.cancel()
	return r.ctl.last
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
			if r.err != nil {
				out = append(out, fmt.Sprintf("input %s stopped: %v", l, r.err))
			} else if r.in.Live {
				out = append(out, fmt.Sprintf("capture on %s stopped", l))
			}
			continue // a file read to its end is done, not failing
		default:
		}
		if st.up.Load() == 1 {
			continue
		}
		if msg := st.lastErr.Load(); msg != nil {
			out = append(out, fmt.Sprintf("capture on %s is down: %s", l, *msg))
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
// analyzer keeps its slot); what the old analyzers shared across flows
// (de-duplication, learned fingerprints) and their metrics start afresh.
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
