package tls

import "testing"

// A budget shared by streams bounds what they hold together: a segment whose
// room the budget cannot pay is refused and counted, the bytes already held
// stay usable, and Release gives every byte back.
func TestStreamBudget(t *testing.T) {
	b := NewBudget(3000)
	var s1, s2 Stream
	s1.SetBudget(b)
	s2.SetBudget(b)
	s1.Reset(64 << 10)
	s2.Reset(64 << 10)
	s1.SYN(99)
	s2.SYN(99)
	s1.Segment(100, make([]byte, 1000))
	if s1.Len() != 1000 || s1.OverBudget != 0 {
		t.Fatalf("first segment: len %d, over budget %d", s1.Len(), s1.OverBudget)
	}
	if b.InUse() != s1.BufferBytes() || b.InUse() < 1000 {
		t.Fatalf("budget in use %d, stream holds %d", b.InUse(), s1.BufferBytes())
	}
	// One byte far ahead needs a 40 KB window: refused.
	s2.Segment(100+40000, []byte{1})
	if s2.OverBudget != 1 || s2.Refused != 1 || s2.BufferBytes() != 0 {
		t.Fatalf("far byte: over budget %d, refused %d, buffers %d", s2.OverBudget, s2.Refused, s2.BufferBytes())
	}
	s1.Release()
	if b.InUse() != 0 {
		t.Fatalf("after release %d bytes still charged", b.InUse())
	}
	if s1.Offset(1100) != 1000 || !s1.Stopped() {
		t.Fatalf("released stream: offset %d, stopped %v", s1.Offset(1100), s1.Stopped())
	}
	s2.Segment(100+2000, []byte{1})
	if s2.OverBudget != 1 || s2.Gap() != true {
		t.Fatalf("after room came back: over budget %d, gap %v", s2.OverBudget, s2.Gap())
	}
	s2.Release()
	if b.InUse() != 0 {
		t.Fatalf("after both released %d bytes still charged", b.InUse())
	}
}

// A fragmented handshake message the budget cannot hold stops the decoder
// with ErrBudget, and Release returns its bytes.
func TestDecoderBudget(t *testing.T) {
	b := NewBudget(600)
	var d Decoder
	d.Stream.SetBudget(b)
	d.Reset(64 << 10)
	d.Stream.SYN(0)
	// A handshake record holding the first 500 bytes of a 4000-byte message.
	rec := []byte{RecordHandshake, 3, 3, 0x01, 0xf4, HandshakeCertificate, 0, 0x0f, 0xa0}
	rec = append(rec, make([]byte, 500-4)...)
	d.Segment(1, rec, &nopHandler{})
	if d.Err() != ErrBudget || d.Stream.OverBudget == 0 {
		t.Fatalf("err %v, over budget %d", d.Err(), d.Stream.OverBudget)
	}
	d.Release()
	if b.InUse() != 0 {
		t.Fatalf("after release %d bytes still charged", b.InUse())
	}
}
