package analyzers

import "sync"

// Memory carries what analyzers learnt across flows (de-duplication windows,
// learnt fingerprints and hop counts, per-client records) from one Init to
// the next: a reload of analyzer settings, or of settings that need a new
// engine, neither repeats a finding inside its window nor forgets a learnt
// baseline. The daemon keeps one for its lifetime; nil keeps nothing.
//
// What is kept must be safe for concurrent use: during a swap, some workers
// still run the old analyzers while others run the new ones.
type Memory struct {
	mu sync.Mutex
	m  map[string]kept
}

type kept struct {
	size int
	v    any
}

// NewMemory makes an empty Memory.
func NewMemory() *Memory { return &Memory{m: map[string]kept{}} }

// Keep returns what an earlier Init kept under key with the same size, else
// makes it with mk (and keeps it for the next). size is the bound the value
// was made with: a changed bound makes a new value, so the config's bound
// always holds. One value per key: nothing accumulates across reloads.
func Keep[T any](m *Memory, key string, size int, mk func() T) T {
	if m == nil {
		return mk()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.m[key]; ok && k.size == size {
		if v, ok := k.v.(T); ok {
			return v
		}
	}
	v := mk()
	m.m[key] = kept{size: size, v: v}
	return v
}
