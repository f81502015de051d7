package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// LinkType says what header a captured frame starts with. The values are the
// pcap LINKTYPE_* numbers, so a pcap or pcapng link type converts directly.
type LinkType uint16

const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet  LinkType = 1   // Ethernet II (also 802.3 frames, which are not IP)
	LinkRaw       LinkType = 101 // raw IP, version taken from the first nibble
	LinkLoop      LinkType = 108 // OpenBSD loopback: 4-byte address family, network order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap >= 1.10)
)

// String names the link type as tcpdump does.
func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "EN10MB"
	case LinkRaw:
		return "RAW"
	case LinkLoop:
		return "LOOP"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkLinuxSLL2:
		return "LINUX_SLL2"
	}
	return "LINKTYPE_" + itoa(int(l))
}

// Supported reports whether Decode understands frames of this link type.
func (l LinkType) Supported() bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// Bounds on hostile input: a frame that needs more than these is refused.
const (
	// MaxVLANTags is the most 802.1Q/802.1ad tags peeled from one Ethernet header.
	MaxVLANTags = 8
	// MaxEncapDepth is the most tunnels (GRE, ERSPAN, VXLAN, Geneve, GTP-U, MPLS) peeled from one frame.
	MaxEncapDepth = 4
	// MaxIPv6ExtHeaders is the most IPv6 extension headers walked before L4.
	MaxIPv6ExtHeaders = 8
)

// Options configure a Decoder.
type Options struct {
	// Decapsulate peels GRE (IP, transparent Ethernet bridging or MPLS),
	// ERSPAN type I/II/III, VXLAN, Geneve and GTP-U to report the innermost
	// packet. Without it a tunnel packet is reported as itself (Proto 47 for
	// GRE, UDP for the others). 802.1Q/QinQ tags, MPLS label stacks and PPPoE
	// sessions are always peeled: they are link framing.
	Decapsulate bool
	// VXLANPorts are the UDP destination ports decoded as VXLAN (4789 is IANA's).
	VXLANPorts []uint16
	// GenevePorts are the UDP destination ports decoded as Geneve (6081 is IANA's).
	GenevePorts []uint16
	// GTPUPorts are the UDP destination ports decoded as GTP-U (2152 is 3GPP's).
	GTPUPorts []uint16
}

// Decoder decodes frames into Packets. It holds no per-packet state and
// allocates nothing per packet; use one per goroutine.
type Decoder struct {
	decap                              bool
	vxlanPorts, genevePorts, gtpuPorts portSet
}

// portSet is a small set of UDP ports: a fixed array beats a map on the hot path.
type portSet struct {
	fixed [8]uint16
	n     int
	more  map[uint16]bool // only when more than len(fixed) ports are configured
}

func newPortSet(ports []uint16) portSet {
	var s portSet
	for _, port := range ports {
		switch {
		case s.has(port):
		case s.n < len(s.fixed):
			s.fixed[s.n] = port
			s.n++
		default:
			if s.more == nil {
				s.more = map[uint16]bool{}
			}
			s.more[port] = true
		}
	}
	return s
}

func (s *portSet) has(port uint16) bool {
	for _, p := range s.fixed[:s.n] {
		if p == port {
			return true
		}
	}
	return s.more != nil && s.more[port]
}

// NewDecoder returns a Decoder for the given options.
func NewDecoder(opts Options) *Decoder {
	return &Decoder{
		decap:       opts.Decapsulate,
		vxlanPorts:  newPortSet(opts.VXLANPorts),
		genevePorts: newPortSet(opts.GenevePorts),
		gtpuPorts:   newPortSet(opts.GTPUPorts),
	}
}

// Layer names for Error.Layer: a fixed set, safe as a metric label.
const (
	LayerLink        = "link" // SLL, NULL/LOOP headers
	LayerEthernet    = "ethernet"
	LayerVLAN        = "vlan"
	LayerGRE         = "gre"
	LayerERSPAN      = "erspan"
	LayerVXLAN       = "vxlan"
	LayerGeneve      = "geneve"
	LayerGTPU        = "gtpu"
	LayerMPLS        = "mpls"
	LayerPPPoE       = "pppoe"
	LayerIPv4        = "ipv4"
	LayerIPv6        = "ipv6"
	LayerTCP         = "tcp"
	LayerUDP         = "udp"
	LayerICMP        = "icmp"
	LayerUnsupported = "unsupported" // link type Decode does not know
)

