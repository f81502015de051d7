package tls

// Extension types this package reads.
const (
	ExtServerName          uint16 = 0
	ExtStatusRequest       uint16 = 5
	ExtSupportedGroups     uint16 = 10
	ExtECPointFormats      uint16 = 11
	ExtSignatureAlgorithms uint16 = 13
	ExtALPN                uint16 = 16
	ExtSCT                 uint16 = 18
	ExtPadding             uint16 = 21
	ExtSupportedVersions   uint16 = 43
	ExtKeyShare            uint16 = 51
)

// IsGREASE reports whether v is one of the reserved GREASE values (RFC 8701),
// which clients sprinkle into lists and fingerprints must ignore.
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// u16 reads a big-endian uint16 at b[i:]; callers check bounds.
func u16(b []byte, i int) uint16 { return uint16(b[i])<<8 | uint16(b[i+1]) }

// vec8 splits b into a uint8-length-prefixed vector and the rest.
func vec8(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return nil, nil, false
	}
	n := int(b[0])
	return b[1 : 1+n], b[1+n:], true
}

// vec16 splits b into a uint16-length-prefixed vector and the rest.
func vec16(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(u16(b, 0))
	if n > len(b)-2 {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// ClientHello is a parsed ClientHello. Every slice points into the message
// it was parsed from: the value is valid only as long as those bytes are.
// Parsing allocates nothing. List fields hold the raw wire lists (2 bytes per
// entry unless noted); use the accessors to read them.
type ClientHello struct {
	LegacyVersion uint16
	Random        []byte
	SessionID     []byte
	CipherSuites  []byte // 2 bytes each
	Compression   []byte // 1 byte each
	Extensions    []byte // the raw extension block: type(2) len(2) data
	// Filled from the extensions:
	SNI               []byte // host_name of server_name; nil if absent
	ALPN              []byte // raw protocol_name_list: len(1) name ...
	SupportedVersions []byte // 2 bytes each
	Groups            []byte // supported_groups, 2 bytes each
	PointFormats      []byte // 1 byte each
	SigAlgs           []byte // signature_algorithms, 2 bytes each
	KeyShares         []byte // raw client_shares: group(2) len(2) key ...
	StatusRequest     bool   // asked for a stapled OCSP response
	SCTRequest        bool   // asked for signed certificate timestamps
}

// ParseClientHello parses a ClientHello message body (without the 4-byte
// handshake header).
func ParseClientHello(b []byte, ch *ClientHello) error {
	*ch = ClientHello{}
	if len(b) < 2+32 {
		return ErrMalformed
	}
	ch.LegacyVersion = u16(b, 0)
	ch.Random = b[2:34]
	var ok bool
	rest := b[34:]
	if ch.SessionID, rest, ok = vec8(rest); !ok || len(ch.SessionID) > 32 {
		return ErrMalformed
	}
	if ch.CipherSuites, rest, ok = vec16(rest); !ok || len(ch.CipherSuites)%2 != 0 {
		return ErrMalformed
	}
	if ch.Compression, rest, ok = vec8(rest); !ok {
		return ErrMalformed
	}
	if len(rest) == 0 {
		return nil // no extensions (SSL 3.0 style)
	}
	if ch.Extensions, rest, ok = vec16(rest); !ok || len(rest) != 0 {
		return ErrMalformed
	}
	return forEachExtension(ch.Extensions, func(typ uint16, data []byte) bool {
		return ch.extension(typ, data)
	})
}

// forEachExtension walks an extension block; fn returns false on bad data.
func forEachExtension(b []byte, fn func(typ uint16, data []byte) bool) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrMalformed
		}
		typ := u16(b, 0)
		n := int(u16(b, 2))
		if n > len(b)-4 {
			return ErrMalformed
		}
		if !fn(typ, b[4:4+n]) {
			return ErrMalformed
		}
		b = b[4+n:]
	}
	return nil
}

func (ch *ClientHello) extension(typ uint16, data []byte) bool {
	var ok bool
	switch typ {
	case ExtServerName:
		list, _, ok := vec16(data)
		if !ok {
			return false
		}
		for len(list) >= 3 {
			nt := list[0]
			var name []byte
			if name, list, ok = vec16(list[1:]); !ok {
				return false
			}
			if nt == 0 && ch.SNI == nil {
				if len(name) == 0 || len(name) > 255 {
					return false
				}
				ch.SNI = name
			}
		}
	case ExtALPN:
		if ch.ALPN, _, ok = vec16(data); !ok {
			return false
		}
	case ExtSupportedVersions:
		if ch.SupportedVersions, _, ok = vec8(data); !ok || len(ch.SupportedVersions)%2 != 0 {
			return false
		}
	case ExtSupportedGroups:
		if ch.Groups, _, ok = vec16(data); !ok || len(ch.Groups)%2 != 0 {
			return false
		}
	case ExtECPointFormats:
		if ch.PointFormats, _, ok = vec8(data); !ok {
			return false
		}
	case ExtSignatureAlgorithms:
		if ch.SigAlgs, _, ok = vec16(data); !ok || len(ch.SigAlgs)%2 != 0 {
			return false
		}
	case ExtKeyShare:
		if ch.KeyShares, _, ok = vec16(data); !ok {
			return false
		}
	case ExtStatusRequest:
		ch.StatusRequest = true
	case ExtSCT:
		ch.SCTRequest = true
	}
	return true
}

// NumCipherSuites is the number of offered cipher suites (GREASE included).
func (ch *ClientHello) NumCipherSuites() int { return len(ch.CipherSuites) / 2 }

