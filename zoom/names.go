package zoom

import (
	"net/netip"
	"sync"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/bounded"
)

// NameCache maps addresses to the names DNS answered them for, so that a flow
// to an address a client just resolved from a Zoom name counts as Zoom. It is
// shared by all workers: writes come from DNS answers, reads from new flows,
// never per packet. Bounded: the oldest entries go first.
type NameCache struct {
	mu      sync.RWMutex
	entries *bounded.Map[netip.Addr, nameEntry]
	last    string // the name last stored: answers repeat names, PutBytes reuses it
}

type nameEntry struct {
	name     string
	answered time.Time // packet time of the DNS answer
	expires  time.Time // packet time; zero never expires
}

// NewNameCache makes a cache holding at most max addresses.
func NewNameCache(max int) *NameCache {
	return &NameCache{entries: bounded.NewMap[netip.Addr, nameEntry](max)}
}

// Put records that addr was answered for name at answered, valid until
// expires (packet times).
func (c *NameCache) Put(addr netip.Addr, name string, answered, expires time.Time) {
	c.mu.Lock()
	c.put(addr.Unmap(), name, answered, expires)
	c.mu.Unlock()
}

// put stores an entry; c.mu is held.
func (c *NameCache) put(addr netip.Addr, name string, answered, expires time.Time) {
	// A repeat answer (many users resolving zoom.us) keeps the first answer
	// time while the entry is valid: flows that started since still match.
	if e, ok := c.entries.Get(addr); ok && e.name == name && !answered.Before(e.answered) && (e.expires.IsZero() || !answered.After(e.expires)) {
		answered = e.answered
	}
	c.entries.Put(addr, nameEntry{name: name, answered: answered, expires: expires})
}

// PutBytes is Put with the name as bytes (a parser's buffer, not kept): it
// allocates only for a name not stored just before or held by addr already,
// so snooping repeated answers allocates nothing.
func (c *NameCache) PutBytes(addr netip.Addr, name []byte, answered, expires time.Time) {
	addr = addr.Unmap()
	c.mu.Lock()
	var s string
	e, ok := c.entries.Get(addr)
	switch {
	case ok && e.name == string(name):
		s = e.name
	case c.last == string(name):
		s = c.last
	default:
		s = string(name)
		c.last = s
	}
	c.put(addr, s, answered, expires)
	c.mu.Unlock()
}

// Get returns the name addr was answered for, if the answer came before now
// and is still valid: a flow that started before the answer (possible when
// readers run ahead of workers) is not classified by it.
func (c *NameCache) Get(addr netip.Addr, now time.Time) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.RLock()
	e, ok := c.entries.Get(addr.Unmap())
	c.mu.RUnlock()
	if !ok || now.Before(e.answered) || (!e.expires.IsZero() && now.After(e.expires)) {
		return "", false
	}
	return e.name, true
}

// Len is the number of addresses held.
func (c *NameCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries.Len()
}