// ErrorLayers lists every value Error.Layer takes, for pre-creating metric labels.
var ErrorLayers = []string{
	LayerLink, LayerEthernet, LayerVLAN, LayerGRE, LayerERSPAN, LayerVXLAN, LayerGeneve, LayerGTPU, LayerMPLS, LayerPPPoE,
	LayerIPv4, LayerIPv6, LayerTCP, LayerUDP, LayerICMP, LayerUnsupported,
}

// Error is a frame that could not be decoded: the layer that failed and why.
// Decode returns shared *Error values (no allocation); do not modify them.
type Error struct {
	Layer  string // one of ErrorLayers
	Reason string
}

func (e *Error) Error() string { return "decode " + e.Layer + ": " + e.Reason }

// ErrNotIP is returned for frames that carry no IP packet (ARP, LLDP, STP,
// 802.3/LLC...). It is not a decode error and should not be counted as one.
var ErrNotIP = errors.New("decode: not an IP packet")

var (
	errLinkUnsupported = &Error{LayerUnsupported, "link type not supported"}
	errLinkTrunc       = &Error{LayerLink, "truncated link header"}
	errEthTrunc        = &Error{LayerEthernet, "truncated Ethernet header"}
	errVLANTrunc       = &Error{LayerVLAN, "truncated 802.1Q tag"}
	errVLANTooMany     = &Error{LayerVLAN, "too many stacked VLAN tags"}
	errGRETrunc        = &Error{LayerGRE, "truncated GRE header"}
	errGRETooDeep      = &Error{LayerGRE, "too many nested tunnels"}
	errERSPANTrunc     = &Error{LayerERSPAN, "truncated ERSPAN header"}
	errERSPANVersion   = &Error{LayerERSPAN, "ERSPAN version does not match the GRE protocol"}
	errERSPANFrame     = &Error{LayerERSPAN, "ERSPAN type III frame type not Ethernet or IP"}
	errVXLANTrunc      = &Error{LayerVXLAN, "truncated VXLAN header"}
	errVXLANFlags      = &Error{LayerVXLAN, "VXLAN I flag not set"}
	errVXLANTooDeep    = &Error{LayerVXLAN, "too many nested tunnels"}
	errIPv4Trunc       = &Error{LayerIPv4, "truncated IPv4 header"}
	errIPv4Version     = &Error{LayerIPv4, "IP version is not 4"}
	errIPv4IHL         = &Error{LayerIPv4, "IPv4 header length below 20"}
	errIPv4Length      = &Error{LayerIPv4, "IPv4 total length shorter than its header"}
	errIPv6Trunc       = &Error{LayerIPv6, "truncated IPv6 header"}
	errIPv6Version     = &Error{LayerIPv6, "IP version is not 6"}
	errIPv6ExtTrunc    = &Error{LayerIPv6, "truncated IPv6 extension header"}
	errIPv6ExtTooMany  = &Error{LayerIPv6, "too many IPv6 extension headers"}
	errRawVersion      = &Error{LayerIPv4, "raw IP frame with IP version neither 4 nor 6"}
	errTCPTrunc        = &Error{LayerTCP, "truncated TCP header"}
	errTCPOffset       = &Error{LayerTCP, "TCP data offset below 20"}
	errUDPTrunc        = &Error{LayerUDP, "truncated UDP header"}
	errICMPTrunc       = &Error{LayerICMP, "truncated ICMP header"}
)

