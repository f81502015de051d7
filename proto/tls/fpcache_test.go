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

// A server's next answer to the same offer (new random, session id and key
// share) is answered from the cache; one that differs in a hashed field
// (here the key share group) is not.
func TestServerFingerprintCache(t *testing.T) {
	c := NewFingerprintCache()
	hello := func(random, cipher byte, group uint16) []byte {
		b := []byte{3, 3}
		b = append(b, bytes.Repeat([]byte{random}, 32)...)
		b = append(b, 32)
		b = append(b, bytes.Repeat([]byte{random + 1}, 32)...) // session id
		b = append(b, 0x13, cipher, 0)                         // cipher suite, compression
		exts := []byte{
			0, 0x2b, 0, 2, 3, 4, // supported_versions: TLS 1.3
			0, 0x33, 0, 6, byte(group >> 8), byte(group), 0, 2, random, random, // key_share
		}
		b = append(b, byte(len(exts)>>8), byte(len(exts)))
		return append(b, exts...)
	}
	check := func(name string, b []byte, hits uint64) {
		t.Helper()
		var sh ServerHello
		if err := ParseServerHello(b, &sh); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := c.ServerFingerprint(&sh), ServerFingerprint(&sh); got != want {
			t.Fatalf("%s: cache answered %s, want %s", name, got, want)
		}
		if c.hits != hits {
			t.Fatalf("%s: %d hits, want %d", name, c.hits, hits)
		}
	}
	check("first", hello(1, 1, 0x1d), 0)
	check("next connection", hello(9, 1, 0x1d), 1)
	// The cipher suite is in the readable part, not the hashed one: the
	// cache answers the hash, and the result still differs.
	check("another cipher", hello(9, 2, 0x1d), 2)
	check("another group", hello(9, 1, 0x17), 2)
	check("first shape still held", hello(5, 1, 0x1d), 3)

	// More shapes than entries: those that share an entry replace each
	// other, and none answers for another.
	for round := range 2 {
		for g := range uint16(4 * sfpCacheEntries) {
			var sh ServerHello
			if err := ParseServerHello(hello(byte(round), 1, 0x100+g), &sh); err != nil {
				t.Fatal(err)
			}
			if got, want := c.ServerFingerprint(&sh), ServerFingerprint(&sh); got != want {
				t.Fatalf("group %#x: cache answered %s, want %s", 0x100+g, got, want)
			}
		}
	}
}
