// Package testgen writes the packet captures zoomprobe's tests and benchmarks
// read: Zoom web, zone-controller and media-router TLS, UDP 8801 media, STUN,
// DNS, background traffic and the failures the analyzers must recognise, as
// Ethernet frames serialised with gopacket, optionally wrapped the way mirror
// ports deliver them.
//
// Everything is deterministic for a given seed and start time: addresses,
// ports, sequence numbers, IP IDs and timestamps come from a seeded PRNG and a
// simulated clock. The TLS handshakes are real crypto/tls runs whose random
// values (client/server random, key shares, session IDs) Go no longer lets a
// caller fix, so their bytes differ between runs; their structure (packet
// count, sizes, order, certificates) does not. Certificates are Ed25519 from
// fixed seeds and therefore identical in every run.
package testgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Packet is one captured Ethernet frame and its capture time.
type Packet struct {
	Time time.Time
	Data []byte
}

// Dir is the direction of a packet within a connection.
type Dir uint8

const (
	ClientToServer Dir = 0
	ServerToClient Dir = 1
)

func (d Dir) other() Dir { return d ^ 1 }

func (d Dir) String() string {
	if d == ClientToServer {
		return "client->server"
	}
	return "server->client"
}

// Default path properties: the capture point sits next to the client, so the
// client's packets show TTL 64 and the server's arrive after a dozen hops.
const (
	DefaultClientTTL = 64
	DefaultServerTTL = 52
	DefaultRTT       = 24 * time.Millisecond
	// packetGap is the spacing of back-to-back packets in one direction.
	packetGap = 15 * time.Microsecond
)

// Generator builds packets on a simulated clock. Packets go to an in-memory
// list (New) or straight to a sink (NewStream), so very large captures need no
// memory. A Generator is not safe for concurrent use.
type Generator struct {
	rng  *rand.Rand
	now  time.Time
	out  []Packet
	sink func(Packet) error
	err  error

	ipid     map[netip.Addr]uint16
	macs     map[netip.Addr]net.HardwareAddr
	dropNext int
	swapNext bool
	held     *Packet
	buf      gopacket.SerializeBuffer
	emitted  int
	dropped  int
}

// New returns a generator that collects its packets in memory.
func New(seed uint64, start time.Time) *Generator {
	return &Generator{
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:  start.Truncate(time.Microsecond),
		ipid: make(map[netip.Addr]uint16),
		macs: make(map[netip.Addr]net.HardwareAddr),
		buf:  gopacket.NewSerializeBuffer(),
	}
}

// NewStream returns a generator that hands every packet to sink instead of
// keeping it. The first sink error stops emission and is reported by Err.
func NewStream(seed uint64, start time.Time, sink func(Packet) error) *Generator {
	g := New(seed, start)
	g.sink = sink
	return g
}

// Packets returns the packets emitted so far (nil for a streaming generator).
func (g *Generator) Packets() []Packet {
	g.flushHeld()
	return g.out
}

// Err is the first error met while building or emitting a packet.
func (g *Generator) Err() error { return g.err }

// Now is the simulated clock.
func (g *Generator) Now() time.Time { return g.now }

// Advance moves the simulated clock forward.
func (g *Generator) Advance(d time.Duration) {
	if d > 0 {
		g.now = g.now.Add(d).Truncate(time.Microsecond)
	}
}

// Rand is the generator's seeded PRNG, for callers that need more variety.
func (g *Generator) Rand() *rand.Rand { return g.rng }

// Emitted is the number of packets written; Dropped those built but left out
// by DropNext.
func (g *Generator) Emitted() int { return g.emitted }

// Dropped is the number of packets DropNext removed.
func (g *Generator) Dropped() int { return g.dropped }

// DropNext leaves the next n packets out of the capture, as a capture drop
// does: the simulated endpoints still sent them, so sequence numbers move on.
func (g *Generator) DropNext(n int) { g.dropNext += n }

// SwapNext writes the next two packets in reverse order (reordering), each
// keeping its own timestamp, so the capture is out of time order there as
// mirror ports sometimes deliver.
func (g *Generator) SwapNext() { g.swapNext = true }

// EphemeralPort picks a client port the way Linux does (32768-60999).
func (g *Generator) EphemeralPort() uint16 { return uint16(32768 + g.rng.IntN(60999-32768)) }

func (g *Generator) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	// ±10 %: enough to look measured, small enough to keep order.
	return d - d/10 + time.Duration(g.rng.Int64N(int64(d/5)+1))
}

func (g *Generator) fail(err error) {
	if g.err == nil && err != nil {
		g.err = err
	}
}

// nextIPID returns the IPv4 identification src uses next. Each host keeps one
// counter (random start), as many stacks do for non-atomic datagrams.
func (g *Generator) nextIPID(src netip.Addr) uint16 {
	id, ok := g.ipid[src]
	if !ok {
		id = uint16(g.rng.Uint32())
	}
	g.ipid[src] = id + 1
	return id
}