// EtherTypes and IP protocol numbers the decoder dispatches on.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	etherQinQ91 = 0x9100
	etherTEB    = 0x6558 // transparent Ethernet bridging (Ethernet in GRE)
	etherERSPAN = 0x88be // ERSPAN type I and II
	etherERSPN3 = 0x22eb // ERSPAN type III

	protoGRE      = 47
	ipv6HopByHop  = 0
	ipv6Routing   = 43
	ipv6Fragment  = 44
	ipv6AH        = 51
	ipv6NoNext    = 59
	ipv6DestOpts  = 60
	ipv6Mobility  = 135
	ipv6HIP       = 139
	ipv6Shim6     = 140
	icmpv4Unreach = 3
	icmpv4TimeExc = 11
	icmpv4Param   = 12
	icmpv6Unreach = 1
	icmpv6TooBig  = 2
	icmpv6TimeExc = 3
	icmpv6Param   = 4
)

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// Decode decodes one frame into p, overwriting all of it. data is not
// copied: p.Payload points into it. Errors are *Error (count them by Layer)
// or ErrNotIP. Decode never panics on any input.
func (d *Decoder) Decode(data []byte, link LinkType, ts time.Time, wireLen int, p *Packet) error {
	*p = Packet{Time: ts, WireLen: wireLen, Frame: data, Link: link}
	switch link {
	case LinkEthernet:
		return d.ethernet(data, p, 0)
	case LinkRaw, LinkIPv4, LinkIPv6:
		return d.rawIP(data, p, 0)
	case LinkLinuxSLL:
		// pkttype(2) arphrd(2) addrlen(2) addr(8) protocol(2)
		if len(data) < 16 {
			return errLinkTrunc
		}
		return d.etherType(be16(data[14:]), data[16:], p, 0)
	case LinkLinuxSLL2:
		// protocol(2) reserved(2) ifindex(4) arphrd(2) pkttype(1) addrlen(1) addr(8)
		if len(data) < 20 {
			return errLinkTrunc
		}
		return d.etherType(be16(data[0:]), data[20:], p, 0)
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			return errLinkTrunc
		}
		// The family is in the writer's byte order (NULL) or network order
		// (LOOP); AF_INET is 2 everywhere, AF_INET6 is 10, 24, 28 or 30.
		fam := binary.LittleEndian.Uint32(data)
		if fam > 0xffff {
			fam = be32(data)
		}
		switch fam {
		case 2, 10, 24, 28, 30:
			return d.rawIP(data[4:], p, 0)
		}
		return ErrNotIP
	}
	return errLinkUnsupported
}

func (d *Decoder) ethernet(b []byte, p *Packet, depth int) error {
	if len(b) < 14 {
		return errEthTrunc
	}
	return d.etherType(be16(b[12:]), b[14:], p, depth)
}

// etherType dispatches on an EtherType, peeling any stack of VLAN tags.
func (d *Decoder) etherType(et uint16, b []byte, p *Packet, depth int) error {
	tags := 0
	for {
		switch et {
		case etherVLAN, etherQinQ, etherQinQ91:
			if len(b) < 4 {
				return errVLANTrunc
			}
			tags++
			if tags > MaxVLANTags {
				return errVLANTooMany
			}
			p.Encap |= EncapVLAN
			if tags > 1 {
				p.Encap |= EncapQinQ
			}
			p.VLAN = be16(b) & 0x0fff
			et = be16(b[2:])
			b = b[4:]
		case etherIPv4:
			return d.ipv4(b, p, depth)
		case etherIPv6:
			return d.ipv6(b, p, depth)
		case etherMPLS, etherMPLSMulti:
			return d.mpls(b, p, depth)
		case etherPPPoESess:
			return d.pppoeSession(b, p, depth)
		default:
			return ErrNotIP
		}
	}
}

// rawIP decodes a packet that starts at the IP header.
func (d *Decoder) rawIP(b []byte, p *Packet, depth int) error {
	if len(b) == 0 {
		return errIPv4Trunc
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(b, p, depth)
	case 6:
		return d.ipv6(b, p, depth)
	}
	return errRawVersion
}

