// Package http parses the head of a cleartext HTTP/1.x request or response:
// the request or status line and the header fields, nothing of the body.
//
// It is written for hostile bytes seen on the wire: it never allocates (the
// parsed fields are sub-slices of the input held in a caller-owned struct
// with a fixed number of header slots), it bounds every count, and it
// accepts bare LF line endings as real servers and proxies send them.
package http

import (
	"bytes"
	"errors"
)

// MaxHeaders bounds the header fields kept; more are counted in Dropped.
const MaxHeaders = 32

// Errors returned by the parsers, sentinel values so callers can count them.
var (
	// ErrIncomplete: the head is not complete yet (no empty line); give more bytes.
	ErrIncomplete = errors.New("http: head incomplete")
	// ErrMalformed: not an HTTP/1.x head.
	ErrMalformed = errors.New("http: malformed head")
)

// Header is one header field; Name and Value point into the parsed bytes.
type Header struct {
	Name, Value []byte
}

// Head holds the header fields shared by requests and responses.
type Head struct {
	Headers    [MaxHeaders]Header
	NumHeaders int
	Dropped    int // fields beyond MaxHeaders
	// Len is the length of the head, empty line included: the body starts there.
	Len int
}

// Header returns the value of the first field called name (case-insensitive),
// or nil.
func (h *Head) Header(name string) []byte {
	for i := 0; i < h.NumHeaders; i++ {
		if equalFoldString(h.Headers[i].Name, name) {
			return h.Headers[i].Value
		}
	}
	return nil
}

// Has reports whether a field called name is present.
func (h *Head) Has(name string) bool {
	for i := 0; i < h.NumHeaders; i++ {
		if equalFoldString(h.Headers[i].Name, name) {
			return true
		}
	}
	return false
}

// Request is a parsed request head.
type Request struct {
	Method, Target, Version []byte
	Head
}

// Response is a parsed status line and head.
type Response struct {
	Version []byte
	Status  int
	Reason  []byte
	Head
}

var methods = [...]string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE"}

// LooksLikeRequest reports whether b starts like an HTTP request line (a known
// method followed by a space), so a flow can be picked from its first bytes.
func LooksLikeRequest(b []byte) bool {
	for _, m := range methods {
		if len(b) > len(m) && string(b[:len(m)]) == m && b[len(m)] == ' ' {
			return true
		}
	}
	return false
}

// LooksLikeResponse reports whether b starts like an HTTP/1.x status line.
func LooksLikeResponse(b []byte) bool {
	return len(b) >= 8 && string(b[:7]) == "HTTP/1."
}

