package testbed

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Step is one thing the Zoom-like client does.
type Step string

const (
	StepDNS      Step = "dns"       // A (or AAAA) lookups of the three names via the plan's resolver
	StepHTTP     Step = "http"      // GET http://zoom.us/ on port 80
	StepWeb      Step = "web_tls"   // TLS to zoom.us:443 (SNI zoom.us) and GET /
	StepZoneCtrl Step = "zc_tls"    // TLS to the zone controller on 443
	StepSTUN     Step = "stun"      // Zoom STUN binding to the media router on UDP 3478
	StepMediaUDP Step = "media_udp" // UDP 8801 session set-up and media echo
	StepMediaTCP Step = "media_tcp" // TLS to the media router on TCP 8801 and echo
	StepMediaTLS Step = "media_tls" // TLS to the media router on 443
)

// ClientPlan is what the client does. The zero value is the full Zoom-like
// client: DNS, HTTP, web TLS, zone controller TLS, STUN, and media over UDP
// 8801 with fallback to TCP 8801 and then TLS 443.
type ClientPlan struct {
	Resolver                            netip.AddrPort // default DNSAddr:53
	WebName, ZoneCtrlName, MediaRtrName string         // defaults WebName, ZoneCtrlName, MediaRouterName
	SkipHTTP, SkipWeb, SkipZoneCtrl     bool
	SkipSTUN, SkipMedia                 bool
	IPv6                                bool                // look up AAAA and connect over IPv6
	Media                               []Step              // media fallback order; default UDP, TCP 8801, TLS 443
	Proxy                               netip.AddrPort      // explicit HTTP proxy (CONNECT) for web, zc and media_tls
	ExtraRoots                          []*x509.Certificate // trusted besides the Zoom root (a managed device trusting its inspection CA)
	UDPTries                            int                 // media set-up and STUN attempts; default 3
	UDPWait                             time.Duration       // wait per UDP attempt; default 250ms
	DialTimeout                         time.Duration       // TCP connect + TLS handshake; default 1500ms
	MediaPackets                        int                 // media packets sent after set-up; default 4
	MediaTCPPort                        uint16              // the media router's TCP port of StepMediaTCP; default 8801 (8802 is Zoom's other)
}

func (p ClientPlan) withDefaults() ClientPlan {
	if !p.Resolver.IsValid() {
		p.Resolver = netip.AddrPortFrom(DNSAddr, 53)
	}
	if p.WebName == "" {
		p.WebName = WebName
	}
	if p.ZoneCtrlName == "" {
		p.ZoneCtrlName = ZoneCtrlName
	}
	if p.MediaRtrName == "" {
		p.MediaRtrName = MediaRouterName
	}
	if len(p.Media) == 0 {
		p.Media = []Step{StepMediaUDP, StepMediaTCP, StepMediaTLS}
	}
	if p.UDPTries <= 0 {
		p.UDPTries = 3
	}
	if p.UDPWait <= 0 {
		p.UDPWait = 250 * time.Millisecond
	}
	if p.DialTimeout <= 0 {
		p.DialTimeout = 1500 * time.Millisecond
	}
	if p.MediaTCPPort == 0 {
		p.MediaTCPPort = 8801
	}
	if p.MediaPackets <= 0 {
		p.MediaPackets = 4
	}
	return p
}

// StepResult is how one step ended: Reason is finding.ReasonOK on success,
// else the failure in the project's closed vocabulary.
type StepResult struct {
	Reason finding.Reason
	Err    string // the underlying error, for logs
	Detail string // issuer, HTTP status, mapped address...
}

// ClientResult says what worked.
type ClientResult struct {
	Steps        map[Step]StepResult
	Addrs        map[string]netip.Addr // what DNS answered, per name
	Media        Step                  // the media step that worked, "" if none
	WebIssuer    string                // issuer CN of the web leaf the client saw
	ZCIssuer     string
	HTTPStatus   int
	HTTPLocation string
	STUNMapped   netip.AddrPort
}

