// Package offline analyses capture files: the engine at full speed over
// pcap/pcapng files, then the findings, the flows with their service class and
// the final metrics. `zoomprobe analyze` prints it; `audit` and the tests use it.
package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/evidence"
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
	Clock       *certcheck.Clock
	// EvidenceDir, when set, receives one pcapng per finding about a flow
	// (bounded by the config's evidence: section, as in the daemon).
	EvidenceDir string
	// Boxes are captures of a box's two sides (analyze --box): each side's
	// file is read as its own input and the two are matched (boxmatch).
	Boxes []Box
}

// Box is a box's two captures: Inside (toward the clients) and Outside
// (toward Zoom). Its settings come from the configuration's capture.boxes
// entry of the same name, if any, else the defaults.
type Box struct {
	Name, Inside, Outside string
}

// ParseBox reads NAME:INSIDE.pcap:OUTSIDE.pcap.
func ParseBox(s string) (Box, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return Box{}, fmt.Errorf("--box %q: write NAME:INSIDE.pcap:OUTSIDE.pcap", s)
	}
	b := Box{Name: parts[0], Inside: parts[1], Outside: parts[2]}
	if !config.ValidBoxName(b.Name) {
		return Box{}, fmt.Errorf("--box %q: the name %q: use 1 to 32 letters, digits, '_' and '-', starting with a letter", s, b.Name)
	}
	if b.Inside == b.Outside {
		return Box{}, fmt.Errorf("--box %q: the inside and outside captures are the same file", s)
	}
	return b, nil
}

