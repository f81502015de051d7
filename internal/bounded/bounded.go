// Package bounded holds the maps whose keys come from packets: they never
// hold more than a configured number of keys, whatever the traffic.
package bounded

import (
	"iter"
	"maps"
	"sync"
	"time"
)

// Map holds at most max keys; when full, the oldest inserted key goes first
// (FIFO: O(1), and an attacker's fresh keys cannot pin old ones in place).
// Not safe for concurrent use: callers hold their own lock.
type Map[K comparable, V any] struct {
	m     map[K]V
	order []K // insertion ring
	next  int
	max   int
}

// NewMap makes a map of at most size (≥ 1) keys.
func NewMap[K comparable, V any](size int) *Map[K, V] {
	size = max(size, 1)
	// Small at first: most maps stay far from their bound, and a probe
	// holds dozens of them (startup allocated 4,096 slots each).
	return &Map[K, V]{m: make(map[K]V, min(size, 64)), order: make([]K, 0, min(size, 64)), max: size}
}

// Get returns the value of k.
func (b *Map[K, V]) Get(k K) (V, bool) {
	v, ok := b.m[k]
	return v, ok
}

// Put sets k to v, evicting the oldest key when a new key finds the map full.
func (b *Map[K, V]) Put(k K, v V) {
	if _, ok := b.m[k]; !ok {
		if len(b.order) < b.max {
			b.order = append(b.order, k)
		} else {
			delete(b.m, b.order[b.next])
			b.order[b.next] = k
			b.next = (b.next + 1) % b.max
		}
	}
	b.m[k] = v
}

// Len is the number of keys held.
func (b *Map[K, V]) Len() int { return len(b.m) }

// All iterates over the keys held and their values, in no set order.
func (b *Map[K, V]) All() iter.Seq2[K, V] { return maps.All(b.m) }

// Dedup tells whether a key is new within a time window (packet time), for
// reporting a repeated finding once. Safe for concurrent use.
type Dedup[K comparable] struct {
	mu   sync.Mutex
	seen *Map[K, time.Time]
}

// NewDedup remembers at most max keys.
func NewDedup[K comparable](max int) *Dedup[K] {
	return &Dedup[K]{seen: NewMap[K, time.Time](max)}
}

// First reports whether k was not seen within window of t (either side:
// packet times run a little out of order), and records t when it is new.
func (d *Dedup[K]) First(k K, t time.Time, window time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if last, ok := d.seen.Get(k); ok && t.Sub(last) < window && last.Sub(t) < window {
		return false
	}
	d.seen.Put(k, t)
	return true
}

// Len is the number of keys remembered.
func (d *Dedup[K]) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen.Len()
}
