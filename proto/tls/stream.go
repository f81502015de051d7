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

import "math/bits"

// Stream reassembles one direction of a TCP connection from segments in any
// order and any size (one-byte segments shuffled included). Its window holds
// the bytes not yet read plus out-of-order bytes beyond them; together with
// what the reader holds elsewhere (Reserve) they never exceed the cap. Bytes
// already read stay in the window until their room is needed, so a later
// copy can still be compared with them.
//
// The first copy of a byte is kept; a later copy that disagrees is counted in
// Conflicts (an injector racing the real sender, or an evasion attempt)
// rather than silently resolved. Bytes returns only the contiguous unread
// bytes, so parsing waits until a hole is filled.
//
// The zero Stream is not usable: call Reset with the cap first. A Stream can
// be reused with Reset; its buffers are kept, so steady-state use allocates
// nothing once they have grown (to at most the cap).
type Stream struct {
	buf    []byte   // window: buf[i] is the byte at sequence number seq0+i; holes hold garbage
	have   []uint64 // bit i set: buf[i] is present; no bit is set at or beyond len(buf)
	contig int      // buf[:contig] are all present
	read   int      // buf[:read] were consumed by the reader
	seq0   uint32   // sequence number of buf[0]
	off0   int      // stream offset of buf[0]
	max    int
	// reserve is what the reader holds elsewhere (a partial handshake
	// message), counted against the cap.
	reserve int
	// stallAt is the lowest window position of refused bytes (-1: none): the
	// reader cannot get past it.
	stallAt int
	started bool
	stopped bool
	budget  *Budget // shared by one worker's streams; nil: no budget

	// Overflow is set when bytes were refused because the window was full:
	// the handshake did not fit in the cap (tls.max_handshake_bytes).
	Overflow bool
	// Refused counts the bytes refused by the cap.
	Refused int
	// Conflicts counts segments carrying bytes that disagree with the copy
	// already held for the same stream positions.
	Conflicts int
	// ConflictAt is the stream offset where the first such segment began.
	ConflictAt int
	// OverBudget counts the bytes refused because the worker's reassembly
	// budget (Budget) was spent; they are also in Refused.
	OverBudget int
}

// Budget is the reassembly memory one worker's streams may hold together
// (tls.reassembly_budget_bytes): a Stream charges the capacity of the
// buffers it allocates and gives it back on Release. One per worker: no lock.
type Budget struct {
	left, size int
}

// NewBudget makes a budget of n bytes.
func NewBudget(n int) *Budget { return &Budget{left: n, size: n} }

// InUse is how many bytes the streams hold.
func (b *Budget) InUse() int { return b.size - b.left }

