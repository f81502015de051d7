package certcheck

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

type testCAs struct {
	zoomRoot, zoomInter, forti, unknown, public, goDaddy *tlstest.CA
}

func newCAs(t testing.TB) *testCAs {
	c := &testCAs{}
	c.zoomRoot = tlstest.NewRoot(t, pkix.Name{CommonName: "Test Zoom Root", Organization: []string{"DigiCert Inc"}})
	c.zoomInter = c.zoomRoot.Intermediate(t, pkix.Name{CommonName: "Test Zoom TLS CA1", Organization: []string{"DigiCert Inc"}})
	c.forti = tlstest.NewRoot(t, pkix.Name{CommonName: "FortiGate CA", Organization: []string{"Fortinet"}, OrganizationalUnit: []string{"Certificate Authority"}})
	c.unknown = tlstest.NewRoot(t, pkix.Name{CommonName: "Gateway Authentication"})
	c.public = tlstest.NewRoot(t, pkix.Name{CommonName: "Test Public CA"})
	c.goDaddy = tlstest.NewRoot(t, pkix.Name{CommonName: "Go Daddy Root Certificate Authority - G2"})
	return c
}

func pool(cas ...*tlstest.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c.Cert)
	}
	return p
}

func chainOf(t testing.TB, ca *tlstest.CA, spec tlstest.LeafSpec, extra ...*tlstest.CA) []*x509.Certificate {
	cert := ca.Leaf(t, spec, extra...)
	out := []*x509.Certificate{cert.Leaf}
	for _, e := range extra {
		out = append(out, e.Cert)
	}
	return out
}

