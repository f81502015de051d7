package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// CA is a certificate authority that mints TLS leaves on demand. Keys are
// ECDSA P-256 so that minting is cheap on small CI machines.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// chain is the DER of this CA and its issuers up to, not including, the
	// root: what a server sends after its leaf.
	chain [][]byte
	root  *x509.Certificate

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// Test CA names. The Zoom ones stand in for Zoom's real DigiCert chain; the
// inspection ones are one known product name (in Chromium's list and the
// product signatures) and one the daemon cannot name.
const (
	ZoomRootCN       = "Zoom Test Root CA G2"
	ZoomIssuingCN    = "Zoom Test TLS RSA SHA256 2026 CA1"
	ZoomOrg          = "Zoom Video Communications, Inc. (zoomprobe test bed)"
	KnownInspectCN   = "FortiGate CA"
	KnownInspectOrg  = "Fortinet"
	UnknownInspectCN = "Acme Inspection CA"
	UnknownInspectO  = "Acme Widgets Ltd"
	PortalHost       = "portal.captive.test"
)

var caCache sync.Map // "cn|org" -> *CA

// NewCA returns a self-signed root CA with that common name and
// organisation. Calls with the same names in one process return the same CA,
// so tests do not pay for key generation twice.
func NewCA(cn, org string) (*CA, error) {
	key := cn + "|" + org
	if v, ok := caCache.Load(key); ok {
		return v.(*CA), nil
	}
	ca, err := newCA(cn, org, nil)
	if err != nil {
		return nil, err
	}
	v, _ := caCache.LoadOrStore(key, ca)
	return v.(*CA), nil
}

// NewIntermediate returns an intermediate CA signed by parent (cached like NewCA).
func NewIntermediate(parent *CA, cn, org string) (*CA, error) {
	key := parent.Cert.Subject.CommonName + ">" + cn + "|" + org
	if v, ok := caCache.Load(key); ok {
		return v.(*CA), nil
	}
	ca, err := newCA(cn, org, parent)
	if err != nil {
		return nil, err
	}
	v, _ := caCache.LoadOrStore(key, ca)
	return v.(*CA), nil
}

// ZoomPKI returns the test "Zoom" root and the intermediate that signs the
// Zoom server leaves.
func ZoomPKI() (root, issuing *CA, err error) {
	if root, err = NewCA(ZoomRootCN, ZoomOrg); err != nil {
		return nil, nil, err
	}
	if issuing, err = NewIntermediate(root, ZoomIssuingCN, ZoomOrg); err != nil {
		return nil, nil, err
	}
	return root, issuing, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n.Add(n, big.NewInt(1))
}

func newCA(cn, org string, parent *CA) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testbed: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
		tmpl.MaxPathLenZero = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, fmt.Errorf("testbed: CA %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, Key: key, leaves: map[string]*tls.Certificate{}, root: cert}
	if parent != nil {
		ca.chain = append([][]byte{der}, parent.chain...)
		ca.root = parent.root
	}
	return ca, nil
}

// Root is the self-signed certificate at the top of this CA's chain.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Pool is a pool holding only this CA's root: what a client that trusts it uses.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// Leaf returns a server certificate for names (the first is the common
// name) with the chain up to, not including, the root. Leaves are cached
// per name set.
func (ca *CA) Leaf(names ...string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("testbed: Leaf needs at least one name")
	}
	key := strings.Join(names, ",")
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.leaves[key]; ok {
		return c, nil
	}
	c, err := issueLeaf(ca.Cert, ca.Key, ca.chain, names)
	if err != nil {
		return nil, err
	}
	ca.leaves[key] = c
	return c, nil
}

var selfSigned sync.Map

// SelfSigned returns a self-signed server certificate for names (cached),
// as a captive portal or a misconfigured box presents.
func SelfSigned(names ...string) (*tls.Certificate, error) {
	key := strings.Join(names, ",")
	if v, ok := selfSigned.Load(key); ok {
		return v.(*tls.Certificate), nil
	}
	c, err := issueLeaf(nil, nil, nil, names)
	if err != nil {
		return nil, err
	}
	v, _ := selfSigned.LoadOrStore(key, c)
	return v.(*tls.Certificate), nil
}

func issueLeaf(issuer *x509.Certificate, issuerKey crypto.Signer, chain [][]byte, names []string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if issuer == nil {
		issuer, issuerKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("testbed: leaf %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: append([][]byte{der}, chain...), PrivateKey: key, Leaf: leaf}, nil
}
