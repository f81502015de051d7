package engine

import (
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
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

// worker owns one flow table and one instance of every analyzer. It is driven
// from a single goroutine, so nothing on its per-packet path takes a lock.
type worker struct {
	table       *flow.Table
	analyzers   []analyzers.Analyzer
	classifier  *zoom.Classifier
	names       *zoom.NameCache
	stats       *workerStats
	clock       packetClock // packet time; flushes judge at clock.now
	lastAdvance time.Time
	onFlowEnd   func(*flow.Flow, flow.ExpireReason) // optional: analyze lists flows
}

func newWorker(cfg flow.Config, as []analyzers.Analyzer, cl *zoom.Classifier, names *zoom.NameCache, onFlowEnd func(*flow.Flow, flow.ExpireReason)) *worker {
	w := &worker{analyzers: as, classifier: cl, names: names, stats: &workerStats{}, onFlowEnd: onFlowEnd}
	w.table = flow.NewTable(cfg, w.expire)
	return w
}

// handle runs one decoded packet through identity, the flow table and the analyzers.
func (w *worker) handle(p *decode.Packet) {
	switch w.clock.observe(p.Time) {
	case clockForward:
		if p.Time.Sub(w.lastAdvance) >= time.Second {
			w.advance(p.Time)
		}
	case clockBack:
		// Flows last seen in the new clock's future would never go idle:
		// judge them now, as at the end of a capture.
		w.table.Flush(w.lastAdvance)
		w.lastAdvance = p.Time
	}
	switch {
	case p.IsTCP() || p.IsUDP():
		f, d, created := w.table.Packet(p)
		if created {
			w.identify(f)
			w.stats.active[f.Counted][transportIndex(f.Proto)].Add(1)
		} else if f.Identity == flow.IdentityPending && f.Proto == decode.ProtoUDP && d == flow.ToServer && len(p.Payload) > 0 {
			w.identifyUDP(f, p)
		}
		for _, a := range w.analyzers {
			a.Packet(f, p, d)
		}
		if f.Service != f.Counted {
			t := transportIndex(f.Proto)
			w.stats.active[f.Counted][t].Add(-1)
			w.stats.active[f.Service][t].Add(1)
			f.Counted = f.Service
		}
		if f.Service != zoom.ServiceNone {
			w.stats.zoomPackets[f.Service].Add(1)
		}
	case p.IsICMP() && p.ICMP.Quoted:
		q := &p.ICMP
		if q.QProto != decode.ProtoTCP && q.QProto != decode.ProtoUDP {
			return
		}
		if f, d := w.table.Find(q.QProto, q.QSrc, q.QDst, q.QSrcPort, q.QDstPort); f != nil {
			for _, a := range w.analyzers {
				a.ICMP(f, p, d)
			}
		}
	}
}

// advance moves packet time forward: idle flows expire.
func (w *worker) advance(now time.Time) {
	if now.Before(w.lastAdvance) {
		return
	}
	w.lastAdvance = now
	w.table.Advance(now)
}

func (w *worker) flush(now time.Time) {
	if now.IsZero() {
		now = w.clock.now
		if w.lastAdvance.After(now) {
			now = w.lastAdvance // idle ticks of a live source
		}
	}
	w.table.Flush(now)
}

func (w *worker) expire(f *flow.Flow, now time.Time, why flow.ExpireReason) {
	for _, a := range w.analyzers {
		a.Expire(f, now, why)
	}
	t := transportIndex(f.Proto)
	w.stats.active[f.Counted][t].Add(-1)
	w.stats.flows[f.Service][t].Add(1)
	if why == flow.ExpireEvicted {
		w.stats.evictions.Add(1)
	}
	if w.onFlowEnd != nil {
		w.onFlowEnd(f, why)
	}
}

// identify classifies a new flow by its server's address, port and the name
// DNS answered for that address. TCP flows stay pending until the TLS analyzer
// has seen the ClientHello; UDP flows until the first datagram shows Zoom's header.
func (w *worker) identify(f *flow.Flow) {
	name, _ := w.names.Get(f.Server.Addr(), f.First)
	f.Name = name
	f.Service = w.classifier.Classify(f.Proto, f.Server.Addr(), f.Server.Port(), name)
	switch {
	case f.Service != zoom.ServiceNone:
		f.Identity = flow.IdentityDecided
	case f.Proto == decode.ProtoUDP && !zoom.IsZoomPort(decode.ProtoUDP, f.Server.Port()):
		f.Identity = flow.IdentityDecided
	}
}

// identifyUDP looks at the first client datagram to a Zoom port on an address
// outside Zoom's ranges: Zoom's session set-up or STUN proves it is Zoom media.
func (w *worker) identifyUDP(f *flow.Flow, p *decode.Packet) {
	f.Identity = flow.IdentityDecided
	if _, ok := zoom.ParseMedia(p.Payload); ok {
		f.Service = zoom.ServiceMedia
		return
	}
	if s, ok := zoom.ParseSTUN(p.Payload); ok && s.Zoom {
		f.Service = zoom.ServiceMedia
	}
}
