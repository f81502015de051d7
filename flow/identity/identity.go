// Package identity is the stage between the flow table and the analyzers that
// decides what each flow is: its service class, the name it is known by and
// how that was learnt (flow.Source). It is the only writer of a flow's
// identity: flow.Flow keeps it unexported, and the key that unlocks it
// (flow/internal/writekey) can be imported only from under flow/.
//
// Evidence, strongest first (README.md has the reasoning):
//
//  1. The server_name of the client's ClientHello (source sni), read across
//     TCP segments in any order. An explicit SNI replaces a name learnt from
//     DNS: a ClientHello naming example.com to an address a DNS answer once
//     mapped to zoom.us is not Zoom. A non-Zoom SNI leaves the address rules.
//  2. Zoom's UDP media set-up (zoom_udp) or a STUN request with Zoom's
//     attributes (stun) in the first client datagram to a Zoom port.
//  3. The DNS name of the server address (dns), when it is a Zoom name.
//  4. Zoom's ranges (range), refined by port.
//  5. The zoom.watch settings (watch). Watching never demotes Zoom: a watched
//     flow stays open to the evidence above until it is final.
//
// A TCP flow's identity is final once the client's first bytes were read (a
// ClientHello, or not TLS); a UDP flow's when it is Zoom by address or name,
// is not to a Zoom port, or its first client datagram was read.
package identity

import (
	"strings"
	"unsafe"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/internal/writekey"
	ptls "github.com/zoomprobe/zoomprobe/proto/tls"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// key unlocks every flow's identity for this package.
var key = writekey.New()

// maxFree bounds the recycled ClientHello buffers a stage keeps; keepBytes
// is the most stream buffer a recycled one keeps.
const (
	maxFree   = 64
	keepBytes = 4 << 10
)

// Config builds a stage.
type Config struct {
	Classifier *zoom.Classifier // Zoom's ranges and the watch settings
	Names      *zoom.NameCache  // DNS-snooped names; nil: none
	// MaxHelloBytes bounds the client bytes held per flow while its
	// ClientHello arrives (zoom.max_client_hello_bytes).
	MaxHelloBytes int
	// BudgetBytes bounds what the stage holds for all flows' ClientHellos
	// at once, recycled buffers included (zoom.client_hello_budget_bytes);
	// 0: DefaultBudgetBytes.
	BudgetBytes int
	// Metrics are shared by the stages of all workers; nil: private.
	Metrics *Metrics
}

// Stage is one worker's identity stage. It is driven from the worker's
// goroutine and allocates nothing per packet: the only allocations are a
// watched flow's SNI string and, while a ClientHello spans segments, its
// buffer (recycled).
type Stage struct {
	cl      *zoom.Classifier
	names   *zoom.NameCache
	max     int
	m       *Metrics
	free    []*hello
	budget  *ptls.Budget
	scratch []byte // joins a ClientHello split over TLS records
}

// hello is a flow's ClientHello while it arrives in several segments. The
// records' payloads are joined as the stream's prefix grows, so each byte is
// looked at once however finely the hello is cut (one-byte segments, one-byte
// records: evasion tools do both).
type hello struct {
	stream  ptls.Stream
	hs      []byte // the handshake bytes of the records read so far
	next    int    // stream offset of the first byte not yet read
	recLeft int    // payload bytes of the current record not yet read; 0: a header comes next
}

// join reads the records of the stream's new prefix into h.hs; false when
// they are not handshake records of TLS.
func (h *hello) join() bool {
	b := h.stream.Bytes()
	for h.next < len(b) {
		if h.recLeft == 0 {
			if len(b)-h.next < recordHeaderLen {
				if b[h.next] != recordHandshake {
					return false
				}
				return true // the header's other bytes have not arrived
			}
			r := b[h.next:]
			n := int(r[3])<<8 | int(r[4])
			if r[0] != recordHandshake || r[1] != 0x03 || n == 0 || n > maxRecordLen {
				return false
			}
			h.next += recordHeaderLen
			h.recLeft = n
			continue
		}
		k := min(h.recLeft, len(b)-h.next, cap(h.hs)-len(h.hs))
		if k == 0 {
			return true // hs is full: the stream's cap refuses what follows
		}
		h.hs = append(h.hs, b[h.next:h.next+k]...)
		h.next += k
		h.recLeft -= k
	}
	return true
}

// New makes a stage.
func New(c Config) *Stage {
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Classifier == nil {
		c.Classifier = zoom.NewClassifier(zoom.DefaultRanges(), config.WatchConfig{})
	}
	if c.MaxHelloBytes <= 0 {
		c.MaxHelloBytes = DefaultMaxHelloBytes
	}
	if c.BudgetBytes <= 0 {
		c.BudgetBytes = DefaultBudgetBytes
	}
	return &Stage{cl: c.Classifier, names: c.Names, max: c.MaxHelloBytes, m: c.Metrics, scratch: make([]byte, 0, c.MaxHelloBytes),
		budget: ptls.NewBudget(c.BudgetBytes)}
}

// DefaultBudgetBytes is the default per-worker bound on ClientHello buffers.
const DefaultBudgetBytes = 4 << 20

// DefaultMaxHelloBytes is the default per-flow ClientHello bound: a
// post-quantum hello is about 1.8 KB, one with a large padding or ECH
// extension a few more.
const DefaultMaxHelloBytes = 8192

// Packet runs before the analyzers for each TCP or UDP packet of f; created
// says the packet opened the flow.
// UseNames makes the stage look names up in c from now on (a worker whose
// reader keeps a cache of its own).
func (s *Stage) UseNames(c *zoom.NameCache) { s.names = c }

func (s *Stage) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir, created bool) {
	c := f.IdentityCell(key)
	if created {
		s.start(f, c)
	}
	if c.Final {
		return
	}
	switch f.Proto {
	case decode.ProtoTCP:
		if d != flow.ToServer {
			return
		}
		if p.TCPFlags&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn && !created && c.Service == zoom.ServiceNone {
			s.retryName(f, c)
		}
		if len(p.Payload) > 0 {
			seq := p.Seq
			if p.TCPFlags&decode.TCPSyn != 0 {
				seq++ // TCP Fast Open: the SYN itself takes a sequence number
			}
			s.clientData(f, c, seq, p.Payload)
		}
	case decode.ProtoUDP:
		if d == flow.ToServer && len(p.Payload) > 0 {
			s.firstDatagram(c, p.Payload)
		}
	}
}

