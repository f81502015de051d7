package testbed

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/zoom"
)

// quietLog swallows net/http's per-connection errors: in these scenarios
// handshakes are reset and refused on purpose.
var quietLog = log.New(io.Discard, "", 0)

// Zoom names the servers answer for, as seen in real captures.
const (
	WebName         = "zoom.us"
	ZoneCtrlName    = "zoomfr85zc.zoom.us"
	MediaRouterName = "zoomfrn99mmr.zoom.us"
)

// ZoomNames maps every name the test DNS server answers to its IPv4 address
// (the IPv6 twin is the same host number in ServerNet6, see Addr6For).
var ZoomNames = map[string]netip.Addr{
	"zoom.us":                     WebAddr,
	"www.zoom.us":                 WebAddr,
	"log.zoom.us":                 WebAddr,
	"us04web.zoom.us":             WebAddr,
	"zoomfr85zc.zoom.us":          ZoneCtrlAddr,
	"zoomam104zc.zoom.us":         ZoneCtrlAddr,
	"zoomfrn99mmr.zoom.us":        MediaRouterAddr,
	"zoomsjccv154mmr.sjc.zoom.us": MediaRouterAddr,
}

// Addr6For returns the IPv6 twin of a server address.
func Addr6For(a netip.Addr) netip.Addr {
	switch a {
	case WebAddr:
		return WebAddr6
	case ZoneCtrlAddr:
		return ZoneCtrlAddr6
	case MediaRouterAddr:
		return MediaRouterAddr6
	case ServerAddr:
		return ServerAddr6
	}
	return netip.Addr{}
}

// Server ports.
var (
	TLSPorts      = []uint16{443, 8801, 8802}
	STUNPorts     = []uint16{3478, 3479}
	MediaUDPPorts = []uint16{8801, 8802, 8803, 8804, 8805, 8806, 8807, 8808, 8809, 8810}
)

// Bounds of the test servers (hostile input is not expected here, but a
// runaway test must not eat the machine).
const (
	serverIdleTimeout = 10 * time.Second
	maxDatagram       = 2048
	maxEchoBytes      = 1 << 20
)

// ServerStats counts what the servers handled, so scenarios can assert that
// a middlebox stopped traffic before it reached them.
type ServerStats struct {
	TLSHandshakes atomic.Int64 // completed, any TLS port
	HTTPRequests  atomic.Int64 // port 80 and HTTPS on 443
	STUNAnswers   atomic.Int64
	MediaSetups   atomic.Int64 // 01 00 02 <id> answered
	MediaEchoes   atomic.Int64 // 0x05 packets echoed
	DNSQueries    atomic.Int64
}

// Servers are the Zoom-like servers running in the server namespace.
type Servers struct {
	Leaf  *tls.Certificate // the Zoom leaf every TLS port presents
	Stats ServerStats
	track connTracker
}

type connTracker struct {
	mu     sync.Mutex
	closed bool
	items  map[io.Closer]struct{}
}

func (t *connTracker) add(c io.Closer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	if t.items == nil {
		t.items = map[io.Closer]struct{}{}
	}
	t.items[c] = struct{}{}
	return true
}

func (t *connTracker) remove(c io.Closer) {
	t.mu.Lock()
	delete(t.items, c)
	t.mu.Unlock()
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	items := t.items
	t.items = nil
	t.mu.Unlock()
	for c := range items {
		c.Close()
	}
}

func zoomLeafNames() []string {
	return []string{"zoom.us", "*.zoom.us", "*.sjc.zoom.us"}
}