// CipherSuite returns the i-th offered cipher suite.
func (ch *ClientHello) CipherSuite(i int) uint16 { return u16(ch.CipherSuites, 2*i) }

// MaxVersion is the highest version offered: from supported_versions when
// present (GREASE ignored), else the legacy version field.
func (ch *ClientHello) MaxVersion() uint16 {
	var v uint16
	for i := 0; i+1 < len(ch.SupportedVersions); i += 2 {
		x := u16(ch.SupportedVersions, i)
		if !IsGREASE(x) && x > v && x>>8 == 3 {
			v = x
		}
	}
	if v == 0 {
		return ch.LegacyVersion
	}
	return v
}

// FirstALPN is the first protocol the client offers, or nil.
func (ch *ClientHello) FirstALPN() []byte {
	p, _, ok := vec8(ch.ALPN)
	if !ok || len(p) == 0 {
		return nil
	}
	return p
}

// KeyShareGroups appends the groups of the offered key shares to dst.
func (ch *ClientHello) KeyShareGroups(dst []uint16) []uint16 {
	b := ch.KeyShares
	for len(b) >= 4 {
		g := u16(b, 0)
		n := int(u16(b, 2))
		if n > len(b)-4 {
			break
		}
		dst = append(dst, g)
		b = b[4+n:]
	}
	return dst
}

// ServerHello is a parsed ServerHello; slices point into the parsed message.
type ServerHello struct {
	LegacyVersion uint16
	Random        []byte
	SessionID     []byte
	CipherSuite   uint16
	Compression   uint8
	Extensions    []byte
	// SelectedVersion is from supported_versions (TLS 1.3), else 0.
	SelectedVersion uint16
	KeyShareGroup   uint16 // TLS 1.3 key_share group (or HRR's selected group)
	ALPN            []byte // the selected protocol
	SCTList         []byte // raw SignedCertificateTimestampList (extension 18), nil if absent
	StatusRequest   bool   // the server will staple OCSP (TLS 1.2 CertificateStatus)
	// HelloRetryRequest is set when the message is a TLS 1.3 HelloRetryRequest.
	HelloRetryRequest bool
}

// helloRetryRandom is the fixed Random that marks a HelloRetryRequest (RFC 8446 4.1.3).
var helloRetryRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// ParseServerHello parses a ServerHello body.
func ParseServerHello(b []byte, sh *ServerHello) error {
	*sh = ServerHello{}
	if len(b) < 2+32 {
		return ErrMalformed
	}
	sh.LegacyVersion = u16(b, 0)
	sh.Random = b[2:34]
	sh.HelloRetryRequest = [32]byte(sh.Random) == helloRetryRandom
	var ok bool
	rest := b[34:]
	if sh.SessionID, rest, ok = vec8(rest); !ok || len(sh.SessionID) > 32 {
		return ErrMalformed
	}
	if len(rest) < 3 {
		return ErrMalformed
	}
	sh.CipherSuite = u16(rest, 0)
	sh.Compression = rest[2]
	rest = rest[3:]
	if len(rest) == 0 {
		return nil
	}
	if sh.Extensions, rest, ok = vec16(rest); !ok || len(rest) != 0 {
		return ErrMalformed
	}
	return forEachExtension(sh.Extensions, func(typ uint16, data []byte) bool {
		switch typ {
		case ExtSupportedVersions:
			if len(data) != 2 {
				return false
			}
			sh.SelectedVersion = u16(data, 0)
		case ExtKeyShare:
			if len(data) < 2 {
				return false
			}
			sh.KeyShareGroup = u16(data, 0)
		case ExtALPN:
			list, _, ok := vec16(data)
			if !ok {
				return false
			}
			p, _, ok := vec8(list)
			if !ok {
				return false
			}
			sh.ALPN = p
		case ExtSCT:
			list, _, ok := vec16(data)
			if !ok {
				return false
			}
			sh.SCTList = list
			if sh.SCTList == nil {
				sh.SCTList = data[:0]
			}
		case ExtStatusRequest:
			sh.StatusRequest = true
		}
		return true
	})
}

// Version is the negotiated version: supported_versions when present, else
// the legacy field.
func (sh *ServerHello) Version() uint16 {
	if sh.SelectedVersion != 0 {
		return sh.SelectedVersion
	}
	return sh.LegacyVersion
}

// VersionName is a short, bounded name for a version ("tls1.2", "tls1.3",
// "ssl3", "unknown"), used as a metric label.
func VersionName(v uint16) string {
	switch v {
	case VersionSSL30:
		return "ssl3"
	case VersionTLS10:
		return "tls1.0"
	case VersionTLS11:
		return "tls1.1"
	case VersionTLS12:
		return "tls1.2"
	case VersionTLS13:
		return "tls1.3"
	}
	return "unknown"
}

// VersionNames lists every value VersionName returns.
var VersionNames = []string{"ssl3", "tls1.0", "tls1.1", "tls1.2", "tls1.3", "unknown"}

// SCTCount counts the entries of a SignedCertificateTimestampList body (as in
// ServerHello.SCTList); ok is false when the list is malformed.
func SCTCount(list []byte) (n int, ok bool) {
	for len(list) > 0 {
		var sct []byte
		if sct, list, ok = vec16(list); !ok || len(sct) == 0 {
			return n, false
		}
		n++
	}
	return n, true
}

// AppendSCTs appends each SCT of a SignedCertificateTimestampList body to dst
// (sub-slices of list).
func AppendSCTs(dst [][]byte, list []byte) [][]byte {
	for len(list) > 0 {
		sct, rest, ok := vec16(list)
		if !ok {
			break
		}
		dst = append(dst, sct)
		list = rest
	}
	return dst
}
