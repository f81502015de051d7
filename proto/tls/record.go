package tls

import "errors"

// Record content types.
const (
	RecordChangeCipherSpec uint8 = 20
	RecordAlert            uint8 = 21
	RecordHandshake        uint8 = 22
	RecordApplicationData  uint8 = 23
	RecordHeartbeat        uint8 = 24
)

// Handshake message types.
const (
	HandshakeHelloRequest       uint8 = 0
	HandshakeClientHello        uint8 = 1
	HandshakeServerHello        uint8 = 2
	HandshakeNewSessionTicket   uint8 = 4
	HandshakeEncryptedExts      uint8 = 8
	HandshakeCertificate        uint8 = 11
	HandshakeServerKeyExchange  uint8 = 12
	HandshakeCertificateRequest uint8 = 13
	HandshakeServerHelloDone    uint8 = 14
	HandshakeCertificateVerify  uint8 = 15
	HandshakeClientKeyExchange  uint8 = 16
	HandshakeFinished           uint8 = 20
	HandshakeCertificateStatus  uint8 = 22
)

// Protocol versions.
const (
	VersionSSL30 uint16 = 0x0300
	VersionTLS10 uint16 = 0x0301
	VersionTLS11 uint16 = 0x0302
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

// MaxRecordLen is the largest record body TLS allows (2^14 plus expansion).
const MaxRecordLen = 1<<14 + 2048

var (
	// ErrShort means more bytes are needed.
	ErrShort = errors.New("tls: need more data")
	// ErrNotTLS means the bytes are not a TLS record stream.
	ErrNotTLS = errors.New("tls: not a TLS record")
	// ErrMalformed means a message is inconsistent with its own lengths.
	ErrMalformed = errors.New("tls: malformed message")
	// ErrTooBig means a handshake message exceeds the configured cap.
	ErrTooBig = errors.New("tls: handshake message larger than tls.max_handshake_bytes")
	// ErrBudget means the worker's reassembly budget could not hold the
	// partial message (tls.reassembly_budget_bytes).
	ErrBudget = errors.New("tls: reassembly budget spent (tls.reassembly_budget_bytes)")
)

// Record is one TLS record; Fragment points into the parsed bytes.
type Record struct {
	Type     uint8
	Version  uint16
	Fragment []byte
}

// ParseRecord reads the record at the start of b and returns it with the
// number of bytes it occupies. ErrShort: b holds only part of it. ErrNotTLS:
// the header is not a TLS record header.
func ParseRecord(b []byte) (Record, int, error) {
	if len(b) < 5 {
		if len(b) > 0 && !validType(b[0]) || len(b) > 1 && b[1] != 3 {
			return Record{}, 0, ErrNotTLS
		}
		return Record{}, 0, ErrShort
	}
	if !validType(b[0]) || b[1] != 3 || b[2] > 4 {
		return Record{}, 0, ErrNotTLS
	}
	n := int(b[3])<<8 | int(b[4])
	if n > MaxRecordLen {
		return Record{}, 0, ErrNotTLS
	}
	if len(b) < 5+n {
		return Record{}, 0, ErrShort
	}
	return Record{Type: b[0], Version: uint16(b[1])<<8 | uint16(b[2]), Fragment: b[5 : 5+n]}, 5 + n, nil
}

func validType(t uint8) bool { return t >= RecordChangeCipherSpec && t <= RecordHeartbeat }

// Handler receives what a Decoder finds. Byte slices are valid only during
// the call: copy what you keep.
type Handler interface {
	// Handshake sees one whole handshake message (typ, body without its
	// 4-byte header).
	Handshake(typ uint8, body []byte)
	// Alert sees a plaintext alert.
	Alert(level, desc uint8)
	// ChangeCipherSpec sees the ChangeCipherSpec record; what follows is
	// encrypted and the decoder stops.
	ChangeCipherSpec()
}

// Decoder walks one direction's records and handshake messages, across
// records and segments, until the handshake turns encrypted. It owns the
// direction's Stream. Records are consumed as soon as they are whole; a
// message spanning records is joined in a buffer of its own, counted against
// the same cap as the stream's window, so a direction never holds more than
// the cap however the peer cuts its messages.
type Decoder struct {
	Stream    Stream
	hs        []byte // partial handshake message carried across records
	max       int
	done      bool
	compatCCS bool // a ChangeCipherSpec does not end the plaintext (TLS 1.3 after HelloRetryRequest)
	err       error
}

// Reset prepares the decoder for a new direction with cap max bytes.
func (d *Decoder) Reset(max int) {
	d.Stream.Reset(max)
	hs := d.hs[:0]
	*d = Decoder{Stream: d.Stream, hs: hs, max: max}
}

// Done reports whether the decoder has stopped: it met ChangeCipherSpec or an
// encrypted record, or an error.
func (d *Decoder) Done() bool { return d.done }

// Err is why the decoder stopped on bad input (nil after a clean stop).
func (d *Decoder) Err() error { return d.err }

// Consumed is how many stream bytes the decoder has walked as records.
func (d *Decoder) Consumed() int { return d.Stream.Consumed() }

// AllowCompatCCS makes a ChangeCipherSpec record pass without stopping: in
// TLS 1.3 a server that sent a HelloRetryRequest follows it with a dummy
// ChangeCipherSpec (middlebox compatibility) and then its real, plaintext
// ServerHello. Encrypted records still stop the decoder.
func (d *Decoder) AllowCompatCCS() { d.compatCCS = true }

// hsAppend adds b to the partial message, charging new room to the
// stream's budget; when the budget cannot pay the decoder fails (ErrBudget).
func (d *Decoder) hsAppend(b []byte) bool {
	if need := len(d.hs) + len(b); need > cap(d.hs) {
		size := max(need, min(2*cap(d.hs), d.max))
		if !d.Stream.budget.Take(size - cap(d.hs)) {
			d.Stream.OverBudget += len(b)
			d.Stream.Refused += len(b)
			d.fail(ErrBudget)
			return false
		}
		nb := make([]byte, len(d.hs), size)
		copy(nb, d.hs)
		d.hs = nb
	}
	d.hs = append(d.hs, b...)
	return true
}

// Release gives the buffers back to the budget and stops the decoder.
func (d *Decoder) Release() {
	d.Stream.Release()
	d.Stream.budget.Give(cap(d.hs))
	d.hs = nil
	d.done = true
}

// BufferBytes is the capacity of the decoder's buffers (charged to the budget).
func (d *Decoder) BufferBytes() int { return d.Stream.BufferBytes() + cap(d.hs) }

// Stop ends decoding (the caller lost interest).
func (d *Decoder) Stop() {
	d.done = true
	d.Stream.Stop()
}

func (d *Decoder) fail(err error) {
	d.err = err
	d.Stop()
}

// Segment adds a TCP segment and decodes what became contiguous.
func (d *Decoder) Segment(seq uint32, payload []byte, h Handler) {
	if d.done {
		return
	}
	d.Stream.Segment(seq, payload)
	d.Process(h)
}

// Process decodes every complete record in the stream's contiguous bytes.
func (d *Decoder) Process(h Handler) {
	for !d.done {
		b := d.Stream.Bytes()
		rec, n, err := ParseRecord(b)
		if err == ErrShort {
			// A record that can never fit beside the partial message, or
			// bytes the cap refused where the record continues: give up.
			need := 5
			if len(b) >= 5 {
				need += int(b[3])<<8 | int(b[4])
			}
			switch {
			case d.Stream.Stalled() && d.Stream.OverBudget > 0:
				d.fail(ErrBudget)
			case need+len(d.hs) > d.max || d.Stream.Stalled():
				d.fail(ErrTooBig)
			}
			return
		}
		if err != nil {
			d.fail(err)
			return
		}
		d.Stream.Consume(n)
		d.Record(rec, h)
	}
}

// Record handles one record: the decoder can also be fed records directly.
func (d *Decoder) Record(rec Record, h Handler) {
	switch rec.Type {
	case RecordHandshake:
		d.handshake(rec.Fragment, h)
		d.Stream.Reserve(len(d.hs))
	case RecordAlert:
		if len(d.hs) > 0 {
			d.fail(ErrMalformed) // an alert inside a fragmented message
			return
		}
		// An alert record may hold several alerts; an odd length is bogus.
		if len(rec.Fragment) == 0 || len(rec.Fragment)%2 != 0 {
			d.fail(ErrMalformed)
			return
		}
		for i := 0; i+1 < len(rec.Fragment); i += 2 {
			h.Alert(rec.Fragment[i], rec.Fragment[i+1])
		}
	case RecordChangeCipherSpec:
		if len(d.hs) > 0 {
			d.fail(ErrMalformed) // interleaved with a fragmented message
			return
		}
		h.ChangeCipherSpec()
		if !d.compatCCS {
			d.Stop()
		}
	default: // application data, heartbeat: encrypted from here on
		d.Stop()
	}
}

// handshake splits a handshake record's fragment into messages, carrying a
// partial message over to the next record in d.hs.
func (d *Decoder) handshake(frag []byte, h Handler) {
	if len(d.hs) > 0 {
		if len(d.hs)+len(frag) > d.max {
			d.fail(ErrTooBig)
			return
		}
		if !d.hsAppend(frag) {
			return
		}
		n, err := d.messages(d.hs, h)
		if d.done {
			return
		}
		if err != nil {
			d.fail(err)
			return
		}
		rest := copy(d.hs, d.hs[n:])
		d.hs = d.hs[:rest]
		return
	}
	n, err := d.messages(frag, h)
	if d.done {
		return
	}
	if err != nil {
		d.fail(err)
		return
	}
	if n < len(frag) {
		if len(frag)-n > d.max {
			d.fail(ErrTooBig)
			return
		}
		d.hs = d.hs[:0]
		d.hsAppend(frag[n:])
	}
}

// messages hands every whole message in b to h and returns the bytes used.
func (d *Decoder) messages(b []byte, h Handler) (int, error) {
	used := 0
	for len(b)-used >= 4 {
		m := b[used:]
		n := int(m[1])<<16 | int(m[2])<<8 | int(m[3])
		if n > d.max {
			return used, ErrTooBig
		}
		if len(m) < 4+n {
			break
		}
		h.Handshake(m[0], m[4:4+n])
		used += 4 + n
		if d.done {
			break
		}
	}
	return used, nil
}