func startServers(b *Bed) (*Servers, error) {
	s := &Servers{}
	var err error
	if s.Leaf, err = b.ZoomIssuing.Leaf(zoomLeafNames()...); err != nil {
		return nil, err
	}
	b.onClose(s.track.closeAll)
	maxVer := b.opts.ServerTLSMax
	if maxVer == 0 {
		maxVer = tls.VersionTLS12
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{*s.Leaf}, MaxVersion: maxVer, NextProtos: []string{"http/1.1"}}

	var lns []net.Listener
	var pcs []net.PacketConn
	err = b.Do(NSServer, func() error {
		for _, port := range append([]uint16{80, 53}, TLSPorts...) {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
			if err != nil {
				return fmt.Errorf("testbed: server listen tcp/%d: %w", port, err)
			}
			lns = append(lns, ln)
		}
		// UDP sockets are bound to the service address, so answers leave
		// from the address the client asked (a wildcard socket would answer
		// from the primary address and the client would refuse it).
		udp := []netip.AddrPort{netip.AddrPortFrom(DNSAddr, 53)}
		for _, a := range []netip.Addr{MediaRouterAddr, MediaRouterAddr6} {
			for _, port := range append(append([]uint16(nil), STUNPorts...), MediaUDPPorts...) {
				udp = append(udp, netip.AddrPortFrom(a, port))
			}
		}
		for _, ap := range udp {
			pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				return fmt.Errorf("testbed: server listen udp %s: %w", ap, err)
			}
			pcs = append(pcs, pc)
		}
		return nil
	})
	for _, ln := range lns {
		s.track.add(ln)
	}
	for _, pc := range pcs {
		s.track.add(pc)
	}
	if err != nil {
		return nil, err
	}
	web := http.NewServeMux()
	web.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.Stats.HTTPRequests.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "zoom test web: %s %s\n", r.Host, r.URL.Path)
	})
	for _, ln := range lns {
		port := ln.Addr().(*net.TCPAddr).Port
		switch port {
		case 80:
			s.serveHTTP(ln, web)
		case 53:
			go s.serveDNSTCP(ln)
		case 443:
			s.serveHTTP(&countingTLSListener{Listener: ln, conf: tlsConf, n: &s.Stats.TLSHandshakes}, web)
		default: // 8801, 8802: media over TLS, echoed
			go s.serveTLSEcho(ln, tlsConf)
		}
	}
	for _, pc := range pcs {
		port := pc.LocalAddr().(*net.UDPAddr).Port
		switch {
		case port == 53:
			go serveDNSUDP(pc, &s.Stats.DNSQueries, zoomResolver)
		case port == 3478 || port == 3479:
			go s.serveSTUN(pc)
		default:
			go s.serveMediaUDP(pc)
		}
	}
	return s, nil
}

func (s *Servers) serveHTTP(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadTimeout: serverIdleTimeout, WriteTimeout: serverIdleTimeout, ErrorLog: quietLog}
	srv.SetKeepAlivesEnabled(false)
	s.track.add(srv)
	go srv.Serve(ln)
}

// countingTLSListener wraps accepted conns in TLS and counts completed
// handshakes (http.Server would otherwise hide them).
type countingTLSListener struct {
	net.Listener
	conf *tls.Config
	n    *atomic.Int64
}

func (l *countingTLSListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	conf := l.conf.Clone()
	conf.VerifyConnection = func(tls.ConnectionState) error { l.n.Add(1); return nil }
	return tls.Server(c, conf), nil
}

// serveConns accepts until ln closes and runs handle on each connection,
// tracked (so Close ends it) and bounded by the idle deadline.
func (s *Servers) serveConns(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			if !s.track.add(c) {
				return
			}
			defer s.track.remove(c)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(serverIdleTimeout))
			handle(c)
		}()
	}
}

func (s *Servers) serveTLSEcho(ln net.Listener, conf *tls.Config) {
	s.serveConns(ln, func(c net.Conn) {
		tc := tls.Server(c, conf)
		if err := tc.Handshake(); err != nil {
			return
		}
		s.Stats.TLSHandshakes.Add(1)
		_, _ = io.Copy(tc, io.LimitReader(tc, maxEchoBytes))
	})
}

