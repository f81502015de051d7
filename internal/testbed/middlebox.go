package testbed

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/zoomprobe/zoomprobe/zoom"
)

// MiddleboxStats counts what the router's Go helpers did.
type MiddleboxStats struct {
	InjectedRSTs   atomic.Int64 // forged RSTs sent (both directions)
	Intercepted    atomic.Int64 // TLS sessions the interceptor terminated
	ProxyConnects  atomic.Int64 // CONNECT requests seen
	PortalRequests atomic.Int64
	SinkholeAnswer atomic.Int64
}

// Stats of the router's helpers (shared by all behaviours of one bed).
func (b *Bed) MiddleboxStats() *MiddleboxStats { return &b.mbStats }

const middleboxIdle = 10 * time.Second

// --- raw-socket RST injector -------------------------------------------

func startInjector(b *Bed, bh Behaviour) error {
	ttl := bh.TTL
	if ttl == 0 {
		ttl = 64
	}
	lo, hi, err := parsePorts(bh.Ports)
	if err != nil {
		return err
	}
	var sniff, send int = -1, -1
	err = b.Do(NSRouter, func() error {
		ifi, err := net.InterfaceByName(RouterClientIf)
		if err != nil {
			return err
		}
		if sniff, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP))); err != nil {
			return fmt.Errorf("testbed: injector AF_PACKET: %w", err)
		}
		if err := unix.Bind(sniff, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("testbed: injector bind: %w", err)
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(sniff, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		// IPPROTO_RAW implies IP_HDRINCL: we write the whole IPv4 header,
		// spoofed source and chosen TTL included; the kernel routes it.
		if send, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("testbed: injector raw socket: %w", err)
		}
		return nil
	})
	if err != nil {
		if sniff >= 0 {
			unix.Close(sniff)
		}
		if send >= 0 {
			unix.Close(send)
		}
		return err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	b.onClose(func() { close(stop); <-done; unix.Close(sniff); unix.Close(send) })
	inj := &injector{b: b, send: send, ttl: ttl, lo: lo, hi: hi, race: bh.Race, flagged: map[injKey]time.Time{}, helloLeft: map[injKey]int{}}
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(sniff, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if !ok {
				continue
			}
			var s Seen
			if !decodeIP4(buf[:n], &s, false) || s.Proto != ProtoTCP {
				continue
			}
			inj.packet(s, ll.Pkttype, buf[:n])
		}
	}()
	return nil
}

// Injector bounds: flows stay flagged this long after their ClientHello,
// and at most this many are tracked.
const (
	injectWindow   = 2 * time.Second
	maxInjectFlows = 1024
)

type injKey struct {
	client, server         netip.Addr
	clientPort, serverPort uint16
}

// injector forges resets the way on-path censors do: one toward each end
// as soon as a ClientHello passes, then one after every later segment of the
// flow in either direction, with the sequence number that segment makes
// current (a burst). It forwards the client's segments itself (the kernel's
// forwarding of them is dropped), each after the resets it triggered: the
// resets reach both ends first on a machine however busy.
type injector struct {
	b       *Bed
	send    int
	ttl     uint8
	lo, hi  uint16
	race    bool // reset the client only: the server answers the ClientHello anyway
	flagged map[injKey]time.Time
	// helloLeft: in race mode, bytes of the ClientHello record still to
	// come; the reset waits for the last segment so the server gets the
	// whole hello and answers it.
	helloLeft map[injKey]int
}