func (d *Decoder) ipv4(b []byte, p *Packet, depth int) error {
	if len(b) < 20 {
		return errIPv4Trunc
	}
	if b[0]>>4 != 4 {
		return errIPv4Version
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return errIPv4IHL
	}
	if len(b) < ihl {
		return errIPv4Trunc
	}
	end := len(b)
	// Total length 0 is what segmentation offload leaves in captured
	// super-packets: trust the capture length then. Shorter than the
	// capture means Ethernet padding, which is cut off.
	if total := int(be16(b[2:])); total != 0 {
		if total < ihl {
			return errIPv4Length
		}
		end = min(end, total)
	}
	p.IPVersion = 4
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	p.IPID = be16(b[4:])
	p.Proto = b[9]
	p.Fragment = be16(b[6:])&0x1fff != 0
	p.SrcPort, p.DstPort = 0, 0
	if p.Fragment {
		p.csum = tcpChecksum{} // an outer header's sum (a tunnel) is not this packet's
		return nil             // a later fragment: no L4 header here
	}
	// A first fragment (more-fragments bit) or a segment cut by the snap
	// length cannot be checksummed.
	total := int(be16(b[2:]))
	p.csum = tcpChecksum{set: total != 0 && total <= len(b) && be16(b[6:])&0x2000 == 0}
	if p.csum.set {
		p.csum.pseudo = uint32(be16(b[12:])) + uint32(be16(b[14:])) + uint32(be16(b[16:])) + uint32(be16(b[18:])) +
			uint32(b[9]) + uint32(end-ihl)
	}
	return d.transport(b[ihl:end], p, depth)
}

func (d *Decoder) ipv6(b []byte, p *Packet, depth int) error {
	if len(b) < 40 {
		return errIPv6Trunc
	}
	if b[0]>>4 != 6 {
		return errIPv6Version
	}
	end := len(b)
	if plen := int(be16(b[4:])); plen != 0 { // 0: jumbogram or offload, trust the capture
		end = min(end, 40+plen)
	}
	p.IPVersion = 6
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.TTL = b[7]
	p.IPID = 0
	p.SrcPort, p.DstPort = 0, 0
	proto, off, frag, err := ipv6Ext(b[:end], b[6])
	p.Proto = proto
	p.Fragment = frag
	if err != nil || frag {
		p.csum = tcpChecksum{} // an outer header's sum (a tunnel) is not this packet's
		return err
	}
	// Extension headers (a routing header changes the pseudo-header's
	// destination) and a payload cut by the snap length are not checksummed.
	plen := int(be16(b[4:]))
	p.csum = tcpChecksum{set: off == 40 && plen != 0 && 40+plen <= len(b)}
	if p.csum.set {
		var s uint32
		for i := 8; i < 40; i += 2 {
			s += uint32(be16(b[i:]))
		}
		p.csum.pseudo = s + uint32(proto) + uint32(end-off)
	}
	return d.transport(b[off:end], p, depth)
}

// ipv6Ext walks the extension headers of the IPv6 packet b (whose fixed
// header is 40 bytes) and returns the upper-layer protocol, its offset, and
// whether this is a non-first fragment (no upper-layer header present).
func ipv6Ext(b []byte, next uint8) (proto uint8, off int, laterFragment bool, err error) {
	off = 40
	for range MaxIPv6ExtHeaders + 1 {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6Mobility, ipv6HIP, ipv6Shim6:
			if len(b)-off < 8 {
				return next, off, false, errIPv6ExtTrunc
			}
			hl := (int(b[off+1]) + 1) * 8
			if len(b)-off < hl {
				return next, off, false, errIPv6ExtTrunc
			}
			next = b[off]
			off += hl
		case ipv6AH:
			if len(b)-off < 8 {
				return next, off, false, errIPv6ExtTrunc
			}
			hl := (int(b[off+1]) + 2) * 4
			if len(b)-off < hl {
				return next, off, false, errIPv6ExtTrunc
			}
			next = b[off]
			off += hl
		case ipv6Fragment:
			if len(b)-off < 8 {
				return next, off, false, errIPv6ExtTrunc
			}
			fragOff := be16(b[off+2:]) &^ 7
			next = b[off]
			off += 8
			if fragOff != 0 {
				return next, off, true, nil
			}
		default:
			return next, off, false, nil
		}
	}
	return next, off, false, errIPv6ExtTooMany
}

