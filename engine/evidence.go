package engine

import (
	"maps"
	"net/netip"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/evidence"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// evidenceSink writes the packets behind each finding about a flow as a
// pcapng, names the file in the finding, and passes the finding on.
//
// Analyzers emit synchronously from the worker that runs them, on the flow
// it is handling or on another flow between the same two addresses (a UDP
// attempt and its TCP fallback); the reader shards by that address pair, so
// the finding's flow belongs to the calling worker and its recorder is read
// on the worker's own goroutine, without a lock.
type evidenceSink struct {
	e    *Engine
	dir  *evidence.Dir
	next finding.Sink
}

func (s *evidenceSink) Emit(x finding.Finding) {
	if x.Flow != nil && len(s.e.workers) > 0 {
		w := s.e.workers[shardAddrs(x.Flow.Client, x.Flow.Server, len(s.e.workers))]
		if f := w.flowOf(x.Flow); f != nil && w.rec != nil {
			if pkts, st := w.rec.Packets(f); len(pkts) > 0 {
				if name, err := s.dir.Write(&x, pkts, st); err == nil {
					ev := maps.Clone(x.Evidence)
					if ev == nil {
						ev = map[string]any{}
					}
					ev[evidence.FileKey] = name
					x.Evidence = ev
				} else {
					s.e.log.Warn("cannot write evidence file (counted in zoomprobe_evidence_write_errors_total)", "kind", x.Kind, "err", err)
				}
			}
		}
	}
	s.next.Emit(x)
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
	if f := w.cur; f != nil && f.Proto == proto && f.Client == client && f.Server == server {
		return f
	}
	f, _ := w.table.Find(proto, x.Client, x.Server, x.ClientPort, x.ServerPort)
	return f
}
