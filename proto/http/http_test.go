package http

import (
	"bytes"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		err     error
		method  string
		target  string
		host    string
		headers int
	}{
		{"connect", "CONNECT zoomfrn99mmr.zoom.us:443 HTTP/1.1\r\nHost: zoomfrn99mmr.zoom.us:443\r\nUser-Agent: Zoom\r\n\r\n", nil, "CONNECT", "zoomfrn99mmr.zoom.us:443", "zoomfrn99mmr.zoom.us:443", 2},
		{"get bare LF", "GET /generate_204 HTTP/1.1\nHost: connectivitycheck.gstatic.com\n\n", nil, "GET", "/generate_204", "connectivitycheck.gstatic.com", 1},
		{"absolute form", "GET http://zoom.us/signin HTTP/1.1\r\nHost: zoom.us\r\n\r\n", nil, "GET", "http://zoom.us/signin", "zoom.us", 1},
		{"incomplete line", "CONNECT zoom.us:4", ErrIncomplete, "", "", "", 0},
		{"incomplete head", "GET / HTTP/1.1\r\nHost: a\r\n", ErrIncomplete, "", "", "", 0},
		{"tls not http", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ErrMalformed, "", "", "", 0},
		{"no version", "GET /\r\n\r\n", ErrMalformed, "", "", "", 0},
		{"bad header", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", ErrMalformed, "", "", "", 0},
		{"folded header skipped", "GET / HTTP/1.1\r\nX-A: 1\r\n  2\r\nHost: h\r\n\r\n", nil, "GET", "/", "h", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tc.in), &r)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if string(r.Method) != tc.method || string(r.Target) != tc.target || string(r.Header("HOST")) != tc.host || r.NumHeaders != tc.headers {
				t.Fatalf("got %q %q host %q headers %d", r.Method, r.Target, r.Header("host"), r.NumHeaders)
			}
			if r.Len != len(tc.in) {
				t.Fatalf("Len = %d, want %d", r.Len, len(tc.in))
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		err    error
		status int
		reason string
		hdr    string // name=value to check
	}{
		{"squid 403", "HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Length: 3\r\n\r\nabc", nil, 403, "Forbidden", "x-squid-error=ERR_ACCESS_DENIED 0"},
		{"407", "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n", nil, 407, "Proxy Authentication Required", "Proxy-Authenticate=Basic realm=\"x\""},
		{"no reason", "HTTP/1.1 204\r\n\r\n", nil, 204, "", ""},
		{"redirect", "HTTP/1.1 302 Found\nLocation: http://10.0.0.1:8002/index.php?zone=guest\n\n", nil, 302, "Found", "location=http://10.0.0.1:8002/index.php?zone=guest"},
		{"bad code", "HTTP/1.1 2x4 OK\r\n\r\n", ErrMalformed, 0, "", ""},
		{"short", "HTTP/1.1 20", ErrIncomplete, 0, "", ""},
		{"not http", "SSH-2.0-OpenSSH\r\n", ErrMalformed, 0, "", ""},
		{"junk after code", "HTTP/1.1 200OK\r\n\r\n", ErrMalformed, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			err := ParseResponse([]byte(tc.in), &r)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if r.Status != tc.status || string(r.Reason) != tc.reason {
				t.Fatalf("got %d %q", r.Status, r.Reason)
			}
			if tc.hdr != "" {
				name, val, _ := bytes.Cut([]byte(tc.hdr), []byte("="))
				if got := r.Header(string(name)); string(got) != string(val) {
					t.Fatalf("header %s = %q, want %q", name, got, val)
				}
			}
		})
	}
}

