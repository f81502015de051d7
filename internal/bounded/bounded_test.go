package bounded

import (
	"testing"
	"time"
)

func TestMapEvictsOldestInserted(t *testing.T) {
	m := NewMap[int, string](3)
	for i := range 3 {
		m.Put(i, "v")
	}
	m.Put(0, "updated") // an update does not refresh insertion order
	m.Put(3, "v")       // evicts 0, the oldest inserted
	if _, ok := m.Get(0); ok {
		t.Error("oldest key kept")
	}
	for _, k := range []int{1, 2, 3} {
		if _, ok := m.Get(k); !ok {
			t.Errorf("key %d lost", k)
		}
	}
	for i := 4; i < 1000; i++ {
		m.Put(i, "v")
	}
	if m.Len() != 3 {
		t.Errorf("len %d, want the bound 3", m.Len())
	}
	if _, ok := m.Get(999); !ok {
		t.Error("newest key lost")
	}
}

func TestDedupWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDedup[string](2)
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", 30 * time.Second, false},
		{"a", -30 * time.Second, false}, // slightly out of order: still a repeat
		{"a", time.Minute, true},        // window passed: report again
		{"b", time.Minute, true},
		{"c", time.Minute, true}, // evicts "a" (bound 2)
		{"a", time.Minute, true},
	}
	for i, s := range steps {
		if got := d.First(s.key, t0.Add(s.at), time.Minute); got != s.want {
			t.Errorf("step %d: First(%s, %s) = %v, want %v", i, s.key, s.at, got, s.want)
		}
	}
	if d.Len() != 2 {
		t.Errorf("len %d", d.Len())
	}
}
