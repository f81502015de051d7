package certcheck

import (
	"bytes"
	"crypto/x509"
	"hash/maphash"
	"time"
)

// EntryOverhead is the byte cost a cache entry adds to its key material
// (the certificates' DER, the name, OCSP and SCT bytes): the Verdict's
// strings and slices and the entry's bookkeeping, rounded up.
const EntryOverhead = 1024

// Cache remembers verdicts so that a chain already judged (same
// certificates, name, Zoom flag, OCSP and SCT bytes, the Cache's Options, and
// a time inside every certificate's validity) is not verified again. It is
// bounded by bytes (key material plus EntryOverhead per entry), evicts the
// least recently used entry first, and is not safe for concurrent use: give
// each worker its own (the per-packet path then takes no lock).
type Cache struct {
	opts     Options
	maxBytes int
	bytes    int
	seed     maphash.Seed
	h        maphash.Hash
	m        map[uint64]*cacheEntry
	// LRU list: head is the most recently used.
	head, tail *cacheEntry

	Hits, Misses, Evictions uint64
}

type cacheEntry struct {
	key        uint64
	der        [][]byte
	host       string
	zoom       bool
	ocsp       []byte
	scts       [][]byte
	from, till time.Time
	v          Verdict
	cost       int
	prev, next *cacheEntry
}

// NewCache makes a cache of at most maxBytes for verdicts under opts; a
// maxBytes of 0 makes a cache that keeps nothing (every call judges).
func NewCache(opts Options, maxBytes int) *Cache {
	c := &Cache{opts: opts, maxBytes: maxBytes, seed: maphash.MakeSeed(), m: map[uint64]*cacheEntry{}}
	c.h.SetSeed(c.seed)
	return c
}

// Options are the settings the cached verdicts were judged under.
func (c *Cache) Options() Options { return c.opts }

// Bytes is the cost of what the cache holds; Len the number of entries.
func (c *Cache) Bytes() int { return c.bytes }
func (c *Cache) Len() int   { return len(c.m) }

// Judge is certcheck.Judge with the cache's options, answered from the
// cache when the same input was judged and its verdict still holds at in.At.
func (c *Cache) Judge(in Input) Verdict {
	if c.maxBytes <= 0 {
		return Judge(in, c.opts)
	}
	at := in.At
	if at.IsZero() {
		at = time.Now()
		in.At = at
	}
	key := c.hash(&in)
	if e := c.m[key]; e != nil && e.matches(&in) {
		if !at.Before(e.from) && at.Before(e.till) {
			c.Hits++
			c.touch(e)
			return e.v
		}
	}
	c.Misses++
	v := Judge(in, c.opts)
	if v.validUntil.IsZero() {
		return v
	}
	e := &cacheEntry{key: key, host: in.Host, zoom: in.Zoom, from: v.validFrom, till: v.validUntil, v: v}
	e.cost = EntryOverhead + len(in.Host) + len(in.OCSP)
	if in.Chain != nil {
		for _, cert := range in.Chain {
			if cert != nil {
				e.der = append(e.der, cert.Raw) // parsed certificates are immutable: share
				e.cost += len(cert.Raw)
			}
		}
	} else {
		for _, d := range in.DER {
			e.der = append(e.der, bytes.Clone(d)) // the caller's buffers are reused
			e.cost += len(d)
		}
	}
	e.ocsp = bytes.Clone(in.OCSP)
	for _, s := range in.SCTs {
		e.scts = append(e.scts, bytes.Clone(s))
		e.cost += len(s)
	}
	if e.cost > c.maxBytes {
		return v
	}
	if old := c.m[key]; old != nil {
		c.remove(old)
	}
	for c.bytes+e.cost > c.maxBytes && c.tail != nil {
		c.Evictions++
		c.remove(c.tail)
	}
	c.m[key] = e
	c.bytes += e.cost
	c.pushFront(e)
	return v
}

func (c *Cache) hash(in *Input) uint64 {
	h := &c.h
	h.Reset()
	var n [4]byte
	writeLen := func(l int) {
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
	}
	if in.Chain != nil {
		for _, cert := range in.Chain {
			if cert != nil {
				writeLen(len(cert.Raw))
				h.Write(cert.Raw)
			}
		}
	} else {
		for _, d := range in.DER {
			writeLen(len(d))
			h.Write(d)
		}
	}
	writeLen(len(in.Host))
	h.WriteString(in.Host)
	if in.Zoom {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
	writeLen(len(in.OCSP))
	h.Write(in.OCSP)
	for _, s := range in.SCTs {
		writeLen(len(s))
		h.Write(s)
	}
	return h.Sum64()
}

// matches compares the whole key material: a hash collision never returns
// another chain's verdict.
func (e *cacheEntry) matches(in *Input) bool {
	if e.host != in.Host || e.zoom != in.Zoom || !bytes.Equal(e.ocsp, in.OCSP) || len(e.scts) != len(in.SCTs) {
		return false
	}
	for i, s := range in.SCTs {
		if !bytes.Equal(e.scts[i], s) {
			return false
		}
	}
	if in.Chain != nil {
		return equalChain(e.der, in.Chain)
	}
	if len(e.der) != len(in.DER) {
		return false
	}
	for i, d := range in.DER {
		if !bytes.Equal(e.der[i], d) {
			return false
		}
	}
	return true
}

func equalChain(der [][]byte, chain []*x509.Certificate) bool {
	i := 0
	for _, cert := range chain {
		if cert == nil {
			continue
		}
		if i >= len(der) || !bytes.Equal(der[i], cert.Raw) {
			return false
		}
		i++
	}
	return i == len(der)
}

func (c *Cache) pushFront(e *cacheEntry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache) touch(e *cacheEntry) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}

func (c *Cache) remove(e *cacheEntry) {
	c.unlink(e)
	delete(c.m, e.key)
	c.bytes -= e.cost
}
