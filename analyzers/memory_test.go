package analyzers

import "testing"

func TestKeep(t *testing.T) {
	m := NewMemory()
	made := 0
	mk := func() *int { made++; v := made; return &v }
	a := Keep(m, "x", 10, mk)
	if b := Keep(m, "x", 10, mk); b != a || made != 1 {
		t.Fatalf("same key and size: made %d", made)
	}
	if c := Keep(m, "x", 20, mk); c == a || made != 2 {
		t.Fatalf("a new bound must make a new value: made %d", made)
	}
	if d := Keep(m, "x", 20, mk); made != 2 || *d != 2 {
		t.Fatalf("the new value is kept: made %d", made)
	}
	if len(m.m) != 1 {
		t.Fatalf("%d values kept for one key", len(m.m))
	}
	if e := Keep[*int](nil, "x", 10, mk); e == nil || made != 3 {
		t.Fatal("a nil Memory makes a value each time")
	}
}