func TestMaxHeaders(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; i < MaxHeaders+5; i++ {
		b.WriteString("X-A: b\r\n")
	}
	b.WriteString("\r\n")
	var r Response
	if err := ParseResponse(b.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.NumHeaders != MaxHeaders || r.Dropped != 5 {
		t.Fatalf("headers %d dropped %d", r.NumHeaders, r.Dropped)
	}
}

func TestHostOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"zoom.us:443", "zoom.us"},
		{"http://user:pw@Portal.example.com:8002/index.php?zone=a", "Portal.example.com"},
		{"https://zoom.us.", "zoom.us"},
		{"/relative/path", ""},
		{"[2001:db8::1]:8080", "2001:db8::1"},
		{"2001:db8::1", "2001:db8::1"},
		{"//cdn.example/x", "cdn.example"},
		{"host.example", "host.example"},
		{"", ""},
		{"[broken", ""},
	}
	for _, tc := range tests {
		if got := string(HostOf([]byte(tc.in))); got != tc.want {
			t.Errorf("HostOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPathOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/generate_204", "/generate_204"},
		{"http://captive.apple.com/hotspot-detect.html?x=1", "/hotspot-detect.html"},
		{"http://host", "/"},
		{"", "/"},
	}
	for _, tc := range tests {
		if got := string(PathOf([]byte(tc.in))); got != tc.want {
			t.Errorf("PathOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContainsFold(t *testing.T) {
	if !ContainsFold([]byte("Via: 1.1 SQUID-proxy"), "squid") || ContainsFold([]byte("squi"), "squid") || !ContainsFold(nil, "") {
		t.Fatal("ContainsFold wrong")
	}
}

func TestParseAllocs(t *testing.T) {
	req := []byte("CONNECT zoom.us:443 HTTP/1.1\r\nHost: zoom.us:443\r\nProxy-Connection: keep-alive\r\n\r\n")
	resp := []byte("HTTP/1.1 403 Forbidden\r\nServer: squid\r\nVia: 1.1 proxy (squid/5.7)\r\n\r\n")
	var r Request
	var s Response
	n := testing.AllocsPerRun(100, func() {
		_ = ParseRequest(req, &r)
		_ = ParseResponse(resp, &s)
		_ = HostOf(r.Target)
		_ = ContainsFold(s.Header("via"), "squid")
	})
	if n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}

func BenchmarkParseResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nMime-Version: 1.0\r\nDate: Mon, 01 Jun 2026 10:00:00 GMT\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: 3500\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nVia: 1.1 proxy (squid/5.7)\r\nConnection: keep-alive\r\n\r\n")
	var s Response
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(resp, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://portal.example/login?token=abc&orig=x#top":        "https://portal.example/login",
		"http://192.168.10.1:8002/index.php?zone=guest&redirurl=x": "http://192.168.10.1:8002/index.php",
		"https://zoom.us/j/8123456789?pwd=AbC123":                  "https://zoom.us/j/8123456789",
		"http://user:pass@proxy.example:3128/a@b?c":                "http://proxy.example:3128/a@b",
		"//user@cdn.example/x#y":                                   "//cdn.example/x",
		"http://[2001:db8::1]:8080/p?q":                            "http://[2001:db8::1]:8080/p",
		"/relative/path?session=1":                                 "/relative/path",
		"  https://h.example  ":                                    "https://h.example",
		"https://h.example?x":                                      "https://h.example",
		"mailto:a@b.example?subject=x":                             "mailto:a@b.example",
		"":                                                         "",
	} {
		if got := string(RedactURL([]byte(in))); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkRedacted: no query, fragment or user info survives.
func checkRedacted(t *testing.T, in []byte) {
	t.Helper()
	out := RedactURL(in)
	if bytes.ContainsAny(out, "?#") || len(out) > len(in) {
		t.Fatalf("RedactURL(%q) = %q", in, out)
	}
	i := bytes.Index(out, []byte("//"))
	if i < 0 || !(i == 0 || i >= 2 && i < 18 && out[i-1] == ':' && isScheme(out[:i-1])) {
		return // no authority
	}
	auth := out[i+2:]
	if j := bytes.IndexByte(auth, '/'); j >= 0 {
		auth = auth[:j]
	}
	if bytes.IndexByte(auth, '@') >= 0 {
		t.Fatalf("RedactURL(%q) = %q keeps user info", in, out)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("CONNECT zoom.us:443 HTTP/1.1\r\nHost: zoom.us:443\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: http://[::1]:8002/x\r\n\r\nbody"))
	f.Add([]byte("GET http://a@b:c@d/ HTTP/1.0\n X\n\n"))
	f.Add([]byte("HTTP/1.1 407\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if err := ParseRequest(b, &r); err == nil {
			if r.Len <= 0 || r.Len > len(b) || r.NumHeaders > MaxHeaders {
				t.Fatalf("bad request parse: len %d of %d", r.Len, len(b))
			}
			_ = HostOf(r.Target)
			_ = PathOf(r.Target)
		}
		var s Response
		if err := ParseResponse(b, &s); err == nil {
			if s.Status < 0 || s.Status > 999 || s.Len > len(b) {
				t.Fatalf("bad response parse: %d len %d", s.Status, s.Len)
			}
			_ = HostOf(s.Header("location"))
			checkRedacted(t, s.Header("location"))
		}
		h := HostOf(b)
		if len(h) > len(b) {
			t.Fatal("host longer than input")
		}
		checkRedacted(t, b)
		_ = ContainsFold(b, "squid")
	})
}
