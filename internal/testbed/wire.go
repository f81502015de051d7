package testbed

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// IP protocol numbers used in matches.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// Seen is a captured frame decoded just far enough for traffic checks.
// Test-bed only: the daemon has its own allocation-free decoder.
type Seen struct {
	Time             time.Time
	Src, Dst         netip.Addr
	TTL              uint8 // IPv4 TTL or IPv6 hop limit
	IPID             uint16
	Proto            uint8
	SrcPort, DstPort uint16
	Flags            uint8 // TCP
	Seq, Ack         uint32
	Payload          []byte // TCP/UDP payload
	ICMPType         uint8
	ICMPCode         uint8
	// Quoted is what an ICMP error quotes of the offending packet.
	Quoted *Seen
}

// Decode decodes an Ethernet frame carrying IPv4 or IPv6.
func Decode(p Packet) (Seen, bool) {
	et, payload, ok := etherPayload(p.Data)
	if !ok {
		return Seen{}, false
	}
	var s Seen
	switch et {
	case 0x0800:
		ok = decodeIP4(payload, &s, false)
	case 0x86dd:
		ok = decodeIP6(payload, &s, false)
	default:
		return Seen{}, false
	}
	s.Time = p.Time
	return s, ok
}

func decodeIP4(b []byte, s *Seen, quoted bool) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || len(b) < ihl {
		return false
	}
	if !quoted && total >= ihl && total < len(b) {
		b = b[:total] // drop Ethernet padding
	}
	s.TTL, s.IPID, s.Proto = b[8], binary.BigEndian.Uint16(b[4:6]), b[9]
	s.Src = netip.AddrFrom4([4]byte(b[12:16]))
	s.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return true // a later fragment: no transport header
	}
	return decodeL4(b[ihl:], s, quoted)
}

func decodeIP6(b []byte, s *Seen, quoted bool) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if !quoted && 40+plen < len(b) {
		b = b[:40+plen]
	}
	s.Proto, s.TTL = b[6], b[7]
	s.Src = netip.AddrFrom16([16]byte(b[8:24]))
	s.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	return decodeL4(b[40:], s, quoted)
}

func decodeL4(b []byte, s *Seen, quoted bool) bool {
	switch s.Proto {
	case ProtoTCP:
		if len(b) < 4 {
			return quoted
		}
		s.SrcPort, s.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		if len(b) < 20 {
			return quoted
		}
		s.Seq, s.Ack = binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint32(b[8:12])
		s.Flags = b[13]
		off := int(b[12]>>4) * 4
		if off >= 20 && off <= len(b) {
			s.Payload = b[off:]
		}
	case ProtoUDP:
		if len(b) < 8 {
			return quoted
		}
		s.SrcPort, s.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		s.Payload = b[8:]
	case ProtoICMP, ProtoICMPv6:
		if len(b) < 8 {
			return false
		}
		s.ICMPType, s.ICMPCode = b[0], b[1]
		errorMsg := (s.Proto == ProtoICMP && (b[0] == 3 || b[0] == 11 || b[0] == 5)) ||
			(s.Proto == ProtoICMPv6 && b[0] < 128)
		if errorMsg && !quoted {
			var q Seen
			if s.Proto == ProtoICMP && decodeIP4(b[8:], &q, true) || s.Proto == ProtoICMPv6 && decodeIP6(b[8:], &q, true) {
				s.Quoted = &q
			}
		}
	}
	return true
}

func (s Seen) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s:%d > %s:%d proto=%d ttl=%d", s.Time.Format("15:04:05.000000"), s.Src, s.SrcPort, s.Dst, s.DstPort, s.Proto, s.TTL)
	if s.Proto == ProtoTCP {
		fmt.Fprintf(&sb, " flags=%s seq=%d ack=%d", flagString(s.Flags), s.Seq, s.Ack)
	}
	if s.Proto == ProtoICMP || s.Proto == ProtoICMPv6 {
		fmt.Fprintf(&sb, " icmp=%d/%d", s.ICMPType, s.ICMPCode)
		if s.Quoted != nil {
			fmt.Fprintf(&sb, " quoting(%s:%d > %s:%d proto=%d)", s.Quoted.Src, s.Quoted.SrcPort, s.Quoted.Dst, s.Quoted.DstPort, s.Quoted.Proto)
		}
	}
	if len(s.Payload) > 0 {
		fmt.Fprintf(&sb, " len=%d", len(s.Payload))
	}
	return sb.String()
}

