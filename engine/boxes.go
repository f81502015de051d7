package engine

import (
	"sync"
	"sync/atomic"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/boxmatch"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// boxes runs the matchers of capture.boxes in the readers of their sides,
// before sharding: the two copies of a packet, one per side, must meet in one
// place whatever worker their flows land on.
type boxes struct {
	byLabel map[string]boxSide // an input's label (interface name) to the box side it captures
	all     []*boxmatch.Matcher
	sides   analyzers.BoxSides
	// handlers are the running analyzer set's verdict receivers.
	handlers atomic.Pointer[[]func(boxmatch.Verdict)]

	mu      sync.Mutex
	indexes map[string]uint8 // input label to decode.Packet.Input
}

type boxSide struct {
	x    *boxmatch.Matcher
	side boxmatch.Side
}

func newBoxes(cfg *config.Config, m *boxmatch.Metrics) *boxes {
	b := &boxes{byLabel: map[string]boxSide{}, indexes: map[string]uint8{}}
	for i, name := range cfg.Capture.Interfaces {
		if i < 256 {
			b.indexes[name] = uint8(i)
		}
	}
	for _, bc := range cfg.Capture.Boxes {
		x := boxmatch.New(bc, m, b.verdict)
		b.all = append(b.all, x)
		b.byLabel[bc.Inside] = boxSide{x, boxmatch.Inside}
		b.byLabel[bc.Outside] = boxSide{x, boxmatch.Outside}
		b.sides[b.index(bc.Inside)] = analyzers.BoxInside
		b.sides[b.index(bc.Outside)] = analyzers.BoxOutside
	}
	return b
}

// index is the decode.Packet.Input of the input called label: its place in
// capture.interfaces, or the next free number for an input not listed
// there (the default-route interface, a file).
func (b *boxes) index(label string) uint8 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i, ok := b.indexes[label]; ok {
		return i
	}
	i := uint8(min(len(b.indexes), 255))
	b.indexes[label] = i
	return i
}

func (b *boxes) verdict(v boxmatch.Verdict) {
	if hs := b.handlers.Load(); hs != nil {
		for _, h := range *hs {
			h(v)
		}
	}
}

// flush judges what every box still holds (the end of the files).
func (b *boxes) flush() {
	for _, x := range b.all {
		x.Flush()
	}
}

// observe shows a packet read on a box side to its matcher: a Zoom (or
// watched) packet is matched, any other only moves the side's clock.
func (e *Engine) boxObserve(bs boxSide, p *decode.Packet) {
	var svc zoom.Service
	toServer := false
	switch {
	case p.IsTCP() || p.IsUDP():
		dsvc := e.classifier.ClassifyWithCache(p.Proto, p.Dst, p.DstPort, "", e.names, p.Time)
		ssvc := e.classifier.ClassifyWithCache(p.Proto, p.Src, p.SrcPort, "", e.names, p.Time)
		switch {
		case dsvc != zoom.ServiceNone && ssvc != zoom.ServiceNone:
			// Both ends look like servers (a watched network holding the
			// box's own outside address): the port tells.
			toServer = towardServerPort(p.Proto, p.SrcPort, p.DstPort)
			svc = ssvc
			if toServer {
				svc = dsvc
			}
		case dsvc != zoom.ServiceNone:
			svc, toServer = dsvc, true
		default:
			svc = ssvc
		}
	case p.IsICMP() && p.ICMP.Quoted:
		svc = e.classifier.ClassifyWithCache(p.ICMP.QProto, p.ICMP.QDst, p.ICMP.QDstPort, "", e.names, p.Time)
	}
	if svc == zoom.ServiceNone {
		bs.x.Seen(bs.side, p.Time)
		return
	}
	bs.x.Observe(bs.side, p, toServer, uint8(svc))
}

// boxSides is what analyzers learn about the inputs; nil without boxes.
func (e *Engine) boxSides() *analyzers.BoxSides {
	if len(e.boxes.all) == 0 {
		return nil
	}
	return &e.boxes.sides
}

// towardServerPort tells which end of a packet is the server when both
// addresses could be: a well-known or Zoom port beats any other, and
// otherwise the lower port (clients and NAT use ephemeral ports).
func towardServerPort(proto uint8, sport, dport uint16) bool {
	known := func(port uint16) bool { return port < 1024 || zoom.ServiceForPort(proto, port) != zoom.ServiceNone }
	if ks, kd := known(sport), known(dport); ks != kd {
		return kd
	}
	return dport <= sport
}
