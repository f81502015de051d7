package certcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// intermediateWith makes a CA under parent with its own validity window.
func intermediateWith(t testing.TB, parent *tlstest.CA, cn string, notBefore, notAfter time.Time) *tlstest.CA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(), parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tlstest.CA{Cert: c, Key: key}
}

func has(v Verdict, r finding.Reason) bool {
	for _, p := range v.Problems {
		if p == r {
			return true
		}
	}
	return false
}

// An expired leaf under a trusted, expected issuer is "expired" (code 5),
// even when the issuer's window starts after the leaf's ended, so that no
// single time makes the whole chain valid.
func TestExpiredLeafUnderLaterIssuer(t *testing.T) {
	c := newCAs(t)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	issuer := intermediateWith(t, c.zoomRoot, "DigiCert TLS RSA SHA256 2020 CA1", at.AddDate(0, -1, 0), at.AddDate(5, 0, 0))
	leaf := issuer.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}, NotBefore: at.AddDate(-2, 0, 0), NotAfter: at.AddDate(0, -2, 0)}).Leaf
	expected, _ := NewIssuer("DigiCert TLS RSA SHA256 2020 CA1", "", time.Time{})
	v := Judge(Input{Chain: []*x509.Certificate{leaf, issuer.Cert}, Host: "zoom.us", Zoom: true, At: at},
		Options{Roots: pool(c.zoomRoot), Expected: []Issuer{expected}, Products: DefaultProducts()})
	if v.Reason != finding.ReasonExpired || v.ZoomRoomsCode != 5 || v.Intercepted || v.Trust != "public_root" || len(v.Problems) != 1 {
		t.Errorf("%s code %d intercepted %v trust %s problems %v (%s)", v.Reason, v.ZoomRoomsCode, v.Intercepted, v.Trust, v.Problems, v.Detail)
	}
}

// A self-signed certificate for another name reports both problems.
func TestSelfSignedWrongName(t *testing.T) {
	leaf := tlstest.NewRoot(t, pkix.Name{CommonName: "x"}) // placeholder CA for the call
	cert := leaf.Leaf(t, tlstest.LeafSpec{Names: []string{"portal.local"}, SelfSigned: true}).Leaf
	v := Judge(Input{Chain: []*x509.Certificate{cert}, Host: "zoom.us", Zoom: true, At: tlstest.DefaultTime}, Options{Roots: x509.NewCertPool()})
	if v.Reason != finding.ReasonInvalidHostname || !has(v, finding.ReasonSelfSigned) || len(v.Details) != len(v.Problems) {
		t.Fatalf("%s %v %v", v.Reason, v.Problems, v.Details)
	}
	if !v.Intercepted || v.Confidence != "high" || !strings.Contains(v.Details[0], "portal.local") {
		t.Errorf("intercepted %v confidence %s details %v", v.Intercepted, v.Confidence, v.Details)
	}
}

// Every problem is judged on its own and listed in precedence order.
func TestEveryProblemReported(t *testing.T) {
	c := newCAs(t)
	at := tlstest.DefaultTime
	leaf := c.unknown.Leaf(t, tlstest.LeafSpec{Names: []string{"other.example"}, NoServerAuth: true, NotBefore: at.AddDate(-2, 0, 0), NotAfter: at.AddDate(0, 0, -3)}).Leaf
	v := Judge(Input{Chain: []*x509.Certificate{leaf, c.unknown.Cert}, Host: "zoom.us", Zoom: true, At: at}, Options{Roots: pool(c.zoomRoot)})
	want := []finding.Reason{finding.ReasonInvalidHostname, finding.ReasonUnknownAuthority, finding.ReasonInvalidPurpose, finding.ReasonExpired}
	if len(v.Problems) != len(want) {
		t.Fatalf("problems %v, want %v", v.Problems, want)
	}
	for i := range want {
		if v.Problems[i] != want[i] || v.Details[i] == "" {
			t.Errorf("problem %d: %s %q, want %s", i, v.Problems[i], v.Details[i], want[i])
		}
	}
}

