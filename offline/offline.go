// Package offline analyses capture files: the engine at full speed over
// pcap/pcapng files, then the findings, the flows with their service class and
// the final metrics. `zoomprobe analyze` prints it; `audit` and the tests use it.
package offline

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/exporters"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// Options tune an analysis.
type Options struct {
	// MaxListedFlows bounds the watched flows listed in the result; the rest
	// are only counted.
	MaxListedFlows int
	// MaxFindings bounds the findings kept in memory.
	MaxFindings int
	Logger      *slog.Logger
	Clock       *analyzers.Clock
}

// Flow is a watched flow as `analyze --format json` lists it.
type Flow struct {
	Transport  string     `json:"transport"`
	Client     netip.Addr `json:"client"`
	ClientPort uint16     `json:"client_port"`
	Server     netip.Addr `json:"server"`
	ServerPort uint16     `json:"server_port"`
	Service    string     `json:"service"`
	Name       string     `json:"name,omitempty"`
	First      time.Time  `json:"first"`
	Last       time.Time  `json:"last"`
	Packets    [2]uint64  `json:"packets"` // to server, to client
	Bytes      [2]uint64  `json:"bytes"`
	TCPState   string     `json:"tcp_state,omitempty"`
}

// Result is what an analysis found.
type Result struct {
	Files           []string                  `json:"files"`
	Findings        []finding.Finding         `json:"findings"`
	Flows           []Flow                    `json:"flows"`
	FlowsByService  map[string]map[string]int `json:"flows_by_service"` // service → transport → count
	UnlistedFlows   int                       `json:"unlisted_flows,omitempty"`
	DroppedFindings int                       `json:"dropped_findings,omitempty"`
	Packets         uint64                    `json:"packets"`

	registry *prometheus.Registry
}

// Analyze runs the engine over files (merged in packet-time order).
func Analyze(ctx context.Context, cfg *config.Config, files []string, o Options) (*Result, error) {
	if o.MaxListedFlows == 0 {
		o.MaxListedFlows = 100000
	}
	if o.MaxFindings == 0 {
		o.MaxFindings = 100000
	}
	reg := prometheus.NewRegistry()
	counter, err := exporters.NewCounter(reg)
	if err != nil {
		return nil, err
	}
	coll := exporters.NewCollector(o.MaxFindings)
	res := &Result{Files: files, FlowsByService: map[string]map[string]int{}, registry: reg}
	var mu sync.Mutex
	onEnd := func(f *flow.Flow, _ flow.ExpireReason) {
		mu.Lock()
		defer mu.Unlock()
		svc, tr := f.Service.String(), f.Transport()
		if res.FlowsByService[svc] == nil {
			res.FlowsByService[svc] = map[string]int{}
		}
		res.FlowsByService[svc][tr]++
		if !f.Watched() {
			return
		}
		if len(res.Flows) >= o.MaxListedFlows {
			res.UnlistedFlows++
			return
		}
		res.Flows = append(res.Flows, Flow{
			Transport: tr, Client: f.Client.Addr(), ClientPort: f.Client.Port(),
			Server: f.Server.Addr(), ServerPort: f.Server.Port(), Service: svc, Name: f.Name,
			First: f.First, Last: f.Last, Packets: f.Packets, Bytes: f.Bytes, TCPState: tcpState(f),
		})
	}
	eng, err := engine.New(engine.Options{
		Config: cfg, Registerer: reg, Sink: exporters.Tee(counter, coll), Logger: o.Logger, Clock: o.Clock, OnFlowEnd: onEnd,
	})
	if err != nil {
		return nil, err
	}
	in := engine.Input{Label: "file", Open: func() (capture.Source, error) { return capture.OpenFiles(files) }}
	if err := eng.Run(ctx, []engine.Input{in}); err != nil {
		return nil, err
	}
	res.Findings = coll.Findings()
	res.DroppedFindings = coll.Dropped
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Time.Before(res.Findings[j].Time) })
	sort.Slice(res.Flows, func(i, j int) bool {
		if !res.Flows[i].First.Equal(res.Flows[j].First) {
			return res.Flows[i].First.Before(res.Flows[j].First)
		}
		return res.Flows[i].ClientPort < res.Flows[j].ClientPort
	})
	res.Packets = packetsRead(reg)
	return res, nil
}

func tcpState(f *flow.Flow) string {
	if f.Transport() != "tcp" {
		return ""
	}
	return f.TCP.String()
}

// WriteMetrics writes the final metrics in the text exposition format.
func (r *Result) WriteMetrics(w io.Writer) error {
	mfs, err := r.registry.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// Gatherer exposes the final metrics (tests compare them with golden text).
func (r *Result) Gatherer() prometheus.Gatherer { return r.registry }

func packetsRead(g prometheus.Gatherer) uint64 {
	mfs, _ := g.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "zoomprobe_packets_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return uint64(n)
}
