package identity

// The identity stage needs one thing from a ClientHello: the server_name. It
// reads it from whatever prefix of the client's stream has arrived, so a name
// in the first segment of a two-segment ClientHello is known before the
// second arrives (an SNI filter that resets the connection after the first
// segment still leaves the name behind). The bytes are hostile: every length
// is checked against what is there.

// scanResult is what a prefix of the client's stream says.
type scanResult uint8

const (
	scanNeedMore scanResult = iota // a ClientHello so far, the name not reached yet
	scanFound                      // the server_name, valid
	scanNoName                     // a ClientHello without a (valid) server_name
	scanNotHello                   // not a TLS ClientHello, or malformed
)

const (
	recordHandshake    = 0x16
	handshakeClient    = 0x01
	recordHeaderLen    = 5
	maxRecordLen       = 16384 + 2048 // TLSCiphertext limit; a plaintext hello is within it
	extServerName      = 0
	serverNameHostName = 0
	maxNameLen         = 253
)

// scanHello looks for the server_name in b, the first bytes of the client's
// stream. A ClientHello split over several TLS records is joined in scratch
// (whose capacity bounds it); the result's name points into b or scratch.
func scanHello(b []byte, scratch []byte) ([]byte, scanResult) {
	if len(b) == 0 {
		return nil, scanNeedMore
	}
	if b[0] != recordHandshake || len(b) >= 2 && b[1] != 0x03 {
		return nil, scanNotHello
	}
	if len(b) < recordHeaderLen {
		return nil, scanNeedMore
	}
	n := int(b[3])<<8 | int(b[4])
	if n == 0 || n > maxRecordLen {
		return nil, scanNotHello
	}
	first := b[recordHeaderLen:]
	whole := len(first) >= n
	if whole {
		first = first[:n]
	}
	// Most ClientHellos fit one record: scan it in place.
	if name, res := scanHandshake(first); res != scanNeedMore || !whole {
		return name, res
	}
	// The handshake message continues in the next records: join their payloads.
	hs := append(scratch[:0], first...)
	rest := b[recordHeaderLen+n:]
	for {
		if len(rest) < recordHeaderLen {
			if len(rest) > 0 && rest[0] != recordHandshake {
				return nil, scanNotHello
			}
			return scanHandshake(hs)
		}
		if rest[0] != recordHandshake || rest[1] != 0x03 {
			return nil, scanNotHello // the message ended without its bytes
		}
		n := int(rest[3])<<8 | int(rest[4])
		if n == 0 || n > maxRecordLen {
			return nil, scanNotHello
		}
		payload := rest[recordHeaderLen:]
		more := len(payload) < n // this record's end has not arrived
		if !more {
			payload = payload[:n]
		}
		if len(hs)+len(payload) > cap(hs) {
			// The scratch bounds the join as the stream's cap bounds the
			// stream; never reached while it is at least as big.
			return nil, scanNeedMore
		}
		hs = append(hs, payload...)
		name, res := scanHandshake(hs)
		if res != scanNeedMore || more {
			return name, res
		}
		rest = rest[recordHeaderLen+n:]
	}
}

// scanHandshake reads the first bytes of a handshake message (type, 3-byte
// length, body); the message's length tells whether more are to come.
func scanHandshake(b []byte) ([]byte, scanResult) {
	partial := true
	need := func() ([]byte, scanResult) {
		if partial {
			return nil, scanNeedMore
		}
		return nil, scanNotHello
	}
	if len(b) < 1 {
		return need()
	}
	if b[0] != handshakeClient {
		return nil, scanNotHello
	}
	if len(b) < 4 {
		return need()
	}
	hl := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	b = b[4:]
	if len(b) >= hl {
		b, partial = b[:hl], false
	}
	// version(2) random(32)
	if len(b) < 34 {
		return need()
	}
	b = b[34:]
	var ok bool
	for _, width := range [...]int{1, 2, 1} { // session id, cipher suites, compression methods
		if b, ok = skipVec(b, width); !ok {
			return need()
		}
	}
	if len(b) == 0 && !partial {
		return nil, scanNoName // no extensions at all
	}
	if len(b) < 2 {
		return need()
	}
	el := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if len(b) >= el {
		b, partial = b[:el], false
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return need()
		}
		typ := int(b[0])<<8 | int(b[1])
		l := int(b[2])<<8 | int(b[3])
		b = b[4:]
		if len(b) < l {
			return need()
		}
		if typ == extServerName {
			return hostName(b[:l])
		}
		b = b[l:]
	}
	if partial {
		return nil, scanNeedMore
	}
	return nil, scanNoName
}

// skipVec skips a vector with a length prefix of width 1 or 2 bytes.
func skipVec(b []byte, width int) ([]byte, bool) {
	if len(b) < width {
		return nil, false
	}
	l := int(b[0])
	if width == 2 {
		l = l<<8 | int(b[1])
	}
	if len(b)-width < l {
		return nil, false
	}
	return b[width+l:], true
}

// hostName returns the host_name of a server_name extension's data.
func hostName(ext []byte) ([]byte, scanResult) {
	if len(ext) < 2 {
		return nil, scanNoName
	}
	list := int(ext[0])<<8 | int(ext[1])
	ext = ext[2:]
	if list < len(ext) {
		ext = ext[:list]
	}
	for len(ext) >= 3 {
		nt := ext[0]
		nl := int(ext[1])<<8 | int(ext[2])
		ext = ext[3:]
		if nl > len(ext) {
			return nil, scanNoName
		}
		if nt == serverNameHostName {
			if !validName(ext[:nl]) {
				return nil, scanNoName
			}
			return ext[:nl], scanFound
		}
		ext = ext[nl:]
	}
	return nil, scanNoName
}

// validName accepts what a DNS name (or a wildcard a client should not send,
// but some do) can hold; anything else is not a name worth keeping.
func validName(b []byte) bool {
	if len(b) == 0 || len(b) > maxNameLen {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '*') {
			return false
		}
	}
	return true
}
