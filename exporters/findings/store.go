// Package findings keeps what is broken now, in memory, for the daemon's
// findings page (/findings) and its JSON (/api/v1/findings).
//
// Findings are grouped by what a network admin acts on: kind, reason,
// service, server (name, address, port, transport), product and Zoom Rooms
// code. A group counts its findings and its distinct clients (a small sketch
// of keyed hashes: addresses are never kept), and remembers the latest texts
// (what users see, the remediation, the site, the evidence file). A group no
// finding refreshed for Settings.ResolveAfter is resolved and dropped; the
// memory all groups take is bounded by Settings.MaxBytes, past which the
// group refreshed longest ago is dropped and counted.
//
// Every string comes from packets or from code that read packets: each is cut
// to a bound before it is kept, and the page escapes it.
package findings

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/zoomprobe/zoomprobe/finding"
)

// Settings bound the store (config section findings:).
type Settings struct {
	ResolveAfter time.Duration
	MaxBytes     int
}

// Bounds on the strings a group keeps. Names (SNI, DNS name) are at most 253
// bytes in DNS; what users see and the remediation are our own texts.
const (
	maxShort     = 64   // kind, reason, service, transport, confidence, source
	maxName      = 256  // server name, product, site, evidence file
	maxText      = 2048 // what users see, remediation
	maxSources   = 4    // distinct sources (analyzers, probes) named per group
	evidenceFile = "evidence_file"
)

// groupOverhead is what a group costs besides its strings: the group, its
// entry in the map (key and pointer, with the map's slack) and the string
// headers. TestAccountedBytesCoverHeap checks it against the heap.
const groupOverhead = int(unsafe.Sizeof(group{})) + 2*int(unsafe.Sizeof(key{})+unsafe.Sizeof(&group{})) + 64

// key is what a group is.
type key struct {
	kind      finding.Kind
	reason    finding.Reason
	service   string
	name      string // SNI, or the DNS name for DNS findings
	server    netip.Addr
	port      uint16
	transport string
	product   string
	roomsCode int
}

type group struct {
	key
	first, last           time.Time // finding times (packet time, or wall time for probes)
	received              time.Time // store clock at the latest finding: age-out runs on it
	count                 uint64
	clients               distinct
	sources               [maxSources]string
	nSources              int
	confidence            string
	userSees, remediation string
	site, evidence        string
	bytes                 int
	prev, next            *group // receipt order: head is the latest
}

// Store is the set of open groups. Safe for concurrent use; Emit makes it a
// finding.Sink.
type Store struct {
	mu     sync.Mutex
	now    func() time.Time
	set    Settings
	keys   [2]uint64 // keys of the client hash, secret so clients cannot steer the sketch
	groups map[key]*group
	head   *group
	tail   *group
	bytes  int

	evicted  uint64 // dropped for room (MaxBytes)
	resolved uint64 // aged out (ResolveAfter)
}

// New makes a store; now is its clock (nil: time.Now).
func New(s Settings, now func() time.Time) *Store {
	st := newStore(s, now)
	var b [16]byte
	rand.Read(b[:])
	st.keys = [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
	return st
}

func newStore(s Settings, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, set: s, groups: map[key]*group{}}
}

// Configure applies new settings (a reload): groups past the new bounds go.
func (s *Store) Configure(set Settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = set
	s.prune(s.now())
}

