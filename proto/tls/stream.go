// Package tls parses what a passive observer sees of a TLS handshake: it
// reassembles each direction's TCP bytes (bounded), walks the records and the
// handshake messages spanning them, and decodes ClientHello (with JA3 and JA4
// client fingerprints), ServerHello (with zoomprobe's own server fingerprint),
// Certificate, CertificateStatus, the SCT list extension and alerts.
//
// Everything here treats the bytes as hostile: no parser panics, every buffer
// has a cap, and the per-flow hot path (ClientHello on each TCP flow's first
// data) allocates nothing.
package tls

// Stream reassembles one direction of a TCP connection from segments in any
// order, keeping at most Max bytes from the first byte of the stream. It keeps
// the first copy of every byte (a retransmission or overlap does not rewrite
// what was already there) and tolerates gaps: Bytes returns only the
// contiguous prefix, so parsing simply waits until a hole is filled.
//
// The zero Stream is not usable: call Reset with the cap first. A Stream can
// be reused with Reset; its buffer is kept, so steady-state use allocates
// nothing once the buffer has grown.
type Stream struct {
	buf     []byte // bytes [0, len(buf)) of the stream; filled only where covered
	contig  int    // bytes [0, contig) are all present
	spans   [maxSpans]span
	nspans  int // out-of-order spans beyond contig, sorted, disjoint, not touching
	base    uint32
	max     int
	started bool
	stopped bool

	// Overflow is set when a segment reached past Max: the handshake did not
	// fit in the configured cap (tls.max_handshake_bytes).
	Overflow bool
	// Dropped counts segments thrown away because too many holes were open at
	// once (a hostile or badly damaged stream).
	Dropped int
}

// maxSpans bounds the out-of-order islands tracked beyond the contiguous
// prefix; a handshake of a few dozen segments never needs more.
const maxSpans = 16

type span struct{ start, end int }

// Reset empties the stream and sets its cap, keeping the buffer's storage.
func (s *Stream) Reset(max int) {
	buf := s.buf[:0]
	*s = Stream{buf: buf, max: max}
}

// Release drops the buffer, for a stream whose flow is being recycled into a
// pool that should not hold big buffers.
func (s *Stream) Release() { *s = Stream{} }

// SYN records the initial sequence number: the stream's first byte is seq+1.
// Without it, the first data segment seen fixes the start.
func (s *Stream) SYN(seq uint32) {
	if s.started {
		return
	}
	s.base, s.started = seq+1, true
}

// Started reports whether the stream's first byte position is known.
func (s *Stream) Started() bool { return s.started }

// Stop makes the stream ignore further segments (the handshake is over).
func (s *Stream) Stop() { s.stopped = true }

// Stopped reports whether Stop was called.
func (s *Stream) Stopped() bool { return s.stopped }

// Gap reports whether data beyond a hole is waiting.
func (s *Stream) Gap() bool { return s.nspans > 0 }

// Len is the length of the contiguous prefix.
func (s *Stream) Len() int { return s.contig }

// Bytes returns the contiguous prefix of the stream. It stays valid until the
// next call to Segment or Reset.
func (s *Stream) Bytes() []byte { return s.buf[:s.contig] }

// Segment adds a TCP segment's payload with its sequence number.
func (s *Stream) Segment(seq uint32, payload []byte) {
	if s.stopped || len(payload) == 0 {
		return
	}
	if !s.started {
		s.base, s.started = seq, true
	}
	off := int32(seq - s.base) // signed: segments before the start are negative
	start := int(off)
	end := start + len(payload)
	if end <= s.contig {
		return // retransmission of what we hold
	}
	if start < 0 {
		payload = payload[-start:]
		start = 0
	}
	if start > s.max {
		s.Overflow = true
		return
	}
	if end > s.max {
		s.Overflow = true
		payload = payload[:s.max-start]
		end = s.max
	}
	if start < s.contig {
		payload = payload[s.contig-start:]
		start = s.contig
	}
	if end <= start {
		return
	}
	if start > s.contig && s.nspans == maxSpans && !s.joinsSpan(start, end) {
		s.Dropped++
		return
	}
	if end > len(s.buf) {
		if end > cap(s.buf) {
			nb := make([]byte, end, max(end, min(2*cap(s.buf), s.max)))
			copy(nb, s.buf)
			s.buf = nb
		} else {
			s.buf = s.buf[:end]
		}
	}
	s.fill(start, end, payload)
}

func (s *Stream) joinsSpan(start, end int) bool {
	for i := 0; i < s.nspans; i++ {
		if start <= s.spans[i].end && end >= s.spans[i].start {
			return true
		}
	}
	return false
}

// fill copies payload (which covers [start,end)) into the parts of the buffer
// not yet covered, then updates the coverage.
func (s *Stream) fill(start, end int, payload []byte) {
	pos := start
	for i := 0; i < s.nspans && pos < end; i++ {
		sp := s.spans[i]
		if sp.end <= pos {
			continue
		}
		if sp.start >= end {
			break
		}
		if sp.start > pos {
			copy(s.buf[pos:sp.start], payload[pos-start:])
		}
		pos = sp.end
	}
	if pos < end {
		copy(s.buf[pos:end], payload[pos-start:])
	}
	s.addSpan(start, end)
}

// addSpan merges [start,end) into the coverage and advances contig.
func (s *Stream) addSpan(start, end int) {
	// Merge with every span it touches.
	out := 0
	inserted := false
	var tmp [maxSpans + 1]span
	for i := 0; i < s.nspans; i++ {
		sp := s.spans[i]
		switch {
		case sp.end < start:
			tmp[out] = sp
			out++
		case sp.start > end:
			if !inserted {
				tmp[out] = span{start, end}
				out++
				inserted = true
			}
			tmp[out] = sp
			out++
		default:
			start, end = min(start, sp.start), max(end, sp.end)
		}
	}
	if !inserted {
		tmp[out] = span{start, end}
		out++
	}
	// Advance the contiguous prefix.
	n := 0
	for i := 0; i < out; i++ {
		if tmp[i].start <= s.contig {
			s.contig = max(s.contig, tmp[i].end)
			continue
		}
		if n < maxSpans {
			s.spans[n] = tmp[i]
			n++
		}
	}
	s.nspans = n
}
