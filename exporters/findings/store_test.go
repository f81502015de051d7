package findings

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/finding"
)

// clock is a test clock the store reads; tests move it, nothing sleeps.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testStore(s Settings) (*Store, *clock) {
	c := &clock{t: t0}
	st := newStore(s, c.now)
	st.keys = [2]uint64{0x0123456789abcdef, 0xfedcba9876543210} // deterministic sketch
	return st, c
}

func tlsFinding(client string, at time.Time) finding.Finding {
	return finding.Finding{
		Time: at, Site: "paris-hq", Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: "tls",
		Service: "zone_controller", SNI: "zoomfr85zc.zoom.us", ZoomRoomsCode: 6, Product: "FortiGate", Confidence: "high",
		Flow:     &finding.Flow{Transport: "tcp", Client: netip.MustParseAddr(client), ClientPort: 50000, Server: netip.MustParseAddr("170.114.10.85"), ServerPort: 443},
		UserSees: "Zoom shows a certificate error.", Remediation: "Exempt Zoom from SSL inspection.",
	}
}

func synFinding(client string, port uint16, at time.Time) finding.Finding {
	return finding.Finding{
		Time: at, Kind: finding.KindBlockedConnection, Reason: finding.ReasonTimeout, Source: "reach", Service: "zone_controller",
		Flow:     &finding.Flow{Transport: "tcp", Client: netip.MustParseAddr(client), ClientPort: 40000, Server: netip.MustParseAddr("170.114.10.85"), ServerPort: port},
		UserSees: "Zoom cannot connect.", Remediation: "Allow TCP to Zoom.",
	}
}

func getJSON(t *testing.T, h http.Handler) (any, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/findings", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("API: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("API answer is not JSON: %v\n%s", err, rec.Body.Bytes())
	}
	return v, rec.Body.Bytes()
}

// The API's JSON, whole: repeats of a problem are one group with its count,
// first and last seen and distinct clients; another port is another group;
// a DNS finding is grouped by its question; a probe's finding without a flow
// has no address. Worst first, then the most recently seen.
func TestAPIShapeAndGrouping(t *testing.T) {
	st, c := testStore(Settings{ResolveAfter: 2 * time.Hour, MaxBytes: 1 << 20})
	page := &Page{Store: st, Site: func() string { return "paris-hq" }}

	st.Emit(tlsFinding("10.20.30.40", t0.Add(-3*time.Minute)))
	c.advance(time.Minute)
	st.Emit(tlsFinding("10.20.30.41", t0.Add(-1*time.Minute)))
	st.Emit(tlsFinding("10.20.30.40", t0.Add(-2*time.Minute))) // out of order: last seen stays -1m
	c.advance(time.Minute)
	st.Emit(synFinding("10.20.30.40", 8801, t0.Add(time.Minute)))
	st.Emit(synFinding("10.20.30.40", 443, t0.Add(2*time.Minute)))
	st.Emit(finding.Finding{Time: t0.Add(90 * time.Second), Kind: finding.KindDNSFiltered, Reason: finding.ReasonDNSSinkhole, Source: "dnsfilter", Service: "web",
		Flow:     &finding.Flow{Transport: "udp", Client: netip.MustParseAddr("2001:db8:20:30::40"), ClientPort: 5353, Server: netip.MustParseAddr("2001:db8:20::53"), ServerPort: 53},
		Evidence: map[string]any{"name": "zoom.us", "answer": "0.0.0.0", "evidence_file": "dns-0001.pcapng"}})
	st.Emit(finding.Finding{Time: t0.Add(2 * time.Minute), Kind: finding.KindProbeFailure, Reason: finding.ReasonNTPUnreachable, Source: "probe_ntp", SNI: "pool.ntp.org"})

	got, raw := getJSON(t, page.JSON())
	const want = `{
  "generated": "2026-03-02T09:02:00Z",
  "site": "paris-hq",
  "resolve_after": "2h0m0s",
  "summary": {"critical": 4, "warning": 1},
  "groups": [
    {"severity": "critical", "kind": "blocked_connection", "reason": "generic_timeout_error", "service": "zone_controller",
     "server": {"address": "170.114.10.85", "port": 443, "transport": "tcp"}, "sources": ["reach"],
     "first_seen": "2026-03-02T09:02:00Z", "last_seen": "2026-03-02T09:02:00Z", "count": 1, "distinct_clients": 1,
     "user_sees": "Zoom cannot connect.", "remediation": "Allow TCP to Zoom."},
    {"severity": "critical", "kind": "dns_filtered", "reason": "dns_sinkhole", "service": "web",
     "server": {"name": "zoom.us", "address": "2001:db8:20::53", "port": 53, "transport": "udp"}, "sources": ["dnsfilter"],
     "first_seen": "2026-03-02T09:01:30Z", "last_seen": "2026-03-02T09:01:30Z", "count": 1, "distinct_clients": 1,
     "evidence_file": "dns-0001.pcapng"},
    {"severity": "critical", "kind": "blocked_connection", "reason": "generic_timeout_error", "service": "zone_controller",
     "server": {"address": "170.114.10.85", "port": 8801, "transport": "tcp"}, "sources": ["reach"],
     "first_seen": "2026-03-02T09:01:00Z", "last_seen": "2026-03-02T09:01:00Z", "count": 1, "distinct_clients": 1,
     "user_sees": "Zoom cannot connect.", "remediation": "Allow TCP to Zoom."},
    {"severity": "critical", "kind": "tls_interception", "reason": "ssl_unknown_authority", "service": "zone_controller",
     "server": {"name": "zoomfr85zc.zoom.us", "address": "170.114.10.85", "port": 443, "transport": "tcp"},
     "product": "FortiGate", "zoom_rooms_code": 6, "confidence": "high", "sources": ["tls"],
     "first_seen": "2026-03-02T08:57:00Z", "last_seen": "2026-03-02T08:59:00Z", "count": 3, "distinct_clients": 2,
     "user_sees": "Zoom shows a certificate error.", "remediation": "Exempt Zoom from SSL inspection.", "site": "paris-hq"},
    {"severity": "warning", "kind": "probe_failure", "reason": "ntp_unreachable",
     "server": {"name": "pool.ntp.org"}, "sources": ["probe_ntp"],
     "first_seen": "2026-03-02T09:02:00Z", "last_seen": "2026-03-02T09:02:00Z", "count": 1, "distinct_clients": 0}
  ],
  "evicted_groups": 0,
  "resolved_groups": 0
}`
	var wantV any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantV) {
		t.Errorf("API answer:\n%s\nwant:\n%s", raw, want)
	}
}