func (d *Decoder) transport(b []byte, p *Packet, depth int) error {
	switch p.Proto {
	case ProtoTCP:
		if len(b) < 20 {
			return errTCPTrunc
		}
		doff := int(b[12]>>4) * 4
		if doff < 20 {
			return errTCPOffset
		}
		p.SrcPort = be16(b[0:])
		p.DstPort = be16(b[2:])
		p.Seq = be32(b[4:])
		p.Ack = be32(b[8:])
		p.TCPFlags = b[13]
		p.Window = be16(b[14:])
		tcpTimestamps(b[20:min(doff, len(b))], p)
		// Options cut off by the snap length (deep inside ERSPAN, say) still
		// leave ports and flags: keep the packet, with no payload.
		p.Payload = b[min(doff, len(b)):]
		if p.csum.set && doff <= len(b) {
			p.csum.header = uint32(fold(sum16(b[:doff])))
			p.csum.field = be16(b[16:])
		} else {
			p.csum.set = false
		}
	case ProtoUDP:
		if len(b) < 8 {
			return errUDPTrunc
		}
		p.SrcPort = be16(b[0:])
		p.DstPort = be16(b[2:])
		payload := b[8:]
		if ulen := int(be16(b[4:])); ulen >= 8 && ulen-8 < len(payload) {
			payload = payload[:ulen-8]
		}
		p.Payload = payload
		if d.decap {
			switch {
			case d.vxlanPorts.has(p.DstPort):
				return d.vxlanLayer(payload, p, depth)
			case d.genevePorts.has(p.DstPort):
				return d.geneve(payload, p, depth)
			case d.gtpuPorts.has(p.DstPort):
				return d.gtpu(payload, p, depth)
			}
		}
	case ProtoICMP, ProtoICMPv6:
		return icmp(b, p)
	case protoGRE:
		if d.decap {
			return d.gre(b, p, depth)
		}
	}
	return nil
}

// tcpTimestamps finds the first timestamp option (kind 8, length 10) in a
// TCP header's options. A malformed option list (a length under 2 or past
// the end) ends the walk: what follows cannot be trusted.
func tcpTimestamps(opts []byte, p *Packet) {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return
		}
		if opts[0] == 8 {
			if opts[1] == 10 {
				p.HasTimestamps, p.TSval, p.TSecr = true, be32(opts[2:]), be32(opts[6:])
			}
			return
		}
		opts = opts[opts[1]:]
	}
}

func (d *Decoder) vxlanLayer(b []byte, p *Packet, depth int) error {
	if len(b) < 8 {
		return errVXLANTrunc
	}
	if b[0]&0x08 == 0 {
		return errVXLANFlags
	}
	if depth >= MaxEncapDepth {
		return errVXLANTooDeep
	}
	p.Encap |= EncapVXLAN
	return d.ethernet(b[8:], p, depth+1)
}

