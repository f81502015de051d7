package reach

// The reach analyzer needs the SNI only to tell SNI filtering (a reset right
// after a ClientHello for a Zoom name) when no other analyzer named the flow.
// It reads it from the first client segment, bounded by that segment, and
// gives up on anything unexpected: the TLS analyzer does the full job.

// isClientHello reports whether b starts a TLS handshake record holding a ClientHello.
func isClientHello(b []byte) bool {
	return len(b) >= 6 && b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x01
}

// parseSNI returns the host_name of the server_name extension of the
// ClientHello starting b, or nil. The result is a sub-slice of b.
func parseSNI(b []byte) []byte {
	if !isClientHello(b) {
		return nil
	}
	rec := int(b[3])<<8 | int(b[4])
	b = b[5:]
	if rec < len(b) {
		b = b[:rec]
	}
	// handshake header: type(1) length(3)
	if len(b) < 4 {
		return nil
	}
	hl := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	b = b[4:]
	if hl < len(b) {
		b = b[:hl]
	}
	// version(2) random(32)
	if len(b) < 34 {
		return nil
	}
	b = b[34:]
	var ok bool
	if b, ok = skip8(b); !ok { // session id
		return nil
	}
	if b, ok = skip16(b); !ok { // cipher suites
		return nil
	}
	if b, ok = skip8(b); !ok { // compression methods
		return nil
	}
	if len(b) < 2 {
		return nil
	}
	el := int(b[0])<<8 | int(b[1])
	b = b[2:]
	if el < len(b) {
		b = b[:el]
	}
	for len(b) >= 4 {
		typ := int(b[0])<<8 | int(b[1])
		l := int(b[2])<<8 | int(b[3])
		b = b[4:]
		if l > len(b) {
			return nil
		}
		ext := b[:l]
		b = b[l:]
		if typ != 0 {
			continue
		}
		// server_name_list length(2), then name_type(1) length(2) name
		if len(ext) < 2 {
			return nil
		}
		ext = ext[2:]
		for len(ext) >= 3 {
			nt := ext[0]
			nl := int(ext[1])<<8 | int(ext[2])
			ext = ext[3:]
			if nl > len(ext) {
				return nil
			}
			if nt == 0 {
				if nl == 0 || nl > 253 {
					return nil
				}
				return ext[:nl]
			}
			ext = ext[nl:]
		}
		return nil
	}
	return nil
}

func skip8(b []byte) ([]byte, bool) {
	if len(b) < 1 || int(b[0]) > len(b)-1 {
		return nil, false
	}
	return b[1+int(b[0]):], true
}

func skip16(b []byte) ([]byte, bool) {
	if len(b) < 2 {
		return nil, false
	}
	l := int(b[0])<<8 | int(b[1])
	if l > len(b)-2 {
		return nil, false
	}
	return b[2+l:], true
}