// Take charges n bytes; false (nothing charged) when fewer are left. A nil
// budget always pays.
func (b *Budget) Take(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// Give returns n bytes taken before.
func (b *Budget) Give(n int) {
	if b != nil {
		b.left += n
	}
}

// SetBudget makes the stream charge its buffers to b (kept across Reset).
// Call it on an empty stream: buffers already held are not charged.
func (s *Stream) SetBudget(b *Budget) { s.budget = b }

// BufferBytes is the capacity of the stream's buffers, what it charges to
// its budget.
func (s *Stream) BufferBytes() int { return cap(s.buf) + 8*cap(s.have) }

// Reset empties the stream and sets its cap, keeping the buffers' storage.
func (s *Stream) Reset(max int) {
	words := (len(s.buf) + 63) / 64
	clear(s.have[:min(words, len(s.have))])
	buf, have := s.buf[:0], s.have
	*s = Stream{buf: buf, have: have, max: max, stallAt: -1, budget: s.budget}
}

// Release gives the buffers back (to the budget and the collector) and stops
// the stream; its position stays known (Offset). Reset makes it usable again.
func (s *Stream) Release() {
	s.budget.Give(s.BufferBytes())
	s.buf, s.have = nil, nil
	s.contig, s.read, s.stallAt = 0, 0, -1
	s.stopped = true
}

// SYN records the initial sequence number: the stream's first byte is seq+1.
// Without it, the first data segment seen fixes the start.
func (s *Stream) SYN(seq uint32) {
	if s.started {
		return
	}
	s.seq0, s.started = seq+1, true
}

// Started reports whether the stream's first byte position is known.
func (s *Stream) Started() bool { return s.started }

// Stop makes the stream ignore further segments (the handshake is over).
func (s *Stream) Stop() { s.stopped = true }

// Stopped reports whether Stop was called.
func (s *Stream) Stopped() bool { return s.stopped }

// Gap reports whether data beyond a hole is waiting.
func (s *Stream) Gap() bool { return len(s.buf) > s.contig }

// Len is the length of the contiguous unread bytes.
func (s *Stream) Len() int { return s.contig - s.read }

// Held is how many bytes the window holds against the cap: unread bytes,
// out-of-order bytes and the holes between them.
func (s *Stream) Held() int { return len(s.buf) - s.read }

// Bytes returns the contiguous unread bytes. They stay valid until the next
// call to Segment or Reset.
func (s *Stream) Bytes() []byte { return s.buf[s.read:s.contig] }

// Consume marks the first n bytes of Bytes as read.
func (s *Stream) Consume(n int) { s.read = min(s.read+max(n, 0), s.contig) }

// Offset is the stream offset of sequence number seq (negative: before the
// stream's first byte); 0 before the start is known.
func (s *Stream) Offset(seq uint32) int {
	if !s.started {
		return 0
	}
	return s.off0 + int(int32(seq-s.seq0))
}

// Consumed is the number of stream bytes read so far.
func (s *Stream) Consumed() int { return s.off0 + s.read }

// Reserve tells the stream how many bytes the reader holds elsewhere; they
// count against the cap.
func (s *Stream) Reserve(n int) { s.reserve = n }

// Stalled reports whether the reader has reached bytes that were refused:
// the stream cannot make progress any more.
func (s *Stream) Stalled() bool { return s.stallAt >= 0 && s.contig >= s.stallAt }

// Segment adds a TCP segment's payload with its sequence number.
func (s *Stream) Segment(seq uint32, payload []byte) {
	if s.stopped || len(payload) == 0 {
		return
	}
	if !s.started {
		s.seq0, s.started = seq, true
	}
	start := int(int32(seq - s.seq0)) // signed: before the window is negative
	end := start + len(payload)
	if end <= 0 {
		return // before the stream or the window: nothing left to compare with
	}
	if start < 0 {
		payload = payload[-start:]
		start = 0
	}
	if limit := s.read + s.max - s.reserve; end > limit {
		s.Overflow = true
		if start >= limit {
			s.refuse(start, end-start)
			return
		}
		s.refuse(limit, end-limit)
		payload = payload[:limit-start]
		end = limit
	}
	if end > s.max {
		// The budget allows it, the buffer does not: drop what was read.
		k := s.read
		s.compact(k)
		start -= k
		end -= k
		if start < 0 {
			payload = payload[-start:]
			start = 0
		}
	}
	s.place(start, end, payload)
}

func (s *Stream) refuse(at, n int) {
	s.Refused += n
	if s.stallAt < 0 || at < s.stallAt {
		s.stallAt = at
	}
}

// compact drops the first k bytes of the window (all read).
func (s *Stream) compact(k int) {
	if k <= 0 {
		return
	}
	n := len(s.buf)
	words := (n + 63) / 64
	copy(s.buf, s.buf[k:n])
	q, r := k/64, uint(k%64)
	for i := 0; i < words; i++ {
		var v uint64
		if i+q < words {
			v = s.have[i+q] >> r
			if r != 0 && i+q+1 < words {
				v |= s.have[i+q+1] << (64 - r)
			}
		}
		s.have[i] = v
	}
	s.buf = s.buf[:n-k]
	s.contig -= k
	s.read -= k
	s.off0 += k
	s.seq0 += uint32(k)
	if s.stallAt >= 0 {
		s.stallAt = max(s.stallAt-k, 0)
	}
}

// grow makes the window at least end bytes long (end <= max); false when
// the budget cannot pay for the room (nothing changes).
func (s *Stream) grow(end int) bool {
	if end <= cap(s.buf) {
		s.buf = s.buf[:end]
		return true
	}
	size := max(end, min(2*cap(s.buf), s.max))
	words := max((size+63)/64, len(s.have))
	if !s.budget.Take(size - cap(s.buf) + 8*(words-cap(s.have))) {
		// Doubling is too much: exactly what is needed, if that fits.
		size = end
		words = max((size+63)/64, len(s.have))
		if !s.budget.Take(size - cap(s.buf) + 8*(words-cap(s.have))) {
			return false
		}
	}
	nb := make([]byte, end, size)
	copy(nb, s.buf)
	s.buf = nb
	if words > len(s.have) {
		nh := make([]uint64, words)
		copy(nh, s.have)
		s.have = nh
	}
	return true
}

// place copies payload (covering window positions [start,end)) into the
// positions not yet present, compares it with those present, and advances
// the contiguous prefix.
func (s *Stream) place(start, end int, payload []byte) {
	if start >= end {
		return
	}
	old := len(s.buf)
	if end > old && !s.grow(end) {
		// The worker's budget is spent: keep only what fits the window.
		from := max(start, old)
		s.refuse(from, end-from)
		s.OverBudget += end - from
		end = old
		if start >= end {
			return
		}
		payload = payload[:end-start]
	}
	conflict := false
	if start < old {
		conflict = s.overlay(start, min(end, old), payload)
	}
	if end > old {
		from := max(start, old)
		copy(s.buf[from:end], payload[from-start:])
		s.setBits(from, end)
	}
	if conflict {
		if s.Conflicts == 0 {
			s.ConflictAt = s.off0 + start
		}
		s.Conflicts++
	}
	if s.stallAt >= 0 && start <= s.stallAt && end > s.stallAt {
		s.stallAt = -1 // the refused bytes came again
	}
	if start <= s.contig {
		s.advance()
	}
}

// overlay handles [a,b) inside the current window, 64 positions at a time:
// absent bytes are filled, present ones compared. It reports a disagreement.
func (s *Stream) overlay(a, b int, payload []byte) bool {
	conflict := false
	base := a
	for i := a; i < b; {
		w := i / 64
		hi := min(b, (w+1)*64)
		mask := bitRange(i-w*64, hi-w*64)
		p := payload[i-base : hi-base]
		switch got := s.have[w] & mask; {
		case got == 0:
			copy(s.buf[i:hi], p)
			s.have[w] |= mask
		case got == mask:
			if string(s.buf[i:hi]) != string(p) {
				conflict = true
			}
		default:
			for j := i; j < hi; j++ {
				bit := uint64(1) << uint(j-w*64)
				if s.have[w]&bit != 0 {
					if s.buf[j] != p[j-i] {
						conflict = true
					}
					continue
				}
				s.buf[j] = p[j-i]
				s.have[w] |= bit
			}
		}
		i = hi
	}
	return conflict
}

// bitRange is a mask of bits [lo,hi) of a word (0 <= lo < hi <= 64).
func bitRange(lo, hi int) uint64 {
	m := ^uint64(0) << uint(lo)
	if hi < 64 {
		m &= (uint64(1) << uint(hi)) - 1
	}
	return m
}

func (s *Stream) setBits(a, b int) {
	for i := a; i < b; {
		w := i / 64
		hi := min(b, (w+1)*64)
		s.have[w] |= bitRange(i-w*64, hi-w*64)
		i = hi
	}
}

// advance moves contig over present bytes.
func (s *Stream) advance() {
	n := len(s.buf)
	for s.contig < n {
		w := s.contig / 64
		missing := ^s.have[w] >> uint(s.contig%64)
		if missing != 0 {
			s.contig += bits.TrailingZeros64(missing)
			break
		}
		s.contig = (w + 1) * 64
	}
	s.contig = min(s.contig, n)
}
