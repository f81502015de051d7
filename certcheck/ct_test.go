package certcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// testLog is a CT log made for the tests: a real ECDSA P-256 key whose
// SCTs are built and signed here, byte by byte from RFC 6962 3.2, apart
// from the code under test.
type testLog struct {
	key  *ecdsa.PrivateKey
	id   [32]byte
	desc string
}

func newTestLog(t testing.TB, desc string) *testLog {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{key: k, id: sha256.Sum256(der), desc: desc}
}

// logs is a CTLogs holding the given test logs.
func logsOf(ls ...*testLog) *CTLogs {
	out := &CTLogs{byID: map[[32]byte]*CTLog{}}
	for _, l := range ls {
		out.byID[l.id] = &CTLog{Description: l.desc, Operator: "test", ID: l.id, Key: l.key.Public()}
	}
	return out
}

var testSCTTime = uint64(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())

// sct signs an entry: for a precertificate, issuerKeyHash and the TBS; for
// a certificate (TLS extension, OCSP), its DER. It returns the serialized SCT.
func (l *testLog) sct(t testing.TB, precert bool, issuerKeyHash, entry []byte) []byte {
	var signed []byte
	signed = append(signed, 0, 0) // sct_version v1, signature_type certificate_timestamp
	signed = binary.BigEndian.AppendUint64(signed, testSCTTime)
	if precert {
		signed = append(signed, 0, 1) // precert_entry
		signed = append(signed, issuerKeyHash...)
	} else {
		signed = append(signed, 0, 0) // x509_entry
	}
	signed = append(signed, byte(len(entry)>>16), byte(len(entry)>>8), byte(len(entry)))
	signed = append(signed, entry...)
	signed = append(signed, 0, 0) // no extensions
	digest := sha256.Sum256(signed)
	sig, err := ecdsa.SignASN1(rand.Reader, l.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0}
	out = append(out, l.id[:]...)
	out = binary.BigEndian.AppendUint64(out, testSCTTime)
	out = append(out, 0, 0, 4, 3) // extensions, sha256, ecdsa
	out = append(out, byte(len(sig)>>8), byte(len(sig)))
	return append(out, sig...)
}

func sctListBytes(scts ...[]byte) []byte {
	var body []byte
	for _, s := range scts {
		body = append(body, byte(len(s)>>8), byte(len(s)))
		body = append(body, s...)
	}
	return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
}

var oidPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

type leafOpts struct {
	names               []string
	notBefore, notAfter time.Time
	logs                []*testLog
}

// loggedLeaf issues a leaf as a public CA does under CT: the template is
// issued first as a precertificate (with the critical poison extension),
// which the logs sign (its TBS without the poison, i.e. the TBS the same
// template has with no CT extension at all); the final certificate then
// carries the SCT list extension. It returns the final leaf and the TBS the
// logs signed.
func loggedLeaf(t testing.TB, ca *tlstest.CA, o leafOpts) (*x509.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore, o.notAfter = tlstest.LeafNotBefore, tlstest.LeafNotAfter
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: o.names[0]}, DNSNames: o.names,
		NotBefore: o.notBefore, NotAfter: o.notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	issue := func(tm x509.Certificate) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, &tm, ca.Cert, key.Public(), ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pre := tmpl
	pre.ExtraExtensions = []pkix.Extension{{Id: oidPoison, Critical: true, Value: asn1.NullBytes}}
	precert := issue(pre)
	signedTBS := issue(tmpl).RawTBSCertificate
	poisoned := false
	for _, e := range precert.Extensions {
		poisoned = poisoned || e.Id.Equal(oidPoison) && e.Critical
	}
	if !poisoned || len(precert.RawTBSCertificate) <= len(signedTBS) {
		t.Fatal("the precertificate lacks its poison extension")
	}
	issuerKeyHash := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	var scts [][]byte
	for _, l := range o.logs {
		scts = append(scts, l.sct(t, true, issuerKeyHash[:], signedTBS))
	}
	val, err := asn1.Marshal(sctListBytes(scts...))
	if err != nil {
		t.Fatal(err)
	}
	final := tmpl
	final.ExtraExtensions = []pkix.Extension{{Id: oidSCTList, Value: val}}
	return issue(final), signedTBS
}

