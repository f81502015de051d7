// Package ownflows is the registry of zoomprobe's own active-check sockets.
// The daemon captures on the interface its probes use: without it, a probe's
// refused SYN would be a client's blocked port, its STUN then TCP checks a
// client's UDP fallback, its intercepted handshake a second interception. A
// probe registers each socket's 5-tuple after binding its local port and
// before the first packet leaves; the engine's readers skip packets of a
// registered 5-tuple (and ICMP errors quoting one) before the passive
// analyzers, and count them.
//
// Reads are lock-free and allocate nothing: the readers load an immutable
// snapshot; writers (a few sockets a second) rebuild it under a lock. The
// registry holds at most max sockets; an entry ends linger after its socket
// was released (or after the deadline given at registration, if the probe
// never releases it), so the late packets of the flow (the peer's FIN, a
// retransmission, an ICMP error, packets still in the capture ring) stay
// recognised.
package ownflows

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// Transport protocol numbers, as decode uses them.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Key is one socket's 5-tuple, from the probe's side.
type Key struct {
	Proto  uint8
	Local  netip.AddrPort
	Remote netip.AddrPort
}

// Registry is safe for concurrent use; Own may run on any number of readers.
type Registry struct {
	max    int
	linger time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[Key]*entry // writer side; snap is rebuilt from it
	snap    atomic.Pointer[snapshot]

	refused atomic.Uint64
}

type entry struct {
	until    int64 // Unix ns: after this the socket's packets are clients' again
	released bool
}

// snapshot is immutable once published.
type snapshot struct {
	ports [1024]uint64 // bit per local port in use: most packets stop here
	until map[Key]int64
}

// New makes a registry of at most size sockets whose entries end linger
// after release.
func New(size int, linger time.Duration) *Registry {
	return &Registry{max: max(size, 1), linger: linger, now: time.Now, entries: map[Key]*entry{}}
}

// Max is the number of sockets the registry holds at most.
func (r *Registry) Max() int { return r.max }

// Refused counts registrations refused because the registry was full of live
// sockets: their packets reached the passive analyzers.
func (r *Registry) Refused() uint64 { return r.refused.Load() }

// Len is the number of sockets registered (live or lingering).
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Sockets lists the sockets registered (live or lingering).
func (r *Registry) Sockets() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Key, 0, len(r.entries))
	for k := range r.entries {
		out = append(out, k)
	}
	return out
}

// Register records a socket before it sends. deadline bounds it when the
// caller never releases (the probe's own deadline); the entry lasts until
// deadline+linger, or until release+linger. It reports false when the
// registry is full of live sockets.
func (r *Registry) Register(k Key, deadline time.Time) (release func(), ok bool) {
	k = normalize(k)
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	if _, dup := r.entries[k]; !dup && len(r.entries) >= r.max && !r.evictReleased() {
		r.refused.Add(1)
		return func() {}, false
	}
	e := &entry{until: deadline.Add(r.linger).UnixNano()}
	r.entries[k] = e
	r.publish()
	var once sync.Once
	return func() { once.Do(func() { r.release(k, e) }) }, true
}

func (r *Registry) release(k Key, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries[k] != e {
		return // replaced by a newer socket with the same tuple
	}
	if u := r.now().Add(r.linger).UnixNano(); u < e.until {
		e.until = u
	}
	e.released = true
	r.publish()
}

// prune drops ended entries; r.mu is held.
func (r *Registry) prune(now time.Time) {
	t := now.UnixNano()
	for k, e := range r.entries {
		if e.until < t {
			delete(r.entries, k)
		}
	}
}

// evictReleased drops the released entry that ends first; r.mu is held.
func (r *Registry) evictReleased() bool {
	var victim Key
	var first int64
	found := false
	for k, e := range r.entries {
		if e.released && (!found || e.until < first) {
			victim, first, found = k, e.until, true
		}
	}
	if found {
		delete(r.entries, victim)
	}
	return found
}

// publish rebuilds the readers' snapshot; r.mu is held.
func (r *Registry) publish() {
	s := &snapshot{until: make(map[Key]int64, len(r.entries))}
	for k, e := range r.entries {
		s.until[k] = e.until
		p := k.Local.Port()
		s.ports[p/64] |= 1 << (p % 64)
	}
	r.snap.Store(s)
}

// OwnPacket reports whether a decoded packet belongs to a registered socket,
// or is an ICMP error quoting one. Lock-free; no allocation.
func (r *Registry) OwnPacket(p *decode.Packet) bool {
	switch {
	case p.IsTCP() || p.IsUDP():
		return r.Own(p.Proto, netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort))
	case p.IsICMP() && p.ICMP.Quoted:
		q := &p.ICMP
		return r.Own(q.QProto, netip.AddrPortFrom(q.QSrc, q.QSrcPort), netip.AddrPortFrom(q.QDst, q.QDstPort))
	}
	return false
}

// Own reports whether a packet from src to dst belongs to a registered
// socket, in either direction. Lock-free; no allocation.
func (r *Registry) Own(proto uint8, src, dst netip.AddrPort) bool {
	if r == nil {
		return false
	}
	s := r.snap.Load()
	if s == nil || len(s.until) == 0 {
		return false
	}
	var until int64
	var ok bool
	if p := src.Port(); s.ports[p/64]&(1<<(p%64)) != 0 {
		until, ok = s.until[Key{Proto: proto, Local: unmap(src), Remote: unmap(dst)}]
	}
	if p := dst.Port(); !ok && s.ports[p/64]&(1<<(p%64)) != 0 {
		until, ok = s.until[Key{Proto: proto, Local: unmap(dst), Remote: unmap(src)}]
	}
	return ok && r.now().UnixNano() <= until
}

func normalize(k Key) Key {
	k.Local, k.Remote = unmap(k.Local), unmap(k.Remote)
	return k
}

// unmap makes a tuple comparable with a decoded packet's: IPv4 as IPv4, no
// IPv6 zone.
func unmap(a netip.AddrPort) netip.AddrPort {
	if ad := a.Addr(); ad.Is4In6() || ad.Zone() != "" {
		return netip.AddrPortFrom(ad.Unmap().WithZone(""), a.Port())
	}
	return a
}
