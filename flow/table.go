package flow

import (
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Config bounds the table. Timeouts are measured on packet time.
type Config struct {
	MaxFlows         int
	EmbryonicTimeout time.Duration // nothing came back yet (SYN only, unanswered UDP)
	TCPTimeout       time.Duration // established TCP, idle
	UDPTimeout       time.Duration // answered UDP, idle
	ClosedTimeout    time.Duration // after FIN both ways or a RST: linger for late packets
}

// DefaultConfig is what the daemon uses when the config file says nothing.
func DefaultConfig() Config {
	return Config{
		MaxFlows:         65536,
		EmbryonicTimeout: 30 * time.Second,
		TCPTimeout:       5 * time.Minute,
		UDPTimeout:       2 * time.Minute,
		ClosedTimeout:    10 * time.Second,
	}
}

// ExpireReason tells why a flow left the table.
type ExpireReason uint8

const (
	ExpireIdle    ExpireReason = iota // its class's timeout passed on packet time
	ExpireEvicted                     // the table was full and this was the oldest
	ExpireFlush                       // end of capture or shutdown
)

func (r ExpireReason) String() string {
	switch r {
	case ExpireIdle:
		return "idle"
	case ExpireEvicted:
		return "evicted"
	}
	return "flush"
}

const (
	classEmbryonic = iota
	classTCP
	classUDP
	classClosed
	numClasses
)

type list struct{ head, tail *Flow } // head is the least recently seen

func (l *list) push(f *Flow) {
	f.prev, f.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
}

func (l *list) remove(f *Flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

// Table is one worker's flow table. It is not safe for concurrent use: each
// worker owns one, so the per-packet path takes no lock.
type Table struct {
	cfg      Config
	timeouts [numClasses]time.Duration
	flows    map[Key]*Flow
	lists    [numClasses]list
	free     []*Flow
	onExpire func(f *Flow, now time.Time, why ExpireReason)

	Created uint64 // flows created, for metrics
	Evicted uint64 // flows evicted because the table was full
}

// NewTable makes a table; onExpire sees every flow before it is recycled.
func NewTable(cfg Config, onExpire func(f *Flow, now time.Time, why ExpireReason)) *Table {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = DefaultConfig().MaxFlows
	}
	if onExpire == nil {
		onExpire = func(*Flow, time.Time, ExpireReason) {}
	}
	t := &Table{cfg: cfg, flows: make(map[Key]*Flow, min(cfg.MaxFlows, 1<<16)), onExpire: onExpire}
	t.timeouts = [numClasses]time.Duration{cfg.EmbryonicTimeout, cfg.TCPTimeout, cfg.UDPTimeout, cfg.ClosedTimeout}
	return t
}

// Len is the number of flows held.
func (t *Table) Len() int { return len(t.flows) }

// Packet finds or creates the flow of a TCP or UDP packet, updates its state,
// and returns it with the packet's direction.
func (t *Table) Packet(p *decode.Packet) (f *Flow, d Dir, created bool) {
	k, _ := KeyOf(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort)
	f = t.flows[k]
	if f == nil {
		if len(t.flows) >= t.cfg.MaxFlows {
			t.evictOldest(p.Time)
		}
		f = t.alloc()
		f.Key, f.Proto, f.First, f.Last = k, p.Proto, p.Time, p.Time
		src := netip.AddrPortFrom(p.Src, p.SrcPort)
		dst := netip.AddrPortFrom(p.Dst, p.DstPort)
		if srcIsClient(p) {
			f.Client, f.Server = src, dst
		} else {
			f.Client, f.Server = dst, src
		}
		t.flows[k] = f
		f.class = classEmbryonic
		t.lists[classEmbryonic].push(f)
		t.Created++
		created = true
	}
	d = f.DirOf(p.Src, p.SrcPort)
	f.update(p, d)
	t.reclass(f)
	return f, d, created
}

// Find returns the flow a quoted header belongs to (an ICMP error), without
// creating one. d is the direction of the quoted packet.
func (t *Table) Find(proto uint8, src, dst netip.Addr, sport, dport uint16) (*Flow, Dir) {
	k, _ := KeyOf(proto, src, dst, sport, dport)
	f := t.flows[k]
	if f == nil {
		return nil, 0
	}
	return f, f.DirOf(src, sport)
}

// Advance expires the flows whose class timeout has passed at packet time now.
func (t *Table) Advance(now time.Time) {
	for c := range t.lists {
		l := &t.lists[c]
		for f := l.head; f != nil && now.Sub(f.Last) > t.timeouts[c]; f = l.head {
			t.expire(f, now, ExpireIdle)
		}
	}
}

// Flush expires every flow, oldest first in each class.
func (t *Table) Flush(now time.Time) {
	for c := range t.lists {
		for f := t.lists[c].head; f != nil; f = t.lists[c].head {
			t.expire(f, now, ExpireFlush)
		}
	}
}

// Each calls fn for every flow held (for reports); fn must not modify the table.
func (t *Table) Each(fn func(*Flow)) {
	for c := range t.lists {
		for f := t.lists[c].head; f != nil; f = f.next {
			fn(f)
		}
	}
}

func (t *Table) evictOldest(now time.Time) {
	var oldest *Flow
	for c := range t.lists {
		if h := t.lists[c].head; h != nil && (oldest == nil || h.Last.Before(oldest.Last)) {
			oldest = h
		}
	}
	if oldest != nil {
		t.Evicted++
		t.expire(oldest, now, ExpireEvicted)
	}
}

func (t *Table) expire(f *Flow, now time.Time, why ExpireReason) {
	t.lists[f.class].remove(f)
	delete(t.flows, f.Key)
	t.onExpire(f, now, why)
	f.reset()
	t.free = append(t.free, f)
}

func (t *Table) alloc() *Flow {
	if n := len(t.free); n > 0 {
		f := t.free[n-1]
		t.free = t.free[:n-1]
		return f
	}
	return new(Flow)
}

// reclass moves f to the tail of the list its state belongs to.
func (t *Table) reclass(f *Flow) {
	c := uint8(classUDP)
	switch {
	case f.Proto == decode.ProtoTCP && (f.TCP == TCPClosed || f.TCP == TCPReset):
		c = classClosed
	case !f.Answered():
		c = classEmbryonic
	case f.Proto == decode.ProtoTCP:
		c = classTCP
	}
	t.lists[f.class].remove(f)
	f.class = c
	t.lists[c].push(f)
}

// srcIsClient orients a new flow: the SYN sender is the client; otherwise the
// side on a server-like port (well-known or Zoom's) is the server.
func srcIsClient(p *decode.Packet) bool {
	if p.Proto == decode.ProtoTCP {
		switch p.TCPFlags & (decode.TCPSyn | decode.TCPAck) {
		case decode.TCPSyn:
			return true
		case decode.TCPSyn | decode.TCPAck:
			return false
		}
	}
	srv := func(port uint16) bool { return port < 1024 || zoom.IsZoomPort(p.Proto, port) }
	if srv(p.SrcPort) && !srv(p.DstPort) {
		return false
	}
	if srv(p.DstPort) && !srv(p.SrcPort) {
		return true
	}
	return p.SrcPort >= p.DstPort
}
