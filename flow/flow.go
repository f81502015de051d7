// Package flow keeps bidirectional conversations: a symmetric key, the TCP and
// UDP state both directions build, and a bounded table that expires flows on
// packet time and evicts the oldest when full.
package flow

import (
	"math"
	"net/netip"
	"time"
	"unsafe"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow/internal/writekey"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Dir is a packet's direction within its flow.
type Dir uint8

const (
	ToServer Dir = 0 // client to server
	ToClient Dir = 1 // server to client
)

// Key identifies a flow regardless of direction: the lower endpoint first.
// The table does not store it (Client and Server hold the same endpoints);
// Flow.Key derives it.
type Key struct {
	Proto  uint8
	Lo, Hi netip.AddrPort
}

// KeyOf returns the symmetric key of a five-tuple and whether src is Lo.
func KeyOf(proto uint8, src, dst netip.Addr, sport, dport uint16) (Key, bool) {
	a := netip.AddrPortFrom(src, sport)
	b := netip.AddrPortFrom(dst, dport)
	if a.Compare(b) <= 0 {
		return Key{Proto: proto, Lo: a, Hi: b}, true
	}
	return Key{Proto: proto, Lo: b, Hi: a}, false
}

// TCP states as both directions have built them.
type TCPState uint8

const (
	TCPNone        TCPState = iota // no SYN seen (picked up mid-stream, or UDP)
	TCPSynSent                     // client SYN, no answer yet
	TCPSynReceived                 // SYN-ACK seen
	TCPEstablished                 // handshake completed or data both ways
	TCPClosing                     // a FIN seen
	TCPClosed                      // FIN both ways
	TCPReset                       // a RST seen
)

var tcpStateNames = [...]string{"none", "syn_sent", "syn_received", "established", "closing", "closed", "reset"}

func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return "unknown"
}

// Identity is what a flow is: its service class, the name it is known by and
// how that was learnt. Only the identity stage (flow/identity) writes it;
// everyone else reads it through Flow's accessors. See flow/identity's README
// for the precedence.
type Identity struct {
	Service zoom.Service
	// Source is the evidence that decided Service (SourceNone when Service is
	// ServiceNone).
	Source Source
	// NameSource is where Name came from: SourceSNI or SourceDNS.
	NameSource Source
	// Final: nothing later in the flow can change the identity (the
	// ClientHello was read, or the first client bytes were not TLS; the
	// first datagram of a UDP flow to a Zoom port).
	Final bool
	// Name is the SNI the client sent, else the DNS name of the server
	// address; kept for watched flows only.
	Name string
}

// Source is how a flow's identity was learnt.
type Source uint8

const (
	SourceNone    Source = iota
	SourceSNI            // the ClientHello's server_name
	SourceDNS            // a DNS answer for the server address (zoom.NameCache)
	SourceRange          // the server address is in Zoom's ranges
	SourceZoomUDP        // the first datagram is Zoom's media session set-up
	SourceSTUN           // the first datagram is a STUN request with Zoom's attributes
	SourceWatch          // the zoom.watch settings (watched, not Zoom)
	numSources
)

var sourceNames = [numSources]string{"none", "sni", "dns", "range", "zoom_udp", "stun", "watch"}

// String is the JSON value of the source.
func (s Source) String() string {
	if s >= numSources {
		return "none"
	}
	return sourceNames[s]
}

// Sources lists every source, for pre-creating metric label values.
func Sources() []Source {
	out := make([]Source, 0, numSources)
	for s := Source(0); s < numSources; s++ {
		out = append(out, s)
	}
	return out
}

// IdentityCell is a flow's identity record as the identity stage holds it:
// the identity and the stage's own per-flow state.
type IdentityCell struct {
	Identity
	// Stage is the identity stage's per-flow state (a ClientHello split over
	// segments, a *hello of flow/identity); nil when not needed. A plain
	// pointer, not an interface: 8 bytes less on every flow.
	Stage unsafe.Pointer
}