// ParseRequest parses a request head from b into r.
func ParseRequest(b []byte, r *Request) error {
	*r = Request{}
	line, rest, ok := nextLine(b)
	if !ok {
		if len(b) > 0 && !LooksLikeRequest(b) && !isToken(b) {
			return ErrMalformed
		}
		return ErrIncomplete
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return ErrMalformed
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1+1 || sp2 == len(line)-1 {
		return ErrMalformed
	}
	r.Method, r.Target, r.Version = line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(r.Method) || !bytes.HasPrefix(r.Version, []byte("HTTP/")) {
		return ErrMalformed
	}
	return parseFields(b, rest, &r.Head)
}

// ParseResponse parses a status line and head from b into r.
func ParseResponse(b []byte, r *Response) error {
	*r = Response{}
	line, rest, ok := nextLine(b)
	if !ok {
		if len(b) >= 5 && !bytes.HasPrefix(b, []byte("HTTP/")) {
			return ErrMalformed
		}
		return ErrIncomplete
	}
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return ErrMalformed
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || len(line) < sp+4 {
		return ErrMalformed
	}
	r.Version = line[:sp]
	code := line[sp+1 : sp+4]
	for _, c := range code {
		if c < '0' || c > '9' {
			return ErrMalformed
		}
	}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(line) > sp+4 {
		if line[sp+4] != ' ' {
			return ErrMalformed
		}
		r.Reason = line[sp+5:]
	}
	return parseFields(b, rest, &r.Head)
}

// parseFields reads header lines from rest up to the empty line.
func parseFields(all, rest []byte, h *Head) error {
	for {
		line, next, ok := nextLine(rest)
		if !ok {
			return ErrIncomplete
		}
		if len(line) == 0 {
			h.Len = len(all) - len(next)
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obsolete line folding: continuation of the previous value; skip it.
			rest = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return ErrMalformed
		}
		if h.NumHeaders == MaxHeaders {
			h.Dropped++
		} else {
			h.Headers[h.NumHeaders] = Header{Name: line[:colon], Value: bytes.TrimSpace(line[colon+1:])}
			h.NumHeaders++
		}
		rest = next
	}
}

// nextLine splits off one line ending in LF (CR before it dropped).
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// HostOf returns the host of a request target, a CONNECT authority, a Host
// header value or a Location URL: scheme, user info, port, path, query and a
// trailing dot removed; IPv6 literals without brackets. It returns nil for a
// relative reference (no host). The result is a sub-slice of s.
func HostOf(s []byte) []byte {
	s = bytes.TrimSpace(s)
	if i := bytes.Index(s, []byte("://")); i >= 0 && i < 16 && isScheme(s[:i]) {
		s = s[i+3:]
	} else if bytes.HasPrefix(s, []byte("//")) {
		s = s[2:]
	} else if len(s) > 0 && s[0] == '/' {
		return nil // relative path
	}
	if i := bytes.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := bytes.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 0 && s[0] == '[' {
		if j := bytes.IndexByte(s, ']'); j > 0 {
			return s[1:j]
		}
		return nil
	}
	if i := bytes.LastIndexByte(s, ':'); i >= 0 && bytes.Count(s, []byte(":")) == 1 {
		s = s[:i]
	}
	if n := len(s); n > 0 && s[n-1] == '.' {
		s = s[:n-1]
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

// RedactURL keeps what a URL may be stored with: scheme, host (and port) and
// path. The query and fragment are dropped (portal tokens, a meeting's pwd=
// passcode, the original URL), and so is user info (credentials). For a
// relative reference it returns the path. The result is a sub-slice of s
// unless user info had to be cut out of the middle.
func RedactURL(s []byte) []byte {
	s = bytes.TrimSpace(s)
	if i := bytes.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	start := 0 // where the authority begins
	if i := bytes.Index(s, []byte("://")); i >= 0 && i < 16 && isScheme(s[:i]) {
		start = i + 3
	} else if bytes.HasPrefix(s, []byte("//")) {
		start = 2
	} else {
		return s
	}
	end := len(s)
	if j := bytes.IndexByte(s[start:], '/'); j >= 0 {
		end = start + j
	}
	at := bytes.LastIndexByte(s[start:end], '@')
	if at < 0 {
		return s
	}
	out := make([]byte, 0, len(s)-at-1)
	out = append(out, s[:start]...)
	return append(out, s[start+at+1:]...)
}

// PathOf returns the path of a request target in origin form ("/a?b") or
// absolute form ("http://h/a?b"), without the query; "/" when empty.
func PathOf(target []byte) []byte {
	if i := bytes.Index(target, []byte("://")); i >= 0 && i < 16 && isScheme(target[:i]) {
		rest := target[i+3:]
		j := bytes.IndexByte(rest, '/')
		if j < 0 {
			return []byte("/")
		}
		target = rest[j:]
	}
	if i := bytes.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if len(target) == 0 {
		return []byte("/")
	}
	return target
}

func isScheme(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// equalFoldString compares ASCII case-insensitively without allocating.
func equalFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// ContainsFold reports whether s contains sub, ASCII case-insensitively,
// without allocating. An empty sub is contained in anything.
func ContainsFold(s []byte, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		if lower(s[i]) != lower(sub[0]) {
			continue
		}
		j := 1
		for j < n && lower(s[i+j]) == lower(sub[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
