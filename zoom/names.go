package zoom

import (
	"net/netip"
	"sync"
	"time"
)

// NameCache maps addresses to the names DNS answered them for, so that a flow
// to an address a client just resolved from a Zoom name counts as Zoom. It is
// shared by all workers: writes come from DNS answers, reads from new flows,
// never per packet. Bounded: the oldest entries go first.
type NameCache struct {
	mu      sync.RWMutex
	max     int
	entries map[netip.Addr]nameEntry
	order   []netip.Addr // insertion ring for eviction
	next    int
}

type nameEntry struct {
	name     string
	answered time.Time // packet time of the DNS answer
	expires  time.Time // packet time; zero never expires
}

// NewNameCache makes a cache holding at most max addresses.
func NewNameCache(max int) *NameCache {
	if max < 1 {
		max = 1
	}
	return &NameCache{max: max, entries: make(map[netip.Addr]nameEntry, min(max, 4096)), order: make([]netip.Addr, 0, min(max, 4096))}
}

// Put records that addr was answered for name at answered, valid until
// expires (packet times).
func (c *NameCache) Put(addr netip.Addr, name string, answered, expires time.Time) {
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[addr]; !ok {
		if len(c.order) < c.max {
			c.order = append(c.order, addr)
		} else {
			delete(c.entries, c.order[c.next])
			c.order[c.next] = addr
			c.next = (c.next + 1) % c.max
		}
	}
	c.entries[addr] = nameEntry{name: name, answered: answered, expires: expires}
}

// Get returns the name addr was answered for, if the answer came before now
// and is still valid: a flow that started before the answer (possible when
// readers run ahead of workers) is not classified by it.
func (c *NameCache) Get(addr netip.Addr, now time.Time) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.RLock()
	e, ok := c.entries[addr.Unmap()]
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
	return len(c.entries)
}
