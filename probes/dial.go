package probes

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// ProxyError is a CONNECT the proxy did not grant. Reason is one of the
// proxy_* reasons; Status is the HTTP status (0 when the proxy closed).
type ProxyError struct {
	Reason finding.Reason
	Status int
	// Via names the proxy product when it says (Via or Server header).
	Via string
	Err error
}

func (e *ProxyError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("proxy answered CONNECT with %d (%s)", e.Status, e.Reason)
	}
	if e.Err != nil {
		return fmt.Sprintf("proxy CONNECT failed: %s (%v)", e.Reason, e.Err)
	}
	return "proxy CONNECT failed: " + string(e.Reason)
}

func (e *ProxyError) Unwrap() error { return e.Err }

// maxProxyResponseBytes bounds the CONNECT answer read from the proxy.
const maxProxyResponseBytes = 16 << 10

// dialResult tells how a connection was made, for evidence.
type dialResult struct {
	conn   net.Conn
	remote string // address connected to (the proxy's when proxied)
	proxy  string // proxy host:port, empty when direct
}

// useProxy reports whether host goes through the configured proxy (not in
// the bypass list, like a PAC file's DIRECT rule).
func useProxy(env *Env, host string) *url.URL {
	if env.Config == nil || env.Config.Proxy.Parsed == nil {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range env.Config.Proxy.Bypass {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if h == d || strings.HasSuffix(h, "."+d) {
			return nil
		}
	}
	return env.Config.Proxy.Parsed
}

// dialTCP connects to the target, resolving Host unless Address is given.
func dialTCP(ctx context.Context, t Target, env *Env) (net.Conn, string, error) {
	addrs, err := targetAddrs(ctx, t, env)
	if err != nil {
		return nil, "", err
	}
	d := env.dialer(ctx)
	var lastErr error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			return c, a, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, addrs[len(addrs)-1], lastErr
}

// targetAddrs are the ip:port strings to try, at most 4 (IPv4 and IPv6).
func targetAddrs(ctx context.Context, t Target, env *Env) ([]string, error) {
	if t.Address != "" {
		return []string{t.Address}, nil
	}
	port := strconv.Itoa(int(t.Port))
	if a, err := netip.ParseAddr(t.Host); err == nil {
		return []string{net.JoinHostPort(a.String(), port)}, nil
	}
	ips, err := lookup(ctx, env.resolver(), t.Host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: t.Host, IsNotFound: true}
	}
	var out []string
	for _, ip := range ips {
		if len(out) == 4 {
			break
		}
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	return out, nil
}

// dialVia connects to the target directly or through the proxy with CONNECT.
func dialVia(ctx context.Context, t Target, env *Env, proxy *url.URL) (dialResult, error) {
	if proxy == nil {
		c, remote, err := dialTCP(ctx, t, env)
		return dialResult{conn: c, remote: remote}, err
	}
	c, err := env.dialer(ctx).DialContext(ctx, "tcp", proxy.Host)
	res := dialResult{remote: proxy.Host, proxy: proxy.Host}
	if err != nil {
		return res, err
	}
	return connectOver(ctx, c, t, proxy, res)
}

// connectOver asks the proxy on c to CONNECT to the target; c is closed on failure.
func connectOver(ctx context.Context, c net.Conn, t Target, proxy *url.URL, res dialResult) (dialResult, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// CONNECT by name, as Zoom clients do: the proxy resolves it and may
	// judge it by name (a pinned target address is not used through a proxy).
	authority := net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zoomprobe\r\n", authority, authority)
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		fmt.Fprintf(&b, "Proxy-Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	b.WriteString("\r\n")
	if _, err := c.Write([]byte(b.String())); err != nil {
		c.Close()
		return res, &ProxyError{Reason: Classify(err), Err: err}
	}
	br := bufio.NewReaderSize(&limitedReader{r: c, n: maxProxyResponseBytes}, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		reason := finding.ReasonProxyClosed
		if r := Classify(err); r == finding.ReasonTimeout || r == finding.ReasonConnectionReset {
			reason = r
		}
		return res, &ProxyError{Reason: reason, Err: err}
	}
	resp.Body.Close()
	via := resp.Header.Get("Via")
	if via == "" {
		via = resp.Header.Get("Server")
	}
	if len(via) > 80 {
		via = via[:80]
	}
	if resp.StatusCode/100 != 2 {
		c.Close()
		return res, &ProxyError{Reason: proxyReason(resp.StatusCode), Status: resp.StatusCode, Via: via}
	}
	if br.Buffered() > 0 {
		c.Close()
		return res, &ProxyError{Reason: finding.ReasonProxyClosed, Err: fmt.Errorf("proxy sent %d bytes after its 2xx answer", br.Buffered())}
	}
	c.SetDeadline(time.Time{})
	res.conn = c
	return res, nil
}

func proxyReason(status int) finding.Reason {
	switch {
	case status == http.StatusProxyAuthRequired:
		return finding.ReasonProxyAuthRequired
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return finding.ReasonProxyBadGateway
	default:
		return finding.ReasonProxyDenied
	}
}

// limitedReader fails once n bytes were read: a proxy answer never needs more.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("proxy answer longer than %d bytes", maxProxyResponseBytes)
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}