// The TBS rebuilt from the final certificate is the one the log signed.
func TestPrecertTBS(t *testing.T) {
	c := newCAs(t)
	log := newTestLog(t, "Test log")
	leaf, signed := loggedLeaf(t, c.zoomInter, leafOpts{names: []string{"zoom.us"}, logs: []*testLog{log}})
	got, err := precertTBS(leaf.RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(signed) {
		t.Fatalf("rebuilt TBS differs from the signed one (%d vs %d bytes)", len(got), len(signed))
	}
	if _, err := precertTBS(c.zoomInter.Cert.RawTBSCertificate); err == nil {
		t.Error("a certificate without SCT list rebuilt")
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x03, 0xa3, 0x01, 0x00}, {0x30, 0x05, 0xa3, 0x03, 0x30, 0x01, 0x00}} {
		if _, err := precertTBS(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestSCTVerification(t *testing.T) {
	c := newCAs(t)
	log1, log2, stranger := newTestLog(t, "Test log 1"), newTestLog(t, "Test log 2"), newTestLog(t, "Unlisted log")
	logs := logsOf(log1, log2)
	at := tlstest.DefaultTime
	name := "zoomfrn99mmr.zoom.us"
	opts := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts(), CTLogs: logs}

	logged, _ := loggedLeaf(t, c.zoomInter, leafOpts{names: []string{name}, logs: []*testLog{log1, log2}})
	// A forger copies a genuine certificate's SCT list into its own
	// certificate for the same name: the SCTs do not match its TBS.
	var copied []byte
	for _, e := range logged.Extensions {
		if e.Id.Equal(oidSCTList) {
			copied = e.Value
		}
	}
	forged := c.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{name}}).Leaf
	forgedTmpl := *forged
	forgedTmpl.ExtraExtensions = []pkix.Extension{{Id: oidSCTList, Value: copied}}
	der, err := x509.CreateCertificate(rand.Reader, &forgedTmpl, c.zoomInter.Cert, forged.PublicKey, c.zoomInter.Key)
	if err != nil {
		t.Fatal(err)
	}
	forgedCopy, _ := x509.ParseCertificate(der)
	// An SCT whose signature bytes were altered.
	plain := c.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{name}}).Leaf
	tlsSCT := log1.sct(t, false, nil, plain.Raw)
	tampered := append([]byte(nil), tlsSCT...)
	tampered[len(tampered)-1] ^= 1
	unlisted := stranger.sct(t, false, nil, plain.Raw)
	// SCTs in a stapled OCSP response.
	ocspList, _ := asn1.Marshal(sctListBytes(log2.sct(t, false, nil, plain.Raw)))
	stapled, err := ocsp.CreateResponse(c.zoomInter.Cert, c.zoomInter.Cert, ocsp.Response{
		Status: ocsp.Good, SerialNumber: plain.SerialNumber, ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPSCTList, Value: ocspList}},
	}, c.zoomInter.Key)
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name                             string
		in                               Input
		requireSCT                       bool
		valid, invalid, unknown, unverif int
		reason                           finding.Reason
	}{
		{"embedded from two known logs", Input{Chain: []*x509.Certificate{logged, c.zoomInter.Cert}}, true, 2, 0, 0, 0, finding.ReasonOK},
		{"copied SCT list", Input{Chain: []*x509.Certificate{forgedCopy, c.zoomInter.Cert}}, false, 0, 2, 0, 0, finding.ReasonCTInvalid},
		{"TLS extension", Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, SCTs: [][]byte{tlsSCT}}, true, 1, 0, 0, 0, finding.ReasonOK},
		{"TLS extension, altered signature", Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, SCTs: [][]byte{tampered}}, false, 0, 1, 0, 0, finding.ReasonCTInvalid},
		{"TLS extension SCT for another certificate", Input{Chain: []*x509.Certificate{logged, c.zoomInter.Cert}, SCTs: [][]byte{tlsSCT}}, false, 2, 1, 0, 0, finding.ReasonCTInvalid},
		{"unlisted log, not required", Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, SCTs: [][]byte{unlisted}}, false, 0, 0, 1, 0, finding.ReasonOK},
		{"unlisted log, required", Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, SCTs: [][]byte{unlisted}}, true, 0, 0, 1, 0, finding.ReasonCTInvalid},
		{"stapled OCSP", Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, OCSP: stapled}, true, 1, 0, 0, 0, finding.ReasonOK},
		{"embedded, issuer omitted", Input{Chain: []*x509.Certificate{logged}}, false, 0, 0, 0, 2, finding.ReasonIncompleteChain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Host, in.Zoom, in.At = name, true, at
			o := opts
			o.RequireSCT = tt.requireSCT
			v := Judge(in, o)
			if v.CT.Valid != tt.valid || v.CT.Invalid != tt.invalid || v.CT.UnknownLog != tt.unknown || v.CT.Unverifiable != tt.unverif || v.Reason != tt.reason {
				t.Errorf("CT %+v reason %s (%s), want valid %d invalid %d unknown %d unverifiable %d, %s", v.CT, v.Reason, v.Detail, tt.valid, tt.invalid, tt.unknown, tt.unverif, tt.reason)
			}
			if v.Reason == finding.ReasonCTInvalid && v.ZoomRoomsCode != 4 {
				t.Errorf("code %d", v.ZoomRoomsCode)
			}
		})
	}
	// A retired log's SCT counts only when it predates the retirement.
	retired := logsOf(log1)
	retired.byID[log1.id].State, retired.byID[log1.id].StateSince = "retired", time.UnixMilli(int64(testSCTTime)).Add(-time.Hour)
	if v := Judge(Input{Chain: []*x509.Certificate{plain, c.zoomInter.Cert}, SCTs: [][]byte{tlsSCT}, At: at}, Options{Roots: pool(c.zoomRoot), CTLogs: retired}); v.CT.Valid != 0 || v.CT.UnknownLog != 1 {
		t.Errorf("SCT after retirement: %+v", v.CT)
	}
}