// Expire releases what the stage holds for f; call it before the flow is recycled.
func (s *Stage) Expire(f *flow.Flow) {
	s.release(f.IdentityCell(key))
}

// start classifies a new flow by its server address, port and DNS name.
func (s *Stage) start(f *flow.Flow, c *flow.IdentityCell) {
	s.release(c)
	*c = flow.IdentityCell{} // a table hands out clean flows; a reused one starts clean too
	server := f.Server().Addr()
	name, _ := s.names.Get(server, f.First())
	svc, rule := s.cl.ClassifyRule(f.Proto, server, f.ServerPort(), name)
	c.Service, c.Source = svc, sourceOf(rule, flow.SourceDNS)
	if svc != zoom.ServiceNone && name != "" {
		c.Name, c.NameSource = name, flow.SourceDNS
	}
	if f.Proto == decode.ProtoUDP {
		c.Final = rule == zoom.RuleName || rule == zoom.RuleRange || !zoom.IsZoomPort(zoom.ProtoUDP, f.ServerPort())
	}
}

// retryName looks the server up again when a client repeats its SYN: the
// DNS answer that names it may have been read after the first SYN (another
// reader's socket of a fanout group, another input). A dropped SYN is
// retried, so the block is still told as Zoom's. Only repeated SYNs pay for
// the lookup.
func (s *Stage) retryName(f *flow.Flow, c *flow.IdentityCell) {
	server := f.Server().Addr()
	name, ok := s.names.Get(server, f.First())
	if !ok {
		return
	}
	svc, rule := s.cl.ClassifyRule(f.Proto, server, f.ServerPort(), name)
	if svc == zoom.ServiceNone {
		return
	}
	c.Service, c.Source = svc, sourceOf(rule, flow.SourceDNS)
	c.Name, c.NameSource = name, flow.SourceDNS
}

func sourceOf(r zoom.Rule, name flow.Source) flow.Source {
	switch r {
	case zoom.RuleName:
		return name
	case zoom.RuleRange:
		return flow.SourceRange
	case zoom.RuleWatch:
		return flow.SourceWatch
	}
	return flow.SourceNone
}