// synCopyWindow: SYNs closer than this are copies of one SYN, not retransmissions.
const synCopyWindow = 200 * time.Millisecond

// MaxExt is how many analyzers may keep per-flow state.
const MaxExt = 4

// Flow is one bidirectional conversation. Client is the endpoint that opened
// it (the SYN sender; for UDP the first sender, unless that looks like a server port).
//
// Flows live in the table's slab: the table reuses a Flow once it has expired
// (after onExpire), so a *Flow must not be kept beyond that. The layout is
// compact (FlowBytes, "Memory per worker" in docs/architecture.md): endpoints
// as raw bytes, times as Unix nanoseconds, saturating counters, and one
// pointer per analyzer.
type Flow struct {
	clientIP, serverIP     [16]byte
	first, last            int64     // packet times, Unix ns
	lastSyn                int64     // packet time (Unix ns) of the last counted SYN
	Bytes                  [2]uint64 // L4 payload bytes
	Packets                [2]uint32 // saturating
	isn                    [2]uint32 // initial sequence numbers, when the SYN (client) and SYN-ACK (server) were seen
	clientPort, serverPort uint16

	SynCount    uint16    // client SYNs, retransmissions included, mirror copies not; saturating
	SynAckCount uint16    // saturating
	RstCount    [2]uint16 // saturating

	Proto    uint8
	TCP      TCPState
	FirstTTL [2]uint8 // TTL of the first packet each way; 0 until seen
	// Dropped has bit i set when the analyzer in slot i panicked on this
	// flow: the engine no longer shows it this flow. Written by the engine.
	Dropped uint8
	// bits packs per-direction flags in one byte (bit << d for direction d),
	// so the evidence handle fits without growing the flow: see the bit* consts.
	bits uint8
	// Counted is the service the engine last counted this flow under in
	// flows_total / active_flows; it lets late identity move the count.
	Counted zoom.Service
	// Evidence is the flow's handle in its worker's evidence recorder
	// (package evidence); 0: none. Written by the recorder only.
	Evidence uint32

	// identity is written by flow/identity only (IdentityCell); read it
	// with Service, Name, Identity, IdentityFinal and Watched.
	identity IdentityCell

	// ext holds per-analyzer state, one typed pointer per analyzer slot
	// (Ext).
	ext [MaxExt]unsafe.Pointer
}

// Flags in Flow.bits; each takes two bits, shifted by the direction.
const (
	bitV4      = 1 << 0 // the endpoint is an IPv4 address (client: d=0, server: d=1)
	bitSynCsum = 1 << 2 // a SYN of direction d had a good TCP checksum
	bitISN     = 1 << 4 // the ISN of direction d is known
	bitFin     = 1 << 6 // direction d sent a FIN
)

func (f *Flow) has(bit uint8, d Dir) bool { return f.bits&(bit<<(d&1)) != 0 }
func (f *Flow) set(bit uint8, d Dir)      { f.bits |= bit << (d & 1) }

// FinSeen reports whether direction d sent a FIN.
func (f *Flow) FinSeen(d Dir) bool { return f.has(bitFin, d) }

// New makes a flow outside a table (tools and tests), first seen at t.
func New(proto uint8, client, server netip.AddrPort, t time.Time) *Flow {
	f := &Flow{Proto: proto}
	f.setEndpoints(client, server)
	f.first, f.last = unixNano(t), unixNano(t)
	return f
}

func (f *Flow) setEndpoints(client, server netip.AddrPort) {
	f.clientIP, f.serverIP = client.Addr().As16(), server.Addr().As16()
	f.clientPort, f.serverPort = client.Port(), server.Port()
	f.bits &^= bitV4 | bitV4<<1
	if client.Addr().Is4() {
		f.set(bitV4, 0)
	}
	if server.Addr().Is4() {
		f.set(bitV4, 1)
	}
}

