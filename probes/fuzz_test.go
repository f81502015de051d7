package probes

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// FuzzProxyAnswer feeds hostile bytes as a proxy's answer to CONNECT: the
// dial must never panic, and a failure must be one of the proxy reasons.
func FuzzProxyAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\nVia: 1.1 squid\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n",
		"HTTP/1.0 502 Bad Gateway\r\nServer: " + string(make([]byte, 200)) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nextra bytes",
		"SSH-2.0-OpenSSH\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	u, _ := url.Parse("http://proxy.test:3128")
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			buf := make([]byte, 512)
			server.Read(buf)
			server.SetWriteDeadline(time.Now().Add(time.Second))
			server.Write(answer)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := connectOver(ctx, client, Target{Host: "zoom.us", Port: 443}, u, dialResult{proxy: u.Host})
		if err == nil {
			res.conn.Close()
			return
		}
		switch r := Classify(err); r {
		case finding.ReasonProxyDenied, finding.ReasonProxyAuthRequired, finding.ReasonProxyBadGateway, finding.ReasonProxyClosed,
			finding.ReasonTimeout, finding.ReasonConnectionReset:
		default:
			t.Fatalf("answer %q: reason %s (%v)", answer, r, err)
		}
	})
}
