package testgen

import (
	"container/heap"
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"
)

// LargeOptions shape Large.
type LargeOptions struct {
	Seed  uint64    // 0: DefaultSeed
	Start time.Time // zero: DefaultStart
	// Lanes is how many sessions run at once (interleaved in time); default 64.
	Lanes int
	// Clients is the number of distinct client addresses; default 500.
	Clients int
	// TLSSessions, when set (0 < x <= 1), is the share of sessions that
	// are TLS connections (Zoom's and background HTTPS, in their usual
	// proportions); the rest are UDP media, STUN, NTP and DNS. 0: the usual
	// mix (about 54% TLS sessions).
	TLSSessions float64
}

// largeLanesMax bounds memory: each lane holds one session's packets.
// largeClientsMax keeps clients inside 10.20.0.0/16.
const (
	largeLanesMax   = 4096
	largeClientsMax = 250 * 256
)

// Large streams a realistic mix of about n packets to sink in time order:
// mostly Zoom UDP media, Zoom TLS (zone controller, media router, web) and
// STUN, with DNS and some background HTTPS and NTP. Sessions run in parallel
// lanes merged by timestamp, so many flows are active at once; memory stays
// bounded by the lanes' current sessions, not by n. TLS transcripts are
// recorded once and replayed, so n = 1e6 takes seconds. It writes exactly n
// packets: sessions still running then are cut, as when a capture stops.
func Large(n int, o LargeOptions, sink func(Packet) error) (int, error) {
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Lanes <= 0 {
		o.Lanes = 64
	}
	o.Lanes = min(o.Lanes, largeLanesMax)
	if o.Clients <= 0 {
		o.Clients = 500
	}
	o.Clients = min(o.Clients, largeClientsMax)
	if n <= 0 {
		return 0, nil
	}
	mix, err := newLargeMix(o)
	if err != nil {
		return 0, err
	}
	h := &laneHeap{}
	for i := 0; i < o.Lanes; i++ {
		l := &lane{g: New(o.Seed+uint64(i)*7919, o.Start.Add(time.Duration(i)*37*time.Millisecond))}
		mix.session(l.g)
		l.pkts = l.g.Packets()
		if len(l.pkts) > 0 {
			heap.Push(h, l)
		}
	}
	written := 0
	for h.Len() > 0 && written < n {
		l := (*h)[0]
		if err := sink(l.pkts[l.next]); err != nil {
			return written, err
		}
		written++
		l.next++
		if l.next == len(l.pkts) {
			// Next session: reuse the slice, start after a short idle time.
			l.g.out = l.g.out[:0]
			l.next = 0
			l.g.Advance(time.Duration(l.g.rng.IntN(200)) * time.Millisecond)
			mix.session(l.g)
			if l.g.err != nil {
				return written, l.g.err
			}
			l.pkts = l.g.Packets()
			if len(l.pkts) == 0 {
				heap.Pop(h)
				continue
			}
		}
		heap.Fix(h, 0)
	}
	return written, nil
}

type lane struct {
	g    *Generator
	pkts []Packet
	next int
}

type laneHeap []*lane

func (h laneHeap) Len() int { return len(h) }
func (h laneHeap) Less(i, j int) bool {
	return h[i].pkts[h[i].next].Time.Before(h[j].pkts[h[j].next].Time)
}
func (h laneHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *laneHeap) Push(x any)   { *h = append(*h, x.(*lane)) }
func (h *laneHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	*h = old[:len(old)-1]
	return l
}

// largeMix holds what sessions share: recorded TLS transcripts and addresses.
type largeMix struct {
	o                    LargeOptions
	zc, mmr, web, public *TLSTranscript
	zcAddrs, mmrAddrs    []netip.Addr
}