func (in *injector) packet(s Seen, pkttype uint8, raw []byte) {
	now := time.Now()
	switch {
	case pkttype == unix.PACKET_HOST && s.DstPort >= in.lo && s.DstPort <= in.hi: // client -> server
		pass := true
		defer func() {
			if pass {
				in.forward(raw)
			}
		}()
		k := injKey{s.Src, s.Dst, s.SrcPort, s.DstPort}
		t, flagged := in.flagged[k]
		if flagged && now.Sub(t) > injectWindow {
			delete(in.flagged, k)
			flagged = false
		}
		if !flagged && isClientHello(s.Payload) {
			if len(in.flagged) >= maxInjectFlows {
				for old, at := range in.flagged {
					if now.Sub(at) > injectWindow {
						delete(in.flagged, old)
					}
				}
			}
			if len(in.flagged) < maxInjectFlows {
				in.flagged[k] = now
				if in.race {
					in.helloLeft[k] = 5 + int(binary.BigEndian.Uint16(s.Payload[3:5]))
				}
			}
			flagged = true
		}
		if left, ok := in.helloLeft[k]; ok && flagged && len(s.Payload) > 0 {
			if left -= len(s.Payload); left > 0 {
				in.helloLeft[k] = left
				return // the hello is not whole yet: forward this part (deferred) and wait
			}
			delete(in.helloLeft, k)
		} else if in.race && flagged {
			// The race's reset was sent; the client's later packets (its
			// own RST to the server's answer among them) stay here, so the
			// server answers the hello it got, after the forged reset.
			pass = false
			return
		}
		if flagged && len(s.Payload) > 0 {
			in.emit(forgeRST(s.Dst, s.Src, s.DstPort, s.SrcPort, s.Ack, s.Seq+uint32(len(s.Payload)), in.ttl))
			if !in.race {
				in.emit(forgeRST(s.Src, s.Dst, s.SrcPort, s.DstPort, s.Seq+uint32(len(s.Payload)), 0, 64))
			}
		}
	case pkttype == unix.PACKET_OUTGOING && s.SrcPort >= in.lo && s.SrcPort <= in.hi: // server -> client
		k := injKey{s.Dst, s.Src, s.DstPort, s.SrcPort}
		if t, ok := in.flagged[k]; ok && now.Sub(t) <= injectWindow && len(s.Payload) > 0 {
			in.emit(forgeRST(s.Src, s.Dst, s.SrcPort, s.DstPort, s.Seq+uint32(len(s.Payload)), s.Ack, in.ttl))
		}
	}
}

// forward routes a client segment on as the kernel would have: one hop
// less of TTL, the checksums redone (a packet socket sees the client's
// segment before its offloaded TCP checksum is filled in).
func (in *injector) forward(ip []byte) {
	if len(ip) < 20 || ip[8] <= 1 || ip[9] != ProtoTCP {
		return
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl+20 || total > len(ip) {
		return
	}
	pkt := append([]byte(nil), ip[:total]...)
	pkt[8]--
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:12], checksum(pkt[:ihl], 0))
	seg := pkt[ihl:]
	seg[16], seg[17] = 0, 0
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	pseudo += ProtoTCP + uint32(len(seg))
	binary.BigEndian.PutUint16(seg[16:18], checksum(seg, pseudo))
	_ = unix.Sendto(in.send, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])})
}

func (in *injector) emit(pkt []byte) {
	if unix.Sendto(in.send, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])}) == nil {
		in.b.mbStats.InjectedRSTs.Add(1)
	}
}

func parsePorts(s string) (lo, hi uint16, err error) {
	a, bs, found := strings.Cut(s, ":")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("testbed: ports %q: %w", s, err)
	}
	h := l
	if found {
		if h, err = strconv.ParseUint(bs, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("testbed: ports %q: want N or N:M with N <= M", s)
		}
	}
	return uint16(l), uint16(h), nil
}

// forgeRST builds an IPv4 TCP RST (with ACK when ack != 0).
func forgeRST(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, ttl uint8) []byte {
	p := make([]byte, 40)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], 40)
	var id [2]byte
	_, _ = rand.Read(id[:])
	copy(p[4:6], id[:])
	p[8], p[9] = ttl, ProtoTCP
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:16], s4[:])
	copy(p[16:20], d4[:])
	binary.BigEndian.PutUint16(p[10:12], checksum(p[:20], 0))
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:2], sport)
	binary.BigEndian.PutUint16(t[2:4], dport)
	binary.BigEndian.PutUint32(t[4:8], seq)
	t[12] = 5 << 4
	t[13] = FlagRST
	if ack != 0 {
		binary.BigEndian.PutUint32(t[8:12], ack)
		t[13] |= FlagACK
	}
	var pseudo uint32
	pseudo += uint32(binary.BigEndian.Uint16(s4[0:2])) + uint32(binary.BigEndian.Uint16(s4[2:4]))
	pseudo += uint32(binary.BigEndian.Uint16(d4[0:2])) + uint32(binary.BigEndian.Uint16(d4[2:4]))
	pseudo += ProtoTCP + 20
	binary.BigEndian.PutUint16(t[16:18], checksum(t, pseudo))
	return p
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// --- transparent TLS interception --------------------------------------

// InterceptCA returns the CA an Intercept behaviour with these names mints from.
func InterceptCA(cn, org string) (*CA, error) { return NewCA(cn, org) }

