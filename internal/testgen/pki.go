package testgen

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Chain names the certificate chain a TLS server presents.
type Chain uint8

const (
	ChainZoom      Chain = iota // leaf ← "DigiCert Global G2 TLS RSA SHA256 2020 CA1" ← "DigiCert Global Root G2" (test copies)
	ChainFortiGate              // leaf re-signed by "FortiGate CA" (O=Fortinet): SSL inspection
	ChainUnknown                // leaf re-signed by "Gateway Authentication", a CA nobody trusts
	ChainPublic                 // leaf ← "zoomprobe Test Public CA": ordinary non-Zoom sites
)

func (c Chain) String() string {
	switch c {
	case ChainZoom:
		return "zoom"
	case ChainFortiGate:
		return "fortigate"
	case ChainUnknown:
		return "unknown-ca"
	case ChainPublic:
		return "public"
	}
	return fmt.Sprintf("chain(%d)", uint8(c))
}

// Fixed validity windows (the default scenario start, DefaultStart, lies
// inside LeafNotBefore..LeafNotAfter and after ExpiredNotAfter).
var (
	caNotBefore      = time.Date(2020, 9, 24, 0, 0, 0, 0, time.UTC)
	caNotAfter       = time.Date(2045, 9, 23, 23, 59, 59, 0, time.UTC)
	LeafNotBefore    = time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	LeafNotAfter     = time.Date(2027, 9, 30, 23, 59, 59, 0, time.UTC)
	ExpiredNotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ExpiredNotAfter  = time.Date(2025, 1, 31, 23, 59, 59, 0, time.UTC)
)

// CA is a test certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey
}

// PKI holds the test CAs. Keys are Ed25519 derived from fixed labels and
// Ed25519 signatures are deterministic, so every certificate here is
// byte-identical in every run: tests may pin fingerprints.
type PKI struct {
	ZoomRoot         CA // "DigiCert Global Root G2" look-alike: Zoom's expected root in tests
	ZoomIntermediate CA // "DigiCert Global G2 TLS RSA SHA256 2020 CA1" look-alike
	FortiGate        CA // "FortiGate CA", O=Fortinet: an inspection CA an admin installed
	Unknown          CA // "Gateway Authentication": untrusted interceptor
	Public           CA // "zoomprobe Test Public CA": issues certificates for non-Zoom sites

	mu     sync.Mutex
	leaves map[string]tls.Certificate
}

var (
	pkiOnce sync.Once
	pkiVal  *PKI
	pkiErr  error
)

// TestPKI returns the process-wide test PKI (built once).
func TestPKI() (*PKI, error) {
	pkiOnce.Do(func() { pkiVal, pkiErr = newPKI() })
	return pkiVal, pkiErr
}

