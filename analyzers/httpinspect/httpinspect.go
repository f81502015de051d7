// Package httpinspect reads cleartext HTTP (a proxy's CONNECT, plain requests
// to Zoom, operating systems' captive-portal checks) and tells proxy denials
// (403/407/502 to a CONNECT, or the proxy closing it), block pages and
// captive-portal redirects apart, naming the product from
// configs/proxy-signatures.yml.
//
// Only the first request and answer of a connection are read, from in-order
// segments, up to reachability.http_max_header_bytes per direction.
package httpinspect

import (
	"bytes"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/proto/http"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Name is the analyzer's name.
const Name = "httpinspect"

// ServiceConnectivityCheck is the captive_portal_redirects_total service
// label of operating systems' portal checks (not Zoom traffic).
const ServiceConnectivityCheck = "connectivity_check"

// maxEvidence bounds header values copied into a finding.
const maxEvidence = 200

func init() { analyzers.Register(plugin{}) }

type plugin struct{}

func (plugin) Name() string { return Name }

func (plugin) Init(env analyzers.Env) (func() analyzers.Analyzer, error) {
	cfg := config.Default().Reach
	if env.Config != nil {
		cfg = env.Config.Reach
	}
	sigs := DefaultSignatures()
	if cfg.ProxySignaturesFile != "" {
		s, err := LoadSignatures(cfg.ProxySignaturesFile)
		if err != nil {
			return nil, err
		}
		sigs = s
	}
	sink := env.Sink
	if sink == nil {
		sink = finding.Discard
	}
	m := newMetrics()
	if env.Registerer != nil {
		for _, c := range m.collectors() {
			if err := env.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return func() analyzers.Analyzer { return newAnalyzer(cfg, env.Slot, sink, sigs, m) }, nil
}

type metrics struct {
	denials *prometheus.CounterVec
	portals *prometheus.CounterVec
	refused prometheus.Counter
}

// Reasons counted by zoomprobe_proxy_denials_total.
var denialReasons = []finding.Reason{finding.ReasonProxyDenied, finding.ReasonProxyAuthRequired, finding.ReasonProxyBadGateway, finding.ReasonProxyClosed, finding.ReasonBlockPage}

func newMetrics() *metrics {
	m := &metrics{
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_proxy_denials_total",
			Help: "Zoom requests a web proxy or firewall denied: proxy_denied (403), proxy_auth_required (407), proxy_bad_gateway (5xx), proxy_closed, block_page.",
		}, []string{"reason"}),
		portals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoomprobe_captive_portal_redirects_total",
			Help: "Zoom or connectivity-check requests a captive portal took over, by Zoom service (or connectivity_check).",
		}, []string{"service"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_http_inspect_refused_total",
			Help: "Plain HTTP flows not inspected because the worker's header buffers were all in use (reachability.http_budget_bytes).",
		}),
	}
	for _, r := range denialReasons {
		m.denials.WithLabelValues(string(r))
	}
	for _, s := range zoom.Services() {
		if s.IsZoom() {
			m.portals.WithLabelValues(s.String())
		}
	}
	m.portals.WithLabelValues(ServiceConnectivityCheck)
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.denials, m.portals, m.refused}
}

// Analyzer is one worker's instance.
type Analyzer struct {
	cfg  config.ReachConfig
	ext  flow.Ext[state]
	sink finding.Sink
	sigs *Signatures
	m    *metrics
	req  http.Request // reused: parsing allocates nothing
	resp http.Response
	free []*state
	held int // bytes of header buffers of the flows being read (reachability.http_budget_bytes)
}

// New makes a standalone analyzer (tests, tools); nil sigs means the built-in ones.
func New(cfg config.ReachConfig, slot int, sink finding.Sink, sigs *Signatures) *Analyzer {
	if sigs == nil {
		sigs = DefaultSignatures()
	}
	return newAnalyzer(cfg, slot, sink, sigs, newMetrics())
}