func (b *Bed) routerListen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := b.Do(NSRouter, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: router listen %s %s: %w", network, addr, err)
	}
	b.onClose(func() { ln.Close() })
	return ln, nil
}

// dialFromRouter opens a TCP connection from the router namespace.
func (b *Bed) dialFromRouter(ap netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := b.Do(NSRouter, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp", ap.String())
		return err
	})
	return c, err
}

func (b *Bed) track(c net.Conn) func() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.Close()
		return func() {}
	}
	if b.conns == nil {
		b.conns = map[net.Conn]struct{}{}
		b.closers = append(b.closers, b.closeConns)
	}
	b.conns[c] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}
}

func (b *Bed) closeConns() {
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func startInterceptor(b *Bed, bh Behaviour) error {
	ca, err := InterceptCA(bh.CACommonName, bh.CAOrg)
	if err != nil {
		return err
	}
	// Separate v4 and v6 listeners: SO_ORIGINAL_DST is asked per family.
	ln4, err := b.routerListen("tcp4", fmt.Sprintf(":%d", InterceptPort))
	if err != nil {
		return err
	}
	ln6, err := b.routerListen("tcp6", fmt.Sprintf("[::]:%d", InterceptPort))
	if err != nil {
		return err
	}
	for _, ln := range []net.Listener{ln4, ln6} {
		go func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go b.intercept(c, ca)
			}
		}(ln)
	}
	return nil
}

func (b *Bed) intercept(c net.Conn, ca *CA) {
	done := b.track(c)
	defer done()
	_ = c.SetDeadline(time.Now().Add(middleboxIdle))
	orig, err := originalDst(c.(*net.TCPConn))
	if err != nil {
		return
	}
	var sni string
	conf := &tls.Config{
		MaxVersion: tls.VersionTLS12, // as inspection boxes often do; keeps the chain visible
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			sni = hello.ServerName
			name := sni
			if name == "" {
				name = orig.Addr().String()
			}
			leaf, err := ca.Leaf(name)
			if err != nil {
				return nil, err
			}
			// Send the inspection CA after the leaf, as products do.
			withCA := *leaf
			withCA.Certificate = append(append([][]byte(nil), leaf.Certificate...), ca.Cert.Raw)
			return &withCA, nil
		},
	}
	down := tls.Server(c, conf)
	if err := down.Handshake(); err != nil {
		return // the client refused our certificate (its alert is on the wire)
	}
	b.mbStats.Intercepted.Add(1)
	upRaw, err := b.dialFromRouter(orig)
	if err != nil {
		return
	}
	upDone := b.track(upRaw)
	defer upDone()
	_ = upRaw.SetDeadline(time.Now().Add(middleboxIdle))
	up := tls.Client(upRaw, &tls.Config{ServerName: sni, RootCAs: b.ZoomCA.Pool(), NextProtos: []string{"http/1.1"}})
	if err := up.Handshake(); err != nil {
		return
	}
	pipe(down, up)
}

// pipe copies both ways until either side ends.
func pipe(a, b io.ReadWriteCloser) {
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(a, b); errc <- err }()
	go func() { _, err := io.Copy(b, a); errc <- err }()
	<-errc
	a.Close()
	b.Close()
	<-errc
}

// originalDst reads the pre-REDIRECT destination (SO_ORIGINAL_DST).
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ap netip.AddrPort
	var serr error
	local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
	cerr := raw.Control(func(fd uintptr) {
		if local.Is4() || local.Is4In6() {
			// struct sockaddr_in comes back in the first bytes of the buffer.
			mreq, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
			if err != nil {
				serr = err
				return
			}
			port := binary.BigEndian.Uint16(mreq.Multiaddr[2:4])
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(mreq.Multiaddr[4:8])), port)
			return
		}
		info, err := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, ip6tSOOriginalDst)
		if err != nil {
			serr = err
			return
		}
		sa := (*[unsafe.Sizeof(info.Addr)]byte)(unsafe.Pointer(&info.Addr))
		port := binary.BigEndian.Uint16(sa[2:4])
		ap = netip.AddrPortFrom(netip.AddrFrom16(info.Addr.Addr), port)
	})
	if cerr != nil {
		return netip.AddrPort{}, cerr
	}
	return ap, serr
}

// --- explicit HTTP proxy -----------------------------------------------