func keyFor(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("zoomprobe-testgen/key/" + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

func serialFor(label string) *big.Int {
	h := sha256.Sum256([]byte("zoomprobe-testgen/serial/" + label))
	h[0] &= 0x7f
	return new(big.Int).SetBytes(h[:16])
}

func newCA(label string, subject pkix.Name, parent *CA) (CA, error) {
	key := keyFor(label)
	tmpl := &x509.Certificate{
		SerialNumber: serialFor(label), Subject: subject,
		NotBefore: caNotBefore, NotAfter: caNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.Key
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(nil, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return CA{}, fmt.Errorf("testgen: CA %q: %w", subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CA{}, err
	}
	return CA{Cert: cert, Key: key}, nil
}

func newPKI() (*PKI, error) {
	p := &PKI{leaves: make(map[string]tls.Certificate)}
	var err error
	if p.ZoomRoot, err = newCA("zoom-root", pkix.Name{Country: []string{"US"}, Organization: []string{"DigiCert Inc"}, OrganizationalUnit: []string{"www.digicert.com"}, CommonName: "DigiCert Global Root G2"}, nil); err != nil {
		return nil, err
	}
	if p.ZoomIntermediate, err = newCA("zoom-intermediate", pkix.Name{Country: []string{"US"}, Organization: []string{"DigiCert Inc"}, CommonName: "DigiCert Global G2 TLS RSA SHA256 2020 CA1"}, &p.ZoomRoot); err != nil {
		return nil, err
	}
	if p.FortiGate, err = newCA("fortigate", pkix.Name{Country: []string{"US"}, Province: []string{"California"}, Locality: []string{"Sunnyvale"}, Organization: []string{"Fortinet"}, OrganizationalUnit: []string{"Certificate Authority"}, CommonName: "FortiGate CA"}, nil); err != nil {
		return nil, err
	}
	if p.Unknown, err = newCA("unknown", pkix.Name{CommonName: "Gateway Authentication"}, nil); err != nil {
		return nil, err
	}
	if p.Public, err = newCA("public", pkix.Name{Country: []string{"US"}, Organization: []string{"zoomprobe test"}, CommonName: "zoomprobe Test Public CA"}, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// PEM returns the CA certificate in PEM form (for config files naming
// expected or trusted roots).
func (c CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// ZoomRoots is a pool with only Zoom's expected (test) root.
func (p *PKI) ZoomRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ZoomRoot.Cert)
	return pool
}

// TrustedRoots is a pool with the roots an unmanaged machine trusts: the Zoom
// test root and the public test CA (not FortiGate, not Gateway Authentication).
func (p *PKI) TrustedRoots() *x509.CertPool {
	pool := p.ZoomRoots()
	pool.AddCert(p.Public.Cert)
	return pool
}

// issuer returns the CA that signs leaves for chain c and the certificates
// sent after the leaf.
func (p *PKI) issuer(c Chain) (*CA, []*x509.Certificate) {
	switch c {
	case ChainFortiGate:
		return &p.FortiGate, []*x509.Certificate{p.FortiGate.Cert}
	case ChainUnknown:
		return &p.Unknown, []*x509.Certificate{p.Unknown.Cert}
	case ChainPublic:
		return &p.Public, nil
	default:
		return &p.ZoomIntermediate, []*x509.Certificate{p.ZoomIntermediate.Cert}
	}
}

// Leaf returns (and caches) a server certificate for names issued under chain
// c, valid from notBefore to notAfter, with the chain certificates a server
// sends after it.
func (p *PKI) Leaf(c Chain, names []string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	label := fmt.Sprintf("leaf/%s/%s/%d/%d", c, strings.Join(names, ","), notBefore.Unix(), notAfter.Unix())
	p.mu.Lock()
	defer p.mu.Unlock()
	if cert, ok := p.leaves[label]; ok {
		return cert, nil
	}
	ca, extra := p.issuer(c)
	key := keyFor(label)
	subject := pkix.Name{CommonName: names[0]}
	if c == ChainZoom {
		subject.Country = []string{"US"}
		subject.Province = []string{"California"}
		subject.Locality = []string{"San Jose"}
		subject.Organization = []string{"Zoom Video Communications, Inc."}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialFor(label), Subject: subject, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testgen: leaf %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, e := range extra {
		cert.Certificate = append(cert.Certificate, e.Raw)
	}
	p.leaves[label] = cert
	return cert, nil
}

// CAFiles maps the PEM file names written by WriteCAPEMs to their CAs.
func (p *PKI) CAFiles() map[string]CA {
	return map[string]CA{
		"zoom-root.pem":         p.ZoomRoot,
		"zoom-intermediate.pem": p.ZoomIntermediate,
		"fortigate-ca.pem":      p.FortiGate,
		"unknown-ca.pem":        p.Unknown,
		"public-ca.pem":         p.Public,
	}
}

// WriteCAPEMs writes every test CA certificate as PEM into dir.
func WriteCAPEMs(dir string) error {
	p, err := TestPKI()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, ca := range p.CAFiles() {
		if err := os.WriteFile(filepath.Join(dir, name), ca.PEM(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