// Reasons returns the reason of every step attempted.
func (r ClientResult) Reasons() map[Step]finding.Reason {
	m := make(map[Step]finding.Reason, len(r.Steps))
	for s, sr := range r.Steps {
		m[s] = sr.Reason
	}
	return m
}

func (r ClientResult) String() string {
	var sb strings.Builder
	for _, s := range []Step{StepDNS, StepHTTP, StepWeb, StepZoneCtrl, StepSTUN, StepMediaUDP, StepMediaTCP, StepMediaTLS} {
		if sr, ok := r.Steps[s]; ok {
			fmt.Fprintf(&sb, "%s=%s", s, sr.Reason)
			if sr.Detail != "" {
				fmt.Fprintf(&sb, "(%s)", sr.Detail)
			}
			if sr.Err != "" && sr.Reason != finding.ReasonOK {
				fmt.Fprintf(&sb, "[%s]", sr.Err)
			}
			sb.WriteString(" ")
		}
	}
	fmt.Fprintf(&sb, "media=%q", r.Media)
	return sb.String()
}

// RunClient runs the Zoom-like client in the client namespace. Network
// failures are results, not errors; the error is for a client that could
// not run at all.
func (b *Bed) RunClient(plan ClientPlan) (ClientResult, error) {
	plan = plan.withDefaults()
	roots := b.ZoomCA.Pool()
	for _, c := range plan.ExtraRoots {
		roots.AddCert(c)
	}
	c := &client{plan: plan, roots: roots, res: ClientResult{Steps: map[Step]StepResult{}, Addrs: map[string]netip.Addr{}}}
	err := b.Do(NSClient, func() error { c.run(); return nil })
	return c.res, err
}

type client struct {
	plan  ClientPlan
	roots *x509.CertPool
	res   ClientResult
}

func (c *client) set(s Step, err error, detail string) bool {
	r := StepResult{Reason: finding.ReasonOK, Detail: detail}
	if err != nil {
		r.Reason = classify(err)
		r.Err = err.Error()
	}
	c.res.Steps[s] = r
	return err == nil
}

func (c *client) run() {
	p := c.plan
	var dnsErr error
	for _, name := range []string{p.WebName, p.ZoneCtrlName, p.MediaRtrName} {
		a, err := c.lookup(name)
		if err != nil {
			dnsErr = fmt.Errorf("lookup %s: %w", name, err)
			break
		}
		c.res.Addrs[name] = a
	}
	c.set(StepDNS, dnsErr, "")
	if dnsErr != nil {
		return // a Zoom client without addresses gets no further
	}
	web, zc, mmr := c.res.Addrs[p.WebName], c.res.Addrs[p.ZoneCtrlName], c.res.Addrs[p.MediaRtrName]
	if !p.SkipHTTP {
		status, loc, err := c.httpGet(web, p.WebName)
		c.res.HTTPStatus, c.res.HTTPLocation = status, loc
		if err == nil && status/100 == 3 && !zoom.IsZoomName(hostOf(loc)) {
			err = &portalError{loc}
		} else if err == nil && status != 200 {
			err = fmt.Errorf("http status %d", status)
		}
		c.set(StepHTTP, err, fmt.Sprint(status))
	}
	if !p.SkipWeb {
		issuer, err := c.tlsSession(web, 443, p.WebName, true, httpExchange(p.WebName))
		c.res.WebIssuer = issuer
		c.set(StepWeb, err, issuer)
	}
	if !p.SkipZoneCtrl {
		issuer, err := c.tlsSession(zc, 443, p.ZoneCtrlName, true, httpExchange(p.ZoneCtrlName))
		c.res.ZCIssuer = issuer
		c.set(StepZoneCtrl, err, issuer)
	}
	if !p.SkipSTUN {
		mapped, err := c.stun(mmr)
		c.res.STUNMapped = mapped
		d := ""
		if mapped.IsValid() {
			d = mapped.String()
		}
		c.set(StepSTUN, err, d)
	}
	if p.SkipMedia {
		return
	}
	for _, m := range p.Media {
		var err error
		var issuer string
		switch m {
		case StepMediaUDP:
			err = c.mediaUDP(mmr)
		case StepMediaTCP:
			issuer, err = c.tlsSession(mmr, p.MediaTCPPort, p.MediaRtrName, false, echoExchange)
		case StepMediaTLS:
			issuer, err = c.tlsSession(mmr, 443, p.MediaRtrName, true, httpExchange(p.MediaRtrName))
		default:
			err = fmt.Errorf("testbed: unknown media step %q", m)
		}
		if c.set(m, err, issuer) {
			c.res.Media = m
			return
		}
	}
}

