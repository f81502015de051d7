package certcheck

import (
	"bytes"
	"crypto/x509"
	"sync"
)

// Intermediates remembers the CA certificates of chains that verified to a
// trusted root, so that a server that omits its intermediate (a common
// misconfiguration browsers hide by fetching it from the AIA URL) is judged
// "incomplete chain", not "unknown authority". The probe never fetches: it
// learns from the complete chains other servers send. Safe for concurrent
// use; bounded: the oldest entry goes first. Each entry holds one parsed
// certificate (about 2 KiB with its DER).
type Intermediates struct {
	mu        sync.RWMutex
	max       int
	bySubject map[string][]*x509.Certificate
	order     []*x509.Certificate
	next      int
}

// DefaultMaxIntermediates bounds the learned intermediates (about 2 MiB).
const DefaultMaxIntermediates = 1024

// NewIntermediates makes a store of at most max certificates holding known.
func NewIntermediates(max int, known ...*x509.Certificate) *Intermediates {
	s := &Intermediates{max: max, bySubject: map[string][]*x509.Certificate{}}
	s.learn(known)
	return s
}

// Len is the number of certificates held.
func (s *Intermediates) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

// issuersOf returns the remembered certificates whose subject is c's issuer.
func (s *Intermediates) issuersOf(c *x509.Certificate) []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bySubject[string(c.RawIssuer)]
}

// learn remembers CA certificates (those of a verified path).
func (s *Intermediates) learn(cas []*x509.Certificate) {
	if s == nil || s.max <= 0 {
		return
	}
	s.mu.RLock()
	fresh := false
	for _, c := range cas {
		if !s.holds(c) {
			fresh = true
			break
		}
	}
	s.mu.RUnlock()
	if !fresh {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cas {
		if !c.IsCA || s.holds(c) {
			continue
		}
		if len(s.order) >= s.max {
			old := s.order[s.next]
			s.remove(old)
			s.order[s.next] = c
			s.next = (s.next + 1) % s.max
		} else {
			s.order = append(s.order, c)
		}
		k := string(c.RawSubject)
		s.bySubject[k] = append(s.bySubject[k], c)
	}
}

func (s *Intermediates) holds(c *x509.Certificate) bool {
	for _, h := range s.bySubject[string(c.RawSubject)] {
		if bytes.Equal(h.Raw, c.Raw) {
			return true
		}
	}
	return false
}

func (s *Intermediates) remove(c *x509.Certificate) {
	k := string(c.RawSubject)
	l := s.bySubject[k]
	for i, h := range l {
		if h == c {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(s.bySubject, k)
	} else {
		s.bySubject[k] = l
	}
}
