package zoom

import (
	"bufio"
	"bytes"
	"cmp"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/zoomprobe/zoomprobe/config"
)

// Bounds on a ranges file: Zoom's lists hold a few hundred networks, so these
// only stop a wrong or hostile file from exhausting memory.
const (
	MaxRangeEntries  = 1 << 20 // networks in one file or one merged set
	MaxRangeLineSize = 4096    // bytes in one line
)

// MeetingsIPv6 is Zoom Meetings' IPv6 block. Zoom's ZoomMeetings-IPv6.txt
// lists it; the embedded CSV snapshot may only carry it as generic "zoom", so
// DefaultRanges adds it as ServiceMedia.
var MeetingsIPv6 = netip.MustParsePrefix("2620:123:2000::/40")

// embeddedRanges is a snapshot of Zoom's published ranges (mid-2026, a CC0
// mirror of Zoom's lists) in the CSV form ip_address,ip_type,service. Refresh
// it as described in README.md.
//
//go:embed data/zoom-ranges.csv
var embeddedRanges []byte

// RangeEntry is one network of a ranges list and the service it implies.
type RangeEntry struct {
	Prefix  netip.Prefix
	Service Service
}

// Ranges answers "is this address one of Zoom's, and which service?" with a
// binary search over sorted, non-overlapping address intervals built from
// the networks so that the longest (most specific) prefix wins. It is
// immutable once built and safe for concurrent use; Lookup allocates nothing.
type Ranges struct {
	v4      []span4
	v6      []span6
	entries []RangeEntry // the networks it was built from, sorted
}

type span4 struct {
	lo, hi uint32
	svc    Service
}

type span6 struct {
	lo, hi u128
	svc    Service
}

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }
func (a u128) lessEq(b u128) bool {
	return a.hi < b.hi || a.hi == b.hi && a.lo <= b.lo
}
func (a u128) addOne() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}
func (a u128) subOne() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

