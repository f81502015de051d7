// Package dns parses the parts of a DNS message that zoomprobe needs: the
// question, the response code and the answers' addresses and CNAME targets.
//
// It wraps golang.org/x/net/dns/dnsmessage.Parser and keeps everything in a
// reusable Message with fixed-size storage, so parsing a well-formed message
// allocates nothing. Messages are hostile input: every count is bounded
// (MaxAnswers), names are limited to 255 bytes by the wire format, and
// compression-pointer loops are cut by dnsmessage after 10 pointers.
package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/net/dns/dnsmessage"
)

// MaxAnswers bounds the answers a Message keeps; further A, AAAA and CNAME
// records are counted in Message.AnswersDropped and otherwise ignored.
const MaxAnswers = 16

// MaxNameLen is the longest name kept: a wire name's text form (without the
// trailing dot) never exceeds 253 bytes; the array has room for 254.
const MaxNameLen = 254

// Errors returned by Parse. They are sentinel values so that callers can
// count them by kind without allocating.
var (
	// ErrHeader: shorter than the 12-byte header.
	ErrHeader = errors.New("dns: message shorter than its 12-byte header")
	// ErrQuestion: the question section is cut short or malformed (bad label,
	// pointer loop, name too long).
	ErrQuestion = errors.New("dns: malformed question section")
	// ErrAnswers: the answer section is cut short or malformed; the answers
	// parsed before the fault are kept and Message.Incomplete is set.
	ErrAnswers = errors.New("dns: malformed or truncated answer section")
	// ErrTCPLength: a TCP message shorter than its 2-byte length prefix says.
	ErrTCPLength = errors.New("dns: TCP message shorter than its length prefix")
)

// Name is a domain name in lower case, without the trailing dot, held in a
// fixed array so that a Message can be reused without allocation.
type Name struct {
	buf [MaxNameLen]byte
	n   uint8
}

// Bytes returns the name; valid until the Message is parsed again.
func (n *Name) Bytes() []byte { return n.buf[:n.n] }

// String returns a copy of the name (allocates).
func (n *Name) String() string { return string(n.buf[:n.n]) }

// Len is the name's length in bytes.
func (n *Name) Len() int { return int(n.n) }