func flagString(f uint8) string {
	var sb strings.Builder
	for i, c := range "FSRPAU" {
		if f&(1<<i) != 0 {
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

// ICMPMatch narrows a Match to ICMP errors.
type ICMPMatch struct {
	Type, Code    uint8
	QuotedProto   uint8  // 0: any
	QuotedDstPort uint16 // 0: any
}

// Match selects packets; zero fields match anything.
type Match struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	DstPortHi        uint16 // with DstPort: an inclusive port range
	FlagsSet         uint8  // TCP flags that must be set
	FlagsClear       uint8  // TCP flags that must be clear
	TTL              uint8
	NotTTL           uint8 // TTL must differ from this
	ICMP             *ICMPMatch
	PayloadPrefix    []byte
	ClientHello      bool // payload is the start of a TLS ClientHello
	HasPayload       bool
}

// Matches reports whether s is selected by m.
func (m Match) Matches(s Seen) bool {
	switch {
	case m.Proto != 0 && s.Proto != m.Proto,
		m.Src.IsValid() && s.Src != m.Src,
		m.Dst.IsValid() && s.Dst != m.Dst,
		m.SrcPort != 0 && s.SrcPort != m.SrcPort,
		m.TTL != 0 && s.TTL != m.TTL,
		m.NotTTL != 0 && s.TTL == m.NotTTL,
		m.FlagsSet != 0 && (s.Proto != ProtoTCP || s.Flags&m.FlagsSet != m.FlagsSet),
		m.FlagsClear != 0 && (s.Proto != ProtoTCP || s.Flags&m.FlagsClear != 0),
		m.HasPayload && len(s.Payload) == 0,
		len(m.PayloadPrefix) > 0 && !bytes.HasPrefix(s.Payload, m.PayloadPrefix),
		m.ClientHello && !isClientHello(s.Payload):
		return false
	}
	if m.DstPort != 0 {
		hi := m.DstPortHi
		if hi < m.DstPort {
			hi = m.DstPort
		}
		if s.DstPort < m.DstPort || s.DstPort > hi {
			return false
		}
	}
	if m.ICMP != nil {
		if s.Proto != ProtoICMP && s.Proto != ProtoICMPv6 || s.ICMPType != m.ICMP.Type || s.ICMPCode != m.ICMP.Code {
			return false
		}
		if m.ICMP.QuotedProto != 0 || m.ICMP.QuotedDstPort != 0 {
			q := s.Quoted
			if q == nil || m.ICMP.QuotedProto != 0 && q.Proto != m.ICMP.QuotedProto || m.ICMP.QuotedDstPort != 0 && q.DstPort != m.ICMP.QuotedDstPort {
				return false
			}
		}
	}
	return true
}

func isClientHello(p []byte) bool {
	return len(p) >= 6 && p[0] == 0x16 && p[1] == 0x03 && p[5] == 0x01
}

// TrafficCheck is one assertion on what crossed the mirror: the number of
// matching packets (or, with StreamContains, of TCP streams whose payload
// contains the string) must lie in [Min, Max]; Max < 0 means no upper bound.
type TrafficCheck struct {
	Desc           string
	Match          Match
	StreamContains string
	Min, Max       int
}

// AtLeast and None are the common checks.
func AtLeast(n int, desc string, m Match) TrafficCheck {
	return TrafficCheck{Desc: desc, Match: m, Min: n, Max: -1}
}
func None(desc string, m Match) TrafficCheck {
	return TrafficCheck{Desc: desc, Match: m, Min: 0, Max: 0}
}

// StreamHas checks that some TCP stream selected by m carries s (reassembled
// by sequence number, so a string split across segments is found).
func StreamHas(desc string, m Match, s string) TrafficCheck {
	return TrafficCheck{Desc: desc, Match: m, StreamContains: s, Min: 1, Max: -1}
}

// Count evaluates the check over decoded packets.
func (c TrafficCheck) Count(seen []Seen) int {
	if c.StreamContains == "" {
		n := 0
		for _, s := range seen {
			if c.Match.Matches(s) {
				n++
			}
		}
		return n
	}
	type key struct {
		src, dst         netip.Addr
		srcPort, dstPort uint16
	}
	segs := map[key]map[uint32][]byte{}
	for _, s := range seen {
		if s.Proto != ProtoTCP || len(s.Payload) == 0 || !c.Match.Matches(s) {
			continue
		}
		k := key{s.Src, s.Dst, s.SrcPort, s.DstPort}
		if segs[k] == nil {
			segs[k] = map[uint32][]byte{}
		}
		segs[k][s.Seq] = s.Payload
	}
	n := 0
	for _, bySeq := range segs {
		seqs := make([]uint32, 0, len(bySeq))
		for q := range bySeq {
			seqs = append(seqs, q)
		}
		// Within one short test connection sequence numbers do not wrap
		// often; sort relative to the first one seen to be safe.
		base := seqs[0]
		for _, q := range seqs {
			if int32(q-base) < 0 {
				base = q
			}
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i]-base < seqs[j]-base })
		var stream []byte
		for _, q := range seqs {
			stream = append(stream, bySeq[q]...)
		}
		if bytes.Contains(stream, []byte(c.StreamContains)) {
			n++
		}
	}
	return n
}

// Check returns an error describing a failed check.
func (c TrafficCheck) Check(seen []Seen) error {
	n := c.Count(seen)
	if n < c.Min || (c.Max >= 0 && n > c.Max) {
		want := fmt.Sprintf(">= %d", c.Min)
		if c.Max >= 0 {
			want = fmt.Sprintf("in [%d, %d]", c.Min, c.Max)
		}
		return fmt.Errorf("traffic check %q: %d matching, want %s", c.Desc, n, want)
	}
	return nil
}

// DecodeAll decodes every frame it can.
func DecodeAll(pkts []Packet) []Seen {
	out := make([]Seen, 0, len(pkts))
	for _, p := range pkts {
		if s, ok := Decode(p); ok {
			out = append(out, s)
		}
	}
	return out
}