func addr(b [16]byte, v4 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if v4 {
		return a.Unmap()
	}
	return a
}

// Client is the endpoint that opened the flow.
func (f *Flow) Client() netip.AddrPort {
	return netip.AddrPortFrom(addr(f.clientIP, f.has(bitV4, 0)), f.clientPort)
}

// Server is the endpoint the client opened the flow to.
func (f *Flow) Server() netip.AddrPort {
	return netip.AddrPortFrom(addr(f.serverIP, f.has(bitV4, 1)), f.serverPort)
}

// ClientPort is Client().Port() without building the address.
func (f *Flow) ClientPort() uint16 { return f.clientPort }

// ServerPort is Server().Port() without building the address (the
// per-packet callers need only the port).
func (f *Flow) ServerPort() uint16 { return f.serverPort }

// First is the packet time of the flow's first packet.
func (f *Flow) First() time.Time { return unixTime(f.first) }

// Last is the packet time of the flow's latest packet.
func (f *Flow) Last() time.Time { return unixTime(f.last) }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// SYNChecksumGood reports whether a SYN of direction d (the client's SYN,
// the SYN-ACK) carried a good TCP checksum: the capture keeps checksums that
// way, so a bad one later means a segment the receiver dropped.
func (f *Flow) SYNChecksumGood(d Dir) bool { return f.has(bitSynCsum, d) }

// ISN is the initial sequence number of direction d (the client's SYN, the
// server's SYN-ACK) and whether it was seen.
func (f *Flow) ISN(d Dir) (uint32, bool) { return f.isn[d&1], f.has(bitISN, d) }

// is reports whether the flow's endpoint (ip, port, v4) is a and p.
func is(ip *[16]byte, port uint16, v4 bool, a netip.Addr, p uint16) bool {
	return port == p && a.Is4() == v4 && *ip == a.As16()
}

// Ext is an analyzer's typed per-flow slot: the analyzer's state for a flow
// is a *T kept in the flow (nil until Set).
type Ext[T any] struct{ slot int }

// NewExt gives the analyzer in slot (analyzers.Env.Slot) its per-flow slot.
// It panics on a slot outside [0, MaxExt): a registration bug.
func NewExt[T any](slot int) Ext[T] {
	if slot < 0 || slot >= MaxExt {
		panic("flow: analyzer slot out of range")
	}
	return Ext[T]{slot: slot}
}

// Get is the analyzer's state for f, nil when none.
func (e Ext[T]) Get(f *Flow) *T { return (*T)(f.ext[e.slot]) }

// Set keeps v as the analyzer's state for f (nil: none).
func (e Ext[T]) Set(f *Flow, v *T) { f.ext[e.slot] = unsafe.Pointer(v) }

// Has reports whether any state is kept for f.
func (e Ext[T]) Has(f *Flow) bool { return f.ext[e.slot] != nil }

// Key is the flow's symmetric key.
func (f *Flow) Key() Key {
	c, s := f.Client(), f.Server()
	k, _ := KeyOf(f.Proto, c.Addr(), s.Addr(), c.Port(), s.Port())
	return k
}

// Service is the flow's service class (ServiceNone: not Zoom, not watched).
func (f *Flow) Service() zoom.Service { return f.identity.Service }

// Name is the SNI the client sent, else the server's DNS name; "" when
// unknown or the flow is not watched.
func (f *Flow) Name() string { return f.identity.Name }

// Identity is a copy of the flow's identity: changing it changes nothing.
func (f *Flow) Identity() Identity { return f.identity.Identity }

// IdentityFinal reports whether the identity can no longer change: an
// analyzer may let go of a final, unwatched flow.
func (f *Flow) IdentityFinal() bool { return f.identity.Final }

// Watched reports whether analyzers should report on this flow.
func (f *Flow) Watched() bool { return f.identity.Service != zoom.ServiceNone }

