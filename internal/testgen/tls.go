package testgen

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TLSSpec describes one TLS connection to record.
type TLSSpec struct {
	ServerName string // SNI the client sends (empty: none)
	// Version is the highest version the server accepts, so the one
	// negotiated: tls.VersionTLS12 or tls.VersionTLS13 (default 1.3).
	Version uint16
	// ClientMaxVersion is the highest version the client offers (default
	// 1.3): Zoom's servers answered 1.2 to clients offering 1.3.
	ClientMaxVersion uint16
	Chain            Chain // what the server presents
	// Names are the leaf's DNS names; default []string{ServerName}.
	Names []string
	// NotBefore/NotAfter of the leaf; default LeafNotBefore/LeafNotAfter.
	NotBefore, NotAfter time.Time
	// Time is both ends' clock; default DefaultStart.
	Time time.Time
	// ClientAlert, when non-zero, makes the client reject the certificate and
	// abort the handshake with this alert (e.g. AlertUnknownCA). Go always
	// sends bad_certificate; in TLS 1.2 the alert is plaintext and the
	// recorded byte is patched to this value, in TLS 1.3 it is encrypted and
	// stays bad_certificate.
	ClientAlert uint8
	// Request and Response are application data exchanged after the
	// handshake; nil Request sends a small HTTP/1.1 GET.
	Request, Response []byte
	ALPN              []string
	// NoClose leaves out the close_notify alerts.
	NoClose bool
	// ServerCurves, when set, are the only key exchange groups the server
	// accepts: a group the client sent no key share for makes a TLS 1.3
	// server answer with a HelloRetryRequest.
	ServerCurves []tls.CurveID
}

// TLS alert descriptions used by scenarios.
const (
	AlertBadCertificate = 42
	AlertCertExpired    = 45
	AlertUnknownCA      = 48
)

// Flight is what one side wrote before the other side wrote again.
type Flight struct {
	Dir  Dir
	Data []byte
}

// TLSTranscript is a recorded TLS connection.
type TLSTranscript struct {
	Spec    TLSSpec
	Flights []Flight
	// Chain is what the server presented, leaf first.
	Chain []*x509.Certificate
	// Version is the negotiated version (0 if the handshake failed).
	Version uint16
	// ClientErr is the client's handshake error, if it rejected the server.
	ClientErr error
	// Cached is true when the flights were replayed from the stored
	// recordings rather than recorded in this run.
	Cached bool
}

// recorder collects writes from both ends in the order they happen.
type recorder struct {
	mu      sync.Mutex
	flights []Flight
}

func (r *recorder) add(d Dir, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.flights); n > 0 && r.flights[n-1].Dir == d {
		r.flights[n-1].Data = append(r.flights[n-1].Data, b...)
		return
	}
	r.flights = append(r.flights, Flight{Dir: d, Data: append([]byte(nil), b...)})
}

// pipeEnd is one end of an in-memory, buffered, full-duplex connection
// (net.Pipe blocks each write until the peer reads, which deadlocks when one
// side writes an alert and quits). Every write is recorded.
type pipeEnd struct {
	dir  Dir
	rec  *recorder
	in   *pipeBuf
	out  *pipeBuf
	once sync.Once
}

type pipeBuf struct {
	mu     sync.Mutex
	cond   *sync.Cond
	data   bytes.Buffer
	closed bool
}

func newPipeBuf() *pipeBuf {
	b := &pipeBuf{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *pipeBuf) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	p.in.mu.Lock()
	defer p.in.mu.Unlock()
	for p.in.data.Len() == 0 && !p.in.closed {
		p.in.cond.Wait()
	}
	if p.in.data.Len() == 0 {
		return 0, io.EOF
	}
	return p.in.data.Read(b)
}

func (p *pipeEnd) Write(b []byte) (int, error) {
	p.out.mu.Lock()
	if p.out.closed {
		p.out.mu.Unlock()
		return 0, net.ErrClosed
	}
	p.rec.add(p.dir, b)
	p.out.data.Write(b)
	p.out.mu.Unlock()
	p.out.cond.Broadcast()
	return len(b), nil
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() { p.out.close(); p.in.close() })
	return nil
}

type pipeAddr string

func (a pipeAddr) Network() string { return "testgen" }
func (a pipeAddr) String() string  { return string(a) }

func (p *pipeEnd) LocalAddr() net.Addr              { return pipeAddr(p.dir.String()) }
func (p *pipeEnd) RemoteAddr() net.Addr             { return pipeAddr(p.dir.other().String()) }
func (p *pipeEnd) SetDeadline(time.Time) error      { return nil }
func (p *pipeEnd) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeEnd) SetWriteDeadline(time.Time) error { return nil }

func recordedPipe() (client, server *pipeEnd, rec *recorder) {
	rec = &recorder{}
	c2s, s2c := newPipeBuf(), newPipeBuf()
	client = &pipeEnd{dir: ClientToServer, rec: rec, in: s2c, out: c2s}
	server = &pipeEnd{dir: ServerToClient, rec: rec, in: c2s, out: s2c}
	return client, server, rec
}

var errClientRejects = errors.New("testgen: client rejects the server certificate")

// RecordTLS returns the transcript for spec: replayed from the recordings
// stored with this package when there is one (Cached is then true and the
// bytes are the same in every run), else recorded live by RecordTLSLive.
func RecordTLS(spec TLSSpec) (*TLSTranscript, error) {
	t, err := recordTLS(spec, true)
	if err == nil {
		noteUsed(t)
	}
	return t, err
}

// RecordTLSLive runs a real crypto/tls client and server against each other
// in memory and returns what each wrote, in order.
func RecordTLSLive(spec TLSSpec) (*TLSTranscript, error) { return recordTLS(spec, false) }

