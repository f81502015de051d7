package httpinspect

import (
	"os"
	"testing"

	"github.com/zoomprobe/zoomprobe/proto/http"
)

// FuzzParseSignatures feeds hostile YAML as a proxy-signatures file: no
// panic, and signatures it accepts can match answers and checks without
// panicking (patterns, header names and paths are all from the file).
func FuzzParseSignatures(f *testing.F) {
	f.Add(defaultSignatures)
	if b, err := os.ReadFile("../../configs/proxy-signatures.yml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"products:\n  - {name: X, kind: proxy, headers: {Server: squid}}\n",
		"products:\n  - {name: X, kind: captive_portal, body: [\"\"]}\nconnectivity_checks:\n  - {host: '', path: '', status: -1}\n",
		"products: [{name: X, kind: firewall, headers: {'': ''}, body: [x, x, x]}]\n",
		"bogus: 1\n",
	} {
		f.Add([]byte(s))
	}
	answer := []byte("HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nVia: 1.1 proxy (squid)\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Length: 10\r\n\r\n<html>FortiGuard</html>")
	var resp http.Response
	if err := http.ParseResponse(answer, &resp); err != nil {
		f.Fatal(err)
	}
	body := answer[resp.Len:]
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignatures(b, "fuzz.yml")
		if err != nil {
			return
		}
		s.Match(&resp, body)
		s.Match(&resp, nil)
		s.Check([]byte("connectivitycheck.gstatic.com"), []byte("/generate_204"))
		s.Check(nil, nil)
	})
}
