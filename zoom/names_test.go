package zoom

import (
	"net/netip"
	"testing"
	"time"
)

func TestNameCache(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("203.0.113.7")
	c := NewNameCache(2)
	c.Put(a, "zoom.us", t0, t0.Add(time.Minute))
	tests := []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Millisecond), false}, // a flow older than the answer
		{t0, true},
		{t0.Add(time.Minute), true},
		{t0.Add(time.Minute + time.Second), false}, // expired
	}
	for _, tt := range tests {
		if _, ok := c.Get(a, tt.at); ok != tt.want {
			t.Errorf("Get at %s = %v, want %v", tt.at.Sub(t0), ok, tt.want)
		}
	}
	// A repeat answer for the same name keeps the first answer time, so a flow
	// that started between the two answers still matches.
	c.Put(a, "zoom.us", t0.Add(30*time.Second), t0.Add(2*time.Minute))
	if _, ok := c.Get(a, t0.Add(10*time.Second)); !ok {
		t.Error("a repeat answer hid the name from flows that started after the first")
	}
	// IPv4-mapped IPv6 is the same address.
	if n, ok := c.Get(netip.AddrFrom16(a.As16()), t0); !ok || n != "zoom.us" {
		t.Errorf("mapped address: %q %v", n, ok)
	}
	// Bounded: the oldest entry goes first.
	c.Put(netip.MustParseAddr("203.0.113.8"), "www.zoom.us", t0, time.Time{})
	c.Put(netip.MustParseAddr("203.0.113.9"), "zoom.com", t0, time.Time{})
	if _, ok := c.Get(a, t0); ok || c.Len() != 2 {
		t.Errorf("oldest entry kept (len %d)", c.Len())
	}
}

// PutBytes stores a name from a parser's buffer without allocating when the
// name was stored just before (answers with several addresses) or the address
// already holds it (repeated answers).
func TestNameCachePutBytesReusesNames(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewNameCache(16)
	buf := []byte("zoom.us")
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.8")
	c.PutBytes(a, buf, t0, t0.Add(time.Minute))
	c.PutBytes(b, buf, t0, t0.Add(time.Minute)) // warm the map's slots
	allocs := testing.AllocsPerRun(100, func() {
		c.PutBytes(a, buf, t0, t0.Add(time.Minute))
		c.PutBytes(b, buf, t0, t0.Add(time.Minute))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per repeated answer", allocs)
	}
	copy(buf, "ZZZZ") // the cache must not keep the caller's buffer
	if n, ok := c.Get(a, t0); !ok || n != "zoom.us" {
		t.Errorf("Get = %q %v", n, ok)
	}
}
