package decode

// Carrier and provider framing a mirror port or gateway also delivers: MPLS
// label stacks and PPPoE sessions (peeled always, like VLAN tags: they are
// link framing), GTP-U (mobile backhaul) and Geneve (cloud overlays), peeled
// when Options.Decapsulate is set, like VXLAN.

const (
	etherMPLS      = 0x8847
	etherMPLSMulti = 0x8848
	etherPPPoEDisc = 0x8863
	etherPPPoESess = 0x8864

	pppIPv4 = 0x0021
	pppIPv6 = 0x0057

	// MaxMPLSLabels is the most labels read from one MPLS stack.
	MaxMPLSLabels = 8
	// maxGTPExtHeaders bounds the GTP-U extension header chain.
	maxGTPExtHeaders = 8
	gtpuGPDU         = 0xff // the only GTP-U message type that carries a user packet
)

var (
	errMPLSTrunc      = &Error{LayerMPLS, "truncated MPLS label stack"}
	errMPLSTooMany    = &Error{LayerMPLS, "too many MPLS labels"}
	errMPLSPayload    = &Error{LayerMPLS, "MPLS payload is neither IP nor a pseudowire control word"}
	errPPPoETrunc     = &Error{LayerPPPoE, "truncated PPPoE session header"}
	errPPPoEVersion   = &Error{LayerPPPoE, "PPPoE version or type is not 1"}
	errGTPUTrunc      = &Error{LayerGTPU, "truncated GTP-U header"}
	errGTPUExtTooMany = &Error{LayerGTPU, "too many GTP-U extension headers"}
	errGTPUTooDeep    = &Error{LayerGTPU, "too many nested tunnels"}
	errGeneveTrunc    = &Error{LayerGeneve, "truncated Geneve header"}
	errGeneveVersion  = &Error{LayerGeneve, "Geneve version is not 0"}
	errGeneveTooDeep  = &Error{LayerGeneve, "too many nested tunnels"}
)

// mpls peels a label stack (RFC 3032) up to the bottom-of-stack bit. The
// stack does not say what it carries: the first nibble after it does (4 or 6:
// IP; 0: an Ethernet pseudowire's control word, RFC 4385, then a frame).
func (d *Decoder) mpls(b []byte, p *Packet, depth int) error {
	for n := 1; ; n++ {
		if len(b) < 4 {
			return errMPLSTrunc
		}
		if n > MaxMPLSLabels {
			return errMPLSTooMany
		}
		bottom := b[2]&0x01 != 0
		b = b[4:]
		if bottom {
			break
		}
	}
	p.Encap |= EncapMPLS
	if len(b) == 0 {
		return errMPLSTrunc
	}
	if depth >= MaxEncapDepth {
		return errMPLSTooMany
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(b, p, depth+1)
	case 6:
		return d.ipv6(b, p, depth+1)
	case 0:
		if len(b) < 4 {
			return errMPLSTrunc
		}
		return d.ethernet(b[4:], p, depth+1)
	}
	return errMPLSPayload
}

// pppoeSession peels a PPPoE session header (RFC 2516) and the PPP protocol
// field, which may be compressed to one byte (an odd first byte, RFC 1661).
// Discovery frames and PPP control protocols carry no IP.
func (d *Decoder) pppoeSession(b []byte, p *Packet, depth int) error {
	if len(b) < 7 {
		return errPPPoETrunc
	}
	if b[0] != 0x11 {
		return errPPPoEVersion
	}
	end := len(b)
	if l := 6 + int(be16(b[4:])); l < end {
		end = l // Ethernet padding after a short session frame
	}
	b = b[6:end]
	if len(b) == 0 {
		return errPPPoETrunc // the length field says nothing follows
	}
	var proto uint16
	if b[0]&0x01 != 0 {
		proto, b = uint16(b[0]), b[1:]
	} else {
		if len(b) < 2 {
			return errPPPoETrunc
		}
		proto, b = be16(b), b[2:]
	}
	p.Encap |= EncapPPPoE
	switch proto {
	case pppIPv4:
		return d.ipv4(b, p, depth)
	case pppIPv6:
		return d.ipv6(b, p, depth)
	}
	return ErrNotIP // LCP, IPCP, authentication...
}

// gtpu peels a GTPv1-U header (3GPP TS 29.281): only G-PDUs carry a user
// packet; echo and error messages are reported as the UDP packet they are.
func (d *Decoder) gtpu(b []byte, p *Packet, depth int) error {
	if len(b) < 8 {
		return errGTPUTrunc
	}
	flags := b[0]
	if flags>>5 != 1 || flags&0x10 == 0 || b[1] != gtpuGPDU {
		return nil // GTP' or GTPv2 on the port, or a signalling message
	}
	end := len(b)
	if l := 8 + int(be16(b[2:])); l < end {
		end = l
	}
	b = b[:end]
	off := 8
	if flags&0x07 != 0 { // E, S or PN: sequence, N-PDU number and next extension type follow
		if len(b) < 12 {
			return errGTPUTrunc
		}
		next := b[11]
		off = 12
		for n := 0; next != 0; n++ {
			if n >= maxGTPExtHeaders {
				return errGTPUExtTooMany
			}
			if len(b)-off < 4 {
				return errGTPUTrunc
			}
			l := int(b[off]) * 4 // in 4-byte units, the next-type byte last
			if l == 0 || len(b)-off < l {
				return errGTPUTrunc
			}
			next = b[off+l-1]
			off += l
		}
	}
	if depth >= MaxEncapDepth {
		return errGTPUTooDeep
	}
	inner := b[off:]
	if len(inner) == 0 {
		return errGTPUTrunc
	}
	p.Encap |= EncapGTPU
	return d.rawIP(inner, p, depth+1)
}

// geneve peels a Geneve header (RFC 8926) and its options.
func (d *Decoder) geneve(b []byte, p *Packet, depth int) error {
	if len(b) < 8 {
		return errGeneveTrunc
	}
	if b[0]>>6 != 0 {
		return errGeneveVersion
	}
	hl := 8 + int(b[0]&0x3f)*4
	if len(b) < hl {
		return errGeneveTrunc
	}
	if depth >= MaxEncapDepth {
		return errGeneveTooDeep
	}
	inner := b[hl:]
	switch be16(b[2:]) {
	case etherTEB:
		p.Encap |= EncapGeneve
		return d.ethernet(inner, p, depth+1)
	case etherIPv4:
		p.Encap |= EncapGeneve
		return d.ipv4(inner, p, depth+1)
	case etherIPv6:
		p.Encap |= EncapGeneve
		return d.ipv6(inner, p, depth+1)
	}
	return nil // another payload: reported as the UDP packet
}