// MAC returns the fixed, locally administered MAC address used for addr.
func MAC(addr netip.Addr) net.HardwareAddr {
	h := fnv.New32a()
	b := addr.AsSlice()
	h.Write(b)
	s := h.Sum32()
	return net.HardwareAddr{0x02, 0x5a, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

func (g *Generator) mac(a netip.Addr) net.HardwareAddr {
	m, ok := g.macs[a]
	if !ok {
		m = MAC(a)
		g.macs[a] = m
	}
	return m
}

// ipParams are the per-packet IP header values.
type ipParams struct {
	src, dst  netip.Addr
	ttl       uint8
	ipid      *uint16 // nil: next from src's counter
	df        bool
	flowLabel uint32
	// badChecksum spoils the TCP checksum, as a segment corrupted on the
	// way (or forged carelessly) arrives; receivers drop it.
	badChecksum bool
}

// emitIP serialises Ethernet + IP + the given layers and emits the frame.
func (g *Generator) emitIP(p ipParams, proto layers.IPProtocol, ls ...gopacket.SerializableLayer) Packet {
	if g.err != nil {
		return Packet{}
	}
	src, dst := p.src.Unmap(), p.dst.Unmap()
	if src.Is4() != dst.Is4() {
		g.fail(fmt.Errorf("testgen: mixed address families %s -> %s", src, dst))
		return Packet{}
	}
	eth := &layers.Ethernet{SrcMAC: g.mac(src), DstMAC: g.mac(dst)}
	var ip gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	if src.Is4() {
		id := uint16(0)
		if p.ipid != nil {
			id = *p.ipid
		} else {
			id = g.nextIPID(src)
		}
		v4 := &layers.IPv4{Version: 4, IHL: 5, TTL: p.ttl, Id: id, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		if p.df {
			v4.Flags = layers.IPv4DontFragment
		}
		eth.EthernetType = layers.EthernetTypeIPv4
		ip, netLayer = v4, v4
	} else {
		v6 := &layers.IPv6{Version: 6, HopLimit: p.ttl, NextHeader: proto, FlowLabel: p.flowLabel & 0xfffff, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		eth.EthernetType = layers.EthernetTypeIPv6
		ip, netLayer = v6, v6
	}
	for _, l := range ls {
		switch t := l.(type) {
		case *layers.TCP:
			t.SetNetworkLayerForChecksum(netLayer)
		case *layers.UDP:
			t.SetNetworkLayerForChecksum(netLayer)
		case *layers.ICMPv6:
			t.SetNetworkLayerForChecksum(netLayer)
		}
	}
	all := append([]gopacket.SerializableLayer{eth, ip}, ls...)
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, all...); err != nil {
		g.fail(fmt.Errorf("testgen: serialise %s -> %s: %w", src, dst, err))
		return Packet{}
	}
	pkt := Packet{Time: g.now, Data: append([]byte(nil), g.buf.Bytes()...)}
	if p.badChecksum && proto == layers.IPProtocolTCP {
		ipLen := 40
		if src.Is4() {
			ipLen = 20
		}
		pkt.Data[14+ipLen+16] ^= 0x5a
	}
	g.emit(pkt)
	g.Advance(g.jitter(packetGap))
	return pkt
}

// emit applies drop and reorder requests and hands the packet on.
func (g *Generator) emit(p Packet) {
	if g.dropNext > 0 {
		g.dropNext--
		g.dropped++
		return
	}
	if g.swapNext {
		g.swapNext = false
		g.held = &p
		return
	}
	g.put(p)
	g.flushHeld()
}

func (g *Generator) flushHeld() {
	if g.held != nil {
		h := *g.held
		g.held = nil
		g.put(h)
	}
}

func (g *Generator) put(p Packet) {
	if g.err != nil {
		return
	}
	g.emitted++
	if g.sink != nil {
		g.fail(g.sink(p))
		return
	}
	g.out = append(g.out, p)
}

// Flush writes a packet still held back by SwapNext (streaming generators
// call it at the end).
func (g *Generator) Flush() error {
	g.flushHeld()
	return g.err
}

// ipHeaderLen returns the offset of the L4 header inside an IP packet, and the
// IP source address, for a frame this package built (plain Ethernet + IP).
func parseIPFrame(frame []byte) (ip []byte, src netip.Addr, err error) {
	if len(frame) < 14 {
		return nil, netip.Addr{}, errors.New("testgen: frame shorter than Ethernet")
	}
	ip = frame[14:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		if len(ip) < 20 {
			return nil, netip.Addr{}, errors.New("testgen: short IPv4 header")
		}
		src = netip.AddrFrom4([4]byte(ip[12:16]))
	case 0x86dd:
		if len(ip) < 40 {
			return nil, netip.Addr{}, errors.New("testgen: short IPv6 header")
		}
		src = netip.AddrFrom16([16]byte(ip[8:24]))
	default:
		return nil, netip.Addr{}, errors.New("testgen: not an IP frame")
	}
	return ip, src, nil
}

// U16 returns a pointer to v, for optional IP ID overrides.
func U16(v uint16) *uint16 { return &v }