func newAnalyzer(cfg config.ReachConfig, slot int, sink finding.Sink, sigs *Signatures, m *metrics) *Analyzer {
	return &Analyzer{cfg: cfg, ext: flow.NewExt[state](slot), sink: sink, sigs: sigs, m: m}
}

// Collectors returns the metrics (standalone use).
func (a *Analyzer) Collectors() []prometheus.Collector { return a.m.collectors() }

var (
	_ analyzers.Analyzer  = (*Analyzer)(nil)
	_ analyzers.Forgetter = (*Analyzer)(nil)
)

// stream accumulates one direction's in-order bytes, bounded.
type stream struct {
	buf     []byte
	next    uint32
	started bool
	gap     bool // a segment went missing: stop reading
}

func (s *stream) add(seq uint32, b []byte) {
	if s.gap || len(b) == 0 {
		return
	}
	if !s.started {
		s.started, s.next = true, seq
	}
	if seq != s.next {
		if int32(seq-s.next) > 0 {
			s.gap = true
		}
		return // a retransmission, or a gap
	}
	s.next += uint32(len(b))
	room := cap(s.buf) - len(s.buf)
	s.buf = append(s.buf, b[:min(room, len(b))]...)
}

func (s *stream) full() bool { return len(s.buf) == cap(s.buf) }

// state is kept for flows whose first request names Zoom or is a connectivity check.
type state struct {
	req, resp stream
	reqDone   bool
	connect   bool
	check     *ConnectivityCheck
	svc       zoom.Service
	host      string
	method    string
	judged    bool
	reqTime   time.Time
}

// maxFree bounds the recycled states (with their header buffers) a worker
// keeps: enough for steady state, not the high-water mark of a burst.
const maxFree = 64

// notHTTP marks flows looked at and found uninteresting, without allocating.
var notHTTP = &state{}

// perFlow is what one inspected flow holds: its two header buffers.
func (a *Analyzer) perFlow() int { return 2 * a.cfg.HTTPMaxHeaderBytes }

// newState gives a state for a flow, charged to the budget; nil when the
// budget is spent (a flood of HTTP requests cannot grow memory past it).
func (a *Analyzer) newState() *state {
	if a.held+a.perFlow() > a.cfg.HTTPBudgetBytes {
		a.m.refused.Inc()
		return nil
	}
	a.held += a.perFlow()
	if n := len(a.free); n > 0 {
		s := a.free[n-1]
		a.free = a.free[:n-1]
		return s
	}
	return &state{req: stream{buf: make([]byte, 0, a.cfg.HTTPMaxHeaderBytes)}, resp: stream{buf: make([]byte, 0, a.cfg.HTTPMaxHeaderBytes)}}
}

func (a *Analyzer) drop(f *flow.Flow, s *state) {
	if s != notHTTP {
		a.held -= a.perFlow()
	}
	if s != notHTTP && len(a.free) < maxFree {
		rb, sb := s.req.buf[:0], s.resp.buf[:0]
		*s = state{}
		s.req.buf, s.resp.buf = rb, sb
		a.free = append(a.free, s)
	}
	a.ext.Set(f, notHTTP)
}

// Packet implements analyzers.Analyzer.
func (a *Analyzer) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if f.Proto != decode.ProtoTCP {
		return
	}
	s := a.ext.Get(f)
	if s == notHTTP {
		return
	}
	if s == nil {
		if d != flow.ToServer || len(p.Payload) == 0 {
			return
		}
		if !http.LooksLikeRequest(p.Payload) {
			a.ext.Set(f, notHTTP)
			return
		}
		if s = a.newState(); s == nil {
			a.ext.Set(f, notHTTP)
			return
		}
		s.reqTime = p.Time
		a.ext.Set(f, s)
	}
	if d == flow.ToServer {
		if !s.reqDone {
			s.req.add(p.Seq, p.Payload)
			a.request(f, s)
		}
		return
	}
	if !s.reqDone || s.judged {
		return
	}
	s.resp.add(p.Seq, p.Payload)
	closing := p.TCPFlags&(decode.TCPFin|decode.TCPRst) != 0
	if len(s.resp.buf) == 0 {
		if closing && s.connect {
			a.closed(f, s, p.Time)
			a.drop(f, s)
		}
		return
	}
	err := http.ParseResponse(s.resp.buf, &a.resp)
	switch {
	case err == http.ErrMalformed:
		s.judged = true // not HTTP back: nothing to say
	case err == http.ErrIncomplete:
		if s.resp.full() || s.resp.gap || closing {
			s.judged = true
		}
	case a.decisive(s) || closing || s.resp.full() || s.resp.gap || a.bodyComplete(s):
		a.judge(f, s, p.Time)
	}
	if s.judged {
		a.drop(f, s) // said all there is: the buffers go back to the budget
	}
}