// ProxyAddr is where the explicit proxy listens (set ClientPlan.Proxy to it).
var ProxyAddr = netip.AddrPortFrom(RouterClientAddr, ProxyPort)

func startHTTPProxy(b *Bed, bh Behaviour) error {
	ln, err := b.routerListen("tcp", ProxyAddr.String())
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.proxyConn(c, bh.Allow)
		}
	}()
	return nil
}

const denyBody = "<html><body><h1>Access denied</h1><p>zoom.us is blocked by the web filter policy.</p></body></html>\n"

func (b *Bed) proxyConn(c net.Conn, allow bool) {
	done := b.track(c)
	defer done()
	_ = c.SetDeadline(time.Now().Add(middleboxIdle))
	br := bufio.NewReader(io.LimitReader(c, 16<<10))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprintf(c, "HTTP/1.1 405 Method Not Allowed\r\nProxy-Agent: testbed-proxy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	b.mbStats.ProxyConnects.Add(1)
	if !allow {
		fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nProxy-Agent: testbed-proxy\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(denyBody), denyBody)
		return
	}
	host, portStr, err := net.SplitHostPort(req.Host)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	addr, known := ZoomNames[strings.ToLower(host)]
	if a, aerr := netip.ParseAddr(host); aerr == nil {
		addr, known = a, true
	}
	if err != nil || perr != nil || !known {
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nProxy-Agent: testbed-proxy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	up, err := b.dialFromRouter(netip.AddrPortFrom(addr, uint16(port)))
	if err != nil {
		fmt.Fprintf(c, "HTTP/1.1 504 Gateway Timeout\r\nProxy-Agent: testbed-proxy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	upDone := b.track(up)
	defer upDone()
	_ = up.SetDeadline(time.Now().Add(middleboxIdle))
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\nProxy-Agent: testbed-proxy\r\n\r\n"); err != nil {
		return
	}
	pipe(c, up)
}

// --- captive portal ----------------------------------------------------

// PortalURL is where the captive portal sends every HTTP request.
const PortalURL = "http://" + PortalHost + "/login"

func startPortal(b *Bed) error {
	cert, err := SelfSigned(PortalHost)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mbStats.PortalRequests.Add(1)
		w.Header().Set("Location", PortalURL+"?redirect="+r.Host)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, "<html><body>Please sign in to the guest network.</body></html>\n")
	})
	for _, spec := range []struct {
		port int
		tls  bool
	}{{PortalHTTPPort, false}, {PortalTLSPort, true}} {
		ln, err := b.routerListen("tcp", fmt.Sprintf(":%d", spec.port))
		if err != nil {
			return err
		}
		if spec.tls {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, MaxVersion: tls.VersionTLS12})
		}
		srv := &http.Server{Handler: h, ReadTimeout: middleboxIdle, WriteTimeout: middleboxIdle, ErrorLog: quietLog}
		srv.SetKeepAlivesEnabled(false)
		b.onClose(func() { srv.Close() })
		go srv.Serve(ln)
	}
	return nil
}

// --- DNS sinkhole --------------------------------------------------------

func startSinkhole(b *Bed, bh Behaviour) error {
	var pcs []net.PacketConn
	err := b.Do(NSRouter, func() error {
		for _, network := range []string{"udp4", "udp6"} {
			pc, err := net.ListenPacket(network, fmt.Sprintf(":%d", SinkholeDNS))
			if err != nil {
				return err
			}
			pcs = append(pcs, pc)
		}
		return nil
	})
	for _, pc := range pcs {
		b.onClose(func() { pc.Close() })
	}
	if err != nil {
		return fmt.Errorf("testbed: sinkhole listen: %w", err)
	}
	r := func(name string, qtype dnsmessage.Type) ([]netip.Addr, bool) {
		if !zoom.IsZoomName(name) || bh.Sinkhole == SinkholeNXDomain {
			return nil, false
		}
		switch qtype {
		case dnsmessage.TypeA:
			return []netip.Addr{netip.IPv4Unspecified()}, true
		case dnsmessage.TypeAAAA:
			return []netip.Addr{netip.IPv6Unspecified()}, true
		}
		return nil, true
	}
	for _, pc := range pcs {
		go serveDNSUDP(pc, &b.mbStats.SinkholeAnswer, r)
	}
	return nil
}

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/ip6_tables.h
// (x/sys/unix does not export it).
const ip6tSOOriginalDst = 80

func htons(v uint16) uint16 { return v<<8 | v>>8 }