func TestJudge(t *testing.T) {
	c := newCAs(t)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	zoomName := "zoomfrn99mmr.zoom.us"
	zoomLeaf := tlstest.LeafSpec{Names: []string{zoomName}, Org: "Zoom Video Communications, Inc.", EmbedSCT: true}
	ctLog := newTestLog(t, "Test CT log")
	logged, _ := loggedLeaf(t, c.zoomInter, leafOpts{names: []string{zoomName}, logs: []*testLog{ctLog}})
	zoomChain := []*x509.Certificate{logged, c.zoomInter.Cert}
	trusted := pool(c.zoomRoot, c.public, c.goDaddy)
	siteInstalled := pool(c.zoomRoot, c.public, c.forti)
	expected := []Issuer{IssuerFromCert(c.zoomRoot.Cert)}
	gd, err := NewIssuer("Go Daddy Root Certificate Authority - G2", "", time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	withGoDaddy := append([]Issuer{gd}, expected...)
	revoked := c.zoomInter.OCSP(t, zoomChain[0], ocsp.Revoked, at.Add(-time.Hour))
	good := c.zoomInter.OCSP(t, zoomChain[0], ocsp.Good, at.Add(-time.Hour))
	stale := c.zoomInter.OCSP(t, zoomChain[0], ocsp.Good, at.Add(-30*24*time.Hour))
	otherSigner := c.unknown.OCSP(t, zoomChain[0], ocsp.Good, at.Add(-time.Hour))

	tests := []struct {
		name        string
		in          Input
		roots       *x509.CertPool
		expected    []Issuer
		requireSCT  bool
		reason      finding.Reason
		code        int
		product     string
		intercepted bool
		ocsp        string
	}{
		{"genuine Zoom chain", Input{Chain: zoomChain, Host: zoomName, Zoom: true}, trusted, expected, true,
			finding.ReasonOK, 0, "", false, "none"},
		{"genuine with good stapled OCSP", Input{Chain: zoomChain, Host: zoomName, Zoom: true, OCSP: good}, trusted, expected, false,
			finding.ReasonOK, 0, "", false, "good"},
		{"FortiGate CA the site installed", Input{Chain: chainOf(t, c.forti, zoomLeaf), Host: zoomName, Zoom: true}, siteInstalled, expected, false,
			finding.ReasonUnexpectedIssuer, 6, "FortiGate", true, "none"},
		{"FortiGate CA not installed", Input{Chain: chainOf(t, c.forti, zoomLeaf, c.forti), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonUnknownAuthority, 6, "FortiGate", true, "none"},
		{"unknown inspection CA", Input{Chain: chainOf(t, c.unknown, zoomLeaf), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonUnknownAuthority, 6, "unknown", true, "none"},
		{"expired", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}, NotBefore: at.AddDate(-2, 0, 0), NotAfter: at.AddDate(0, 0, -1)}, c.zoomInter), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonExpired, 5, "", false, "none"},
		{"not yet valid", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}, NotBefore: at.AddDate(0, 0, 1), NotAfter: at.AddDate(1, 0, 0)}, c.zoomInter), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonNotYetValid, 5, "", false, "none"},
		{"wildcard covers one label only", Input{Chain: chainOf(t, c.public, tlstest.LeafSpec{Names: []string{"*.badssl.com"}}), Host: "wrong.host.badssl.com"}, trusted, expected, false,
			finding.ReasonInvalidHostname, 1, "", false, "none"},
		{"wildcard covers its label", Input{Chain: chainOf(t, c.public, tlstest.LeafSpec{Names: []string{"*.badssl.com"}}), Host: "host.badssl.com"}, trusted, expected, false,
			finding.ReasonOK, 0, "", false, "none"},
		{"Zoom chain for another name", Input{Chain: zoomChain, Host: "zoomam104zc.zoom.us", Zoom: true}, trusted, expected, false,
			finding.ReasonInvalidHostname, 1, "", false, "none"},
		{"captive portal certificate", Input{Chain: chainOf(t, c.public, tlstest.LeafSpec{Names: []string{"securelogin.arubanetworks.com"}}), Host: "zoom.us", Zoom: true}, trusted, expected, false,
			finding.ReasonInvalidHostname, 1, "Aruba captive portal", true, "none"},
		{"self-signed", Input{Chain: chainOf(t, nil, tlstest.LeafSpec{Names: []string{zoomName}, SelfSigned: true}), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonSelfSigned, 6, "unknown", true, "none"},
		{"no serverAuth", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}, NoServerAuth: true}, c.zoomInter), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonInvalidPurpose, 7, "", false, "none"},
		{"revoked (stapled OCSP)", Input{Chain: zoomChain, Host: zoomName, Zoom: true, OCSP: revoked}, trusted, expected, false,
			finding.ReasonRevoked, 2, "", false, "revoked"},
		{"OCSP garbage", Input{Chain: zoomChain, Host: zoomName, Zoom: true, OCSP: []byte{0x30, 3, 1, 2, 3}}, trusted, expected, false,
			finding.ReasonOCSPError, 3, "", false, "error"},
		{"OCSP stale (wrong clock)", Input{Chain: zoomChain, Host: zoomName, Zoom: true, OCSP: stale}, trusted, expected, false,
			finding.ReasonOCSPError, 3, "", false, "error"},
		{"OCSP signed by someone else", Input{Chain: zoomChain, Host: zoomName, Zoom: true, OCSP: otherSigner}, trusted, expected, false,
			finding.ReasonOCSPError, 3, "", false, "error"},
		{"no SCTs, policy requires", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}}, c.zoomInter), Host: zoomName, Zoom: true}, trusted, expected, true,
			finding.ReasonCTInvalid, 4, "", false, "none"},
		{"no SCTs, policy does not require", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}}, c.zoomInter), Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonOK, 0, "", false, "none"},
		{"an unsigned SCT from no known log, policy requires", Input{Chain: chainOf(t, c.zoomInter, tlstest.LeafSpec{Names: []string{zoomName}}, c.zoomInter), Host: zoomName, Zoom: true, SCTs: [][]byte{tlstest.FakeSCT()}}, trusted, expected, true,
			finding.ReasonCTInvalid, 4, "", false, "none"},
		{"Go Daddy in 2020", Input{Chain: chainOf(t, c.goDaddy, tlstest.LeafSpec{Names: []string{"*.zoom.us"}, NotBefore: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}), Host: "zoom.us.", Zoom: false, At: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)}, trusted, withGoDaddy, false,
			finding.ReasonInvalidHostname, 1, "", false, "none"},
		{"Go Daddy expected in 2020", Input{Chain: chainOf(t, c.goDaddy, tlstest.LeafSpec{Names: []string{"*.zoom.us"}, NotBefore: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}), Host: "www.zoom.us", Zoom: true, At: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)}, trusted, withGoDaddy, false,
			finding.ReasonOK, 0, "", false, "none"},
		{"Go Daddy no longer expected in 2026", Input{Chain: chainOf(t, c.goDaddy, tlstest.LeafSpec{Names: []string{"*.zoom.us"}, NotBefore: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}), Host: "www.zoom.us", Zoom: true}, trusted, withGoDaddy, false,
			finding.ReasonUnexpectedIssuer, 6, "unknown", true, "none"},
		{"unparsable leaf", Input{DER: [][]byte{{0x30, 0x03, 1, 2, 3}}, Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonInvalidCertificate, 100, "", false, "none"},
		{"nothing presented", Input{Host: zoomName, Zoom: true}, trusted, expected, false,
			finding.ReasonInvalidCertificate, 100, "", false, "none"},
	}
	products := DefaultProducts()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.At.IsZero() {
				in.At = at
			}
			v := Judge(in, Options{Roots: tt.roots, Expected: tt.expected, Products: products, RequireSCT: tt.requireSCT, CTLogs: logsOf(ctLog)})
			if v.Reason != tt.reason || v.ZoomRoomsCode != tt.code || v.Product != tt.product || v.Intercepted != tt.intercepted || v.OCSP != tt.ocsp {
				t.Errorf("got reason %s code %d product %q intercepted %v ocsp %s (%s; problems %v), want %s %d %q %v %s",
					v.Reason, v.ZoomRoomsCode, v.Product, v.Intercepted, v.OCSP, v.Detail, v.Problems, tt.reason, tt.code, tt.product, tt.intercepted, tt.ocsp)
			}
			if v.Reason != finding.ReasonOK && (v.Detail == "" || len(v.Problems) == 0 || v.Problems[0] != v.Reason) {
				t.Errorf("detail %q problems %v", v.Detail, v.Problems)
			}
			if len(in.Chain) > 0 && (len(v.LeafSHA256) != 64 || !v.NotAfter.Equal(in.Chain[0].NotAfter) || len(v.Chain) != len(in.Chain)) {
				t.Errorf("evidence: leaf %q not_after %v chain %v", v.LeafSHA256, v.NotAfter, v.Chain)
			}
		})
	}
}

