package zoom

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestDefaultRangesLookup(t *testing.T) {
	r := DefaultRanges()
	if r != DefaultRanges() {
		t.Fatal("DefaultRanges is not shared")
	}
	tests := []struct {
		addr string
		want Service
		ok   bool
	}{
		{"170.114.52.2", ServiceOther, true},        // 170.114.0.0/16 zoom
		{"170.114.45.77", ServiceCDN, true},         // 170.114.45.0/24 zoom-cdn inside the /16: longest prefix wins
		{"170.114.46.0", ServiceCDN, true},          // first address of the /24
		{"170.114.44.255", ServiceOther, true},      // just below it
		{"170.114.47.0", ServiceOther, true},        // just above it
		{"170.114.255.255", ServiceOther, true},     // last address of the /16
		{"170.115.0.0", ServiceNone, false},         // just past the /16
		{"170.113.255.255", ServiceNone, false},     // just before it
		{"8.5.128.10", ServicePhone, true},          // zoom-phone
		{"115.117.119.127", ServicePhone, true},     // last of a /27
		{"115.117.119.128", ServiceNone, false},     // first past it
		{"144.195.73.154", ServiceOther, true},      // media router in ndpi-zoom2.pcap
		{"134.224.90.111", ServiceOther, true},      // web-client server in ndpi-stun_zoom.pcapng
		{"52.84.151.1", ServiceCDN, true},           // CloudFront block of Zoom's CDN
		{"::ffff:170.114.10.1", ServiceOther, true}, // IPv4-mapped
		{"2620:123:2000::1", ServiceMedia, true},    // Meetings IPv6 (added as media over the CSV's "zoom")
		{"2620:123:20ff:ffff:ffff:ffff:ffff:ffff", ServiceMedia, true},
		{"2620:123:2100::", ServiceNone, false},
		{"2407:30c0:181:1::1", ServiceCDN, true}, // /47
		{"2407:30c0:182::", ServiceNone, false},
		{"8.8.8.8", ServiceNone, false},
		{"10.0.0.1", ServiceNone, false},
		{"2001:db8::1", ServiceNone, false},
		{"0.0.0.0", ServiceNone, false},
		{"255.255.255.255", ServiceNone, false},
		{"::", ServiceNone, false},
	}
	for _, tc := range tests {
		got, ok := r.Lookup(netip.MustParseAddr(tc.addr))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%s) = %v, %v; want %v, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
	if s, ok := r.Lookup(netip.Addr{}); ok || s != ServiceNone {
		t.Error("zero Addr matched")
	}
	var nilRanges *Ranges
	if _, ok := nilRanges.Lookup(netip.MustParseAddr("170.114.0.1")); ok {
		t.Error("nil Ranges matched")
	}
	// Every network of the embedded file must be found at its first and last address.
	for _, e := range r.Entries() {
		first, last := bounds(e.Prefix)
		for _, a := range []u128{first, last} {
			addr := addrFromU128(a, e.Prefix.Addr().Is4())
			if _, ok := r.Lookup(addr); !ok {
				t.Errorf("%s (from %s) not found", addr, e.Prefix)
			}
		}
	}
	if r.Len() < 50 {
		t.Errorf("embedded ranges hold %d networks, expected the ~58 of the snapshot", r.Len())
	}
}

