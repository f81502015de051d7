package ownflows

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(size int) (*Registry, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := New(size, 10*time.Second)
	r.now = c.now
	return r, c
}

var (
	probe  = netip.MustParseAddrPort("192.0.2.1:40000")
	server = netip.MustParseAddrPort("170.114.10.85:8801")
)

// Only the exact 5-tuple is the probe's, in both directions.
func TestOwnIsExact(t *testing.T) {
	r, c := newTest(16)
	release, ok := r.Register(Key{ProtoTCP, probe, server}, c.now().Add(time.Minute))
	if !ok {
		t.Fatal("refused")
	}
	defer release()
	cases := []struct {
		name     string
		proto    uint8
		src, dst netip.AddrPort
		want     bool
	}{
		{"probe to server", ProtoTCP, probe, server, true},
		{"server to probe", ProtoTCP, server, probe, true},
		{"mapped address", ProtoTCP, netip.AddrPortFrom(netip.AddrFrom16(probe.Addr().As16()), probe.Port()), server, true},
		{"udp", ProtoUDP, probe, server, false},
		{"another client, same port", ProtoTCP, netip.MustParseAddrPort("192.0.2.2:40000"), server, false},
		{"same client, another port", ProtoTCP, netip.MustParseAddrPort("192.0.2.1:40001"), server, false},
		{"another server port", ProtoTCP, probe, netip.MustParseAddrPort("170.114.10.85:8802"), false},
		{"another server", ProtoTCP, probe, netip.MustParseAddrPort("170.114.10.86:8801"), false},
	}
	for _, tc := range cases {
		if got := r.Own(tc.proto, tc.src, tc.dst); got != tc.want {
			t.Errorf("%s: Own = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An entry lasts linger after release (late packets of the flow), or
// linger after the deadline when never released; then it is pruned.
func TestOwnExpires(t *testing.T) {
	r, c := newTest(16)
	release, _ := r.Register(Key{ProtoTCP, probe, server}, c.now().Add(time.Minute))
	c.add(5 * time.Second)
	release()
	c.add(9 * time.Second)
	if !r.Own(ProtoTCP, server, probe) {
		t.Error("a late packet within linger of release is not the probe's")
	}
	c.add(2 * time.Second)
	if r.Own(ProtoTCP, server, probe) {
		t.Error("still the probe's after release+linger")
	}

	other := netip.MustParseAddrPort("192.0.2.1:40002")
	r.Register(Key{ProtoUDP, other, server}, c.now().Add(time.Second)) // never released
	c.add(10 * time.Second)
	if !r.Own(ProtoUDP, other, server) {
		t.Error("ended before deadline+linger")
	}
	c.add(2 * time.Second)
	if r.Own(ProtoUDP, other, server) {
		t.Error("an unreleased entry outlived deadline+linger")
	}
	r.Register(Key{ProtoTCP, netip.MustParseAddrPort("192.0.2.1:40003"), server}, c.now().Add(time.Second))
	if n := r.Len(); n != 1 {
		t.Errorf("%d entries after pruning, want 1", n)
	}
}

// Bounded: a full registry evicts the released entry that ends first, and
// refuses (counted) only when every entry is a live socket.
func TestRegistryBound(t *testing.T) {
	r, c := newTest(2)
	k := func(port uint16) Key {
		return Key{ProtoTCP, netip.AddrPortFrom(probe.Addr(), port), server}
	}
	rel1, _ := r.Register(k(1), c.now().Add(time.Minute))
	r.Register(k(2), c.now().Add(time.Minute))
	rel1()
	if _, ok := r.Register(k(3), c.now().Add(time.Minute)); !ok {
		t.Fatal("refused although a released entry could go")
	}
	if r.Own(ProtoTCP, k(1).Local, server) || !r.Own(ProtoTCP, k(2).Local, server) || !r.Own(ProtoTCP, k(3).Local, server) {
		t.Error("evicted the wrong entry")
	}
	if _, ok := r.Register(k(4), c.now().Add(time.Minute)); ok || r.Refused() != 1 {
		t.Errorf("full of live sockets: ok=%v refused=%d", ok, r.Refused())
	}
	if r.Len() != 2 {
		t.Errorf("len %d, want the bound 2", r.Len())
	}
}

// The readers' check allocates nothing, hit or miss, and runs while probes
// register (go test -race).
func TestOwnConcurrentNoAlloc(t *testing.T) {
	r, c := newTest(1024)
	r.Register(Key{ProtoTCP, probe, server}, c.now().Add(time.Hour))
	miss := netip.MustParseAddrPort("192.0.2.9:40000")
	if n := testing.AllocsPerRun(1000, func() {
		r.Own(ProtoTCP, server, probe)
		r.Own(ProtoTCP, miss, server)
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for port := uint16(1); ; port++ {
			select {
			case <-stop:
				return
			default:
			}
			rel, _ := r.Register(Key{ProtoUDP, netip.AddrPortFrom(probe.Addr(), port), server}, c.now().Add(time.Minute))
			rel()
		}
	}()
	for range 20000 {
		if !r.Own(ProtoTCP, probe, server) {
			t.Fatal("a live socket was lost while others registered")
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkOwn(b *testing.B) {
	r, c := newTest(1024)
	for port := range uint16(256) {
		r.Register(Key{ProtoTCP, netip.AddrPortFrom(probe.Addr(), 40000+port), server}, c.now().Add(time.Hour))
	}
	client := netip.MustParseAddrPort("10.0.0.7:51515")
	b.ReportAllocs()
	for b.Loop() {
		r.Own(ProtoTCP, client, server)
	}
}