// request parses the first request once its head is complete and decides
// whether the flow is worth watching.
func (a *Analyzer) request(f *flow.Flow, s *state) {
	err := http.ParseRequest(s.req.buf, &a.req)
	if err == http.ErrIncomplete && !s.req.full() && !s.req.gap {
		return
	}
	if err != nil {
		a.drop(f, s)
		return
	}
	r := &a.req
	s.reqDone = true
	s.connect = string(r.Method) == "CONNECT"
	var host []byte
	if s.connect || !bytes.HasPrefix(r.Target, []byte("/")) {
		host = http.HostOf(r.Target)
	}
	if host == nil {
		host = http.HostOf(r.Header("Host"))
	}
	switch {
	case zoom.IsZoomNameBytes(host):
		s.svc = zoom.ServiceForNameBytes(host)
	case f.Watched() && !s.connect:
		s.svc = f.Service()
	default:
		c, ok := a.sigs.Check(host, http.PathOf(r.Target))
		if !ok || s.connect {
			a.drop(f, s)
			return
		}
		s.check = c
	}
	s.host = string(host)
	s.method = methodName(r.Method)
}

// decisive: the status alone gives the verdict (no body needed).
func (a *Analyzer) decisive(s *state) bool {
	st := a.resp.Status
	return s.connect || st >= 300 && st < 400 || st == 407 || st == 511 || st == 204
}

// bodyComplete: Content-Length bytes of body are in (or none announced and
// the head is all there is so far: wait).
func (a *Analyzer) bodyComplete(s *state) bool {
	cl := a.resp.Header("Content-Length")
	if cl == nil {
		return false
	}
	n := 0
	for _, c := range cl {
		if c < '0' || c > '9' || n > 1<<24 {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return len(s.resp.buf)-a.resp.Len >= n
}

// Forget implements analyzers.Forgetter: a flow dropped after a panic gives
// its header buffers back to the budget.
func (a *Analyzer) Forget(f *flow.Flow) {
	if s := a.ext.Get(f); s != nil {
		a.drop(f, s)
	}
	a.ext.Set(f, nil)
}

// Expire implements analyzers.Analyzer: an answer cut short is judged on what arrived.
func (a *Analyzer) Expire(f *flow.Flow, now time.Time, why flow.ExpireReason) {
	s := a.ext.Get(f)
	if s == nil || s == notHTTP {
		a.ext.Set(f, nil)
		return
	}
	if s.reqDone && !s.judged {
		if len(s.resp.buf) > 0 {
			if http.ParseResponse(s.resp.buf, &a.resp) == nil {
				a.judge(f, s, now)
			}
		} else if s.connect && (f.FinSeen(flow.ToClient) || f.RstCount[flow.ToClient] > 0) {
			a.closed(f, s, now)
		}
	}
	a.drop(f, s)
	a.ext.Set(f, nil)
}

// ICMP implements analyzers.Analyzer (nothing to do: reach handles ICMP).
func (a *Analyzer) ICMP(*flow.Flow, *decode.Packet, flow.Dir) {}

// methodName returns a constant string for the common methods (no allocation).
func methodName(m []byte) string {
	for _, k := range [...]string{"CONNECT", "GET", "POST", "HEAD", "PUT", "OPTIONS"} {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}
