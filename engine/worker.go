package engine

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/identity"
	"github.com/zoomprobe/zoomprobe/zoom"
)

const numTransports = 2 // tcp, udp

func transportIndex(proto uint8) int {
	if proto == decode.ProtoUDP {
		return 1
	}
	return 0
}

// workerStats are written by one worker and read by the metrics collector.
type workerStats struct {
	flows       [zoomServices][numTransports]atomic.Uint64 // flows that ended, by final service
	active      [zoomServices][numTransports]atomic.Int64
	zoomPackets [zoomServices]atomic.Uint64
	evictions   atomic.Uint64
}

const zoomServices = zoom.NumServices

// analyzerHealth is one analyzer's panic record, shared by every worker.
type analyzerHealth struct {
	name   string
	panics atomic.Uint64
	logged atomic.Bool
}

// worker owns one flow table, one identity stage and one instance of every
// analyzer. It is driven from a single goroutine, so nothing on its
// per-packet path takes a lock.
type worker struct {
	table     *flow.Table
	identity  *identity.Stage
	analyzers []analyzers.Analyzer // in analyzers.Order
	slots     []int                // each one's flow.Ext slot, also its bit in flow.Flow.Dropped
	health    []*analyzerHealth    // each one's panic record
	log       *slog.Logger
	stats     *workerStats
	// zoomPackets counts here, where only this worker writes, and reaches
	// stats on every advance and flush: an atomic add per packet was a full
	// fence on the hot path.
	zoomPackets [zoomServices]uint64
	clock       packetClock // packet time; flushes judge at clock.now
	lastAdvance time.Time
	advancedNS  int64                               // lastAdvance in Unix ns (0 before the first): compared per packet
	onFlowEnd   func(*flow.Flow, flow.ExpireReason) // optional: analyze lists flows
	rec         *evidence.Recorder                  // nil: evidence off
	evDir       *evidence.Dir
	evq         evidenceQueue
	cur         *flow.Flow // the flow the analyzers are shown now (evidenceSink)
}

func newWorker(cfg flow.Config, id *identity.Stage, set *analyzerSet, as []analyzers.Analyzer, log *slog.Logger, onFlowEnd func(*flow.Flow, flow.ExpireReason)) *worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &worker{identity: id, log: log, stats: &workerStats{}, onFlowEnd: onFlowEnd}
	w.setAnalyzers(set, as)
	w.table = flow.NewTable(cfg, w.expire)
	return w
}

// setAnalyzers makes the worker run as, this worker's instances of set.
func (w *worker) setAnalyzers(set *analyzerSet, as []analyzers.Analyzer) {
	w.analyzers, w.slots, w.health = as, set.slots, set.health
}

// handle runs one decoded packet through the flow table, the identity stage
// and the analyzers.
func (w *worker) handle(p *decode.Packet) {
	switch w.clock.observe(p.Time) {
	case clockForward:
		if w.clock.nowNS-w.advancedNS >= int64(time.Second) {
			w.advance(p.Time)
		}
	case clockBack:
		// Flows last seen in the new clock's future would never go idle:
		// judge them now, as at the end of a capture.
		w.table.Flush(w.lastAdvance)
		w.lastAdvance, w.advancedNS = p.Time, w.clock.nowNS
	}
	switch {
	case p.IsTCP() || p.IsUDP():
		f, d, created := w.table.Packet(p)
		if created || !f.IdentityFinal() { // most packets: one branch
			w.identity.Packet(f, p, d, created)
		}
		if created {
			w.stats.active[f.Counted][transportIndex(f.Proto)].Add(1)
		}
		if w.rec != nil {
			w.rec.Packet(f, p, d)
		}
		w.cur = f
		w.packet(0, f, p, d)
		if w.rec != nil {
			w.writeEvidence()
		}
		w.cur = nil
		if svc := f.Service(); svc != f.Counted {
			t := transportIndex(f.Proto)
			w.stats.active[f.Counted][t].Add(-1)
			w.stats.active[svc][t].Add(1)
			f.Counted = svc
		}
		if svc := f.Service(); svc != zoom.ServiceNone {
			w.zoomPackets[svc]++
		}
	case p.IsICMP() && p.ICMP.Quoted:
		q := &p.ICMP
		if q.QProto != decode.ProtoTCP && q.QProto != decode.ProtoUDP {
			return
		}
		if f, d := w.table.Find(q.QProto, q.QSrc, q.QDst, q.QSrcPort, q.QDstPort); f != nil {
			if w.rec != nil {
				w.rec.ICMP(f, p)
			}
			w.cur = f
			w.icmp(0, f, p, d)
			if w.rec != nil {
				w.writeEvidence()
			}
			w.cur = nil
		}
	}
}