func (c *client) lookup(name string) (netip.Addr, error) {
	qtype := dnsmessage.TypeA
	if c.plan.IPv6 {
		qtype = dnsmessage.TypeAAAA
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := uint16(idb[0])<<8 | uint16(idb[1])
	q, err := dnsmessage.NewName(name + ".")
	if err != nil {
		return netip.Addr{}, err
	}
	bld := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	_ = bld.StartQuestions()
	_ = bld.Question(dnsmessage.Question{Name: q, Type: qtype, Class: dnsmessage.ClassINET})
	msg, err := bld.Finish()
	if err != nil {
		return netip.Addr{}, err
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.plan.Resolver))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	buf := make([]byte, maxDatagram)
	var lastErr error = os.ErrDeadlineExceeded
	for try := 0; try < c.plan.UDPTries; try++ {
		if _, err := conn.Write(msg); err != nil {
			lastErr = err
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * c.plan.UDPWait))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				lastErr = err
				break
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil || h.ID != id || !h.Response {
				continue
			}
			if h.RCode == dnsmessage.RCodeNameError {
				return netip.Addr{}, errNXDomain
			}
			if h.RCode != dnsmessage.RCodeSuccess {
				return netip.Addr{}, fmt.Errorf("dns rcode %v", h.RCode)
			}
			_ = p.SkipAllQuestions()
			for {
				rh, err := p.AnswerHeader()
				if err != nil {
					return netip.Addr{}, errNoAnswer
				}
				switch rh.Type {
				case dnsmessage.TypeA:
					r, err := p.AResource()
					if err == nil && qtype == dnsmessage.TypeA {
						return checkAnswer(netip.AddrFrom4(r.A))
					}
				case dnsmessage.TypeAAAA:
					r, err := p.AAAAResource()
					if err == nil && qtype == dnsmessage.TypeAAAA {
						return checkAnswer(netip.AddrFrom16(r.AAAA))
					}
				default:
					_ = p.SkipAnswer()
				}
			}
		}
	}
	return netip.Addr{}, lastErr
}

var (
	errNXDomain = errors.New("dns: NXDOMAIN")
	errNoAnswer = errors.New("dns: no address in answer")
	errSinkhole = errors.New("dns: answer is a sinkhole (unspecified address)")
	errLoopback = errors.New("dns: answer is a loopback address")
)

// checkAnswer refuses what a real client would not usefully connect to.
func checkAnswer(a netip.Addr) (netip.Addr, error) {
	switch {
	case a.IsUnspecified():
		return a, errSinkhole
	case a.IsLoopback():
		return a, errLoopback
	}
	return a, nil
}

type portalError struct{ location string }

func (e *portalError) Error() string { return "redirected to " + e.location + " (captive portal)" }

// selfSignedError marks an unknown-authority failure on a lone
// self-signed leaf (x509's error names whichever certificate it could not
// chain, which for a leaf+CA chain is the CA).
type selfSignedError struct{ err error }

func (e *selfSignedError) Error() string { return "self-signed certificate: " + e.err.Error() }
func (e *selfSignedError) Unwrap() error { return e.err }

type proxyError struct{ status int }

func (e *proxyError) Error() string { return fmt.Sprintf("proxy answered CONNECT with %d", e.status) }