// The same chain is judged at the corrected time: a capture from 2020 with
// a certificate valid then is fine, whatever today's date.
func TestJudgesAtGivenTime(t *testing.T) {
	c := newCAs(t)
	leaf := tlstest.LeafSpec{Names: []string{"zoom.us"}, NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}
	chain := chainOf(t, c.zoomInter, leaf, c.zoomInter)
	opts := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}}
	for _, tt := range []struct {
		at   time.Time
		want finding.Reason
	}{
		{time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC), finding.ReasonOK},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), finding.ReasonExpired},
		{time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC), finding.ReasonNotYetValid},
	} {
		if v := Judge(Input{Chain: chain, Host: "zoom.us", At: tt.at, Zoom: true}, opts); v.Reason != tt.want {
			t.Errorf("at %s: %s (%s), want %s", tt.at, v.Reason, v.Detail, tt.want)
		}
	}
}

func TestDERInput(t *testing.T) {
	c := newCAs(t)
	cert := c.forti.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}}, c.forti)
	v := Judge(Input{DER: cert.Certificate, Host: "zoom.us", Zoom: true, At: tlstest.DefaultTime}, Options{Roots: pool(c.zoomRoot), Products: DefaultProducts()})
	if v.Reason != finding.ReasonUnknownAuthority || v.Product != "FortiGate" || v.ProductKind != "firewall" || v.IssuerCN != "FortiGate CA" {
		t.Errorf("%+v", v)
	}
	if !strings.Contains(v.Chain[1], "FortiGate CA (Fortinet)") {
		t.Errorf("chain summary %v", v.Chain)
	}
}