func (s *Servers) serveSTUN(pc net.PacketConn) {
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		info, ok := zoom.ParseSTUN(buf[:n])
		if !ok || info.Kind != zoom.STUNZoomRequest {
			continue
		}
		ua := addr.(*net.UDPAddr).AddrPort()
		mapped := netip.AddrPortFrom(ua.Addr().Unmap(), ua.Port())
		if _, err := pc.WriteTo(zoom.BuildZoomSTUNResponse(info.TxID, mapped), addr); err == nil {
			s.Stats.STUNAnswers.Add(1)
		}
	}
}

// Zoom's UDP media session set-up (IMC 2022): the client sends 01 00 02|03
// and a 16-byte id, the server answers 02 00 02|03 and the same id; media
// packets start 0x05 with byte 7 the direction (0x00 to Zoom, 0x04 from).
const mediaSetupLen = 19

func (s *Servers) serveMediaUDP(pc net.PacketConn) {
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := buf[:n]
		switch {
		case n >= mediaSetupLen && p[0] == 0x01 && p[1] == 0x00 && (p[2] == 0x02 || p[2] == 0x03):
			out := make([]byte, mediaSetupLen)
			out[0], out[1], out[2] = 0x02, 0x00, p[2]
			copy(out[3:], p[3:mediaSetupLen])
			if _, err := pc.WriteTo(out, addr); err == nil {
				s.Stats.MediaSetups.Add(1)
			}
		case n >= 8 && p[0] == 0x05:
			p[7] = 0x04 // from Zoom
			if _, err := pc.WriteTo(p, addr); err == nil {
				s.Stats.MediaEchoes.Add(1)
			}
		}
	}
}

// resolver answers one question: addresses, or ok=false for NXDOMAIN.
type resolver func(name string, qtype dnsmessage.Type) (addrs []netip.Addr, ok bool)

func zoomResolver(name string, qtype dnsmessage.Type) ([]netip.Addr, bool) {
	a, ok := ZoomNames[name]
	if !ok {
		return nil, false
	}
	switch qtype {
	case dnsmessage.TypeA:
		return []netip.Addr{a}, true
	case dnsmessage.TypeAAAA:
		if a6 := Addr6For(a); a6.IsValid() {
			return []netip.Addr{a6}, true
		}
	}
	return nil, true // NOERROR, no data
}

func serveDNSUDP(pc net.PacketConn, n *atomic.Int64, r resolver) {
	buf := make([]byte, maxDatagram)
	for {
		m, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, ok := dnsAnswer(buf[:m], r); ok {
			n.Add(1)
			_, _ = pc.WriteTo(out, addr)
		}
	}
}

func (s *Servers) serveDNSTCP(ln net.Listener) {
	s.serveConns(ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return
		}
		msg := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		out, ok := dnsAnswer(msg, zoomResolver)
		if !ok {
			return
		}
		s.Stats.DNSQueries.Add(1)
		_, _ = c.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...))
	})
}

// dnsAnswer builds the response to a query with r, or ok=false when the
// query is not one (it is then ignored, as a server would).
func dnsAnswer(req []byte, r resolver) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	addrs, found := r(name, q.Type)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !found {
		rh.RCode = dnsmessage.RCodeNameError
	}
	bld := dnsmessage.NewBuilder(nil, rh)
	bld.EnableCompression()
	if bld.StartQuestions() != nil || bld.Question(q) != nil || bld.StartAnswers() != nil {
		return nil, false
	}
	for _, a := range addrs {
		rrh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		if a.Is4() && q.Type == dnsmessage.TypeA {
			if bld.AResource(rrh, dnsmessage.AResource{A: a.As4()}) != nil {
				return nil, false
			}
		} else if a.Is6() && q.Type == dnsmessage.TypeAAAA {
			if bld.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: a.As16()}) != nil {
				return nil, false
			}
		}
	}
	out, err := bld.Finish()
	return out, err == nil
}