// boxConfig gives the boxes' files as inputs of their own: cfg's copy names
// each side's input as an interface and a box.
func boxConfig(cfg *config.Config, boxes []Box) (*config.Config, []string, []string) {
	c := *cfg
	c.Capture.Interfaces = nil
	c.Capture.Boxes = nil
	var labels, paths []string
	for _, b := range boxes {
		bc := config.BoxConfig{Name: b.Name}
		for _, have := range cfg.Capture.Boxes {
			if have.Name == b.Name {
				bc = have
			}
		}
		bc.Inside, bc.Outside = b.Name+".inside", b.Name+".outside"
		bc.SetDefaults()
		c.Capture.Boxes = append(c.Capture.Boxes, bc)
		c.Capture.Interfaces = append(c.Capture.Interfaces, bc.Inside, bc.Outside)
		labels = append(labels, bc.Inside, bc.Outside)
		paths = append(paths, b.Inside, b.Outside)
	}
	return &c, labels, paths
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
	// NameSource tells where Name came from: sni or dns.
	NameSource string    `json:"name_source,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Packets    [2]uint64 `json:"packets"` // to server, to client
	Bytes      [2]uint64 `json:"bytes"`
	TCPState   string    `json:"tcp_state,omitempty"`

	// Source is the evidence that decided Service: sni, dns, range,
	// zoom_udp, stun or watch (flow/identity).
	Source string `json:"source,omitempty"`

	// The TLS analyzer's summary of the handshake (every watched TLS flow)
	// and the findings on this flow (by 5-tuple).
	SNI        string   `json:"sni,omitempty"`
	TLSVersion string   `json:"tls_version,omitempty"`
	Issuer     string   `json:"issuer,omitempty"`   // the leaf issuer's CN, else its DN
	Verdicts   []string `json:"verdicts,omitempty"` // kind/reason of each finding, in time order
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
	// Warnings are read errors the analysis went past (a truncated file):
	// the results cover the packets read before each.
	Warnings []string `json:"warnings,omitempty"`

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
	type input struct {
		label string
		files []string
	}
	var inputs []input
	if len(files) > 0 {
		inputs = append(inputs, input{"file", files})
	}
	all := files
	if len(o.Boxes) > 0 {
		var labels, paths []string
		cfg, labels, paths = boxConfig(cfg, o.Boxes)
		for i := range labels {
			inputs = append(inputs, input{labels[i], paths[i : i+1]})
		}
		all = append(append([]string(nil), files...), paths...)
	}
	if len(inputs) == 0 {
		return nil, errors.New("no capture file to analyse")
	}
	res := &Result{Files: all, FlowsByService: map[string]map[string]int{}, registry: reg}
	var mu sync.Mutex
	// handshakes holds the TLS analyzer's summary of each live watched flow
	// until the flow ends: version and issuer for flows without a finding.
	handshakes := map[handshakeKey]analyzers.HandshakeSummary{}
	onHandshake := func(f *flow.Flow, s analyzers.HandshakeSummary) {
		mu.Lock()
		defer mu.Unlock()
		handshakes[handshakeKeyOf(f)] = s
	}
	onEnd := func(f *flow.Flow, _ flow.ExpireReason) {
		mu.Lock()
		defer mu.Unlock()
		hs, hsSeen := handshakes[handshakeKeyOf(f)]
		if hsSeen {
			delete(handshakes, handshakeKeyOf(f))
		}
		svc, tr := f.Service().String(), f.Transport()
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
		id := f.Identity()
		var nameSource string
		if id.Name != "" {
			nameSource = id.NameSource.String()
		}
		res.Flows = append(res.Flows, Flow{
			Transport: tr, Client: f.Client().Addr(), ClientPort: f.ClientPort(),
			Server: f.Server().Addr(), ServerPort: f.ServerPort(), Service: svc,
			Source: id.Source.String(), Name: id.Name, NameSource: nameSource,
			First: f.First(), Last: f.Last(), Packets: [2]uint64{uint64(f.Packets[0]), uint64(f.Packets[1])}, Bytes: f.Bytes, TCPState: tcpState(f),
			TLSVersion: hs.Version, Issuer: hs.Issuer,
		})
	}
	var ev *evidence.Dir
	if o.EvidenceDir != "" {
		if ev, err = evidence.OpenDir(evidence.DirConfig{Path: o.EvidenceDir, MaxBytes: cfg.Evidence.MaxDirBytes, Retention: cfg.Evidence.Retention, Logger: o.Logger}); err != nil {
			return nil, err
		}
		if err := reg.Register(ev); err != nil {
			return nil, err
		}
	}
	eng, err := engine.New(engine.Options{
		Config: cfg, Registerer: reg, Sink: exporters.Tee(counter, coll), Logger: o.Logger, Clock: o.Clock, OnFlowEnd: onEnd, OnHandshake: onHandshake,
		Evidence: ev,
	})
	if err != nil {
		return nil, err
	}
	srcs := make([]*tolerantSource, len(inputs))
	var ins []engine.Input
	for i, in := range inputs {
		ins = append(ins, engine.Input{Label: in.label, Open: func() (capture.Source, error) {
			s, err := capture.OpenFiles(in.files)
			if err != nil {
				return nil, err // cannot open or not a capture: nothing to analyse
			}
			srcs[i] = &tolerantSource{Source: s}
			return srcs[i], nil
		}})
	}
	if err := eng.Run(ctx, ins); err != nil {
		return nil, err
	}
	for _, src := range srcs {
		if src != nil && len(src.readErrs) > 0 {
			if src.delivered == 0 {
				return nil, src.readErrs[0] // not one packet: the file is unusable
			}
			for _, e := range src.readErrs {
				res.Warnings = append(res.Warnings, e.Error()+" (results cover the packets before it)")
			}
		}
	}
	res.Findings = coll.Findings()
	res.DroppedFindings = coll.Dropped
	sortFindings(res.Findings)
	sortFlows(res.Flows)
	attachVerdicts(res.Flows, res.Findings)
	res.Packets = packetsRead(reg)
	return res, nil
}

// tolerantSource goes on past a file's read error (a capture cut short by a
// killed tcpdump, a corrupt record): the merged source then continues with
// the other files, and the error becomes a warning. Errors of opening never
// reach it; ErrClosed (cancellation) and io.EOF pass through.
type tolerantSource struct {
	capture.Source
	delivered uint64
	readErrs  []error
	closed    atomic.Bool
}

// maxReadErrors bounds the warnings kept: each file fails at most once, but
// the bound does not depend on that.
const maxReadErrors = 64

func (s *tolerantSource) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	for {
		data, ts, n, link, err := s.Source.ReadPacket()
		if err == nil {
			s.delivered++
			return data, ts, n, link, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, capture.ErrClosed) || s.closed.Load() || len(s.readErrs) >= maxReadErrors {
			return data, ts, n, link, err
		}
		s.readErrs = append(s.readErrs, err)
	}
}

func (s *tolerantSource) Close() error {
	s.closed.Store(true)
	return s.Source.Close()
}

// sortFindings orders findings by time, then by everything that tells two
// apart, so the output does not depend on which worker emitted first.
func sortFindings(fs []finding.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		var fa, fb finding.Flow
		if a.Flow != nil {
			fa = *a.Flow
		}
		if b.Flow != nil {
			fb = *b.Flow
		}
		if (a.Flow == nil) != (b.Flow == nil) {
			return a.Flow == nil // flowless findings first
		}
		if c := fa.Server.Compare(fb.Server); c != 0 {
			return c < 0
		}
		if fa.ServerPort != fb.ServerPort {
			return fa.ServerPort < fb.ServerPort
		}
		if c := fa.Client.Compare(fb.Client); c != 0 {
			return c < 0
		}
		if fa.ClientPort != fb.ClientPort {
			return fa.ClientPort < fb.ClientPort
		}
		return fa.Transport < fb.Transport
	})
}

// sortFlows orders flows by first packet time, then by their 5-tuple.
func sortFlows(fl []Flow) {
	sort.Slice(fl, func(i, j int) bool {
		a, b := &fl[i], &fl[j]
		if !a.First.Equal(b.First) {
			return a.First.Before(b.First)
		}
		if a.Transport != b.Transport {
			return a.Transport < b.Transport
		}
		if c := a.Client.Compare(b.Client); c != 0 {
			return c < 0
		}
		if a.ClientPort != b.ClientPort {
			return a.ClientPort < b.ClientPort
		}
		if c := a.Server.Compare(b.Server); c != 0 {
			return c < 0
		}
		return a.ServerPort < b.ServerPort
	})
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
