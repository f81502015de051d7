package engine

import (
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// evidenceSink names an evidence file in each finding about a flow and
// asks the worker owning that flow to write it; then passes the finding on.
//
// The worker owning a flow is the one its address pair shards to. Usually
// that is the worker emitting the finding, but not always (a UDP failure on
// one server paired with a TCP fallback to another), so the sink never
// touches a recorder: the owner writes the file itself, between two
// analyzer calls, on its own goroutine, and a recorder takes no lock.
type evidenceSink struct {
	e    *Engine
	dir  *evidence.Dir
	next finding.Sink
}

func (s *evidenceSink) Emit(x finding.Finding) {
	if x.Flow != nil && len(s.e.workers) > 0 {
		w := s.e.workers[shardAddrs(x.Flow.Client, x.Flow.Server, len(s.e.workers))]
		name := s.dir.Name(&x)
		ev := maps.Clone(x.Evidence)
		if ev == nil {
			ev = map[string]any{}
		}
		ev[evidence.FileKey] = name
		x.Evidence = ev
		w.evq.push(evidenceRequest{x: x, name: name})
	}
	s.next.Emit(x)
}

type evidenceRequest struct {
	x    finding.Finding
	name string
}

// evidenceQueue holds a worker's files to write. The worker checks pending
// (one atomic load) after each packet's analyzers.
type evidenceQueue struct {
	pending atomic.Bool
	mu      sync.Mutex
	reqs    []evidenceRequest
	spare   []evidenceRequest
}

func (q *evidenceQueue) push(r evidenceRequest) {
	q.mu.Lock()
	q.reqs = append(q.reqs, r)
	q.pending.Store(true)
	q.mu.Unlock()
}

// take returns the requests; the slice is reused by the take after next.
func (q *evidenceQueue) take() []evidenceRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.reqs
	q.reqs, q.spare = q.spare[:0], out
	q.pending.Store(false)
	return out
}

// writeEvidence writes the files asked of this worker; run on its goroutine
// (or once it has stopped).
func (w *worker) writeEvidence() {
	if !w.evq.pending.Load() {
		return
	}
	reqs := w.evq.take()
	for i := range reqs {
		r := &reqs[i]
		var pkts []evidence.Packet
		var st evidence.Status
		f := w.flowOf(r.x.Flow)
		if f != nil {
			pkts, st = w.rec.Packets(f)
		} else {
			st.Gone = true
		}
		if r.x.Kind == finding.KindUDPFallback {
			pkts = w.withFailedUDP(pkts, f, &r.x)
			if len(pkts) > 0 {
				st.Gone = false
			}
		}
		if !w.evDir.Submit(r.name, &r.x, pkts, st) {
			w.log.Warn("evidence file not written: too many waiting for the disk (counted in zoomprobe_evidence_write_errors_total)", "file", r.name)
		}
		*r = evidenceRequest{}
	}
}

// withFailedUDP adds, for a UDP fallback, the packets this worker kept of
// the UDP flows that failed (from the finding's client to its udp_server and
// udp_port): the file then shows the unanswered datagrams and the TCP
// connection that replaced them. The flows are looked for in this worker's
// table (a scan: fallbacks are rare) and among the flow being judged now
// (reach may give the fallback as the failed flow leaves the table). With
// the same server both flows are this worker's; with another server the UDP
// flows may be another worker's, and the file has the TCP side only.
func (w *worker) withFailedUDP(pkts []evidence.Packet, tcp *flow.Flow, x *finding.Finding) []evidence.Packet {
	server, err := netip.ParseAddr(fmt.Sprint(x.Evidence["udp_server"]))
	port, ok := x.Evidence["udp_port"].(int)
	if err != nil || !ok || x.Flow == nil {
		return pkts
	}
	failed := func(u *flow.Flow) bool {
		return u != nil && u != tcp && u.Proto == decode.ProtoUDP && u.Client().Addr() == x.Flow.Client &&
			u.Server().Addr() == server && int(u.ServerPort()) == port
	}
	const maxFlows = 4 // a client's retries from new ports
	var us []*flow.Flow
	if failed(w.cur) {
		us = append(us, w.cur)
	}
	w.table.Each(func(u *flow.Flow) {
		if len(us) < maxFlows && u != w.cur && failed(u) {
			us = append(us, u)
		}
	})
	if len(us) == 0 {
		return pkts
	}
	for _, u := range us {
		more, _ := w.rec.Packets(u)
		pkts = append(pkts, more...)
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].Time.Before(pkts[j].Time) })
	return pkts
}

// finishEvidence writes what is left once every worker has stopped, and
// waits for the files to be on disk.
func (e *Engine) finishEvidence() {
	for _, w := range e.workers {
		if w.rec != nil {
			w.writeEvidence()
		}
	}
	if e.opts.Evidence != nil {
		e.opts.Evidence.Flush()
	}
}

// flowOf finds the flow a finding is about: the one being handled (it may
// be leaving the table), else the table's.
func (w *worker) flowOf(x *finding.Flow) *flow.Flow {
	proto := decode.ProtoTCP
	switch x.Transport {
	case "tcp":
	case "udp":
		proto = decode.ProtoUDP
	default:
		return nil
	}
	client := netip.AddrPortFrom(x.Client, x.ClientPort)
	server := netip.AddrPortFrom(x.Server, x.ServerPort)
	if f := w.cur; f != nil && f.Proto == proto && f.Client() == client && f.Server() == server {
		return f
	}
	f, _ := w.table.Find(proto, x.Client, x.Server, x.ClientPort, x.ServerPort)
	return f
}