func newLargeMix(o LargeOptions) (*largeMix, error) {
	m := &largeMix{o: o}
	var err error
	rec := func(spec TLSSpec) *TLSTranscript {
		if err != nil {
			return nil
		}
		var t *TLSTranscript
		t, err = RecordTLS(spec)
		return t
	}
	m.zc = rec(TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Time: o.Start, Response: make([]byte, 3000)})
	m.mmr = rec(TLSSpec{ServerName: NameMMR, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Time: o.Start, Request: make([]byte, 800), Response: make([]byte, 6000)})
	m.web = rec(TLSSpec{ServerName: NameWeb, Version: tls.VersionTLS13, Chain: ChainZoom, Names: zoomNames, Time: o.Start, Response: make([]byte, 20000)})
	m.public = rec(TLSSpec{ServerName: NameExample, Version: tls.VersionTLS13, Chain: ChainPublic, Time: o.Start, Response: make([]byte, 8000)})
	if err != nil {
		return nil, fmt.Errorf("testgen: Large: %w", err)
	}
	// 32 zone controllers in 170.114.0.0/16, 64 media routers in 144.195.0.0/16.
	for i := 0; i < 32; i++ {
		m.zcAddrs = append(m.zcAddrs, netip.AddrFrom4([4]byte{170, 114, byte(10 + i), 85}))
	}
	for i := 0; i < 64; i++ {
		m.mmrAddrs = append(m.mmrAddrs, netip.AddrFrom4([4]byte{144, 195, byte(i), 99}))
	}
	return m, nil
}

// session emits one session on g, chosen at random.
func (m *largeMix) session(g *Generator) {
	r := g.rng
	ci := r.IntN(m.o.Clients)
	client := netip.AddrFrom4([4]byte{10, 20, byte(ci / 250), byte(1 + ci%250)})
	eph := func() netip.AddrPort { return netip.AddrPortFrom(client, g.EphemeralPort()) }
	mmr := m.mmrAddrs[r.IntN(len(m.mmrAddrs))]
	k := r.IntN(100)
	if p := m.o.TLSSessions; p > 0 {
		// TLS sessions are k in [35,82) and [88,95); the others the rest.
		if r.Float64() < p {
			if x := r.IntN(54); x < 47 {
				k = 35 + x
			} else {
				k = 88 + x - 47
			}
		} else {
			switch x := r.IntN(46); {
			case x < 35:
				k = x
			case x < 41:
				k = 82 + x - 35
			default:
				k = 95 + x - 41
			}
		}
	}
	switch {
	case k < 35: // UDP media: 1-6 s of audio with video (most of the packets)
		u := g.UDP(eph(), netip.AddrPortFrom(mmr, uint16(8801+r.IntN(10))), UDPOptions{})
		g.ZoomUDPMedia(u, ZoomMediaOptions{AudioPackets: 50 + r.IntN(250), VideoFrames: 10 + r.IntN(60), PacketsPerFrame: 2 + r.IntN(4)})
	case k < 55: // zone controller
		g.DNS(client, PlanV4.Resolver, DNSLookup{Name: NameZC, Addrs: []netip.Addr{m.zcAddrs[r.IntN(len(m.zcAddrs))]}})
		c := g.TCPConn(eph(), netip.AddrPortFrom(m.zcAddrs[r.IntN(len(m.zcAddrs))], 443), TCPOptions{})
		c.Play(m.zc)
		c.Close()
	case k < 70: // media router over TLS
		c := g.TCPConn(eph(), netip.AddrPortFrom(mmr, 443), TCPOptions{})
		c.Play(m.mmr)
		c.Close()
	case k < 82: // web
		g.DNS(client, PlanV4.Resolver, DNSLookup{Name: NameWeb, Addrs: []netip.Addr{PlanV4.Web}})
		c := g.TCPConn(eph(), netip.AddrPortFrom(PlanV4.Web, 443), TCPOptions{})
		c.Play(m.web)
		c.Close()
	case k < 88: // STUN
		u := g.UDP(eph(), netip.AddrPortFrom(PlanV4.STUN, 3478), UDPOptions{})
		g.ZoomSTUN(u, PlanV4.PublicClient.As4(), u.Client.Port(), true)
	case k < 95: // background HTTPS
		g.DNS(client, PlanV4.Resolver, DNSLookup{Name: NameExample, Addrs: []netip.Addr{PlanV4.Example}})
		c := g.TCPConn(eph(), netip.AddrPortFrom(PlanV4.Example, 443), TCPOptions{ServerTTL: 49})
		c.Play(m.public)
		c.Close()
	default: // NTP and DNS
		u := g.UDP(eph(), netip.AddrPortFrom(PlanV4.NTP, 123), UDPOptions{})
		req := make([]byte, 48)
		req[0] = 0x23
		u.Send(ClientToServer, req)
		resp := make([]byte, 48)
		resp[0], resp[1] = 0x24, 2
		u.Send(ServerToClient, resp)
		g.DNS(client, PlanV4.Resolver, DNSLookup{Name: NameMMR, Addrs: []netip.Addr{mmr}})
	}
	_ = g.Flush()
}