// IdentityCell gives the identity stage the flow's identity to write. Only
// packages under flow/ can import writekey and make a key; a zero key gets nil.
func (f *Flow) IdentityCell(k writekey.Key) *IdentityCell {
	if !k.Valid() {
		return nil
	}
	return &f.identity
}

// Transport is "tcp", "udp" or the protocol number's name.
func (f *Flow) Transport() string { return TransportName(f.Proto) }

// TransportName names an IP protocol for labels and JSON.
func TransportName(p uint8) string {
	switch p {
	case decode.ProtoTCP:
		return "tcp"
	case decode.ProtoUDP:
		return "udp"
	case decode.ProtoICMP:
		return "icmp"
	case decode.ProtoICMPv6:
		return "icmpv6"
	}
	return "other"
}

// Answered reports whether the server has sent anything back.
func (f *Flow) Answered() bool { return f.Packets[ToClient] > 0 }

// DirOf tells the direction of a packet from src.
func (f *Flow) DirOf(src netip.Addr, sport uint16) Dir {
	if is(&f.clientIP, f.clientPort, f.has(bitV4, 0), src, sport) {
		return ToServer
	}
	return ToClient
}

// update advances counters and TCP state for one packet.
func (f *Flow) update(p *decode.Packet, d Dir) {
	if f.Packets[d] == 0 {
		f.FirstTTL[d] = p.TTL
	}
	if f.Packets[d] < math.MaxUint32 {
		f.Packets[d]++
	}
	f.Bytes[d] += uint64(len(p.Payload))
	at := p.Time.UnixNano()
	if at > f.last {
		f.last = at
	}
	if f.Proto != decode.ProtoTCP {
		return
	}
	fl := p.TCPFlags
	if fl&decode.TCPSyn != 0 && !f.has(bitSynCsum, d) && p.TCPChecksum() == decode.ChecksumGood {
		f.set(bitSynCsum, d)
	}
	switch {
	case fl&decode.TCPRst != 0:
		inc16(&f.RstCount[d])
		f.TCP = TCPReset
		return
	case fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn && d == ToServer:
		// A retransmission comes no sooner than the initial RTO (1 s, RFC
		// 6298); a copy within synCopyWindow is the mirror showing it twice
		// (SPAN of both directions, a bridge and its port on "any").
		if !f.has(bitISN, ToServer) {
			f.isn[ToServer] = p.Seq
			f.set(bitISN, ToServer)
		}
		if f.SynCount > 0 && time.Duration(at-f.lastSyn) < synCopyWindow {
			break
		}
		inc16(&f.SynCount)
		f.lastSyn = at
		if f.TCP == TCPNone {
			f.TCP = TCPSynSent
		}
	case fl&(decode.TCPSyn|decode.TCPAck) == decode.TCPSyn|decode.TCPAck && d == ToClient:
		if !f.has(bitISN, ToClient) {
			f.isn[ToClient] = p.Seq
			f.set(bitISN, ToClient)
		}
		inc16(&f.SynAckCount)
		if f.TCP < TCPSynReceived {
			f.TCP = TCPSynReceived
		}
	}
	if fl&decode.TCPFin != 0 {
		f.set(bitFin, d)
		if f.FinSeen(0) && f.FinSeen(1) {
			f.TCP = TCPClosed
		} else if f.TCP < TCPClosing {
			f.TCP = TCPClosing
		}
		return
	}
	if f.TCP == TCPSynReceived && d == ToServer && fl&decode.TCPAck != 0 && fl&decode.TCPSyn == 0 {
		f.TCP = TCPEstablished
	}
	if f.TCP == TCPNone && f.Packets[ToServer] > 0 && f.Packets[ToClient] > 0 {
		f.TCP = TCPEstablished // picked up mid-stream
	}
}

// inc16 counts one more, saturating.
func inc16(n *uint16) {
	if *n < math.MaxUint16 {
		*n++
	}
}