func u128From16(b [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// bounds returns the first and last address of p as numbers in its family's
// space (IPv4 in the low 32 bits).
func bounds(p netip.Prefix) (first, last u128) {
	bits := p.Bits()
	if p.Addr().Is4() {
		v := binary.BigEndian.Uint32(p.Addr().AsSlice())
		host := uint32(0)
		if bits < 32 {
			host = math.MaxUint32 >> bits
		}
		return u128{0, uint64(v)}, u128{0, uint64(v | host)}
	}
	f := u128From16(p.Addr().As16())
	var hostHi, hostLo uint64
	switch {
	case bits == 0:
		hostHi, hostLo = math.MaxUint64, math.MaxUint64
	case bits < 64:
		hostHi, hostLo = math.MaxUint64>>bits, math.MaxUint64
	case bits < 128:
		hostLo = math.MaxUint64 >> (bits - 64)
	}
	return f, u128{f.hi | hostHi, f.lo | hostLo}
}

// NewRanges builds a lookup table from networks. Prefixes are masked; when
// the same network is listed twice, a specific service wins over
// ServiceOther, else the first listing wins. Entries whose service is not a
// Zoom service are ignored.
func NewRanges(entries []RangeEntry) *Ranges {
	es := make([]RangeEntry, 0, len(entries))
	for _, e := range entries {
		if !e.Prefix.IsValid() || !e.Service.IsZoom() {
			continue
		}
		p := e.Prefix.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		es = append(es, RangeEntry{Prefix: p, Service: e.Service})
	}
	// Sort by family, start address, then shorter (enclosing) prefix first;
	// stable so that "first listing wins" holds among duplicates.
	slices.SortStableFunc(es, func(a, b RangeEntry) int {
		if a4, b4 := a.Prefix.Addr().Is4(), b.Prefix.Addr().Is4(); a4 != b4 {
			if a4 {
				return -1
			}
			return 1
		}
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	// Deduplicate identical networks.
	out := es[:0]
	for _, e := range es {
		if n := len(out); n > 0 && out[n-1].Prefix == e.Prefix {
			if out[n-1].Service == ServiceOther && e.Service != ServiceOther {
				out[n-1].Service = e.Service
			}
			continue
		}
		out = append(out, e)
	}
	es = slices.Clip(out)

	r := &Ranges{entries: es}
	split := 0
	for split < len(es) && es[split].Prefix.Addr().Is4() {
		split++
	}
	for _, s := range flatten(es[:split], u128{0, math.MaxUint32}) {
		r.v4 = append(r.v4, span4{lo: uint32(s.lo.lo), hi: uint32(s.hi.lo), svc: s.svc})
	}
	r.v6 = flatten(es[split:], u128{math.MaxUint64, math.MaxUint64})
	return r
}

// flatten turns networks of one family, sorted by start and then by length
// (CIDR networks are either nested or disjoint), into sorted disjoint
// intervals where each address carries the service of its longest prefix.
func flatten(es []RangeEntry, maxAddr u128) []span6 {
	type open struct {
		end u128
		svc Service
	}
	var out []span6
	emit := func(lo, hi u128, svc Service) {
		if n := len(out); n > 0 && out[n-1].svc == svc && out[n-1].hi != maxAddr && out[n-1].hi.addOne() == lo {
			out[n-1].hi = hi
			return
		}
		out = append(out, span6{lo, hi, svc})
	}
	var stack []open
	var cur u128 // first address not yet emitted inside the innermost open network
	for _, e := range es {
		start, end := bounds(e.Prefix)
		for len(stack) > 0 && stack[len(stack)-1].end.less(start) {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if cur.lessEq(top.end) {
				emit(cur, top.end, top.svc)
			}
			cur = top.end.addOne() // top.end < start, so no overflow
		}
		if len(stack) > 0 && cur.less(start) {
			emit(cur, start.subOne(), stack[len(stack)-1].svc)
		}
		stack = append(stack, open{end, e.Service})
		cur = start
	}
	for i := len(stack) - 1; i >= 0; i-- {
		top := stack[i]
		if cur.lessEq(top.end) {
			emit(cur, top.end, top.svc)
		}
		if top.end == maxAddr {
			break // every enclosing network ends here too
		}
		cur = top.end.addOne()
	}
	return out
}

// Lookup returns the service of the most specific network holding addr.
// IPv4-mapped IPv6 addresses are looked up as IPv4.
func (r *Ranges) Lookup(addr netip.Addr) (Service, bool) {
	if r == nil {
		return ServiceNone, false
	}
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		b := addr.As4()
		x := binary.BigEndian.Uint32(b[:])
		s := r.v4
		lo, hi := 0, len(s)
		for lo < hi { // first span with lo > x
			m := int(uint(lo+hi) >> 1)
			if s[m].lo <= x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 && x <= s[lo-1].hi {
			return s[lo-1].svc, true
		}
		return ServiceNone, false
	}
	if !addr.Is6() {
		return ServiceNone, false
	}
	x := u128From16(addr.As16())
	s := r.v6
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].lo.lessEq(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 && x.lessEq(s[lo-1].hi) {
		return s[lo-1].svc, true
	}
	return ServiceNone, false
}

// Entries returns a copy of the networks the table was built from, sorted
// (IPv4 first), without duplicates.
func (r *Ranges) Entries() []RangeEntry {
	if r == nil {
		return nil
	}
	return slices.Clone(r.entries)
}

// Len is the number of distinct networks.
func (r *Ranges) Len() int {
	if r == nil {
		return 0
	}
	return len(r.entries)
}

// MergeRanges combines several tables (for example Zoom.txt, ZoomMeetings.txt
// and their IPv6 siblings) into one; the longest prefix still wins.
func MergeRanges(rs ...*Ranges) *Ranges {
	var all []RangeEntry
	for _, r := range rs {
		if r != nil {
			all = append(all, r.entries...)
		}
	}
	return NewRanges(all)
}

var defaultRanges = sync.OnceValue(func() *Ranges {
	r, err := ParseRanges(bytes.NewReader(embeddedRanges), "zoom/data/zoom-ranges.csv")
	if err != nil {
		panic("zoom: embedded ranges are invalid: " + err.Error())
	}
	return MergeRanges(r, NewRanges([]RangeEntry{{MeetingsIPv6, ServiceMedia}}))
})

// DefaultRanges is the embedded snapshot of Zoom's ranges plus MeetingsIPv6.
// The same *Ranges is returned on every call.
func DefaultRanges() *Ranges { return defaultRanges() }

// ServiceForList maps the name of one of Zoom's published lists, or a
// service value of the CSV snapshot, to a Service. Case, a file extension,
// an "-IPv6" suffix, dashes and underscores are ignored, so "ZoomPhone.txt",
// "ZoomPhone-IPv6.txt" and "zoom-phone" all give ServicePhone.
//
// The mapping, and why:
//   - Zoom, zoom: every Zoom network (web, meetings, API mixed) → ServiceOther;
//     names and ports refine it.
//   - ZoomMeetings: zone controllers and multimedia routers. An address alone
//     cannot tell which, so → ServiceMedia; the Classifier turns TCP to these
//     networks into ServiceMediaRouter and names (SNI, DNS) give zone
//     controllers.
//   - ZoomCDN, zoom-cdn → ServiceCDN; ZoomPhone, zoom-phone → ServicePhone.
//   - ZoomCRC (Cloud Room Connector), ZoomCC (Contact Center), ZoomApps →
//     ServiceOther: no finer class of ours fits them.
//   - Our own label values ("web", "media_router", ...) map to themselves.
//
// ok is false for anything else.
func ServiceForList(name string) (Service, bool) {
	n := strings.ToLower(filepath.Base(strings.TrimSpace(name)))
	if ext := filepath.Ext(n); ext == ".txt" || ext == ".csv" || ext == ".lst" {
		n = strings.TrimSuffix(n, ext)
	}
	if s, ok := ParseService(n); ok && s.IsZoom() {
		return s, true
	}
	n = strings.NewReplacer("-", "", "_", "", " ", "").Replace(n)
	n = strings.TrimSuffix(n, "ipv6")
	n = strings.TrimSuffix(n, "ipv4")
	switch n {
	case "zoom", "zoomall":
		return ServiceOther, true
	case "zoommeetings", "meetings":
		return ServiceMedia, true
	case "zoomcdn", "cdn":
		return ServiceCDN, true
	case "zoomphone", "phone":
		return ServicePhone, true
	case "zoomcrc", "zoomcc", "zoomapps", "zoomrooms":
		return ServiceOther, true
	}
	return ServiceNone, false
}

// ParseRanges reads a ranges list. name is the file name: it appears in
// errors ("name:line: ...") and, for a plain list, says the service
// (ServiceForList; unknown names give ServiceOther).
//
// Two formats are read:
//   - the CSV snapshot: a header line naming the columns ip_address and
//     service (ip_type optional, checked against the address when present);
//   - Zoom's published plain lists: one CIDR (or bare address) a line, no
//     header, often no newline after the last line, maybe CRLF.
//
// Blank lines, '#' comments and a UTF-8 byte-order mark are ignored in both.
func ParseRanges(r io.Reader, name string) (*Ranges, error) {
	listSvc, ok := ServiceForList(name)
	if !ok {
		listSvc = ServiceOther
	}
	br := bufio.NewReaderSize(r, 64*1024)
	var (
		entries                  []RangeEntry
		lineNo                   int
		csv                      bool
		colAddr, colType, colSvc = -1, -1, -1
		sawContent               bool
	)
	for {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return nil, fmt.Errorf("%s:%d: line longer than %d bytes: this is not a ranges list", name, lineNo+1, MaxRangeLineSize)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if line == nil && errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		text := strings.TrimSpace(string(line))
		if text == "" || text[0] == '#' {
			if errors.Is(err, io.EOF) {
				break
			}
			continue
		}
		if !sawContent {
			sawContent = true
			if isCSVHeader(text) {
				csv = true
				for i, col := range splitCSV(text) {
					switch strings.ToLower(col) {
					case "ip_address", "ip", "cidr", "prefix", "network":
						colAddr = i
					case "ip_type", "type", "family":
						colType = i
					case "service":
						colSvc = i
					}
				}
				if colAddr < 0 || colSvc < 0 {
					return nil, fmt.Errorf("%s:%d: CSV header %q lacks the ip_address and service columns (expected ip_address,ip_type,service)", name, lineNo, text)
				}
				continue
			}
		}
		if len(entries) >= MaxRangeEntries {
			return nil, fmt.Errorf("%s:%d: more than %d networks: split the file or check that it is a ranges list", name, lineNo, MaxRangeEntries)
		}
		var e RangeEntry
		if csv {
			cols := splitCSV(text)
			if len(cols) <= max(colAddr, colSvc, colType) {
				return nil, fmt.Errorf("%s:%d: %d columns, the header has more: expected ip_address,ip_type,service", name, lineNo, len(cols))
			}
			p, perr := parseNetwork(cols[colAddr])
			if perr != nil {
				return nil, fmt.Errorf("%s:%d: ip_address %q is not a CIDR network (like 170.114.0.0/16 or 2620:123:2000::/40): fix or delete the line", name, lineNo, cols[colAddr])
			}
			if colType >= 0 && cols[colType] != "" {
				switch t := strings.ToLower(cols[colType]); {
				case t == "ipv4" && !p.Addr().Is4(), t == "ipv6" && p.Addr().Is4():
					return nil, fmt.Errorf("%s:%d: ip_type %q does not match the address %s", name, lineNo, cols[colType], p)
				case t != "ipv4" && t != "ipv6":
					return nil, fmt.Errorf("%s:%d: ip_type %q must be IPv4 or IPv6", name, lineNo, cols[colType])
				}
			}
			svc, ok := ServiceForList(cols[colSvc])
			if !ok {
				if !strings.HasPrefix(strings.ToLower(cols[colSvc]), "zoom") {
					return nil, fmt.Errorf("%s:%d: unknown service %q (use zoom, zoom-meetings, zoom-cdn, zoom-phone, zoom-crc, zoom-cc, zoom-apps or one of web, zone_controller, media_router, media, cdn, phone, other)", name, lineNo, cols[colSvc])
				}
				svc = ServiceOther // a new Zoom list we do not know yet
			}
			e = RangeEntry{p, svc}
		} else {
			p, perr := parseNetwork(text)
			if perr != nil {
				return nil, fmt.Errorf("%s:%d: %q is not a CIDR network (like 170.114.0.0/16 or 2620:123:2000::/40): fix or delete the line", name, lineNo, text)
			}
			e = RangeEntry{p, listSvc}
		}
		entries = append(entries, e)
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: no networks found: expected one CIDR a line or the CSV ip_address,ip_type,service", name)
	}
	return NewRanges(entries), nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its line ending. The last line may
// lack a newline (Zoom's files end that way): it comes back with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxRangeLineSize {
		return nil, errLineTooLong
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(line) == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	line = bytes.TrimRight(line, "\r\n")
	if line == nil {
		line = []byte{}
	}
	return line, err
}

// isCSVHeader: a first line naming the ip_address or service column.
func isCSVHeader(line string) bool {
	for _, c := range splitCSV(line) {
		if c = strings.ToLower(c); c == "ip_address" || c == "service" {
			return true
		}
	}
	return false
}

func splitCSV(line string) []string {
	cols := strings.Split(line, ",")
	for i, c := range cols {
		cols[i] = strings.Trim(strings.TrimSpace(c), `"`)
	}
	return cols
}

// parseNetwork accepts a CIDR or a bare address (a /32 or /128).
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, errors.New("zone not allowed")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not an address")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// LoadRangesFile reads a ranges file, or every .txt and .csv file of a
// directory (for example Zoom.txt, ZoomMeetings.txt, ZoomPhone-IPv6.txt as
// Zoom publishes them, each giving its service by its name), merged into one
// table. Errors name the file and line.
func LoadRangesFile(path string) (*Ranges, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("zoom ranges: %w", err)
	}
	if !st.IsDir() {
		return loadOne(path)
	}
	des, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("zoom ranges: %w", err)
	}
	var parts []*Ranges
	for _, de := range des { // ReadDir sorts by name: a stable merge order
		ext := strings.ToLower(filepath.Ext(de.Name()))
		if de.IsDir() || (ext != ".txt" && ext != ".csv") {
			continue
		}
		r, err := loadOne(filepath.Join(path, de.Name()))
		if err != nil {
			return nil, err
		}
		parts = append(parts, r)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("zoom ranges: %s holds no .txt or .csv file: put Zoom's lists (Zoom.txt, ZoomMeetings.txt...) there", path)
	}
	m := MergeRanges(parts...)
	if m.Len() > MaxRangeEntries {
		return nil, fmt.Errorf("zoom ranges: %s: more than %d networks in all", path, MaxRangeEntries)
	}
	return m, nil
}

// loadOne reads one list through config.ReadFile: a FIFO or a device named as
// the ranges file would otherwise hang the daemon's start or reload.
func loadOne(path string) (*Ranges, error) {
	b, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("zoom ranges: %w", err)
	}
	return ParseRanges(bytes.NewReader(b), path)
}