// set copies a dnsmessage name ("www.Zoom.US.") lowercased and without the
// final dot. Label bytes other than ASCII letters are kept as they are.
func (n *Name) set(src *dnsmessage.Name) {
	l := int(src.Length)
	if l > 0 && src.Data[l-1] == '.' {
		l--
	}
	l = min(l, MaxNameLen)
	for i := 0; i < l; i++ {
		c := src.Data[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		n.buf[i] = c
	}
	n.n = uint8(l)
}

// Answer is one A, AAAA or CNAME record of the answer section.
type Answer struct {
	Name   Name            // owner name
	Type   dnsmessage.Type // TypeA, TypeAAAA or TypeCNAME
	TTL    uint32          // seconds
	Addr   netip.Addr      // TypeA and TypeAAAA
	Target Name            // TypeCNAME: the canonical name
}

// Message is the parsed view of one DNS message. Reuse one per worker: Parse
// overwrites every field.
type Message struct {
	ID       uint16
	Response bool // QR bit: an answer rather than a query
	OpCode   dnsmessage.OpCode
	RCode    dnsmessage.RCode // NOERROR, NXDOMAIN (RCodeNameError), REFUSED, SERVFAIL...
	// Header flags.
	Authoritative, Truncated, RecursionDesired, RecursionAvailable bool

	// Questions is the question count parsed (normally 1). Only the first
	// question's name, type and class are kept.
	Questions int
	QName     Name
	QType     dnsmessage.Type
	QClass    dnsmessage.Class

	// Answers holds the first NumAnswers A, AAAA and CNAME answers.
	Answers    [MaxAnswers]Answer
	NumAnswers int
	// AnswersDropped counts A/AAAA/CNAME answers beyond MaxAnswers.
	AnswersDropped int
	// OtherAnswers counts answer records of other types (skipped).
	OtherAnswers int
	// Incomplete: the answer section ended early or was malformed
	// (Parse returned ErrAnswers); the answers before the fault are kept.
	Incomplete bool

	p dnsmessage.Parser
}

// Reset clears the message for reuse.
func (m *Message) Reset() {
	m.ID, m.Response, m.OpCode, m.RCode = 0, false, 0, 0
	m.Authoritative, m.Truncated, m.RecursionDesired, m.RecursionAvailable = false, false, false, false
	m.Questions, m.QName.n, m.QType, m.QClass = 0, 0, 0, 0
	m.NumAnswers, m.AnswersDropped, m.OtherAnswers, m.Incomplete = 0, 0, 0, false
}

// AnswerList returns the kept answers; valid until the next Parse.
func (m *Message) AnswerList() []Answer { return m.Answers[:m.NumAnswers] }

// HasQuestion reports whether the message carried a question that parsed.
func (m *Message) HasQuestion() bool { return m.Questions > 0 }

// Parse parses msg (a UDP payload, or a TCP message without its length
// prefix) into m. On ErrHeader or ErrQuestion m holds what parsed before the
// fault; on ErrAnswers the header, question and the answers before the fault
// are valid. The authority and additional sections are not read.
//
// msg is not retained after Parse returns.
func Parse(msg []byte, m *Message) error {
	m.Reset()
	defer func() { m.p = dnsmessage.Parser{} }() // drop the reference to msg
	h, err := m.p.Start(msg)
	if err != nil {
		return ErrHeader
	}
	m.ID = h.ID
	m.Response = h.Response
	m.OpCode = h.OpCode
	m.RCode = h.RCode
	m.Authoritative = h.Authoritative
	m.Truncated = h.Truncated
	m.RecursionDesired = h.RecursionDesired
	m.RecursionAvailable = h.RecursionAvailable

	for {
		q, err := m.p.Question()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return ErrQuestion
		}
		if m.Questions == 0 {
			m.QName.set(&q.Name)
			m.QType = q.Type
			m.QClass = q.Class
		}
		m.Questions++
	}

	for {
		rh, err := m.p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			return nil
		}
		if err != nil {
			m.Incomplete = true
			return ErrAnswers
		}
		switch rh.Type {
		case dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypeCNAME:
		default:
			m.OtherAnswers++
			if err := m.p.SkipAnswer(); err != nil {
				m.Incomplete = true
				return ErrAnswers
			}
			continue
		}
		if m.NumAnswers == MaxAnswers {
			m.AnswersDropped++
			if err := m.p.SkipAnswer(); err != nil {
				m.Incomplete = true
				return ErrAnswers
			}
			continue
		}
		a := &m.Answers[m.NumAnswers]
		a.Type = rh.Type
		a.TTL = rh.TTL
		a.Addr = netip.Addr{}
		a.Target.n = 0
		switch rh.Type {
		case dnsmessage.TypeA:
			r, err := m.p.AResource()
			if err != nil {
				m.Incomplete = true
				return ErrAnswers
			}
			a.Addr = netip.AddrFrom4(r.A)
		case dnsmessage.TypeAAAA:
			r, err := m.p.AAAAResource()
			if err != nil {
				m.Incomplete = true
				return ErrAnswers
			}
			a.Addr = netip.AddrFrom16(r.AAAA)
		case dnsmessage.TypeCNAME:
			r, err := m.p.CNAMEResource()
			if err != nil {
				m.Incomplete = true
				return ErrAnswers
			}
			a.Target.set(&r.CNAME)
		}
		a.Name.set(&rh.Name)
		m.NumAnswers++
	}
}

// ParseTCP parses one DNS-over-TCP message that starts with its 2-byte length
// prefix. Bytes after the message are ignored; use SplitTCP to walk a stream.
// A message cut short by the segment or snap length is parsed as far as it
// goes and ErrTCPLength is returned when Parse itself found nothing wrong.
func ParseTCP(b []byte, m *Message) error {
	msg, _, complete := SplitTCP(b)
	if msg == nil {
		m.Reset()
		return ErrTCPLength
	}
	if err := Parse(msg, m); err != nil {
		return err
	}
	if !complete {
		return ErrTCPLength
	}
	return nil
}

// SplitTCP takes the first length-prefixed message off a DNS-over-TCP byte
// stream. It returns the message, the bytes after it, and whether the message
// was whole; a partial message is returned as far as it goes with rest nil.
// msg is nil when b holds less than the 2-byte prefix.
func SplitTCP(b []byte) (msg, rest []byte, complete bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > len(b) {
		return b, nil, false
	}
	return b[:n], b[n:], true
}