// firstDatagram reads the first client datagram to a Zoom port outside
// Zoom's ranges: Zoom's session set-up or STUN proves it is Zoom media, even
// when the flow is watched.
func (s *Stage) firstDatagram(c *flow.IdentityCell, b []byte) {
	c.Final = true
	if _, ok := zoom.ParseMedia(b); ok {
		c.Service, c.Source = zoom.ServiceMedia, flow.SourceZoomUDP
		return
	}
	if st, ok := zoom.ParseSTUN(b); ok && st.Zoom {
		c.Service, c.Source = zoom.ServiceMedia, flow.SourceSTUN
	}
}

// clientData reads client bytes until the ClientHello's name is known or the
// bytes are not a ClientHello. The first segment is read in place; a
// ClientHello that needs more (or a segment ahead of a hole) is buffered.
func (s *Stage) clientData(f *flow.Flow, c *flow.IdentityCell, seq uint32, payload []byte) {
	h := (*hello)(c.Stage)
	if h == nil {
		isn, known := f.ISN(flow.ToServer)
		if !known || seq == isn+1 {
			if name, res := scanHello(payload, s.scratch); res != scanNeedMore {
				s.settle(f, c, name, res)
				return
			}
		}
		if h = s.get(); h == nil {
			// The worker's ClientHello budget is spent (many hellos cut
			// at once): the address decides this flow's identity.
			s.m.refused[refusedBudget].Add(1)
			s.settle(f, c, nil, scanNoName)
			return
		}
		c.Stage = unsafe.Pointer(h)
		if known {
			h.stream.SYN(isn)
		}
	}
	before := h.stream.Len()
	h.stream.Segment(seq, payload)
	if h.stream.Len() > before {
		if !h.join() {
			s.settle(f, c, nil, scanNotHello)
			return
		}
		// Cheap however often: it walks the message by its lengths.
		if name, res := scanHandshake(h.hs); res != scanNeedMore {
			s.settle(f, c, name, res)
			return
		}
	}
	switch {
	case h.stream.OverBudget > 0:
		s.m.refused[refusedBudget].Add(1)
		s.settle(f, c, nil, scanNoName)
	case h.stream.Overflow:
		s.m.refused[refusedBytes].Add(1)
		s.settle(f, c, nil, scanNoName)
	}
}

// settle makes a TCP flow's identity final. Without a name (not TLS, no
// SNI, refused) the identity from the address stays; a name decides.
func (s *Stage) settle(f *flow.Flow, c *flow.IdentityCell, name []byte, res scanResult) {
	s.release(c)
	c.Final = true
	if res != scanFound {
		return
	}
	// The name is only looked at here; it is copied below when kept.
	view := unsafe.String(unsafe.SliceData(name), len(name))
	svc, rule := s.cl.ClassifyRule(f.Proto, f.Server().Addr(), f.ServerPort(), view)
	c.Service, c.Source = svc, sourceOf(rule, flow.SourceSNI)
	switch {
	case svc == zoom.ServiceNone:
		c.Name, c.NameSource = "", flow.SourceNone
	case c.Name != view:
		c.Name = strings.Clone(view) // watched flows only: others need no name
	}
	if svc != zoom.ServiceNone {
		c.NameSource = flow.SourceSNI
	}
}

// helloBytes is what a hello costs the budget besides its stream's buffers:
// the joined handshake bytes (the cap) and the struct.
func (s *Stage) helloBytes() int { return s.max + int(unsafe.Sizeof(hello{})) }

// get takes a recycled hello or makes one the budget can pay for; nil when
// it cannot.
func (s *Stage) get() *hello {
	var h *hello
	if n := len(s.free); n > 0 {
		h = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		if !s.budget.Take(s.helloBytes()) {
			return nil
		}
		h = &hello{hs: make([]byte, 0, s.max)}
		h.stream.SetBudget(s.budget)
	}
	h.stream.Reset(s.max)
	h.hs, h.next, h.recLeft = h.hs[:0], 0, 0
	return h
}

// release recycles the flow's hello, its big stream buffer given back; past
// maxFree the hello itself goes back to the budget.
func (s *Stage) release(c *flow.IdentityCell) {
	h := (*hello)(c.Stage)
	c.Stage = nil
	if h == nil {
		return
	}
	if len(s.free) >= maxFree {
		h.stream.Release()
		s.budget.Give(s.helloBytes())
		return
	}
	if h.stream.BufferBytes() > keepBytes {
		h.stream.Release()
	}
	s.free = append(s.free, h)
}
