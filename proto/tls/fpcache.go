package tls

import (
	"encoding/binary"
	"hash/maphash"
)

// FingerprintCache remembers the JA3 and JA4 of recent ClientHello shapes.
// A client sends the same shape on every connection (only its random, key
// shares, session data and GREASE values change), and building both
// fingerprints (decimal and hex lists, a sort, MD5, two SHA-256) was the
// largest single cost of a TLS handshake in the packet path.
//
// The key is what the two fingerprints are computed from, GREASE values
// left out as both leave them out, hashed with two random seeds: a 128-bit
// keyed hash, so a ClientHello cannot be crafted to take another's entry.
// Fixed size, direct-mapped; not safe for concurrent use (one per worker).
//
// It also remembers the hashed part of recent ServerHello shapes: a server
// answers a client shape with the same choices every time, and that SHA-256
// was 4% of the packet path on a TLS-heavy capture.
type FingerprintCache struct {
	seeds   [2]maphash.Seed
	entries [fpCacheEntries]fpEntry
	servers [sfpCacheEntries]sfpEntry
	buf     []byte
	hits    uint64 // lookups answered from the cache (tests)
}

// fpCacheEntries and sfpCacheEntries are powers of two: about 18 KiB and
// 2 KiB per cache.
const (
	fpCacheEntries  = 256
	sfpCacheEntries = 64
)

type sfpEntry struct {
	key  [2]uint64
	hash [ServerFingerprintLen - 15]byte
	set  bool
}

type fpEntry struct {
	key [2]uint64
	ja3 [16]byte
	ja4 [JA4Len]byte
	set bool
}

// NewFingerprintCache makes an empty cache.
func NewFingerprintCache() *FingerprintCache {
	return &FingerprintCache{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, buf: make([]byte, 0, 1024)}
}

// Fingerprints returns JA3Hash(ch) and JA4(ch).
func (c *FingerprintCache) Fingerprints(ch *ClientHello) (ja3 [16]byte, ja4 [JA4Len]byte) {
	c.buf = appendFingerprintKey(c.buf[:0], ch)
	key := [2]uint64{maphash.Bytes(c.seeds[0], c.buf), maphash.Bytes(c.seeds[1], c.buf)}
	e := &c.entries[key[0]&(fpCacheEntries-1)]
	if e.set && e.key == key {
		c.hits++
		return e.ja3, e.ja4
	}
	*e = fpEntry{key: key, ja3: JA3Hash(ch), ja4: JA4(ch), set: true}
	return e.ja3, e.ja4
}

// appendFingerprintKey appends every input of JA3 and JA4, each list with
// its length, so that no two different inputs give the same bytes.
func appendFingerprintKey(dst []byte, ch *ClientHello) []byte {
	dst = binary.BigEndian.AppendUint16(dst, ch.LegacyVersion)
	sni := byte(0)
	if ch.SNI != nil {
		sni = 1
	}
	dst = append(dst, sni)
	dst = appendKeyList(dst, ch.CipherSuites)
	mark := len(dst)
	dst = append(dst, 0, 0)
	n := 0
	for typ := range fingerprintedExtensions(ch.Extensions) {
		dst = binary.BigEndian.AppendUint16(dst, typ)
		n++
	}
	binary.BigEndian.PutUint16(dst[mark:], uint16(n))
	dst = appendKeyList(dst, ch.Groups)
	dst = appendKeyBytes(dst, ch.PointFormats)
	dst = appendKeyList(dst, ch.SigAlgs)
	dst = appendKeyList(dst, ch.SupportedVersions)
	return appendKeyBytes(dst, ch.FirstALPN())
}

// appendKeyList appends the non-GREASE 2-byte values of list (a trailing odd
// byte ignored, as the fingerprints ignore it), after their count.
func appendKeyList(dst, list []byte) []byte {
	mark := len(dst)
	dst = append(dst, 0, 0)
	n := 0
	for i := 0; i+1 < len(list); i += 2 {
		if v := u16(list, i); !IsGREASE(v) {
			dst = binary.BigEndian.AppendUint16(dst, v)
			n++
		}
	}
	binary.BigEndian.PutUint16(dst[mark:], uint16(n))
	return dst
}

func appendKeyBytes(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// ServerFingerprint returns ServerFingerprint(sh), its hashed part from the
// cache when the same shape was seen before.
func (c *FingerprintCache) ServerFingerprint(sh *ServerHello) [ServerFingerprintLen]byte {
	var out [ServerFingerprintLen]byte
	c.buf = serverFingerprintInput(sh, &out, c.buf[:0])
	key := [2]uint64{maphash.Bytes(c.seeds[0], c.buf), maphash.Bytes(c.seeds[1], c.buf)}
	e := &c.servers[key[0]&(sfpCacheEntries-1)]
	if e.set && e.key == key {
		c.hits++
	} else {
		*e = sfpEntry{key: key, set: true}
		hash12(e.hash[:], c.buf)
	}
	copy(out[15:], e.hash[:])
	return out
}
