package zoom

import (
	"encoding/binary"
	"net/netip"
)

// STUN as Zoom uses it.
//
// Zoom's desktop client sends its own binding request to UDP 3478/3479: a
// 44-byte message, type 0x0001, length 24, a 16-byte id (no RFC 5389 magic
// cookie), and one attribute 0x0101 of 20 bytes holding
// "1234567890123456789\0". The server answers type 0x0002 with the same id
// and attribute 0x0103 = reserved byte, family (1 IPv4, 2 IPv6), port,
// address: the client's public address, not XOR-obfuscated.
//
// The web client uses standard WebRTC STUN (RFC 5389: magic cookie
// 0x2112A442, XOR-MAPPED-ADDRESS) and then DTLS, on UDP 8801.
const (
	stunHeaderLen         = 20
	stunMagicCookie       = 0x2112A442
	zoomSTUNRequestType   = 0x0001
	zoomSTUNResponseType  = 0x0002
	zoomSTUNAttrSignature = 0x0101
	zoomSTUNAttrMapped    = 0x0103
	zoomSTUNRequestLen    = 44

	stunAttrMappedAddress    = 0x0001
	stunAttrUsername         = 0x0006
	stunAttrMessageIntegrity = 0x0008
	stunAttrErrorCode        = 0x0009
	stunAttrXORMappedAddress = 0x0020
	stunAttrFingerprint      = 0x8028

	// MaxSTUNAttributes bounds the attributes ParseSTUN walks in one message.
	MaxSTUNAttributes = 64
)

// ZoomSTUNSignature is the value of attribute 0x0101 in Zoom's request.
var ZoomSTUNSignature = [20]byte{'1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 0}

// STUNKind says what kind of STUN message a packet is.
type STUNKind uint8

const (
	STUNNone         STUNKind = iota
	STUNZoomRequest           // Zoom's 44-byte binding request
	STUNZoomResponse          // Zoom's answer (type 0x0002, attribute 0x0103)
	STUNRequest               // RFC 5389 request (class 0b00)
	STUNIndication            // RFC 5389 indication (0b01)
	STUNSuccess               // RFC 5389 success response (0b10)
	STUNError                 // RFC 5389 error response (0b11)
)

var stunKindNames = [...]string{"none", "zoom_request", "zoom_response", "request", "indication", "success", "error"}

func (k STUNKind) String() string {
	if int(k) < len(stunKindNames) {
		return stunKindNames[k]
	}
	return "none"
}

// STUNInfo is what ParseSTUN learnt from one packet.
type STUNInfo struct {
	Kind STUNKind
	// Zoom: Zoom's own dialect (STUNZoomRequest or STUNZoomResponse).
	Zoom bool
	// Method is the RFC 5389 method (1 = Binding); 1 for Zoom's messages.
	Method uint16
	// TxID is Zoom's 16-byte id, or for RFC 5389 the magic cookie followed
	// by the 12-byte transaction id.
	TxID [16]byte
	// Mapped is the address the server saw (XOR-MAPPED-ADDRESS, else
	// MAPPED-ADDRESS, or Zoom's attribute 0x0103), when present.
	Mapped netip.AddrPort
	// ErrorCode is the RFC 5389 ERROR-CODE (300-699), 0 when absent.
	ErrorCode                                 uint16
	HasUsername, HasIntegrity, HasFingerprint bool
	Attributes                                int // attributes walked
}

// ParseSTUN recognises Zoom's STUN dialect and standard RFC 5389 STUN. It
// checks the header (type, length against the payload, magic cookie or
// Zoom's signature) and walks at most MaxSTUNAttributes attributes inside
// the declared length. It allocates nothing.
func ParseSTUN(p []byte) (STUNInfo, bool) {
	var si STUNInfo
	if len(p) < stunHeaderLen || p[0]&0xc0 != 0 {
		return si, false
	}
	typ := binary.BigEndian.Uint16(p[0:2])
	n := int(binary.BigEndian.Uint16(p[2:4]))
	if stunHeaderLen+n > len(p) {
		return si, false
	}
	body := p[stunHeaderLen : stunHeaderLen+n]
	copy(si.TxID[:], p[4:20])

	if binary.BigEndian.Uint32(p[4:8]) == stunMagicCookie && n%4 == 0 {
		si.Method = typ&0x000f | (typ&0x00e0)>>1 | (typ&0x3e00)>>2
		switch (typ>>4)&1 | (typ>>7)&2 {
		case 0:
			si.Kind = STUNRequest
		case 1:
			si.Kind = STUNIndication
		case 2:
			si.Kind = STUNSuccess
		case 3:
			si.Kind = STUNError
		}
		if !walkSTUN(body, &si, true, p[4:20]) {
			return STUNInfo{}, false
		}
		return si, true
	}

	switch typ {
	case zoomSTUNRequestType:
		if len(p) < zoomSTUNRequestLen || n != zoomSTUNRequestLen-stunHeaderLen ||
			binary.BigEndian.Uint16(body[0:2]) != zoomSTUNAttrSignature ||
			binary.BigEndian.Uint16(body[2:4]) != uint16(len(ZoomSTUNSignature)) ||
			[20]byte(body[4:24]) != ZoomSTUNSignature {
			return STUNInfo{}, false
		}
		si.Kind, si.Zoom, si.Method, si.Attributes = STUNZoomRequest, true, 1, 1
		return si, true
	case zoomSTUNResponseType:
		if !walkSTUN(body, &si, false, nil) || !si.Mapped.IsValid() {
			return STUNInfo{}, false
		}
		si.Kind, si.Zoom, si.Method = STUNZoomResponse, true, 1
		return si, true
	}
	return STUNInfo{}, false
}

// walkSTUN reads the attributes. RFC 5389 pads values to 4 bytes; Zoom's
// response is read the same way (its attributes are multiples of 4).
func walkSTUN(b []byte, si *STUNInfo, rfc5389 bool, xorKey []byte) bool {
	for len(b) > 0 {
		if si.Attributes == MaxSTUNAttributes || len(b) < 4 {
			return false
		}
		at := binary.BigEndian.Uint16(b[0:2])
		al := int(binary.BigEndian.Uint16(b[2:4]))
		if 4+al > len(b) {
			return false
		}
		v := b[4 : 4+al]
		si.Attributes++
		if rfc5389 {
			switch at {
			case stunAttrXORMappedAddress:
				if ap, ok := readAddress(v, xorKey); ok {
					si.Mapped = ap
				}
			case stunAttrMappedAddress:
				if ap, ok := readAddress(v, nil); ok && !si.Mapped.IsValid() {
					si.Mapped = ap
				}
			case stunAttrErrorCode:
				if len(v) >= 4 {
					si.ErrorCode = uint16(v[2]&0x07)*100 + uint16(v[3])
				}
			case stunAttrUsername:
				si.HasUsername = true
			case stunAttrMessageIntegrity:
				si.HasIntegrity = true
			case stunAttrFingerprint:
				si.HasFingerprint = true
			}
		} else if at == zoomSTUNAttrMapped {
			if ap, ok := readAddress(v, nil); ok {
				si.Mapped = ap
			}
		}
		adv := 4 + (al+3)&^3
		if adv > len(b) {
			adv = len(b)
		}
		b = b[adv:]
	}
	return true
}

// readAddress reads a (XOR-)MAPPED-ADDRESS value: reserved, family, port,
// address. xorKey is the cookie and transaction id (16 bytes) or nil.
func readAddress(v []byte, xorKey []byte) (netip.AddrPort, bool) {
	if len(v) < 8 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(v[2:4])
	if xorKey != nil {
		port ^= uint16(stunMagicCookie >> 16)
	}
	switch v[1] {
	case 0x01:
		var a [4]byte
		copy(a[:], v[4:8])
		if xorKey != nil {
			for i := range a {
				a[i] ^= xorKey[i]
			}
		}
		return netip.AddrPortFrom(netip.AddrFrom4(a), port), true
	case 0x02:
		if len(v) < 20 {
			return netip.AddrPort{}, false
		}
		var a [16]byte
		copy(a[:], v[4:20])
		if xorKey != nil {
			for i := range a {
				a[i] ^= xorKey[i]
			}
		}
		// an IPv4-mapped address is reported as the IPv4 address it is
		return netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

// AppendZoomSTUNRequest appends Zoom's 44-byte binding request with id.
func AppendZoomSTUNRequest(dst []byte, id [16]byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, zoomSTUNRequestType)
	dst = binary.BigEndian.AppendUint16(dst, zoomSTUNRequestLen-stunHeaderLen)
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint16(dst, zoomSTUNAttrSignature)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ZoomSTUNSignature)))
	return append(dst, ZoomSTUNSignature[:]...)
}

