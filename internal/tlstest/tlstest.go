// Package tlstest makes real TLS handshakes for tests: a small PKI built with
// crypto/x509 (roots, intermediates, leaves with chosen names, validity, key
// usage and embedded SCTs, stapled OCSP responses), and Record, which runs a
// crypto/tls client against a crypto/tls server over loopback TCP and
// returns the bytes each side wrote, in order.
package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(1000 + serial.n)
}

func newKey(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Validity window of test CAs.
var (
	CANotBefore = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	CANotAfter  = time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
)

// NewRoot makes a self-signed root CA.
func NewRoot(t testing.TB, subject pkix.Name) *CA {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: subject, NotBefore: CANotBefore, NotAfter: CANotAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	return sign(t, tmpl, nil, key)
}

// Intermediate makes a CA signed by ca.
func (ca *CA) Intermediate(t testing.TB, subject pkix.Name) *CA {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: subject, NotBefore: CANotBefore, NotAfter: CANotAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLenZero: true,
	}
	return sign(t, tmpl, ca, key)
}

func sign(t testing.TB, tmpl *x509.Certificate, parent *CA, key crypto.Signer) *CA {
	pc, pk := tmpl, key
	if parent != nil {
		pc, pk = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pc, key.Public(), pk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: c, Key: key}
}

// PEM is the CA certificate in PEM form.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// LeafSpec describes a server certificate.
type LeafSpec struct {
	Names               []string // DNS names; the first is also the CN
	Org                 string
	NotBefore, NotAfter time.Time // default: 2025-01-01 to 2027-01-01
	NoServerAuth        bool      // EKU clientAuth only
	EmbedSCT            bool      // add an (unsigned, structurally valid) embedded SCT list
	SelfSigned          bool      // ignore the CA: sign with the leaf's own key
}

// Default leaf validity.
var (
	LeafNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	LeafNotAfter  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

// oidSCTList is the embedded SCT list extension (RFC 6962 3.3).
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// FakeSCTList is a SignedCertificateTimestampList body holding one
// structurally valid SCT (v1, zero log id, fixed time, empty extensions, an
// ecdsa-sha256 "signature" that no log made).
func FakeSCTList() []byte {
	sct := FakeSCT()
	n := len(sct) + 2
	out := []byte{byte(n >> 8), byte(n), byte(len(sct) >> 8), byte(len(sct))}
	return append(out, sct...)
}

// FakeSCT is one structurally valid SCT.
func FakeSCT() []byte {
	sct := []byte{0}                       // version v1
	sct = append(sct, make([]byte, 32)...) // log id
	sct = append(sct, 0, 0, 1, 0x80, 0, 0, 0, 0)
	sct = append(sct, 0, 0)       // extensions
	sct = append(sct, 4, 3, 0, 2) // sha256/ecdsa, 2-byte signature
	return append(sct, 0x30, 0x00)
}

// Leaf issues a server certificate and returns it as a tls.Certificate whose
// chain holds the leaf followed by extra (intermediates to send).
func (ca *CA) Leaf(t testing.TB, spec LeafSpec, extra ...*CA) tls.Certificate {
	key := newKey(t)
	if spec.NotBefore.IsZero() {
		spec.NotBefore = LeafNotBefore
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = LeafNotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: spec.Names[0]}, DNSNames: spec.Names,
		NotBefore: spec.NotBefore, NotAfter: spec.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if spec.Org != "" {
		tmpl.Subject.Organization = []string{spec.Org}
	}
	if spec.NoServerAuth {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if spec.EmbedSCT {
		v, err := asn1.Marshal(FakeSCTList())
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSCTList, Value: v})
	}
	var c *CA
	if spec.SelfSigned {
		tmpl.BasicConstraintsValid = true
		c = sign(t, tmpl, nil, key)
	} else {
		c = sign(t, tmpl, ca, key)
	}
	out := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: key, Leaf: c.Cert}
	for _, e := range extra {
		out.Certificate = append(out.Certificate, e.Cert.Raw)
	}
	return out
}

