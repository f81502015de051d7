// Package decode turns a captured frame into the few L2-L4 facts the analyzers
// need, peeling off what mirror ports wrap around it (VLAN/QinQ, GRE, ERSPAN
// type II and III, VXLAN). It reuses its layers and allocates nothing per packet.
package decode

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"
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

	// TCP timestamp option (RFC 7323), when HasTimestamps: what survives a
	// NAT that rewrites ports and randomises sequence numbers, so two
	// capture points can match a segment (boxmatch).
	HasTimestamps bool
	TSval, TSecr  uint32

	// Input is the index of the capture source the packet came from (its
	// place in capture.interfaces; analyze numbers its inputs in order),
	// set by the reader: Decode leaves it 0.
	Input uint8

	Payload []byte // L4 payload (TCP/UDP data; for ICMP, the bytes after the 8-byte ICMP header)

	ICMP ICMP // valid when Proto is ProtoICMP or ProtoICMPv6

	// Frame is the whole frame as captured and Link its link type, for
	// keeping evidence (package evidence). Like Payload it points into the
	// capture buffer; Payload lies inside it (PayloadOffset).
	Frame []byte
	Link  LinkType

	csum tcpChecksum // what TCPChecksum needs besides Payload
}

// tcpChecksum holds the parts of a TCP checksum the decoder sums cheaply
// (pseudo-header and TCP header); the payload is summed only when asked.
type tcpChecksum struct {
	set    bool   // a whole TCP segment was decoded (not cut by the snap length)
	pseudo uint32 // pseudo-header sum (addresses, protocol, TCP length)
	header uint32 // TCP header sum, checksum field included
	field  uint16 // the checksum field
}

// ChecksumState is what a packet's TCP checksum says.
type ChecksumState uint8

const (
	// ChecksumUnknown: not a whole TCP segment (snap length, IPv4 total
	// length 0 from segmentation offload, IPv6 extension headers), or a
	// packet not built by Decode.
	ChecksumUnknown ChecksumState = iota
	// ChecksumGood: the checksum verifies.
	ChecksumGood
	// ChecksumBad: it does not; the receiver dropped this segment.
	ChecksumBad
	// ChecksumOffloaded: the field holds only the pseudo-header sum, as the
	// sending host's stack leaves it for the NIC to finish (Linux
	// CHECKSUM_PARTIAL, Windows and BSD offload): a capture on the sending
	// host, not corruption.
	ChecksumOffloaded
)

// TCPChecksum verifies the TCP checksum over the header and Payload. It
// allocates nothing; it costs a pass over the payload, so callers ask only
// for the segments they use.
func (p *Packet) TCPChecksum() ChecksumState {
	if !p.csum.set || p.Proto != ProtoTCP {
		return ChecksumUnknown
	}
	if fold(uint64(p.csum.pseudo)+uint64(p.csum.header)+sum16(p.Payload)) == 0xffff {
		return ChecksumGood
	}
	if p.csum.field == fold(uint64(p.csum.pseudo)) {
		return ChecksumOffloaded
	}
	return ChecksumBad
}

// sum16 is the ones' complement sum of b as big-endian 16-bit words (an odd
// last byte padded with zero), folded to 16 bits (callers add it to other
// sums and fold again). The sum does not depend on
// byte order (RFC 1071): it adds native little-endian 64-bit words with
// end-around carry (2^64 ≡ 1 modulo 0xffff), then swaps the folded result's
// bytes, which turns the little-endian sum into the big-endian one.
func sum16(b []byte) uint64 {
	var s, c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	// The tail (at most 7 bytes) in 16-bit words; the odd byte is the low
	// byte of its little-endian word.
	var t uint64
	for len(b) >= 2 {
		t += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		t += uint64(b[0])
	}
	s, c = bits.Add64(s, t, c)
	s, c = bits.Add64(s, c, 0)
	s += c // s is 0 when this carry comes: no further one
	return uint64(bits.ReverseBytes16(fold(s)))
}

// fold reduces a ones' complement sum to 16 bits.
func fold(s uint64) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
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

// PayloadOffset is where Payload starts inside Frame (len(Frame) when Payload
// is empty); false when Payload is not inside Frame (a packet built by hand,
// or copied apart from its frame).
func (p *Packet) PayloadOffset() (int, bool) {
	if len(p.Frame) == 0 {
		return 0, false
	}
	if len(p.Payload) == 0 {
		return len(p.Frame), true // all headers (and any link trailer)
	}
	// Address arithmetic only: nothing is read through these.
	f := uintptr(unsafe.Pointer(unsafe.SliceData(p.Frame)))
	q := uintptr(unsafe.Pointer(unsafe.SliceData(p.Payload)))
	if q < f || q-f > uintptr(len(p.Frame)) || q-f+uintptr(len(p.Payload)) > uintptr(len(p.Frame)) {
		return 0, false
	}
	return int(q - f), true
}