// A public root, a leaf issued after browsers required CT and no SCT
// anywhere: code 4, unless the root is one the site installed.
func TestCTRequiredSince(t *testing.T) {
	c := newCAs(t)
	leaf := c.public.Leaf(t, tlstest.LeafSpec{Names: []string{"example.com"}}).Leaf
	opts := Options{Roots: pool(c.public), CTRequiredSince: CTRequiredSince}
	in := Input{Chain: []*x509.Certificate{leaf}, Host: "example.com", At: tlstest.DefaultTime}
	if v := Judge(in, opts); v.Reason != finding.ReasonCTInvalid || v.ZoomRoomsCode != 4 {
		t.Errorf("public: %s (%s)", v.Reason, v.Detail)
	}
	opts.SiteRoots = [][32]byte{sha256.Sum256(c.public.Cert.Raw)}
	if v := Judge(in, opts); v.Reason != finding.ReasonOK || v.Trust != "site_root" {
		t.Errorf("site root: %s %s (%s)", v.Reason, v.Trust, v.Detail)
	}
}

func TestCTLogsFile(t *testing.T) {
	l := DefaultCTLogs()
	if l.Len() < 40 {
		t.Fatalf("built-in list has %d logs", l.Len())
	}
	// Google's Argon2026h1, whose ID browsers show for it.
	id, _ := base64.StdEncoding.DecodeString("DleUvPOuqT4zGyyZB7P3kN+bwj1xMiXdIaklrGHFTiE=")
	var k [32]byte
	copy(k[:], id)
	if g := l.Lookup(k); g == nil || !strings.Contains(g.Description, "Argon2026h1") || g.Operator != "Google" {
		t.Errorf("Argon2026h1: %+v", g)
	}
	log := newTestLog(t, "x")
	der, _ := x509.MarshalPKIXPublicKey(log.key.Public())
	key := base64.StdEncoding.EncodeToString(der)
	logID := base64.StdEncoding.EncodeToString(log.id[:])
	good := `{"operators":[{"name":"T","logs":[{"description":"T log","log_id":"` + logID + `","key":"` + key + `","state":{"usable":{"timestamp":"2024-01-01T00:00:00Z"}}}]}]}`
	got, err := ParseCTLogs([]byte(good), "f.json")
	if err != nil || got.Len() != 1 || got.Lookup(log.id).State != "usable" {
		t.Fatalf("%v %v", got, err)
	}
	for _, tt := range []struct{ json, want string }{
		{`{`, "f.json: unexpected end"},
		{`{"operators":[]}`, "f.json: no log"},
		{`{"operators":[{"name":"T","logs":[{"description":"T","log_id":"` + logID + `","key":"!!"}]}]}`, "f.json: operators[0].logs[0].key: not base64"},
		{`{"operators":[{"name":"T","logs":[{"description":"T","log_id":"AAAA","key":"` + key + `"}]}]}`, "f.json: operators[0].logs[0].log_id: \"AAAA\" is not the SHA-256 of the key"},
		{`{"operators":[{"name":"T","logs":[{"description":"","log_id":"` + logID + `","key":"` + key + `"}]}]}`, "operators[0].logs[0].description: must be set"},
		{`{"operators":[{"name":"T","tiled_logs":[{"description":"T","log_id":"` + logID + `","key":"` + key + `","state":{"frozen":{}}}]}]}`, `operators[0].tiled_logs[0].state: "frozen" is not one of`},
		{`{"operators":[{"name":"T","logs":[{"description":"T","log_id":"` + logID + `","key":"` + key + `"},{"description":"T","log_id":"` + logID + `","key":"` + key + `"}]}]}`, "operators[0].logs[1].log_id: listed twice"},
	} {
		if _, err := ParseCTLogs([]byte(tt.json), "f.json"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.json, err, tt.want)
		}
	}
}

// FuzzParseCTLogs: a log list file is input from disk; it must never panic
// and whatever it accepts must hold keys whose ID is their SHA-256.
func FuzzParseCTLogs(f *testing.F) {
	f.Add(embeddedCTLogs)
	f.Add([]byte(`{"operators":[{"name":"x","logs":[{"description":"d","log_id":"AA==","key":"AA==","state":{"usable":{"timestamp":"x"}}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseCTLogs(b, "f.json")
		if err != nil {
			return
		}
		for id, log := range l.byID {
			der, err := x509.MarshalPKIXPublicKey(log.Key)
			if err != nil || sha256.Sum256(der) != id {
				t.Fatalf("log %q: id does not match its key", log.Description)
			}
		}
	})
}