func recordTLS(spec TLSSpec, useCache bool) (*TLSTranscript, error) {
	pki, err := TestPKI()
	if err != nil {
		return nil, err
	}
	if spec.Version == 0 {
		spec.Version = tls.VersionTLS13
	}
	if spec.ClientMaxVersion == 0 {
		spec.ClientMaxVersion = tls.VersionTLS13
	}
	if spec.Time.IsZero() {
		spec.Time = DefaultStart
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = LeafNotBefore
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = LeafNotAfter
	}
	names := spec.Names
	if len(names) == 0 {
		if spec.ServerName == "" {
			return nil, errors.New("testgen: TLSSpec needs ServerName or Names")
		}
		names = []string{spec.ServerName}
	}
	cert, err := pki.Leaf(spec.Chain, names, spec.NotBefore, spec.NotAfter)
	if err != nil {
		return nil, err
	}
	req := spec.Request
	if req == nil {
		host := spec.ServerName
		if host == "" {
			host = names[0]
		}
		req = []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: Mozilla/5.0 (ZOOM.Win 10.0 x64)\r\nAccept: */*\r\n\r\n")
	}
	resp := spec.Response
	if resp == nil {
		resp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok")
	}
	spec.Names = names
	if spec.Request == nil {
		spec.Request = req
	}
	if spec.Response == nil {
		spec.Response = resp
	}
	t := &TLSTranscript{Spec: spec, Chain: []*x509.Certificate{cert.Leaf}}
	for _, raw := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, err
		}
		t.Chain = append(t.Chain, c)
	}
	if useCache {
		if flights, v, ok := cachedTranscript(spec); ok {
			t.Flights, t.Version, t.Cached = flights, v, true
			if spec.ClientAlert != 0 {
				t.ClientErr = errClientRejects
			}
			return t, nil
		}
	}
	now := func() time.Time { return spec.Time }
	clientCfg := &tls.Config{
		ServerName: spec.ServerName, MinVersion: tls.VersionTLS12, MaxVersion: spec.ClientMaxVersion,
		Time: now, NextProtos: spec.ALPN, SessionTicketsDisabled: true,
		// The recording client accepts any certificate unless told to reject:
		// what matters is the bytes the server sends, judged by zoomprobe.
		InsecureSkipVerify: true,
	}
	if spec.ClientAlert != 0 {
		clientCfg.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return errClientRejects }
	}
	serverCfg := &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, MaxVersion: spec.Version,
		Time: now, NextProtos: spec.ALPN, SessionTicketsDisabled: true,
		CurvePreferences: spec.ServerCurves,
	}
	cEnd, sEnd, rec := recordedPipe()
	client, server := tls.Client(cEnd, clientCfg), tls.Server(sEnd, serverCfg)

	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sEnd.Close()
		if err := server.Handshake(); err != nil {
			serverErr = err
			return
		}
		buf := make([]byte, len(req))
		if _, err := io.ReadFull(server, buf); err != nil {
			serverErr = err
			return
		}
		if _, err := server.Write(resp); err != nil {
			serverErr = err
			return
		}
		if spec.NoClose {
			return
		}
		// Wait for the client's close_notify, then answer it.
		_, _ = server.Read(make([]byte, 1))
		_ = server.Close()
	}()

	clientErr := client.Handshake()
	if clientErr == nil {
		t.Version = client.ConnectionState().Version
		if _, err := client.Write(req); err != nil {
			clientErr = err
		} else if _, err := io.ReadFull(client, make([]byte, len(resp))); err != nil {
			clientErr = err
		}
		if clientErr == nil && !spec.NoClose {
			_ = client.Close()
		}
	}
	cEnd.Close()
	wg.Wait()
	if spec.ClientAlert == 0 && (clientErr != nil || serverErr != nil) {
		return nil, fmt.Errorf("testgen: TLS %s to %q: client: %v, server: %v", tlsVersionName(spec.Version), spec.ServerName, clientErr, serverErr)
	}
	if spec.ClientAlert != 0 {
		if !errors.Is(clientErr, errClientRejects) {
			return nil, fmt.Errorf("testgen: TLS %q: expected the client to reject, got %v", spec.ServerName, clientErr)
		}
		t.ClientErr = clientErr
		patchClientAlert(rec.flights, spec.ClientAlert)
	}
	t.Flights = rec.flights
	return t, nil
}

// patchClientAlert rewrites a plaintext fatal alert (TLS 1.2) in the client's
// last flight to the wanted description.
func patchClientAlert(flights []Flight, desc uint8) {
	for i := len(flights) - 1; i >= 0; i-- {
		if flights[i].Dir != ClientToServer {
			continue
		}
		b := flights[i].Data
		// Walk the records; a plaintext alert is 15 03 03 00 02 <level> <desc>.
		for off := 0; off+5 <= len(b); {
			n := int(b[off+3])<<8 | int(b[off+4])
			if b[off] == 21 && n == 2 && off+7 <= len(b) {
				b[off+6] = desc
			}
			off += 5 + n
		}
		return
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// Play sends the transcript's flights over c, in order.
func (c *TCPConn) Play(t *TLSTranscript) {
	for _, f := range t.Flights {
		c.Send(f.Dir, f.Data)
	}
}

// TLS records spec and plays it over a new connection with a full handshake.
// It returns the connection (still open) and the transcript.
func (g *Generator) TLS(client, server netip.AddrPort, opts TCPOptions, spec TLSSpec) (*TCPConn, *TLSTranscript) {
	t, err := RecordTLS(spec)
	if err != nil {
		g.fail(err)
		return g.NewTCP(client, server, opts), nil
	}
	c := g.TCPConn(client, server, opts)
	c.Play(t)
	return c, t
}
