package engine

import (
	"crypto/rand"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Why a DNS answer for a name the classifier cares about was not trusted: the
// reason label of zoomprobe_dns_unmatched_answers_total (a fixed set).
type unmatchedReason uint8

const (
	// unmatchedNoQuery: no query from that client address and port to that
	// server with that transaction ID was seen (unsolicited, spoofed with a
	// guessed ID, or the query was not captured).
	unmatchedNoQuery unmatchedReason = iota
	// unmatchedQuestion: a query with that ID was seen, for another name or type.
	unmatchedQuestion
	// unmatchedLate: the answer came more than zoom.dns_answer_window after
	// the query (or before it).
	unmatchedLate
	// unmatchedDuplicate: the query was already answered once.
	unmatchedDuplicate
	numUnmatchedReasons
)

var unmatchedReasonNames = [numUnmatchedReasons]string{"no_query", "question_mismatch", "late", "duplicate"}

// probeLimit is how many slots a key may sit away from its hash: lookups and
// inserts touch at most this many entries.
const probeLimit = 8

// pendingQuery is one DNS query waiting for its answer. Addresses are kept as
// 16-byte arrays so the table holds no pointers (the GC never scans it).
type pendingQuery struct {
	client, server [16]byte
	at             int64 // packet time of the query, Unix ns
	nameHash       uint64
	clientPort     uint16
	id             uint16
	qtype          uint16
	state          uint8
}

const (
	slotEmpty uint8 = iota
	slotWaiting
	slotAnswered
)

// pendingQueryBytes is the size of one table entry, for zoom.dns_query_table_bytes.
const pendingQueryBytes = int(unsafe.Sizeof(pendingQuery{}))

// queryTable remembers recent DNS queries for names the classifier cares
// about, so the snooper trusts only answers that match one: same client
// address and port, same server (port 53), same transaction ID, same
// question name and type, within the window. It is shared by every reader
// (one TAP input may carry the queries, another the answers) and touched only
// by DNS packets for Zoom or watched names. Fixed size, set in bytes; a full
// neighbourhood overwrites its oldest entry (counted).
type queryTable struct {
	mu     sync.Mutex
	slots  []pendingQuery // length a power of two
	mask   uint64
	window time.Duration
	seed   uint64       // keyed index: packets cannot aim at one neighbourhood
	names  maphash.Seed // keyed name hash: a collision cannot be precomputed

	unmatched [numUnmatchedReasons]atomic.Uint64
	evictions atomic.Uint64
}

// newQueryTable makes a table of at most maxBytes (at least 2·probeLimit entries).
func newQueryTable(maxBytes int, window time.Duration) *queryTable {
	n := probeLimit * 2
	for n*2*pendingQueryBytes <= maxBytes {
		n *= 2
	}
	var s [8]byte
	rand.Read(s[:])
	return &queryTable{slots: make([]pendingQuery, n), mask: uint64(n - 1), window: window, seed: binary.LittleEndian.Uint64(s[:]), names: maphash.MakeSeed()}
}

func (t *queryTable) index(client, server *[16]byte, clientPort, id uint16) uint64 {
	h := mix16(*client) ^ t.seed
	h += mix16(*server) * 0x9E3779B97F4A7C15
	h ^= uint64(clientPort)<<16 | uint64(id)
	h *= 0xff51afd7ed558ccd
	h ^= h >> 29
	return h & t.mask
}

func (t *queryTable) hashName(name []byte) uint64 { return maphash.Bytes(t.names, name) }

// query records a query from client to server (the server's port is 53).
func (t *queryTable) query(client netip.AddrPort, server netip.Addr, id, qtype uint16, name []byte, at time.Time) {
	c, s := client.Addr().Unmap().As16(), server.Unmap().As16()
	cp := client.Port()
	nh := t.hashName(name)
	now := at.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.index(&c, &s, cp, id)
	victim := -1
	for k := uint64(0); k < probeLimit; k++ {
		j := int((i + k) & t.mask)
		e := &t.slots[j]
		if e.state != slotEmpty && e.client == c && e.server == s && e.clientPort == cp && e.id == id {
			victim = j // a retransmission (or a reused ID): the newest query wins
			break
		}
		if victim < 0 && (e.state == slotEmpty || e.state == slotAnswered || now-e.at > int64(t.window) || e.at-now > int64(t.window)) {
			victim = j
		}
	}
	if victim < 0 {
		victim = int(i & t.mask)
		for k := uint64(1); k < probeLimit; k++ {
			if j := int((i + k) & t.mask); t.slots[j].at < t.slots[victim].at {
				victim = j
			}
		}
		t.evictions.Add(1)
	}
	t.slots[victim] = pendingQuery{client: c, server: s, at: now, nameHash: nh, clientPort: cp, id: id, qtype: qtype, state: slotWaiting}
}

// answer reports whether an answer from server to client matches a waiting
// query; it counts the reason when it does not. A match is consumed: a second
// answer to the same query is not trusted.
func (t *queryTable) answer(client netip.AddrPort, server netip.Addr, id, qtype uint16, name []byte, at time.Time) bool {
	c, s := client.Addr().Unmap().As16(), server.Unmap().As16()
	cp := client.Port()
	now := at.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.index(&c, &s, cp, id)
	for k := uint64(0); k < probeLimit; k++ {
		e := &t.slots[(i+k)&t.mask]
		if e.state == slotEmpty || e.client != c || e.server != s || e.clientPort != cp || e.id != id {
			continue
		}
		switch {
		case e.state == slotAnswered:
			t.unmatched[unmatchedDuplicate].Add(1)
		case e.qtype != qtype || e.nameHash != t.hashName(name):
			t.unmatched[unmatchedQuestion].Add(1)
		case now < e.at || now-e.at > int64(t.window):
			t.unmatched[unmatchedLate].Add(1)
		default:
			e.state = slotAnswered
			return true
		}
		return false
	}
	t.unmatched[unmatchedNoQuery].Add(1)
	return false
}