// Emit adds a finding to its group. A finding for an open group copies
// nothing unless a text changed.
func (s *Store) Emit(f finding.Finding) {
	k := keyOf(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.prune(now)
	g := s.groups[k]
	if g == nil {
		k = k.clone() // the key's strings may be cut from larger ones
		g = &group{key: k, first: f.Time, last: f.Time}
		s.groups[k] = g
	} else {
		s.unlink(g)
		s.bytes -= g.bytes
		g.first = minTime(g.first, f.Time)
		g.last = maxTime(g.last, f.Time)
	}
	g.received = now
	g.count++
	if f.Flow != nil && f.Flow.Client.IsValid() {
		g.clients.add(s.hashAddr(f.Flow.Client))
	}
	g.addSource(cut(f.Source, maxShort))
	// The latest texts win: a reload may have renamed the site, an analyzer
	// may have refined its advice.
	update(&g.confidence, f.Confidence, maxShort)
	update(&g.userSees, f.UserSees, maxText)
	update(&g.remediation, f.Remediation, maxText)
	update(&g.site, f.Site, maxName)
	if ev, ok := f.Evidence[evidenceFile].(string); ok {
		update(&g.evidence, ev, maxName)
	}
	g.bytes = g.cost()
	s.bytes += g.bytes
	s.pushFront(g)
	// Room for the newest: the groups refreshed longest ago go first. A group
	// alone above the bound is kept (MaxBytes is far above one group).
	for s.bytes > s.set.MaxBytes && s.tail != g {
		s.remove(s.tail)
		s.evicted++
	}
}

// prune drops the groups not refreshed within ResolveAfter.
func (s *Store) prune(now time.Time) {
	for s.tail != nil && now.Sub(s.tail.received) >= s.set.ResolveAfter {
		s.remove(s.tail)
		s.resolved++
	}
	for s.bytes > s.set.MaxBytes && s.tail != nil && s.tail != s.head {
		s.remove(s.tail)
		s.evicted++
	}
}

func (s *Store) remove(g *group) {
	s.unlink(g)
	delete(s.groups, g.key)
	s.bytes -= g.bytes
}

func (s *Store) pushFront(g *group) {
	g.prev, g.next = nil, s.head
	if s.head != nil {
		s.head.prev = g
	}
	s.head = g
	if s.tail == nil {
		s.tail = g
	}
}

func (s *Store) unlink(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	} else if s.head == g {
		s.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else if s.tail == g {
		s.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

// hashAddr is a keyed 64-bit hash of an address (splitmix64's finaliser
// over both halves): uniform for the sketch, and not predictable by a client
// that picks its addresses.
func (s *Store) hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	h := mix64(binary.BigEndian.Uint64(b[:8]) ^ s.keys[0])
	return mix64(h ^ binary.BigEndian.Uint64(b[8:]) ^ s.keys[1])
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// keyOf cuts the key's strings to their bounds without copying them: a
// lookup of an open group copies nothing.
func keyOf(f finding.Finding) key {
	k := key{
		kind:      finding.Kind(cut(string(f.Kind), maxShort)),
		reason:    finding.Reason(cut(string(f.Reason), maxShort)),
		service:   cut(f.Service, maxShort),
		name:      cut(serverName(f), maxName),
		product:   cut(f.Product, maxName),
		roomsCode: f.ZoomRoomsCode,
	}
	if f.Flow != nil {
		k.server, k.port, k.transport = f.Flow.Server.WithZone(""), f.Flow.ServerPort, cut(f.Flow.Transport, maxShort)
	}
	return k
}

// clone copies the key's strings, for a new group to keep.
func (k key) clone() key {
	k.kind = finding.Kind(strings.Clone(string(k.kind)))
	k.reason = finding.Reason(strings.Clone(string(k.reason)))
	k.service, k.name, k.product, k.transport = strings.Clone(k.service), strings.Clone(k.name), strings.Clone(k.product), strings.Clone(k.transport)
	return k
}

// serverName is the name the client asked for: the SNI, the DNS question
// of a DNS finding (its server is the resolver), else the name DNS gave the
// server's address (a SYN with no answer, UDP).
func serverName(f finding.Finding) string {
	if f.SNI != "" {
		return f.SNI
	}
	if n, ok := f.Evidence["name"].(string); ok && f.Kind == finding.KindDNSFiltered {
		return n
	}
	n, _ := f.Evidence["server_name"].(string)
	return n
}

func (g *group) addSource(src string) {
	if src == "" {
		return
	}
	for _, s := range g.sources[:g.nSources] {
		if s == src {
			return
		}
	}
	if g.nSources < maxSources {
		g.sources[g.nSources] = strings.Clone(src)
		g.nSources++
	}
}

func (g *group) cost() int {
	n := groupOverhead + len(g.kind) + len(g.reason) + len(g.service) + len(g.name) + len(g.transport) + len(g.product) +
		len(g.confidence) + len(g.userSees) + len(g.remediation) + len(g.site) + len(g.evidence)
	for _, s := range g.sources[:g.nSources] {
		n += len(s)
	}
	return n
}

// cut cuts s to at most n bytes, at a rune start.
func cut(s string, n int) string {
	if len(s) > n {
		for i := 0; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
			n--
		}
		s = s[:n]
	}
	return s
}

// update sets *field to s cut to n bytes, copying it only when it changed
// (a copy: the group never pins a larger buffer s was cut from); an empty s
// leaves the field as it was.
func update(field *string, s string, n int) {
	if s = cut(s, n); s != "" && s != *field {
		*field = strings.Clone(s)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Snapshot is what the page and the API show.
type Snapshot struct {
	Generated    time.Time `json:"generated"`
	Site         string    `json:"site,omitempty"`
	ResolveAfter Duration  `json:"resolve_after"`
	Summary      Summary   `json:"summary"`
	Groups       []Group   `json:"groups"`
	// Since start: groups dropped for room (findings.max_bytes) and
	// resolved (not seen for resolve_after).
	EvictedGroups  uint64 `json:"evicted_groups"`
	ResolvedGroups uint64 `json:"resolved_groups"`
}

// Summary counts the open groups by severity.
type Summary struct {
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
}

// Duration is a time.Duration written as Go writes it ("2h0m0s").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Group is one open problem.
type Group struct {
	Severity      Severity       `json:"severity"`
	Kind          finding.Kind   `json:"kind"`
	Reason        finding.Reason `json:"reason"`
	Service       string         `json:"service,omitempty"`
	Server        Server         `json:"server"`
	Product       string         `json:"product,omitempty"`
	ZoomRoomsCode int            `json:"zoom_rooms_code,omitempty"`
	Confidence    string         `json:"confidence,omitempty"`
	Sources       []string       `json:"sources"`
	FirstSeen     time.Time      `json:"first_seen"`
	LastSeen      time.Time      `json:"last_seen"`
	Count         uint64         `json:"count"`
	// DistinctClients is exact up to 32 clients, then an estimate (about
	// ±20 %) and DistinctClientsEstimated is set.
	DistinctClients          int    `json:"distinct_clients"`
	DistinctClientsEstimated bool   `json:"distinct_clients_estimated,omitempty"`
	UserSees                 string `json:"user_sees,omitempty"`
	Remediation              string `json:"remediation,omitempty"`
	Site                     string `json:"site,omitempty"`
	EvidenceFile             string `json:"evidence_file,omitempty"`
}

// Server is where the clients went: the name they asked for, and the
// address, port and transport when the finding has a flow.
type Server struct {
	Name      string `json:"name,omitempty"`
	Address   string `json:"address,omitempty"`
	Port      uint16 `json:"port,omitempty"`
	Transport string `json:"transport,omitempty"`
}

// Snapshot returns the open groups, worst first: by severity, then the most
// recently seen.
func (s *Store) Snapshot() Snapshot {
	s.mu.Lock()
	now := s.now()
	s.prune(now)
	out := Snapshot{Generated: now, ResolveAfter: Duration(s.set.ResolveAfter), Groups: make([]Group, 0, len(s.groups)),
		EvictedGroups: s.evicted, ResolvedGroups: s.resolved}
	for g := s.head; g != nil; g = g.next {
		out.Groups = append(out.Groups, g.export())
	}
	s.mu.Unlock()
	slices.SortStableFunc(out.Groups, func(a, b Group) int {
		if c := cmp.Compare(a.Severity.rank(), b.Severity.rank()); c != 0 {
			return c
		}
		return b.LastSeen.Compare(a.LastSeen)
	})
	for _, g := range out.Groups {
		switch g.Severity {
		case Critical:
			out.Summary.Critical++
		default:
			out.Summary.Warning++
		}
	}
	return out
}

func (g *group) export() Group {
	n, est := g.clients.count()
	e := Group{
		Severity: SeverityOf(g.kind, g.reason, g.transport), Kind: g.kind, Reason: g.reason, Service: g.service,
		Server:  Server{Name: g.name, Port: g.port, Transport: g.transport},
		Product: g.product, ZoomRoomsCode: g.roomsCode, Confidence: g.confidence,
		Sources:   append([]string{}, g.sources[:g.nSources]...),
		FirstSeen: g.first, LastSeen: g.last, Count: g.count,
		DistinctClients: n, DistinctClientsEstimated: est,
		UserSees: g.userSees, Remediation: g.remediation, Site: g.site, EvidenceFile: g.evidence,
	}
	if g.server.IsValid() {
		e.Server.Address = g.server.String()
	}
	return e
}

// Len is the number of open groups (without pruning).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.groups)
}
