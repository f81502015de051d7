package httpinspect_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/analyzers/httpinspect"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

const (
	client = "192.168.10.20"
	proxy  = "192.168.10.3:3128"
	web    = "203.0.113.80:80"
)

func summary(fs []finding.Finding, keys ...string) []string {
	var out []string
	sort.Strings(keys)
	for _, f := range fs {
		s := fmt.Sprintf("%s/%s service=%q product=%q", f.Kind, f.Reason, f.Service, f.Product)
		for _, k := range keys {
			if v, ok := f.Evidence[k]; ok {
				s += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// exchange: one request, then the answer in the given pieces, then optionally a close.
func exchange(server, req string, resp []string, closeWith string) []decode.Packet {
	c := reachtest.NewTCP(client+":40001", server)
	ps := []decode.Packet{c.SYN(at(0)), c.SYNACK(at(1)), c.ACK(at(2), true)}
	ps = append(ps, c.Data(at(3), true, []byte(req)))
	for i, r := range resp {
		ps = append(ps, c.Data(at(10+i), false, []byte(r)))
	}
	switch closeWith {
	case "fin":
		ps = append(ps, c.FIN(at(50), false))
	case "rst":
		ps = append(ps, c.RST(at(50), false))
	}
	return ps
}

const connect = "CONNECT zoomfrn99mmr.zoom.us:443 HTTP/1.1\r\nHost: zoomfrn99mmr.zoom.us:443\r\nUser-Agent: Zoom\r\n\r\n"

const squid403 = "HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Length: 10\r\n\r\n<html>..</html>"

func TestVerdicts(t *testing.T) {
	fortiBody := "<html><head><title>Web Filter Violation</title></head><body>FortiGuard Intrusion Prevention - Access Blocked</body></html>"
	tests := []struct {
		name  string
		ps    []decode.Packet
		keys  []string
		want  []string
		count string // metric line expected
	}{
		{"CONNECT denied by Squid", exchange(proxy, connect, []string{squid403}, ""), []string{"http_status", "x_squid_error"},
			[]string{`proxy_denial/proxy_denied service="media_router" product="Squid" http_status=403 x_squid_error=ERR_ACCESS_DENIED 0`}, `proxy_denied`},
		{"CONNECT needs proxy authentication", exchange(proxy, connect, []string{"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n"}, ""), []string{"proxy_authenticate"},
			[]string{`proxy_denial/proxy_auth_required service="media_router" product="" proxy_authenticate=Basic realm="corp"`}, `proxy_auth_required`},
		{"CONNECT bad gateway", exchange(proxy, connect, []string{"HTTP/1.1 502 Bad Gateway\r\nVia: 1.1 bluecoat\r\n\r\n"}, "fin"), nil,
			[]string{`proxy_denial/proxy_bad_gateway service="media_router" product="Blue Coat ProxySG"`}, `proxy_bad_gateway`},
		{"CONNECT closed without answer", exchange(proxy, connect, nil, "rst"), []string{"host"},
			[]string{`proxy_denial/proxy_closed service="media_router" product="" host=zoomfrn99mmr.zoom.us`}, `proxy_closed`},
		{"CONNECT allowed", exchange(proxy, connect, []string{"HTTP/1.1 200 Connection established\r\n\r\n", "\x16\x03\x03\x00\x10rest-of-tls"}, "fin"), nil, nil, ""},
		{"CONNECT to a non-Zoom host denied: not ours", exchange(proxy, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", []string{squid403}, ""), nil, nil, ""},
		{"connectivity check redirected to a pfSense portal", exchange("198.51.100.4:80", "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
			[]string{"HTTP/1.1 302 Found\r\nLocation: http://192.168.10.1:8002/index.php?zone=guest&redirurl=x\r\nContent-Length: 0\r\n\r\n"}, ""), []string{"connectivity_check", "location"},
			[]string{`captive_portal/captive_portal_redirect service="" product="pfSense captive portal" connectivity_check=connectivitycheck.gstatic.com/generate_204 location=http://192.168.10.1:8002/index.php`}, `connectivity_check`},
		{"connectivity check answered normally", exchange("198.51.100.4:80", "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
			[]string{"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"}, ""), nil, nil, ""},
		{"connectivity check answered by a portal page", exchange("198.51.100.4:80", "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n<html></html>"}, ""), []string{"expected_status"},
			[]string{`captive_portal/captive_portal_redirect service="" product="" expected_status=204`}, `connectivity_check`},
		{"http://zoom.us to https: ordinary", exchange(web, "GET / HTTP/1.1\r\nHost: zoom.us\r\n\r\n", []string{"HTTP/1.1 301 Moved Permanently\r\nLocation: https://zoom.us/\r\n\r\n"}, ""), nil, nil, ""},
		{"http://zoom.us redirected to a portal host", exchange(web, "GET /signin HTTP/1.1\r\nHost: zoom.us\r\n\r\n", []string{"HTTP/1.1 302 Found\r\nLocation: https://wifi.hotel.example/login?orig=zoom.us\r\n\r\n"}, ""), []string{"location"},
			[]string{`captive_portal/captive_portal_redirect service="web" product="" location=https://wifi.hotel.example/login`}, `web`},
		{"portal status 511", exchange(web, "GET / HTTP/1.1\r\nHost: www.zoom.us\r\n\r\n", []string{"HTTP/1.1 511 Network Authentication Required\r\nContent-Length: 0\r\n\r\n"}, ""), nil,
			[]string{`captive_portal/captive_portal_redirect service="web" product=""`}, `web`},
		{"FortiGate block page in two segments", exchange(web, "GET / HTTP/1.1\r\nHost: zoom.us\r\n\r\n",
			[]string{fmt.Sprintf("HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(fortiBody), fortiBody[:40]), fortiBody[40:]}, ""), []string{"http_status"},
			[]string{`proxy_denial/block_page service="web" product="Fortinet FortiGate" http_status=403`}, `block_page`},
		{"request head split over two segments", func() []decode.Packet {
			c := reachtest.NewTCP(client+":40001", proxy)
			return []decode.Packet{c.SYN(at(0)), c.SYNACK(at(1)), c.ACK(at(2), true),
				c.Data(at(3), true, []byte(connect[:20])), c.Data(at(4), true, []byte(connect[20:])), c.Data(at(10), false, []byte(squid403))}
		}(), nil, []string{`proxy_denial/proxy_denied service="media_router" product="Squid"`}, `proxy_denied`},
		{"retransmitted request segment ignored", func() []decode.Packet {
			c := reachtest.NewTCP(client+":40001", proxy)
			ps := []decode.Packet{c.SYN(at(0)), c.SYNACK(at(1)), c.ACK(at(2), true)}
			first := c.Data(at(3), true, []byte(connect[:20]))
			return append(ps, first, first, c.Data(at(4), true, []byte(connect[20:])), c.Data(at(10), false, []byte(squid403)))
		}(), nil, []string{`proxy_denial/proxy_denied service="media_router" product="Squid"`}, `proxy_denied`},
		{"TLS flow: not HTTP", exchange("170.114.52.10:443", string(reachtest.ClientHello("zoom.us")), []string{squid403}, ""), nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &reachtest.Sink{}
			a := httpinspect.New(config.Default().Reach, 0, sink, nil)
			h := reachtest.NewHarness(a)
			h.Feed(tc.ps...)
			h.Flush()
			got := summary(sink.All(), tc.keys...)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("findings\n got %q\nwant %q", got, tc.want)
			}
			for _, f := range sink.All() {
				if f.UserSees == "" || f.Remediation == "" || f.Flow == nil || f.Evidence["proxy"] == nil {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			if tc.count != "" {
				var v float64
				cs := a.Collectors()
				if strings.HasPrefix(tc.count, "proxy_") || tc.count == "block_page" {
					v = testutil.ToFloat64(mustVec(t, cs[0], tc.count))
				} else {
					v = testutil.ToFloat64(mustVec(t, cs[1], tc.count))
				}
				if v != 1 {
					t.Fatalf("metric %s = %v, want 1", tc.count, v)
				}
			}
		})
	}
}

// A portal's Location carries the original URL, tokens, even a meeting's
// passcode: evidence keeps scheme, host and path only.
func TestLocationEvidenceDropsQuery(t *testing.T) {
	loc := "https://guest:s3cret@wifi.hotel.example:8443/login?token=abc123&orig=https%3A%2F%2Fzoom.us%2Fj%2F8123456789%3Fpwd%3DsecretPass#frag"
	sink := &reachtest.Sink{}
	a := httpinspect.New(config.Default().Reach, 0, sink, nil)
	h := reachtest.NewHarness(a)
	h.Feed(exchange(web, "GET /j/8123456789?pwd=secretPass HTTP/1.1\r\nHost: zoom.us\r\n\r\n", []string{"HTTP/1.1 302 Found\r\nLocation: " + loc + "\r\n\r\n"}, "")...)
	h.Flush()
	fs := sink.All()
	if len(fs) != 1 {
		t.Fatalf("%d findings", len(fs))
	}
	if got := fs[0].Evidence["location"]; got != "https://wifi.hotel.example:8443/login" {
		t.Errorf("location = %q", got)
	}
	b, err := json.Marshal(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pwd", "secretPass", "token", "abc123", "s3cret", "guest", "frag", "8123456789"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%q in the finding: %s", secret, b)
		}
	}
}

func mustVec(t *testing.T, c prometheus.Collector, label string) prometheus.Counter {
	t.Helper()
	v, ok := c.(*prometheus.CounterVec)
	if !ok {
		t.Fatalf("collector %T is not a CounterVec", c)
	}
	return v.WithLabelValues(label)
}

func TestEmbeddedSignaturesMatchConfigsFile(t *testing.T) {
	a, err := os.ReadFile("../../configs/proxy-signatures.yml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("signatures.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("analyzers/httpinspect/signatures.yml differs from configs/proxy-signatures.yml: copy the configs file over it")
	}
	s := httpinspect.DefaultSignatures()
	if len(s.Products) < 10 || len(s.ConnectivityChecks) < 8 {
		t.Fatalf("%d products, %d checks", len(s.Products), len(s.ConnectivityChecks))
	}
}

func TestBadSignatures(t *testing.T) {
	tests := []struct{ in, want string }{
		{"products:\n  - name: X\n    kind: router\n    body: [abcdef]\n", `f.yml: products[0].kind: "router" is not one of proxy, firewall, captive_portal`},
		{"products:\n  - name: X\n    kind: proxy\n", "f.yml: products[0]: give at least one headers or body pattern"},
		{"products:\n  - name: X\n    kind: proxy\n    body: [ab]\n", `f.yml: products[0].body[0]: "ab" is too short to match safely (4 characters at least)`},
		{"products:\n  - name: X\n    kind: proxy\n    headers: [{header: 'Bad Name', contains: x}]\n", `f.yml: products[0].headers[0].header: "Bad Name" is not a header name`},
		{"connectivity_checks:\n  - {host: a.example, path: nope}\n", `f.yml: connectivity_checks[0].path: "nope" must start with /`},
		{"productz: []\n", "f.yml: line 1: field productz not found in type httpinspect.Signatures"},
	}
	for _, tc := range tests {
		_, err := httpinspect.ParseSignatures([]byte(tc.in), "f.yml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("error %v\nwant %s", err, tc.want)
		}
	}
}

// BenchmarkNonHTTP is the per-packet cost on the flows httpinspect is not
// interested in (TLS): after the first segment, one type assertion.
func BenchmarkNonHTTP(b *testing.B) {
	a := httpinspect.New(config.Default().Reach, 0, &reachtest.Sink{}, nil)
	h := reachtest.NewHarness(a)
	c := reachtest.NewTCP(client+":40001", "170.114.52.10:443")
	h.Feed(c.SYN(at(0)), c.SYNACK(at(1)), c.ACK(at(2), true), c.Data(at(3), true, reachtest.ClientHello("zoom.us")))
	p := c.Data(at(5), false, make([]byte, 1400))
	f, d := h.Table.Find(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort)
	b.ReportAllocs()
	for b.Loop() {
		a.Packet(f, &p, d)
	}
}

// BenchmarkConnectAllowed is a whole proxied connection (CONNECT, 200, TLS
// after it) with state recycled: parsing allocates only the host string.
func BenchmarkConnectAllowed(b *testing.B) {
	a := httpinspect.New(config.Default().Reach, 0, &reachtest.Sink{}, nil)
	h := reachtest.NewHarness(a)
	ps := exchange(proxy, "CONNECT zoom.us:443 HTTP/1.1\r\nHost: zoom.us:443\r\n\r\n", []string{"HTTP/1.1 200 Connection established\r\n\r\n", "\x16\x03\x03\x00\x10"}, "fin")
	cur := make([]decode.Packet, len(ps))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		copy(cur, ps)
		for j := range cur {
			cur[j].Time = cur[j].Time.Add(time.Duration(i) * time.Minute)
		}
		h.Feed(cur...)
		h.FlushAt(cur[len(cur)-1].Time)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte("CONNECT zoom.us:443 HTTP/1.1\r\nHost: zoom.us\r\n\r\n"), []byte(squid403), uint8(7))
	f.Add([]byte("GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n"), []byte("HTTP/1.1 302 Found\r\nLocation: //x/\r\n\r\n"), uint8(0))
	f.Add([]byte("GET http://zoom.us HTTP/1.0\n\n"), []byte("HTTP/1.0 403 x\nVia: a\nContent-Length: 99999999999\n\nFortiGuard"), uint8(200))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint8) {
		cfg := config.Default().Reach
		cfg.HTTPMaxHeaderBytes = 512
		sink := &reachtest.Sink{}
		a := httpinspect.New(cfg, 0, sink, nil)
		h := reachtest.NewHarness(a)
		c := reachtest.NewTCP(client+":40001", proxy)
		k := min(int(split), len(resp))
		h.Feed(c.SYN(at(0)), c.SYNACK(at(1)), c.ACK(at(2), true), c.Data(at(3), true, req), c.Data(at(4), false, resp[:k]), c.Data(at(5), false, resp[k:]), c.FIN(at(6), false))
		h.Flush()
		if n := len(sink.All()); n > 1 {
			t.Fatalf("%d findings for one connection", n)
		}
	})
}

// The header buffers of the flows being read are bounded per worker by
// reachability.http_budget_bytes: a flow beyond it is not inspected (and
// counted); a judged flow gives its buffers back.
func TestHTTPBudget(t *testing.T) {
	cfg := config.Default().Reach
	cfg.HTTPMaxHeaderBytes = 512
	cfg.HTTPBudgetBytes = 2 * 2 * 512 // two flows
	sink := &reachtest.Sink{}
	a := httpinspect.New(cfg, 0, sink, nil)
	h := reachtest.NewHarness(a)
	open := func(port int, t0 int) *reachtest.Conn {
		c := reachtest.NewTCP(fmt.Sprintf("%s:%d", client, port), proxy)
		h.Feed(c.SYN(at(t0)), c.SYNACK(at(t0+1)), c.ACK(at(t0+2), true), c.Data(at(t0+3), true, []byte(connect)))
		return c
	}
	c1 := open(40001, 0)
	open(40002, 0)
	c3 := open(40003, 0)
	h.Feed(c3.Data(at(10), false, []byte(squid403)))
	if n := len(sink.All()); n != 0 {
		t.Fatalf("the third flow, over the budget, was inspected: %d findings", n)
	}
	if v := testutil.ToFloat64(a.Collectors()[2]); v != 1 {
		t.Fatalf("refused = %v, want 1", v)
	}
	h.Feed(c1.Data(at(11), false, []byte(squid403))) // judged: its buffers come back
	c4 := open(40004, 12)
	h.Feed(c4.Data(at(20), false, []byte(squid403)))
	if n := len(sink.All()); n != 2 {
		t.Fatalf("%d findings, want 2 (the first flow and the fourth, inspected once room came back)", n)
	}
}