// Groups no finding refreshed for resolve_after leave; a refreshed one
// stays, and its first seen is kept. Time moves only through the clock.
func TestAgeOut(t *testing.T) {
	st, c := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
	page := &Page{Store: st}
	st.Emit(tlsFinding("10.20.30.40", t0))
	st.Emit(synFinding("10.20.30.40", 443, t0))
	c.advance(40 * time.Minute)
	st.Emit(synFinding("10.20.30.41", 443, t0.Add(40*time.Minute))) // refreshes the SYN group
	c.advance(20*time.Minute - time.Nanosecond)
	if snap := st.Snapshot(); len(snap.Groups) != 2 {
		t.Fatalf("just before resolve_after: %d groups, want 2", len(snap.Groups))
	}
	c.advance(time.Nanosecond)
	snap := st.Snapshot()
	if len(snap.Groups) != 1 || snap.Groups[0].Kind != finding.KindBlockedConnection || snap.ResolvedGroups != 1 {
		t.Fatalf("at resolve_after: %+v", snap)
	}
	if g := snap.Groups[0]; !g.FirstSeen.Equal(t0) || g.Count != 2 || g.DistinctClients != 2 {
		t.Errorf("refreshed group: first %v count %d clients %d", g.FirstSeen, g.Count, g.DistinctClients)
	}
	c.advance(40 * time.Minute)
	v, _ := getJSON(t, page.JSON())
	m := v.(map[string]any)
	if gs := m["groups"].([]any); len(gs) != 0 || m["resolved_groups"].(float64) != 2 {
		t.Errorf("after an hour of silence: %v", m)
	}
	// A finding after resolution opens a new group: first seen starts again.
	st.Emit(tlsFinding("10.20.30.40", t0.Add(3*time.Hour)))
	if g := st.Snapshot().Groups[0]; !g.FirstSeen.Equal(t0.Add(3*time.Hour)) || g.Count != 1 {
		t.Errorf("reopened group: first %v count %d", g.FirstSeen, g.Count)
	}
	// A reload that shortens resolve_after applies at once.
	c.advance(10 * time.Minute)
	st.Configure(Settings{ResolveAfter: 5 * time.Minute, MaxBytes: 1 << 20})
	if n := st.Len(); n != 0 {
		t.Errorf("after a reload to 5m: %d groups", n)
	}
}