// A server that omits its intermediate is a misconfiguration, not
// interception: known from another server's complete chain, or vouched for
// by known CT logs.
func TestIncompleteChain(t *testing.T) {
	c := newCAs(t)
	at := tlstest.DefaultTime
	name := "zoomfrn99mmr.zoom.us"
	log := newTestLog(t, "Test log")
	base := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts(), CTLogs: logsOf(log)}
	plain := c.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{name}}).Leaf
	logged, _ := loggedLeaf(t, c.zoomInter, leafOpts{names: []string{name}, logs: []*testLog{log}})
	alone := func(l *x509.Certificate) Input {
		return Input{Chain: []*x509.Certificate{l}, Host: name, Zoom: true, At: at}
	}

	// Learned: another server sent the complete chain first.
	learned := base
	learned.Intermediates = NewIntermediates(16)
	if v := Judge(alone(plain), learned); v.Reason != finding.ReasonUnknownAuthority || !v.Intercepted {
		t.Fatalf("before learning: %s %v", v.Reason, v.Intercepted)
	}
	other := c.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoomam104zc.zoom.us"}}).Leaf
	if v := Judge(Input{Chain: []*x509.Certificate{other, c.zoomInter.Cert}, Host: "zoomam104zc.zoom.us", Zoom: true, At: at}, learned); v.Reason != finding.ReasonOK {
		t.Fatalf("complete chain: %s (%s)", v.Reason, v.Detail)
	}
	if learned.Intermediates.Len() != 1 {
		t.Fatalf("learned %d intermediates", learned.Intermediates.Len())
	}
	v := Judge(alone(plain), learned)
	if v.Reason != finding.ReasonIncompleteChain || v.Intercepted || v.Confidence != "high" || v.Trust != "incomplete" || v.ZoomRoomsCode != 6 {
		t.Errorf("learned: %s intercepted %v confidence %s trust %s code %d (%s)", v.Reason, v.Intercepted, v.Confidence, v.Trust, v.ZoomRoomsCode, v.Detail)
	}
	// Completed with the learned issuer, the embedded SCTs verify too.
	if v := Judge(alone(logged), learned); v.Reason != finding.ReasonIncompleteChain || v.CT.Valid != 1 {
		t.Errorf("learned, logged: %s %+v", v.Reason, v.CT)
	}

	// Not learned: known logs vouch for the leaf.
	tlsSCT := log.sct(t, false, nil, plain.Raw)
	in := alone(plain)
	in.SCTs = [][]byte{tlsSCT}
	if v := Judge(in, base); v.Reason != finding.ReasonIncompleteChain || v.Intercepted || v.Confidence != "low" || !strings.Contains(v.Detail, "Test log") {
		t.Errorf("TLS SCT: %s intercepted %v confidence %s (%s)", v.Reason, v.Intercepted, v.Confidence, v.Detail)
	}
	if v := Judge(alone(logged), base); v.Reason != finding.ReasonIncompleteChain || v.CT.Unverifiable != 1 || v.Intercepted {
		t.Errorf("embedded SCT: %s %+v", v.Reason, v.CT)
	}
	// Nothing vouches: the issuer is unknown, and on a Zoom name with no
	// SCT that is a private CA.
	if v := Judge(alone(plain), base); v.Reason != finding.ReasonUnknownAuthority || !v.Intercepted || v.Confidence != "high" {
		t.Errorf("nothing: %s %v %s", v.Reason, v.Intercepted, v.Confidence)
	}
}