// OCSP makes a response from ca about leaf with status ocsp.Good,
// ocsp.Revoked or ocsp.Unknown, valid from thisUpdate for a week.
func (ca *CA) OCSP(t testing.TB, leaf *x509.Certificate, status int, thisUpdate time.Time) []byte {
	tmpl := ocsp.Response{
		Status: status, SerialNumber: leaf.SerialNumber, ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(7 * 24 * time.Hour),
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt = thisUpdate.Add(-time.Hour)
		tmpl.RevocationReason = ocsp.KeyCompromise
	}
	b, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Dir says which side wrote.
type Dir int

const (
	FromClient Dir = 0
	FromServer Dir = 1
)

// Write is one Write call on a side's connection.
type Write struct {
	Dir  Dir
	Data []byte
}

// Transcript is what both sides of a handshake wrote.
type Transcript struct {
	Writes  []Write
	Version uint16 // negotiated; 0 when the handshake failed
	// ClientErr is the client's handshake error (set when it rejected the server).
	ClientErr error
}

// Bytes is everything one side wrote, concatenated.
func (t *Transcript) Bytes(d Dir) []byte {
	var out []byte
	for _, w := range t.Writes {
		if w.Dir == d {
			out = append(out, w.Data...)
		}
	}
	return out
}

// Spec describes a handshake to record.
type Spec struct {
	ServerName string
	MinVersion uint16 // default TLS 1.2
	MaxVersion uint16 // default TLS 1.3
	Cert       tls.Certificate
	ALPN       []string
	// Roots, when set, makes the client verify the server against them (and
	// abort with an alert when that fails); otherwise it accepts anything.
	Roots *x509.CertPool
	// Time is both sides' clock; default 2026-03-01.
	Time time.Time
	// CurvePreferences of the client (nil: Go's default, which includes the
	// post-quantum X25519MLKEM768 key share).
	CurvePreferences []tls.CurveID
	// ServerCurvePreferences of the server (nil: Go's default).
	ServerCurvePreferences []tls.CurveID
}

// DefaultTime is the clock of recorded handshakes.
var DefaultTime = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type recConn struct {
	net.Conn
	dir Dir
	mu  *sync.Mutex
	log *[]Write
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	*c.log = append(*c.log, Write{Dir: c.dir, Data: append([]byte(nil), b...)})
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// loopbackPair connects two TCP sockets on 127.0.0.1. Kernel buffers let
// both sides write at once (a HelloRetryRequest exchange deadlocks on the
// unbuffered net.Pipe).
func loopbackPair(t testing.TB) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return client, r.c
}

// Record runs a real crypto/tls handshake (and one request/response) between a
// client and a server over loopback TCP and returns what each side wrote.
func Record(t testing.TB, spec Spec) *Transcript {
	t.Helper()
	if spec.MinVersion == 0 {
		spec.MinVersion = tls.VersionTLS12
	}
	if spec.MaxVersion == 0 {
		spec.MaxVersion = tls.VersionTLS13
	}
	if spec.Time.IsZero() {
		spec.Time = DefaultTime
	}
	now := func() time.Time { return spec.Time }
	var mu sync.Mutex
	var log []Write
	c0, s0 := loopbackPair(t)
	// Real wall-clock deadlines only guard against a hung test.
	deadline := time.Now().Add(10 * time.Second)
	_ = c0.SetDeadline(deadline)
	_ = s0.SetDeadline(deadline)
	cc := &recConn{Conn: c0, dir: FromClient, mu: &mu, log: &log}
	sc := &recConn{Conn: s0, dir: FromServer, mu: &mu, log: &log}
	ccfg := &tls.Config{
		ServerName: spec.ServerName, MinVersion: spec.MinVersion, MaxVersion: spec.MaxVersion,
		NextProtos: spec.ALPN, Time: now, RootCAs: spec.Roots, InsecureSkipVerify: spec.Roots == nil,
		CurvePreferences: spec.CurvePreferences, SessionTicketsDisabled: true,
	}
	scfg := &tls.Config{
		Certificates: []tls.Certificate{spec.Cert}, MinVersion: spec.MinVersion, MaxVersion: spec.MaxVersion,
		NextProtos: spec.ALPN, Time: now, SessionTicketsDisabled: true,
		CurvePreferences: spec.ServerCurvePreferences,
	}
	client, server := tls.Client(cc, ccfg), tls.Server(sc, scfg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s0.Close()
		if err := server.Handshake(); err != nil {
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(server, buf); err != nil {
			return
		}
		_, _ = server.Write([]byte("pong!"))
	}()
	tr := &Transcript{}
	if err := client.Handshake(); err != nil {
		tr.ClientErr = err
	} else {
		tr.Version = client.ConnectionState().Version
		_, _ = client.Write([]byte("ping!"))
		_, _ = io.ReadFull(client, make([]byte, 5))
	}
	c0.Close()
	wg.Wait()
	if tr.ClientErr != nil && spec.Roots == nil {
		t.Fatalf("tlstest: handshake failed: %v", tr.ClientErr)
	}
	mu.Lock()
	tr.Writes = log
	mu.Unlock()
	return tr
}

// Split cuts data into segments of at most mss bytes.
func Split(data []byte, mss int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(mss, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}
