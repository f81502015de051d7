package daemon

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Without --web.enable-lifecycle, /-/reload is refused (as Prometheus does)
// and nothing is reloaded; SIGHUP stays the way.
func TestReloadEndpointNeedsLifecycleFlag(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeFile(t, dir, "zoomprobe.yml", "capture:\n  interfaces: [lo]\nprobes:\n  enabled: false\n")
	d, err := New(Options{ConfigFile: cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodGet} {
		req, _ := http.NewRequest(method, srv.URL+"/-/reload", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "--web.enable-lifecycle") {
			t.Errorf("%s /-/reload = %d %q, want 403 naming --web.enable-lifecycle", method, resp.StatusCode, body)
		}
	}
}

// The server Run serves has every limit set.
func TestHTTPServerDefaults(t *testing.T) {
	d, err := New(Options{ConfigFile: writeFile(t, t.TempDir(), "zoomprobe.yml", "capture:\n  interfaces: [lo]\n")})
	if err != nil {
		t.Fatal(err)
	}
	s := d.HTTPServer()
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.IdleTimeout != DefaultIdleTimeout || s.WriteTimeout != DefaultWriteTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("server limits: header %v idle %v write %v max header %d", s.ReadHeaderTimeout, s.IdleTimeout, s.WriteTimeout, s.MaxHeaderBytes)
	}
	if s.WriteTimeout <= reloadTimeout {
		t.Errorf("write timeout %v does not leave room for a reload answer (%v)", s.WriteTimeout, reloadTimeout)
	}
}

// A client that sends its headers a byte at a time, and one that keeps an
// idle keep-alive connection, are both disconnected by the server; headers
// over the limit are refused. Real TCP connections to the server Run uses.
func TestHTTPServerDropsSlowAndIdleClients(t *testing.T) {
	cfgPath := writeFile(t, t.TempDir(), "zoomprobe.yml", "capture:\n  interfaces: [lo]\n")
	d, err := New(Options{ConfigFile: cfgPath, HTTP: HTTPLimits{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	srv := d.HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closed := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(c); closed <- b }() // until the server hangs up
		c.Write([]byte("GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		// Keep the headers coming, slowly, until the server hangs up (a
		// deadline guards the loop; what is checked is the hang-up).
		guard := time.After(30 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case answer := <-closed:
				// Go's server may answer 4xx before it hangs up; never 200.
				if len(answer) > 0 && !strings.HasPrefix(string(answer), "HTTP/1.1 4") {
					t.Fatalf("the server answered an unfinished request: %q", answer)
				}
				return
			case <-tick.C:
				c.Write([]byte("a"))
			case <-guard:
				t.Fatal("the server kept a connection whose headers never end")
			}
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"))
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("first request: %d, close %v", resp.StatusCode, resp.Close)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // guard, not the check
		_, err = r.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept an idle keep-alive connection open")
		}
		if err == nil {
			t.Fatal("the server sent bytes on an idle connection")
		}
	})

	t.Run("huge headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/-/healthy", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
		}
	})
}
