// Package decode turns a captured frame into the few L2-L4 facts the analyzers
// need, peeling off what mirror ports wrap around it (VLAN/QinQ, GRE, ERSPAN
// type II and III, VXLAN). It reuses its layers and allocates nothing per packet.
package decode

import (
	"net/netip"
	"time"
)

// IP protocol numbers the analyzers care about.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// TCP flag bits as they appear in the TCP header's flags byte.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// Encapsulation bits: what was peeled off to reach the inner packet.
const (
	EncapVLAN uint16 = 1 << iota
	EncapQinQ
	EncapGRE
	EncapERSPAN
	EncapVXLAN
	EncapMPLS
	EncapPPPoE
	EncapGTPU
	EncapGeneve
)

// Packet is the decoded view of one frame. Payload and ICMP.Payload point into
// the capture buffer and are valid only until the next packet is decoded: an
// analyzer that keeps bytes must copy them (into a bounded buffer).
type Packet struct {
	Time    time.Time
	WireLen int // original frame length on the wire
	Encap   uint16
	VLAN    uint16 // innermost VLAN id, 0 when untagged

	IPVersion uint8 // 4 or 6
	Src, Dst  netip.Addr
	TTL       uint8  // IPv4 TTL or IPv6 hop limit
	IPID      uint16 // IPv4 identification; 0 for IPv6
	Fragment  bool   // a non-first IPv4 or IPv6 fragment: no L4 header (a first fragment has one)

	Proto            uint8 // ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, or other
	SrcPort, DstPort uint16

	TCPFlags uint8
	Seq, Ack uint32
	Window   uint16

	Payload []byte // L4 payload (TCP/UDP data; for ICMP, the bytes after the 8-byte ICMP header)

	ICMP ICMP // valid when Proto is ProtoICMP or ProtoICMPv6
}

// ICMP holds an ICMP or ICMPv6 message and, for errors, the header it quotes.
type ICMP struct {
	Type, Code uint8
	// Quoted is set for destination-unreachable, time-exceeded and similar
	// errors whose body carries the offending packet's IP and L4 header.
	Quoted     bool
	QProto     uint8
	QSrc, QDst netip.Addr
	QSrcPort   uint16
	QDstPort   uint16
	QSeq       uint32 // quoted TCP sequence number, when present
	QIPID      uint16
}

// IsTCP, IsUDP and IsICMP test the transport.
func (p *Packet) IsTCP() bool  { return p.Proto == ProtoTCP && !p.Fragment }
func (p *Packet) IsUDP() bool  { return p.Proto == ProtoUDP && !p.Fragment }
func (p *Packet) IsICMP() bool { return p.Proto == ProtoICMP || p.Proto == ProtoICMPv6 }

// HasFlags reports whether all the given TCP flags are set.
func (p *Packet) HasFlags(f uint8) bool { return p.TCPFlags&f == f }