// The analyzer boundary: a panic in one analyzer's call is recovered, so one
// analyzer's bug on one hostile flow costs that analyzer that flow, not the
// daemon. One deferred recover covers the whole loop (a defer per analyzer
// would cost more per packet); after a panic the loop resumes with the next
// analyzer under a new recover. Neither allocates.

// packet shows p to the analyzers from index i on.
func (w *worker) packet(i int, f *flow.Flow, p *decode.Packet, d flow.Dir) {
	defer func() {
		if r := recover(); r != nil {
			w.panicked(i, f, r)
			w.packet(i+1, f, p, d)
		}
	}()
	for ; i < len(w.analyzers); i++ {
		if f.Dropped&(1<<w.slots[i]) == 0 {
			w.analyzers[i].Packet(f, p, d)
		}
	}
}

// icmp shows an ICMP error quoting f to the analyzers from index i on.
func (w *worker) icmp(i int, f *flow.Flow, p *decode.Packet, d flow.Dir) {
	defer func() {
		if r := recover(); r != nil {
			w.panicked(i, f, r)
			w.icmp(i+1, f, p, d)
		}
	}()
	for ; i < len(w.analyzers); i++ {
		if f.Dropped&(1<<w.slots[i]) == 0 {
			w.analyzers[i].ICMP(f, p, d)
		}
	}
}

// expireAnalyzers shows the expiring f to the analyzers from index i on.
func (w *worker) expireAnalyzers(i int, f *flow.Flow, now time.Time, why flow.ExpireReason) {
	defer func() {
		if r := recover(); r != nil {
			w.panicked(i, f, r)
			w.expireAnalyzers(i+1, f, now, why)
		}
	}()
	for ; i < len(w.analyzers); i++ {
		if f.Dropped&(1<<w.slots[i]) == 0 {
			w.analyzers[i].Expire(f, now, why)
		} else if fg, ok := w.analyzers[i].(analyzers.Forgetter); ok {
			fg.Forget(f) // what the dropped flow held goes back to the budget
		}
	}
}

// panicked drops f from analyzer i, counts the panic and logs the first one
// of each analyzer with its flow and stack.
func (w *worker) panicked(i int, f *flow.Flow, r any) {
	f.Dropped |= 1 << w.slots[i]
	h := w.health[i]
	h.panics.Add(1)
	if h.logged.CompareAndSwap(false, true) {
		w.log.Error("analyzer panicked; the flow is dropped from it (logged once per analyzer, counted in zoomprobe_analyzer_panics_total)",
			"analyzer", h.name, "panic", fmt.Sprint(r), "transport", f.Transport(),
			"client", f.Client().String(), "server", f.Server().String(), "service", f.Service().String(),
			"stack", string(debug.Stack()))
	}
}

// advance moves packet time forward: idle flows expire.
func (w *worker) advance(now time.Time) {
	if now.Before(w.lastAdvance) {
		return
	}
	w.lastAdvance, w.advancedNS = now, now.UnixNano()
	w.publishStats()
	w.table.Advance(now)
	if w.rec != nil {
		w.writeEvidence() // asked by another worker while this one was idle
	}
}

func (w *worker) flush(now time.Time) {
	if now.IsZero() {
		now = w.end()
	}
	w.table.Flush(now)
	w.publishStats()
}

// end is the worker's packet time: its latest packet, or a later idle tick
// of a live source.
func (w *worker) end() time.Time {
	if w.lastAdvance.After(w.clock.now) {
		return w.lastAdvance
	}
	return w.clock.now
}

// publishStats adds the packets counted since the last call to stats.
func (w *worker) publishStats() {
	for s, n := range w.zoomPackets {
		if n != 0 {
			w.stats.zoomPackets[s].Add(n)
			w.zoomPackets[s] = 0
		}
	}
}

func (w *worker) expire(f *flow.Flow, now time.Time, why flow.ExpireReason) {
	prev := w.cur // an eviction while a packet is handled
	w.cur = f
	w.expireAnalyzers(0, f, now, why)
	if w.rec != nil {
		w.writeEvidence() // before the flow's packets go
		w.rec.Release(f)
	}
	w.cur = prev
	w.identity.Expire(f)
	t := transportIndex(f.Proto)
	w.stats.active[f.Counted][t].Add(-1)
	w.stats.flows[f.Service()][t].Add(1)
	if why == flow.ExpireEvicted {
		w.stats.evictions.Add(1)
	}
	if w.onFlowEnd != nil {
		w.onFlowEnd(f, why)
	}
}