// A complete chain that known logs vouch for, ending at a CA this
// machine's store lacks, is reported with low confidence and says so.
func TestPublicCAMissingFromStore(t *testing.T) {
	c := newCAs(t)
	log := newTestLog(t, "Test log")
	name := "zoomfrn99mmr.zoom.us"
	logged, _ := loggedLeaf(t, c.zoomInter, leafOpts{names: []string{name}, logs: []*testLog{log}})
	v := Judge(Input{Chain: []*x509.Certificate{logged, c.zoomInter.Cert}, Host: name, Zoom: true, At: tlstest.DefaultTime},
		Options{Roots: pool(c.public), CTLogs: logsOf(log), Products: DefaultProducts()})
	if v.Reason != finding.ReasonUnknownAuthority || v.Intercepted || v.Confidence != "low" || !strings.Contains(v.Detail, "root store") {
		t.Errorf("%s intercepted %v confidence %s (%s)", v.Reason, v.Intercepted, v.Confidence, v.Detail)
	}
}

// Interception is "high" only with positive evidence.
func TestInterceptionConfidence(t *testing.T) {
	c := newCAs(t)
	at := tlstest.DefaultTime
	zoomName := "zoomfrn99mmr.zoom.us"
	opts := Options{Roots: pool(c.zoomRoot, c.public), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts(), CTRequiredSince: CTRequiredSince}
	noCT := opts
	noCT.CTRequiredSince = time.Time{}
	site := opts
	site.Roots = pool(c.zoomRoot, c.unknown)
	site.SiteRoots = [][32]byte{sha256.Sum256(c.unknown.Cert.Raw)}
	for _, tt := range []struct {
		name        string
		chain       []*x509.Certificate
		host        string
		zoom        bool
		opts        Options
		reason      finding.Reason
		intercepted bool
		confidence  string
	}{
		{"known product", chainOf(t, c.forti, tlstest.LeafSpec{Names: []string{zoomName}}, c.forti), zoomName, true, opts, finding.ReasonUnknownAuthority, true, "high"},
		{"private CA on a Zoom name", chainOf(t, c.unknown, tlstest.LeafSpec{Names: []string{zoomName}}, c.unknown), zoomName, true, opts, finding.ReasonUnknownAuthority, true, "high"},
		{"private CA on another watched name", chainOf(t, c.unknown, tlstest.LeafSpec{Names: []string{"intranet.example"}}, c.unknown), "intranet.example", false, opts, finding.ReasonUnknownAuthority, true, "medium"},
		{"root the site installed, on a Zoom name", chainOf(t, c.unknown, tlstest.LeafSpec{Names: []string{zoomName}}, c.unknown), zoomName, true, site, finding.ReasonUnexpectedIssuer, true, "high"},
		{"public root without SCT on a Zoom name", chainOf(t, c.public, tlstest.LeafSpec{Names: []string{zoomName}}), zoomName, true, opts, finding.ReasonUnexpectedIssuer, true, "high"},
		{"expired Zoom chain", chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}, NotBefore: at.AddDate(-1, 0, 0), NotAfter: at.AddDate(0, 0, -1)}, c.zoomInter), zoomName, true, noCT, finding.ReasonExpired, false, "high"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(Input{Chain: tt.chain, Host: tt.host, Zoom: tt.zoom, At: at}, tt.opts)
			if v.Reason != tt.reason || v.Intercepted != tt.intercepted || v.Confidence != tt.confidence {
				t.Errorf("%s intercepted %v confidence %s (problems %v: %s), want %s %v %s", v.Reason, v.Intercepted, v.Confidence, v.Problems, v.Detail, tt.reason, tt.intercepted, tt.confidence)
			}
		})
	}
}

// docs/reasons.md states the precedence the code uses.
func TestPrecedenceDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^Precedence[^:]*: (.*)$").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/reasons.md has no line starting \"Precedence...:\"")
	}
	var doc []string
	for _, r := range regexp.MustCompile("`([a-z_]+)`").FindAllSubmatch(m[1], -1) {
		doc = append(doc, string(r[1]))
	}
	var code []string
	for _, r := range Precedence {
		code = append(code, string(r))
	}
	if strings.Join(doc, " ") != strings.Join(code, " ") {
		t.Errorf("docs: %v\ncode: %v", doc, code)
	}
}