func hostOf(loc string) string {
	s := loc
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

func (c *client) dial(addr netip.Addr, port uint16) (net.Conn, error) {
	d := net.Dialer{Timeout: c.plan.DialTimeout}
	return d.Dial("tcp", netip.AddrPortFrom(addr, port).String())
}

func (c *client) httpGet(addr netip.Addr, host string) (int, string, error) {
	conn, err := c.dial(addr, 80)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * c.plan.DialTimeout))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0 (zoomprobe test bed) ZoomWebKit\r\nConnection: close\r\n\r\n", host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, 64<<10)), nil)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// tlsSession connects (through the proxy if the plan has one and viaProxy),
// handshakes with SNI name, and runs exchange over the session. It returns
// the issuer CN of the leaf the client was shown, even when it refused it.
func (c *client) tlsSession(addr netip.Addr, port uint16, name string, viaProxy bool, exchange func(io.ReadWriter) error) (string, error) {
	var conn net.Conn
	var err error
	deadline := time.Now().Add(2 * c.plan.DialTimeout)
	if viaProxy && c.plan.Proxy.IsValid() {
		conn, err = c.dial(c.plan.Proxy.Addr(), c.plan.Proxy.Port())
		if err != nil {
			return "", err
		}
		_ = conn.SetDeadline(deadline)
		if err := connect(conn, name, port); err != nil {
			conn.Close()
			return "", err
		}
	} else {
		conn, err = c.dial(addr, port)
		if err != nil {
			return "", err
		}
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	var issuer string
	var selfSigned bool
	tc := tls.Client(conn, &tls.Config{
		ServerName: name,
		RootCAs:    c.roots,
		NextProtos: []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				issuer = cs.PeerCertificates[0].Issuer.CommonName
			}
			return nil
		},
		// VerifyConnection runs after verification succeeded; to learn the
		// issuer of a refused leaf too, peek at the raw certificates first.
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 {
				if leaf, err := x509.ParseCertificate(raw[0]); err == nil {
					issuer = leaf.Issuer.CommonName
					selfSigned = len(raw) == 1 && leaf.CheckSignatureFrom(leaf) == nil
				}
			}
			return nil
		},
	})
	if err := tc.Handshake(); err != nil {
		var ua x509.UnknownAuthorityError
		if selfSigned && errors.As(err, &ua) {
			err = &selfSignedError{err}
		}
		return issuer, err
	}
	return issuer, exchange(tc)
}

// connect asks an HTTP proxy for a tunnel.
func connect(conn net.Conn, host string, port uint16) error {
	target := net.JoinHostPort(host, fmt.Sprint(port))
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Zoom.Notify\r\n\r\n", target, target); err != nil {
		return err
	}
	br := bufio.NewReader(io.LimitReader(conn, 16<<10))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return &proxyError{resp.StatusCode}
	}
	if br.Buffered() > 0 {
		return errors.New("proxy sent bytes after its 200")
	}
	return nil
}

func httpExchange(host string) func(io.ReadWriter) error {
	return func(rw io.ReadWriter) error {
		if _, err := fmt.Fprintf(rw, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(rw, 64<<10)), nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Read on to the server's close_notify and FIN: closing with unread
		// bytes would make the kernel send a RST, which is noise here.
		_, _ = io.Copy(io.Discard, io.LimitReader(rw, 64<<10))
		if resp.StatusCode != 200 {
			return fmt.Errorf("https status %d", resp.StatusCode)
		}
		return nil
	}
}

// echoExchange sends a media-like record over TCP and wants it back.
func echoExchange(rw io.ReadWriter) error {
	msg := mediaPacket(1)
	if _, err := rw.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(rw, got); err != nil {
		return err
	}
	return nil
}

// mediaPacket is a Zoom-like media packet to Zoom: outer type 0x05,
// sequence, connection id, direction 0x00, then an audio-like inner header.
func mediaPacket(seq uint16) []byte {
	p := make([]byte, 8+40)
	p[0] = 0x05
	p[1], p[2] = byte(seq>>8), byte(seq)
	copy(p[3:7], []byte{0xde, 0xad, 0xbe, 0xef})
	p[7] = 0x00
	p[8] = 0x0f // audio
	return p
}