func addrFromU128(a u128, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{byte(a.lo >> 24), byte(a.lo >> 16), byte(a.lo >> 8), byte(a.lo)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(a.hi >> (56 - 8*i))
		b[8+i] = byte(a.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

func TestNewRangesNesting(t *testing.T) {
	e := func(p string, s Service) RangeEntry { return RangeEntry{netip.MustParsePrefix(p), s} }
	r := NewRanges([]RangeEntry{
		e("10.0.0.0/8", ServiceOther),
		e("10.1.0.0/16", ServiceMedia),
		e("10.1.2.0/24", ServicePhone),
		e("10.1.2.128/25", ServiceCDN),
		e("10.1.2.128/25", ServiceOther),   // duplicate: the specific service stays
		e("10.2.0.0/16", ServiceOther),     // same service as the parent: merged
		e("10.255.255.255/32", ServiceWeb), // last address of the parent
		e("0.0.0.0/0", ServiceOther),       // everything, below all others
		e("192.168.0.1/32", ServiceNone),   // not a Zoom service: ignored
		e("::/0", ServiceOther),
		e("ffff::/16", ServiceWeb),
		e("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", ServicePhone),
		e("2001:db8::/32", ServiceCDN),
		e("2001:db8::/33", ServiceMedia),
	})
	tests := []struct {
		addr string
		want Service
	}{
		{"9.255.255.255", ServiceOther},
		{"10.0.0.0", ServiceOther},
		{"10.1.0.0", ServiceMedia},
		{"10.1.2.0", ServicePhone},
		{"10.1.2.127", ServicePhone},
		{"10.1.2.128", ServiceCDN},
		{"10.1.2.255", ServiceCDN},
		{"10.1.3.0", ServiceMedia},
		{"10.1.255.255", ServiceMedia},
		{"10.2.0.0", ServiceOther},
		{"10.255.255.254", ServiceOther},
		{"10.255.255.255", ServiceWeb},
		{"11.0.0.0", ServiceOther},
		{"255.255.255.255", ServiceOther},
		{"192.168.0.1", ServiceOther}, // from 0.0.0.0/0
		{"::", ServiceOther},
		{"fffe:ffff::", ServiceOther},
		{"ffff::", ServiceWeb},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", ServiceWeb},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ServicePhone},
		{"2001:db8::1", ServiceMedia},
		{"2001:db8:8000::", ServiceCDN},
		{"2001:db9::", ServiceOther},
	}
	for _, tc := range tests {
		if got, ok := r.Lookup(netip.MustParseAddr(tc.addr)); !ok || got != tc.want {
			t.Errorf("Lookup(%s) = %v, %v; want %v", tc.addr, got, ok, tc.want)
		}
	}
	if r.Len() != 12 {
		t.Errorf("Len = %d, want 12 (one duplicate, one non-Zoom entry dropped)", r.Len())
	}
}

// naive is the reference: longest matching prefix by linear scan.
func naive(es []RangeEntry, a netip.Addr) (Service, bool) {
	best := -1
	var svc Service
	for _, e := range es {
		if e.Prefix.Contains(a) && e.Prefix.Bits() > best {
			best, svc = e.Prefix.Bits(), e.Service
		}
	}
	return svc, best >= 0
}

func TestRangesMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []Service{ServiceOther, ServiceMedia, ServiceCDN, ServicePhone, ServiceWeb}
	for round := 0; round < 50; round++ {
		var es []RangeEntry
		seen := map[netip.Prefix]bool{}
		for i := 0; i < 40; i++ {
			var p netip.Prefix
			if rng.IntN(2) == 0 {
				// cluster in 10.0.0.0/12 so that networks nest
				a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(16)), byte(rng.IntN(256)), byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
			} else {
				var b [16]byte
				b[0], b[1], b[2] = 0x26, 0x20, byte(rng.IntN(4))
				b[3] = byte(rng.IntN(256))
				p = netip.PrefixFrom(netip.AddrFrom16(b), 16+rng.IntN(113)).Masked()
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			es = append(es, RangeEntry{p, services[rng.IntN(len(services))]})
		}
		r := NewRanges(es)
		for i := 0; i < 2000; i++ {
			var a netip.Addr
			switch rng.IntN(3) {
			case 0:
				a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(17)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			case 1: // a network's edge
				e := es[rng.IntN(len(es))]
				first, last := bounds(e.Prefix)
				x := first
				if rng.IntN(2) == 0 {
					x = last
				}
				if rng.IntN(2) == 0 {
					if x == last {
						x = x.addOne()
					} else {
						x = x.subOne()
					}
				}
				a = addrFromU128(x, e.Prefix.Addr().Is4())
			default:
				var b [16]byte
				b[0], b[1], b[2], b[3] = 0x26, 0x20, byte(rng.IntN(5)), byte(rng.IntN(256))
				b[4] = byte(rng.IntN(256))
				a = netip.AddrFrom16(b)
			}
			gs, gok := r.Lookup(a)
			ws, wok := naive(es, a)
			if gs != ws || gok != wok {
				t.Fatalf("round %d: Lookup(%s) = %v,%v; naive %v,%v", round, a, gs, gok, ws, wok)
			}
		}
	}
}

func TestParseRangesFormats(t *testing.T) {
	tests := []struct {
		name, file, data string
		want             map[string]Service // address → service
		miss             []string
		n                int
	}{
		{
			name: "Zoom plain list, no final newline", file: "ZoomMeetings.txt",
			data: "3.7.35.0/25\n3.235.82.0/23\n170.114.0.0/16", n: 3,
			want: map[string]Service{"3.7.35.1": ServiceMedia, "170.114.255.255": ServiceMedia},
			miss: []string{"3.7.35.128"},
		},
		{
			name: "CRLF and blank lines and comments", file: "/etc/zoomprobe/ZoomPhone.txt",
			data: "\xef\xbb\xbf# Zoom Phone\r\n8.5.128.0/24\r\n\r\n  115.117.119.96/27  \r\n", n: 2,
			want: map[string]Service{"8.5.128.9": ServicePhone, "115.117.119.100": ServicePhone},
		},
		{
			name: "IPv6 sibling", file: "ZoomCDN-IPv6.txt",
			data: "2407:30c0:180::/47\r\n2600:9000:2600::/48", n: 2,
			want: map[string]Service{"2600:9000:2600::5": ServiceCDN},
		},
		{
			name: "generic list name", file: "Zoom.txt", data: "170.114.0.0/16\n", n: 1,
			want: map[string]Service{"170.114.1.1": ServiceOther},
		},
		{
			name: "unknown file name, bare addresses", file: "extra.lst", data: "192.0.2.7\n2001:db8::7", n: 2,
			want: map[string]Service{"192.0.2.7": ServiceOther, "2001:db8::7": ServiceOther},
			miss: []string{"192.0.2.8"},
		},
		{
			name: "CSV snapshot", file: "zoom-ranges.csv",
			data: "ip_address,ip_type,service\r\n170.114.0.0/16,IPv4,zoom\r\n170.114.45.0/24,IPv4,zoom-cdn\r\n8.5.128.0/24,IPv4,zoom-phone\r\n2620:123:2000::/40,IPv6,zoom-meetings", n: 4,
			want: map[string]Service{"170.114.45.1": ServiceCDN, "170.114.44.1": ServiceOther, "8.5.128.1": ServicePhone, "2620:123:2000::9": ServiceMedia},
		},
		{
			name: "CSV with reordered quoted columns and our own labels", file: "custom.csv",
			data: "\"service\",\"ip_address\"\n\"media_router\",\"198.51.100.0/24\"\nzoom-newthing,203.0.113.0/24\n", n: 2,
			want: map[string]Service{"198.51.100.1": ServiceMediaRouter, "203.0.113.1": ServiceOther},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRanges(strings.NewReader(tc.data), tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != tc.n {
				t.Errorf("Len = %d, want %d", r.Len(), tc.n)
			}
			for a, want := range tc.want {
				if got, ok := r.Lookup(netip.MustParseAddr(a)); !ok || got != want {
					t.Errorf("Lookup(%s) = %v,%v; want %v", a, got, ok, want)
				}
			}
			for _, a := range tc.miss {
				if _, ok := r.Lookup(netip.MustParseAddr(a)); ok {
					t.Errorf("Lookup(%s) matched", a)
				}
			}
		})
	}
}

func TestParseRangesErrors(t *testing.T) {
	tests := []struct {
		file, data, want string
	}{
		{"Zoom.txt", "170.114.0.0/16\n170.114.0.0/33\n", `Zoom.txt:2: "170.114.0.0/33" is not a CIDR network`},
		{"Zoom.txt", "170.114.0.0/16\r\nzoom.us", `Zoom.txt:2: "zoom.us" is not a CIDR network`},
		{"Zoom.txt", "", "Zoom.txt: no networks found"},
		{"Zoom.txt", "# only a comment\n\n", "Zoom.txt: no networks found"},
		{"Zoom.txt", "fe80::1%eth0/64", `Zoom.txt:1: "fe80::1%eth0/64" is not a CIDR network`},
		{"r.csv", "ip_address,ip_type,service\n3.7.35.0/25,IPv6,zoom\n", `r.csv:2: ip_type "IPv6" does not match the address 3.7.35.0/25`},
		{"r.csv", "ip_address,ip_type,service\n3.7.35.0/25,IPv5,zoom\n", `r.csv:2: ip_type "IPv5" must be IPv4 or IPv6`},
		{"r.csv", "ip_address,ip_type,service\n3.7.35.0/25,IPv4,dropbox\n", `r.csv:2: unknown service "dropbox"`},
		{"r.csv", "ip_address,ip_type,service\n3.7.35.0/25\n", "r.csv:2: 1 columns"},
		{"r.csv", "ip_address,ip_type,service\n\n3.7.35.0/99,IPv4,zoom\n", `r.csv:3: ip_address "3.7.35.0/99"`},
		{"r.csv", "ip_address,ip_type\n", "r.csv:1: CSV header"},
		{"Zoom.txt", strings.Repeat("1", MaxRangeLineSize+10), "Zoom.txt:1: line longer than"},
	}
	for _, tc := range tests {
		_, err := ParseRanges(strings.NewReader(tc.data), tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRanges(%q, %q) error = %v, want it to contain %q", tc.file, tc.data, err, tc.want)
		}
	}
}

func TestServiceForList(t *testing.T) {
	tests := []struct {
		name string
		want Service
		ok   bool
	}{
		{"Zoom.txt", ServiceOther, true},
		{"Zoom-IPv6.txt", ServiceOther, true},
		{"ZoomMeetings.txt", ServiceMedia, true},
		{"/x/ZoomMeetings-IPv6.txt", ServiceMedia, true},
		{"ZoomCDN.txt", ServiceCDN, true},
		{"zoom-cdn", ServiceCDN, true},
		{"ZoomPhone-IPv6.txt", ServicePhone, true},
		{"zoom-phone", ServicePhone, true},
		{"ZoomCRC.txt", ServiceOther, true},
		{"ZoomCC.txt", ServiceOther, true},
		{"ZoomApps.txt", ServiceOther, true},
		{"zoom", ServiceOther, true},
		{"web", ServiceWeb, true},
		{"zone_controller", ServiceZoneController, true},
		{"watched", ServiceNone, false},
		{"none", ServiceNone, false},
		{"dropbox", ServiceNone, false},
		{"ranges.txt", ServiceNone, false},
	}
	for _, tc := range tests {
		if got, ok := ServiceForList(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("ServiceForList(%q) = %v,%v; want %v,%v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLoadRangesFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("Zoom.txt", "170.114.0.0/16\r\n8.5.128.0/24")
	write("ZoomPhone.txt", "8.5.128.0/24")
	write("ZoomMeetings-IPv6.txt", "2620:123:2000::/40")
	write("ZoomCDN.txt", "170.114.45.0/24")
	write("README", "not a list")
	r, err := LoadRangesFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]Service{
		"170.114.1.1":      ServiceOther,
		"170.114.45.1":     ServiceCDN,
		"8.5.128.1":        ServicePhone, // listed in Zoom.txt (other) and ZoomPhone.txt: the specific one wins
		"2620:123:2000::1": ServiceMedia,
	} {
		if got, ok := r.Lookup(netip.MustParseAddr(a)); !ok || got != want {
			t.Errorf("Lookup(%s) = %v,%v; want %v", a, got, ok, want)
		}
	}

	// The shipped copies and the embedded snapshot are the same file.
	emb, err := os.ReadFile("data/zoom-ranges.csv")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile("../configs/zoom-ranges.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(emb, cfg) {
		t.Error("configs/zoom-ranges.csv differs from zoom/data/zoom-ranges.csv: copy one over the other")
	}
	f, err := LoadRangesFile("../configs/zoom-ranges.csv")
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != DefaultRanges().Len() {
		t.Errorf("config copy has %d networks, default %d", f.Len(), DefaultRanges().Len())
	}

	bad := t.TempDir()
	p := filepath.Join(bad, "ZoomCDN.txt")
	os.WriteFile(p, []byte("1.2.3.0/24\nnope\n"), 0o644)
	if _, err := LoadRangesFile(bad); err == nil || !strings.Contains(err.Error(), p+":2:") {
		t.Errorf("bad dir error = %v, want it to name %s:2", err, p)
	}
	if _, err := LoadRangesFile(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .txt or .csv") {
		t.Errorf("empty dir error = %v", err)
	}
	if _, err := LoadRangesFile(filepath.Join(dir, "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file error = %v", err)
	}
}

func TestRangesLookupAllocs(t *testing.T) {
	r := DefaultRanges()
	addrs := []netip.Addr{netip.MustParseAddr("170.114.45.1"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2620:123:2000::1"), netip.MustParseAddr("::ffff:170.114.1.1")}
	if n := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			r.Lookup(a)
		}
	}); n != 0 {
		t.Errorf("Lookup allocates %.1f times", n)
	}
}

func benchLookup(b *testing.B, addr string, wantOK bool) {
	r := DefaultRanges()
	a := netip.MustParseAddr(addr)
	if _, ok := r.Lookup(a); ok != wantOK {
		b.Fatalf("Lookup(%s) ok = %v", addr, ok)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Lookup(a)
	}
}

func BenchmarkRangesLookupIPv4Hit(b *testing.B)  { benchLookup(b, "170.114.45.77", true) }
func BenchmarkRangesLookupIPv4Miss(b *testing.B) { benchLookup(b, "8.8.8.8", false) }
func BenchmarkRangesLookupIPv6Hit(b *testing.B)  { benchLookup(b, "2620:123:2000::1", true) }
func BenchmarkRangesLookupIPv6Miss(b *testing.B) { benchLookup(b, "2001:db8::1", false) }

func FuzzParseRanges(f *testing.F) {
	f.Add([]byte("ip_address,ip_type,service\n3.7.35.0/25,IPv4,zoom\n2620:123:2000::/40,IPv6,zoom\n"), "zoom-ranges.csv")
	f.Add([]byte("3.7.35.0/25\r\n170.114.0.0/16"), "ZoomMeetings.txt")
	f.Add([]byte("::/0\n0.0.0.0/0\n::ffff:1.2.3.4/128\n1.2.3.4"), "Zoom.txt")
	f.Add([]byte("\"service\",\"ip_address\"\nweb,10.0.0.0/8\n"), "x.csv")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		r, err := ParseRanges(bytes.NewReader(data), name)
		if err != nil {
			if r != nil {
				t.Fatal("ranges with an error")
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name the file %q", err, name)
			}
			return
		}
		es := r.Entries()
		if len(es) == 0 {
			t.Fatal("no error and no networks")
		}
		// every network is found at both ends with the naive answer
		for _, e := range es {
			first, last := bounds(e.Prefix)
			for _, x := range []u128{first, last} {
				a := addrFromU128(x, e.Prefix.Addr().Is4())
				gs, gok := r.Lookup(a)
				ws, wok := naive(es, a)
				if gs != ws || gok != wok || !gok {
					t.Fatalf("Lookup(%s) = %v,%v; naive %v,%v", a, gs, gok, ws, wok)
				}
			}
		}
	})
}

// The ranges file is read like every configured file: a FIFO or a device is
// refused with its name, never waited on.
func TestLoadRangesFileNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "Zoom.txt")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		if _, err := LoadRangesFile(p); err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v", p, err)
		}
	}
}