// Past max_bytes the group refreshed longest ago goes, counted, and the
// accounted bytes never pass the bound.
func TestMaxBytesDropsOldest(t *testing.T) {
	probe, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 30})
	probe.Emit(synFinding("10.0.0.1", 1, t0))
	per := probe.bytes
	st, c := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 10 * per})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(st)
	for port := uint16(1); port <= 10; port++ {
		st.Emit(synFinding("10.0.0.1", port, t0))
		c.advance(time.Second)
	}
	st.Emit(synFinding("10.0.0.2", 1, t0)) // port 1 refreshed: port 2 is now the oldest
	for port := uint16(11); port <= 14; port++ {
		st.Emit(synFinding("10.0.0.1", port, t0))
		if st.bytes > st.set.MaxBytes {
			t.Fatalf("%d bytes accounted, bound %d", st.bytes, st.set.MaxBytes)
		}
	}
	ports := map[uint16]bool{}
	for _, g := range st.Snapshot().Groups {
		ports[g.Server.Port] = true
	}
	for _, p := range []uint16{1, 6, 10, 11, 14} {
		if !ports[p] {
			t.Errorf("port %d dropped; kept %v", p, ports)
		}
	}
	for _, p := range []uint16{2, 3, 4, 5} {
		if ports[p] {
			t.Errorf("port %d kept though refreshed longest ago; kept %v", p, ports)
		}
	}
	if snap := st.Snapshot(); snap.EvictedGroups != 4 || len(snap.Groups) != 10 {
		t.Errorf("evicted %d, kept %d; want 4 and 10", snap.EvictedGroups, len(snap.Groups))
	}
	want := `
# HELP zoomprobe_findings_open_groups Problems on the findings page now (groups of findings not yet resolved), by severity.
# TYPE zoomprobe_findings_open_groups gauge
zoomprobe_findings_open_groups{severity="critical"} 10
zoomprobe_findings_open_groups{severity="warning"} 0
# HELP zoomprobe_findings_open_groups_evicted_total Open groups dropped from the findings page to stay within findings.max_bytes.
# TYPE zoomprobe_findings_open_groups_evicted_total counter
zoomprobe_findings_open_groups_evicted_total 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// The bytes a group is accounted for cover what it takes on the heap, so
// findings.max_bytes bounds real memory.
func TestAccountedBytesCoverHeap(t *testing.T) {
	const n = 20000
	st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 30})
	fs := make([]finding.Finding, n)
	for i := range fs {
		f := tlsFinding("10.20.30.40", t0)
		f.SNI = fmt.Sprintf("host%06d.zoom.us", i) // a group each
		f.Source = "tls"
		fs[i] = f
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, f := range fs {
		st.Emit(f)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d groups: %d bytes on the heap (%d a group), %d accounted (%d a group)", n, heap, heap/n, st.bytes, st.bytes/n)
	if heap > int64(st.bytes) {
		t.Errorf("groups take %d bytes on the heap, only %d accounted", heap, st.bytes)
	}
	runtime.KeepAlive(fs)
}

// The sketch counts exactly up to its size, then estimates within its
// error; a client seen twice counts once.
func TestDistinctClients(t *testing.T) {
	for _, n := range []int{1, 2, 31, 100, 1000, 50000} {
		st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			f := synFinding("10.0.0.1", 443, t0)
			f.Flow.Client = a
			st.Emit(f)
			st.Emit(f)
		}
		g := st.Snapshot().Groups[0]
		if n < sketchSize {
			if g.DistinctClients != n || g.DistinctClientsEstimated {
				t.Errorf("%d clients: counted %d (estimated %v), want exact", n, g.DistinctClients, g.DistinctClientsEstimated)
			}
			continue
		}
		if !g.DistinctClientsEstimated || g.DistinctClients < n*6/10 || g.DistinctClients > n*14/10 {
			t.Errorf("%d clients: estimated %d (flag %v), want within 40%%", n, g.DistinctClients, g.DistinctClientsEstimated)
		}
	}
}

// Hostile strings are cut to their bound on a rune boundary and copied;
// the page shows control characters as escapes and HTML as text.
func TestHostileStrings(t *testing.T) {
	st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
	f := tlsFinding("10.20.30.40", t0)
	f.SNI = "<script>alert(1)</script>\x1b[2J\u202e.zoom.us" + strings.Repeat("é", 400)
	f.Product = "Forti<b>Gate</b>\x00\xff"
	f.Evidence = map[string]any{"evidence_file": `x"><script>1</script>.pcapng`}
	st.Emit(f)
	g := st.Snapshot().Groups[0]
	if len(g.Server.Name) > maxName || !strings.HasPrefix(g.Server.Name, "<script>") || !strings.HasSuffix(g.Server.Name, "é") {
		t.Errorf("name cut to %d bytes, ends %q", len(g.Server.Name), g.Server.Name[len(g.Server.Name)-4:])
	}

	page := &Page{Store: st}
	rec := httptest.NewRecorder()
	page.HTML().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/findings", nil))
	body := rec.Body.String()
	for _, bad := range []string{"<script", "<b>", "\x1b", "\u202e", "\x00", "\xff"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q raw", bad)
		}
	}
	for _, want := range []string{`&lt;script&gt;alert(1)&lt;/script&gt;\x1b[2J\u202e.zoom.us`, `Forti&lt;b&gt;Gate&lt;/b&gt;\x00\xff`, `x&#34;&gt;&lt;script&gt;1&lt;/script&gt;.pcapng`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"zoom.us":         "zoom.us",
		"a\x1b[31mb":      `a\x1b[31mb`,
		"\u202egnp.exe":   `\u202egnp.exe`,
		"bad\xffutf8":     `bad\xffutf8`,
		"tab\tnl\n":       `tab\x09nl\x0a`,
		"é and 日本":        "é and 日本",
		"\u0085 c1":       `\x85 c1`,
		"line\u2028sep":   `line\u2028sep`,
		"\xef\xbf\xbd ok": `\ufffd ok`,
	} {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, c := range []struct {
		kind      finding.Kind
		reason    finding.Reason
		transport string
		want      Severity
	}{
		{finding.KindTLSInterception, finding.ReasonUnknownAuthority, "tcp", Critical},
		{finding.KindBlockedConnection, finding.ReasonTimeout, "tcp", Critical},
		{finding.KindBlockedConnection, finding.ReasonUDPNoAnswer, "udp", Warning},
		{finding.KindBlockedConnection, finding.ReasonICMPAdminProhibited, "udp", Warning},
		{finding.KindClockSkew, finding.ReasonClockSkewWarning, "", Warning},
		{finding.KindClockSkew, finding.ReasonClockSkewCritical, "", Critical},
		{finding.KindUDPFallback, finding.ReasonUDPFallback, "tcp", Warning},
		{finding.KindDNSFiltered, finding.ReasonDNSNXDomain, "udp", Critical},
		{"made_up", "x", "", Warning},
	} {
		if got := SeverityOf(c.kind, c.reason, c.transport); got != c.want {
			t.Errorf("%s/%s/%s = %s, want %s", c.kind, c.reason, c.transport, got, c.want)
		}
	}
}