// gre peels a GRE header (RFC 2784/2890). A GRE packet whose payload we do
// not decapsulate (PPTP's version 1, ...) stays reported as itself.
func (d *Decoder) gre(b []byte, p *Packet, depth int) error {
	if len(b) < 4 {
		return errGRETrunc
	}
	flags := be16(b)
	proto := be16(b[2:])
	if flags&0x0007 != 0 || flags&0x4000 != 0 {
		return nil // version 1 (PPTP) or source routing: not a mirror tunnel
	}
	hl := 4
	if flags&0x8000 != 0 { // checksum present
		hl += 4
	}
	if flags&0x2000 != 0 { // key present
		hl += 4
	}
	seq := flags&0x1000 != 0
	if seq {
		hl += 4
	}
	if len(b) < hl {
		return errGRETrunc
	}
	inner := b[hl:]
	switch proto {
	case etherIPv4, etherIPv6, etherTEB, etherERSPAN, etherERSPN3, etherMPLS:
	default:
		return nil
	}
	if depth >= MaxEncapDepth {
		return errGRETooDeep
	}
	p.Encap |= EncapGRE
	switch proto {
	case etherIPv4:
		return d.ipv4(inner, p, depth+1)
	case etherIPv6:
		return d.ipv6(inner, p, depth+1)
	case etherTEB:
		return d.ethernet(inner, p, depth+1)
	case etherMPLS:
		return d.mpls(inner, p, depth+1)
	case etherERSPAN:
		p.Encap |= EncapERSPAN
		if !seq { // type I: no ERSPAN header, the mirrored frame follows GRE
			return d.ethernet(inner, p, depth+1)
		}
		// Type II: ver(4) vlan(12) cos(3) en(2) t(1) session(10) reserved(12) index(20)
		if len(inner) < 8 {
			return errERSPANTrunc
		}
		if v := inner[0] >> 4; v != 1 && v != 0 { // 0: early type II senders
			return errERSPANVersion
		}
		p.VLAN = be16(inner) & 0x0fff // original VLAN; a tag inside the frame overrides it
		return d.ethernet(inner[8:], p, depth+1)
	default: // etherERSPN3
		// Type III: ver(4) vlan(12) cos(3) bso(2) t(1) session(10) timestamp(32)
		// sgt(16) p(1) ft(5) hwid(6) d(1) gra(2) o(1) [platform subheader(64) if o]
		if len(inner) < 12 {
			return errERSPANTrunc
		}
		if inner[0]>>4 != 2 {
			return errERSPANVersion
		}
		p.Encap |= EncapERSPAN
		p.VLAN = be16(inner) & 0x0fff
		hl := 12
		if inner[11]&0x01 != 0 {
			hl += 8
		}
		if len(inner) < hl {
			return errERSPANTrunc
		}
		switch ft := (inner[10] >> 2) & 0x1f; ft {
		case 0:
			return d.ethernet(inner[hl:], p, depth+1)
		case 2:
			return d.rawIP(inner[hl:], p, depth+1)
		}
		return errERSPANFrame
	}
}

// icmp decodes an ICMP or ICMPv6 header and, for error messages, the IP
// header and first 8 L4 bytes they quote. A quote that does not parse leaves
// Quoted false: the ICMP message itself is still good.
func icmp(b []byte, p *Packet) error {
	if len(b) < 8 {
		return errICMPTrunc
	}
	ic := &p.ICMP
	ic.Type, ic.Code = b[0], b[1]
	p.Payload = b[8:]
	q := b[8:]
	if p.Proto == ProtoICMP {
		if ic.Type != icmpv4Unreach && ic.Type != icmpv4TimeExc && ic.Type != icmpv4Param {
			return nil
		}
		if len(q) < 20 || q[0]>>4 != 4 {
			return nil
		}
		ihl := int(q[0]&0x0f) * 4
		if ihl < 20 || len(q) < ihl {
			return nil
		}
		ic.QSrc = netip.AddrFrom4([4]byte(q[12:16]))
		ic.QDst = netip.AddrFrom4([4]byte(q[16:20]))
		ic.QProto = q[9]
		ic.QIPID = be16(q[4:])
		ic.Quoted = true
		if be16(q[6:])&0x1fff == 0 {
			quotedL4(q[ihl:], ic)
		}
		return nil
	}
	switch ic.Type {
	case icmpv6Unreach, icmpv6TooBig, icmpv6TimeExc, icmpv6Param:
	default:
		return nil
	}
	if len(q) < 40 || q[0]>>4 != 6 {
		return nil
	}
	ic.QSrc = netip.AddrFrom16([16]byte(q[8:24]))
	ic.QDst = netip.AddrFrom16([16]byte(q[24:40]))
	proto, off, later, err := ipv6Ext(q, q[6])
	ic.QProto = proto
	ic.Quoted = true
	if err == nil && !later {
		quotedL4(q[off:], ic)
	}
	return nil
}

// quotedL4 reads ports (and the TCP sequence number) from the at most 8
// bytes of transport header an ICMP error quotes.
func quotedL4(b []byte, ic *ICMP) {
	switch ic.QProto {
	case ProtoTCP, ProtoUDP:
		if len(b) >= 4 {
			ic.QSrcPort = be16(b[0:])
			ic.QDstPort = be16(b[2:])
		}
		if ic.QProto == ProtoTCP && len(b) >= 8 {
			ic.QSeq = be32(b[4:])
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}
