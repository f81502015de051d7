package certcheck

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

func TestCache(t *testing.T) {
	c := newCAs(t)
	name := "zoomfrn99mmr.zoom.us"
	cert := c.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{name}}, c.zoomInter)
	opts := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts()}
	cache := NewCache(opts, 1<<20)
	at := tlstest.DefaultTime
	// The analyzer's buffers are reused between handshakes: give copies.
	der := func() [][]byte {
		var out [][]byte
		for _, d := range cert.Certificate {
			out = append(out, bytes.Clone(d))
		}
		return out
	}
	in := Input{DER: der(), Host: name, Zoom: true, At: at}
	first := cache.Judge(in)
	if first.Reason != finding.ReasonOK || cache.Len() != 1 || cache.Misses != 1 {
		t.Fatalf("first: %s len %d misses %d", first.Reason, cache.Len(), cache.Misses)
	}
	// Overwrite the first input's buffers: the cache holds its own copy.
	for _, d := range in.DER {
		for i := range d {
			d[i] = 0
		}
	}
	before := verifications.Load()
	again := cache.Judge(Input{DER: der(), Host: name, Zoom: true, At: at.Add(time.Hour)})
	if again.Reason != finding.ReasonOK || cache.Hits != 1 || verifications.Load() != before {
		t.Errorf("repeat: %s hits %d verifications %d", again.Reason, cache.Hits, verifications.Load()-before)
	}
	for _, tt := range []struct {
		name string
		in   Input
		want finding.Reason
	}{
		{"another name", Input{DER: der(), Host: "zoomam104zc.zoom.us", Zoom: true, At: at}, finding.ReasonInvalidHostname},
		{"not a Zoom server", Input{DER: der(), Host: name, At: at}, finding.ReasonOK},
		{"past the leaf's end", Input{DER: der(), Host: name, Zoom: true, At: tlstest.LeafNotAfter.Add(time.Hour)}, finding.ReasonExpired},
		{"with an SCT", Input{DER: der(), Host: name, Zoom: true, At: at, SCTs: [][]byte{tlstest.FakeSCT()}}, finding.ReasonOK},
	} {
		hits := cache.Hits
		if v := cache.Judge(tt.in); v.Reason != tt.want || cache.Hits != hits {
			t.Errorf("%s: %s, hits %d -> %d: judged from another entry", tt.name, v.Reason, hits, cache.Hits)
		}
	}
	// An expired verdict is not kept: it depends on the time.
	n := cache.Len()
	cache.Judge(Input{DER: der(), Host: name, Zoom: true, At: tlstest.LeafNotAfter.Add(time.Hour)})
	if cache.Len() != n {
		t.Errorf("expired verdict cached")
	}
	// Parsed certificates (the probe's input) and DER of the same chain
	// share the entry.
	hits := cache.Hits
	cache.Judge(Input{Chain: []*x509.Certificate{cert.Leaf, c.zoomInter.Cert}, Host: name, Zoom: true, At: at})
	if cache.Hits != hits+1 {
		t.Error("parsed certificates of a cached chain not a hit")
	}
}

func TestCacheBound(t *testing.T) {
	c := newCAs(t)
	opts := Options{Roots: pool(c.public)}
	cert := c.public.Leaf(t, tlstest.LeafSpec{Names: []string{"a.example"}})
	cost := EntryOverhead + len(cert.Certificate[0]) + len("a.example")
	cache := NewCache(opts, 3*cost)
	for i, host := range []string{"a.example", "b.example", "c.example", "d.example", "e.example"} {
		cache.Judge(Input{DER: cert.Certificate, Host: host, At: tlstest.DefaultTime})
		if cache.Bytes() > 3*cost || cache.Len() > 3 {
			t.Fatalf("after %d: %d bytes in %d entries, bound %d", i+1, cache.Bytes(), cache.Len(), 3*cost)
		}
	}
	if cache.Evictions != 2 {
		t.Errorf("evictions %d", cache.Evictions)
	}
	// The most recent entries stay, the oldest went.
	hits := cache.Hits
	cache.Judge(Input{DER: cert.Certificate, Host: "e.example", At: tlstest.DefaultTime})
	cache.Judge(Input{DER: cert.Certificate, Host: "a.example", At: tlstest.DefaultTime})
	if cache.Hits != hits+1 {
		t.Errorf("hits %d -> %d", hits, cache.Hits)
	}
	if off := NewCache(opts, 0); off.Judge(Input{DER: cert.Certificate, At: tlstest.DefaultTime}).Reason != finding.ReasonOK || off.Len() != 0 {
		t.Error("a zero-byte cache kept something")
	}
}

// BenchmarkJudgeCached is the same chain judged again: answered from the
// cache, with no path verification.
func BenchmarkJudgeCached(b *testing.B) {
	c := newCAs(b)
	name := "zoomfrn99mmr.zoom.us"
	cert := c.zoomInter.Leaf(b, tlstest.LeafSpec{Names: []string{name}, EmbedSCT: true}, c.zoomInter)
	opts := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts(), CTLogs: DefaultCTLogs()}
	cache := NewCache(opts, 4<<20)
	in := Input{DER: cert.Certificate, Host: name, Zoom: true, At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	cache.Judge(in)
	before := verifications.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v := cache.Judge(in); v.Reason != "ok" {
			b.Fatal(v.Reason, v.Detail)
		}
	}
	b.ReportMetric(float64(verifications.Load()-before)/float64(b.N), "verifications/op")
}