// Only GET and HEAD.
func TestReadOnly(t *testing.T) {
	st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
	page := &Page{Store: st}
	for _, h := range []http.Handler{page.HTML(), page.JSON()} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST = %d", rec.Code)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		b, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || len(b) == 0 {
			t.Errorf("GET = %d, %d bytes", rec.Code, len(b))
		}
	}
}

// A finding for an open group (the common case: a problem that goes on).
func BenchmarkEmitRepeat(b *testing.B) {
	st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
	f := tlsFinding("10.20.30.40", t0)
	b.ReportAllocs()
	for b.Loop() {
		st.Emit(f)
	}
}

// A blocked flow known only by its server's DNS name (no ClientHello: a SYN
// with no answer, UDP) shows that name on the page: the finding keeps it in
// its evidence, not in sni, which is only what the client sent.
func TestServerNameFromDNSShown(t *testing.T) {
	st, _ := testStore(Settings{ResolveAfter: time.Hour, MaxBytes: 1 << 20})
	f := synFinding("10.20.30.40", 443, t0)
	f.Evidence = map[string]any{"server_name": "zoomfr85zc.zoom.us", "server_name_source": "dns"}
	st.Emit(f)
	snap := st.Snapshot()
	if len(snap.Groups) != 1 || snap.Groups[0].Server.Name != "zoomfr85zc.zoom.us" {
		t.Fatalf("groups %+v", snap.Groups)
	}
}
