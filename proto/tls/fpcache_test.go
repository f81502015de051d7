package tls

import (
	"bytes"
	"testing"
)

// A client's next connection (new random, other GREASE values) is answered
// from the cache; a ClientHello that differs in a fingerprinted field is not.
func TestFingerprintCache(t *testing.T) {
	c := NewFingerprintCache()
	parse := func(b []byte) *ClientHello {
		t.Helper()
		ch := &ClientHello{}
		if err := ParseClientHello(b, ch); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	check := func(name string, b []byte, hits uint64) {
		t.Helper()
		ch := parse(b)
		ja3, ja4 := c.Fingerprints(ch)
		if ja3 != JA3Hash(ch) || ja4 != JA4(ch) {
			t.Fatalf("%s: cache answered JA3 %x JA4 %s, want %x %s", name, ja3, ja4, JA3Hash(ch), JA4(ch))
		}
		if c.hits != hits {
			t.Fatalf("%s: %d hits, want %d", name, c.hits, hits)
		}
	}
	base := handBuilt()
	check("first", base, 0)
	check("again", base, 1)

	next := bytes.Clone(base)
	for i := 2; i < 34; i++ {
		next[i] = byte(i * 7) // the client random
	}
	// Other GREASE values: the cipher, the extension, the version and the group.
	for _, g := range [][2][]byte{{{0x0a, 0x0a, 0x13}, {0xba, 0xba, 0x13}}, {{0x1a, 0x1a, 0}, {0xfa, 0xfa, 0}}, {{0x2a, 0x2a, 3}, {0x4a, 0x4a, 3}}, {{0x3a, 0x3a, 0}, {0x5a, 0x5a, 0}}} {
		i := bytes.Index(next, g[0])
		if i < 0 {
			t.Fatalf("GREASE %x not in the hand-built hello", g[0])
		}
		copy(next[i:], g[1])
	}
	check("next connection", next, 2)

	other := bytes.Clone(base)
	i := bytes.Index(other, []byte{0xc0, 0x2b})
	other[i+1] = 0x2c // another cipher suite
	check("another cipher", other, 2)
	noALPN := bytes.Clone(base)
	i = bytes.Index(noALPN, []byte{2, 'h', '2'})
	noALPN[i+1], noALPN[i+2] = 'h', '3' // another first ALPN protocol
	check("another ALPN", noALPN, 2)
	check("base still held", base, 3)
}