func TestProductsFile(t *testing.T) {
	p := DefaultProducts()
	if p.Len() < 25 {
		t.Errorf("built-in list has %d products", p.Len())
	}
	c := newCAs(t)
	for _, tt := range []struct {
		issuer pkix.Name
		want   string
	}{
		{pkix.Name{CommonName: "ESET SSL Filter CA", Organization: []string{"ESET, spol. s r. o."}}, "ESET"},
		{pkix.Name{CommonName: "Zscaler Intermediate Root CA (zscaler.net)", Organization: []string{"Zscaler Inc."}}, "Zscaler"},
		{pkix.Name{CommonName: "avast! Web/Mail Shield Root"}, "Avast"},
		{pkix.Name{CommonName: "Kaspersky Anti-Virus Personal Root Certificate"}, "Kaspersky"},
		{pkix.Name{CommonName: "caadmin.netskope.com", Organization: []string{"Netskope Inc"}}, "Netskope"},
		{pkix.Name{CommonName: "Cisco Umbrella Primary SubCA"}, "Cisco Umbrella"},
		{pkix.Name{CommonName: "Sophos SSL CA_C123"}, "Sophos"},
		{pkix.Name{CommonName: "DigiCert Global Root G2"}, ""},
	} {
		ca := tlstest.NewRoot(t, tt.issuer)
		chain := chainOf(t, ca, tlstest.LeafSpec{Names: []string{"zoom.us"}})
		got, _ := p.Match(chain)
		if got.Name != tt.want {
			t.Errorf("issuer %v: product %q, want %q", tt.issuer, got.Name, tt.want)
		}
	}
	_ = c
	for _, tt := range []struct{ yaml, want string }{
		{"products:\n  - name: X\n    kind: router\n    issuer_cn: [a]\n", `f.yml: products[0].kind: "router" is not one of`},
		{"products:\n  - name: X\n    kind: proxy\n", "f.yml: products[0]: needs at least one of"},
		{"products:\n  - kind: proxy\n    issuer_cn: [a]\n", "f.yml: products[0].name: must be set"},
		{"products:\n  - name: X\n    kind: proxy\n    spki_sha256: [zz]\n", `f.yml: products[0].spki_sha256[0]: "zz" is not a SHA-256`},
		{"products:\n  - name: X\n    kind: proxy\n    issuer: [a]\n", "line 4: field issuer not found"},
	} {
		if _, err := ParseProducts([]byte(tt.yaml), "f.yml"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
	// A site's own CA recognised by its key.
	spki := IssuerFromCert(c.unknown.Cert).SPKI
	p2, err := ParseProducts([]byte("products:\n  - name: Palo Alto (site CA)\n    kind: firewall\n    spki_sha256: ['"+hexOf(spki[:])+"']\n"), "site.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p2.Match(chainOf(t, c.unknown, tlstest.LeafSpec{Names: []string{"zoom.us"}}, c.unknown)); !ok || got.Name != "Palo Alto (site CA)" {
		t.Errorf("SPKI match: %v %v", got, ok)
	}
}

func hexOf(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, d[x>>4], d[x&15])
	}
	return string(out)
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"fortigate ca", "fortigate ca", true},
		{"sophos ssl ca_*", "sophos ssl ca_c1", true},
		{"*netskope*", "ca.goskope.netskope.com", true},
		{"*.network-auth.com", "n42.network-auth.com", true},
		{"*.network-auth.com", "network-auth.com", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "x", false},
	} {
		if got := glob(tt.p, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestNewIssuer(t *testing.T) {
	if _, err := NewIssuer("", "", time.Time{}); err == nil {
		t.Error("empty issuer accepted")
	}
	if _, err := NewIssuer("", "xyz", time.Time{}); err == nil {
		t.Error("bad hex accepted")
	}
	is, err := NewIssuer("DigiCert Global Root G2", "8b:b5:93:a9:3b:e1:d0:e8:a8:22:bb:88:7c:54:78:90:c3:e7:06:aa:d2:da:b7:62:54:f9:7f:b3:6b:82:fc:26", time.Time{})
	if err != nil || !is.hasSPKI {
		t.Errorf("%v %v", is, err)
	}
}