// BuildZoomSTUNRequest returns Zoom's binding request with id (the active
// probe sends it to UDP 3478/3479).
func BuildZoomSTUNRequest(id [16]byte) []byte {
	return AppendZoomSTUNRequest(make([]byte, 0, zoomSTUNRequestLen), id)
}

// BuildZoomSTUNResponse returns the answer a Zoom STUN server gives to the
// request with id: type 0x0002, the same id, attribute 0x0103 with mapped
// (the test bed's server sends it).
func BuildZoomSTUNResponse(id [16]byte, mapped netip.AddrPort) []byte {
	attr := appendAddress(nil, zoomSTUNAttrMapped, mapped, nil)
	b := make([]byte, 0, stunHeaderLen+len(attr))
	b = binary.BigEndian.AppendUint16(b, zoomSTUNResponseType)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attr)))
	b = append(b, id[:]...)
	return append(b, attr...)
}

// BuildSTUNBindingRequest returns an RFC 5389 binding request without
// attributes, as a WebRTC client starts with.
func BuildSTUNBindingRequest(txid [12]byte) []byte {
	b := make([]byte, 0, stunHeaderLen)
	b = binary.BigEndian.AppendUint16(b, 0x0001)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, stunMagicCookie)
	return append(b, txid[:]...)
}

// BuildSTUNBindingSuccess returns an RFC 5389 binding success response
// carrying XOR-MAPPED-ADDRESS.
func BuildSTUNBindingSuccess(txid [12]byte, mapped netip.AddrPort) []byte {
	var key [16]byte
	binary.BigEndian.PutUint32(key[:4], stunMagicCookie)
	copy(key[4:], txid[:])
	attr := appendAddress(nil, stunAttrXORMappedAddress, mapped, key[:])
	b := make([]byte, 0, stunHeaderLen+len(attr))
	b = binary.BigEndian.AppendUint16(b, 0x0101)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attr)))
	b = append(b, key[:]...)
	return append(b, attr...)
}

func appendAddress(dst []byte, typ uint16, ap netip.AddrPort, xorKey []byte) []byte {
	a := ap.Addr().Unmap()
	raw := a.AsSlice()
	family := byte(0x01)
	if a.Is6() {
		family = 0x02
	}
	port := ap.Port()
	if xorKey != nil {
		port ^= uint16(stunMagicCookie >> 16)
		for i := range raw {
			raw[i] ^= xorKey[i]
		}
	}
	dst = binary.BigEndian.AppendUint16(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(4+len(raw)))
	dst = append(dst, 0, family)
	dst = binary.BigEndian.AppendUint16(dst, port)
	return append(dst, raw...)
}