func (c *client) stun(mmr netip.Addr) (netip.AddrPort, error) {
	conn, err := dialUDPRecvErr(netip.AddrPortFrom(mmr, 3478))
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer conn.Close()
	var id [16]byte
	_, _ = rand.Read(id[:])
	req := zoom.BuildZoomSTUNRequest(id)
	buf := make([]byte, maxDatagram)
	var lastErr error = os.ErrDeadlineExceeded
	for try := 0; try < c.plan.UDPTries; try++ {
		if _, err := conn.Write(req); err != nil {
			return netip.AddrPort{}, icmpDetail(conn, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(c.plan.UDPWait))
		n, err := conn.Read(buf)
		if err != nil {
			if isTimeout(err) {
				lastErr = err
				continue
			}
			return netip.AddrPort{}, icmpDetail(conn, err)
		}
		info, ok := zoom.ParseSTUN(buf[:n])
		if ok && info.Kind == zoom.STUNZoomResponse && info.TxID == id {
			return info.Mapped, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("stun: no answer: %w", lastErr)
}

func (c *client) mediaUDP(mmr netip.Addr) error {
	conn, err := dialUDPRecvErr(netip.AddrPortFrom(mmr, 8801))
	if err != nil {
		return err
	}
	defer conn.Close()
	setup := make([]byte, mediaSetupLen)
	setup[0], setup[1], setup[2] = 0x01, 0x00, 0x02
	_, _ = rand.Read(setup[3:])
	buf := make([]byte, maxDatagram)
	var lastErr error = os.ErrDeadlineExceeded
	ok := false
	for try := 0; try < c.plan.UDPTries && !ok; try++ {
		if _, err := conn.Write(setup); err != nil {
			return icmpDetail(conn, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(c.plan.UDPWait))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if !isTimeout(err) {
					return icmpDetail(conn, err)
				}
				lastErr = err
				break
			}
			if n >= mediaSetupLen && buf[0] == 0x02 && string(buf[3:mediaSetupLen]) == string(setup[3:]) {
				ok = true
				break
			}
		}
	}
	if !ok {
		return fmt.Errorf("udp 8801 set-up: no answer after %d tries: %w", c.plan.UDPTries, lastErr)
	}
	echoes := 0
	for i := 0; i < c.plan.MediaPackets; i++ {
		_, _ = conn.Write(mediaPacket(uint16(i + 1)))
	}
	_ = conn.SetReadDeadline(time.Now().Add(c.plan.UDPWait))
	for echoes < c.plan.MediaPackets {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		if n >= 8 && buf[0] == 0x05 && buf[7] == 0x04 {
			echoes++
		}
	}
	if echoes == 0 {
		return fmt.Errorf("udp 8801: set-up answered but no media echoed: %w", os.ErrDeadlineExceeded)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialUDPRecvErr opens a connected UDP socket with IP_RECVERR, so the ICMP
// error behind a failed read can be read back exactly (type and code),
// which errno alone does not tell (admin-prohibited and host-unreachable
// both read as EHOSTUNREACH).
func dialUDPRecvErr(to netip.AddrPort) (*net.UDPConn, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return nil, err
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		_ = raw.Control(func(fd uintptr) {
			if to.Addr().Is4() {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
			} else {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
			}
		})
	}
	return conn, nil
}

// icmpError is a UDP failure with the ICMP message behind it.
type icmpError struct {
	Type, Code uint8
	V6         bool
	From       netip.Addr
	err        error
}

func (e *icmpError) Error() string {
	return fmt.Sprintf("%v (ICMP type %d code %d from %s)", e.err, e.Type, e.Code, e.From)
}
func (e *icmpError) Unwrap() error { return e.err }

// icmpDetail reads the socket's error queue to attach the ICMP type/code.
func icmpDetail(conn *net.UDPConn, err error) error {
	raw, rerr := conn.SyscallConn()
	if rerr != nil {
		return err
	}
	var out error = err
	_ = raw.Control(func(fd uintptr) {
		buf := make([]byte, 512)
		oob := make([]byte, 512)
		_, oobn, _, _, e := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if e != nil {
			return
		}
		msgs, e := unix.ParseSocketControlMessage(oob[:oobn])
		if e != nil {
			return
		}
		for _, m := range msgs {
			isV4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
			isV6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
			if !isV4 && !isV6 || len(m.Data) < int(unsafe.Sizeof(unix.SockExtendedErr{})) {
				continue
			}
			ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
			ie := &icmpError{Type: ee.Type, Code: ee.Code, V6: isV6, err: err}
			off := int(unsafe.Sizeof(unix.SockExtendedErr{}))
			if isV4 && len(m.Data) >= off+8 {
				ie.From = netip.AddrFrom4([4]byte(m.Data[off+4 : off+8]))
			} else if isV6 && len(m.Data) >= off+24 {
				ie.From = netip.AddrFrom16([16]byte(m.Data[off+8 : off+24]))
			}
			if (isV4 && ee.Origin == unix.SO_EE_ORIGIN_ICMP) || (isV6 && ee.Origin == unix.SO_EE_ORIGIN_ICMP6) {
				out = ie
			}
		}
	})
	return out
}

// classify maps a client error to the project's closed reason vocabulary.
func classify(err error) finding.Reason {
	var ie *icmpError
	if errors.As(err, &ie) {
		if !ie.V6 && ie.Type == 3 || ie.V6 && ie.Type == 1 {
			v6 := ie.V6
			switch {
			case !v6 && (ie.Code == 13 || ie.Code == 9 || ie.Code == 10), v6 && ie.Code == 1:
				return finding.ReasonICMPAdminProhibited
			case !v6 && ie.Code == 3, v6 && ie.Code == 4:
				return finding.ReasonICMPPortUnreachable
			case !v6 && ie.Code == 1, v6 && ie.Code == 3:
				return finding.ReasonICMPHostUnreachable
			case !v6 && ie.Code == 0, v6 && ie.Code == 0:
				return finding.ReasonICMPNetUnreachable
			}
			return finding.ReasonICMPUnreachable
		}
	}
	var pe *proxyError
	if errors.As(err, &pe) {
		switch {
		case pe.status == 403:
			return finding.ReasonProxyDenied
		case pe.status == 407:
			return finding.ReasonProxyAuthRequired
		case pe.status >= 502 && pe.status <= 504:
			return finding.ReasonProxyBadGateway
		}
		return finding.ReasonUnknown
	}
	var po *portalError
	if errors.As(err, &po) {
		return finding.ReasonCaptivePortal
	}
	switch {
	case errors.Is(err, errNXDomain):
		return finding.ReasonDNSNXDomain
	case errors.Is(err, errSinkhole):
		return finding.ReasonDNSSinkhole
	case errors.Is(err, errLoopback):
		return finding.ReasonDNSLoopback
	}
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
		ve *tls.CertificateVerificationError
		ss *selfSignedError
	)
	switch {
	case errors.As(err, &ss):
		return finding.ReasonSelfSigned
	case errors.As(err, &ua):
		return finding.ReasonUnknownAuthority
	case errors.As(err, &he):
		return finding.ReasonInvalidHostname
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return finding.ReasonExpired
		case x509.IncompatibleUsage:
			return finding.ReasonInvalidPurpose
		}
		return finding.ReasonInvalidCertificate
	case errors.As(err, &ve):
		return finding.ReasonInvalidCertificate
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return finding.ReasonConnectionReset
	case errors.Is(err, syscall.ECONNREFUSED):
		return finding.ReasonConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH):
		return finding.ReasonHostUnreachable
	case errors.Is(err, syscall.ENETUNREACH):
		return finding.ReasonNetworkUnreachable
	case isTimeout(err), errors.Is(err, os.ErrDeadlineExceeded):
		return finding.ReasonTimeout
	}
	var ae tls.AlertError
	if errors.As(err, &ae) || strings.Contains(err.Error(), "tls:") {
		return finding.ReasonSSLFailedHandshake
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return finding.ReasonConnectionReset // closed under us mid-exchange
	}
	return finding.ReasonUnknown
}
