// Package certcheck is zoomprobe's one judgement of a server certificate
// chain, shared by the passive TLS analyzer and the active TLS probe: given
// the chain a server presented, the name asked for, the (corrected) time and
// any stapled OCSP response and SCTs, Judge says what a Zoom client or Room
// would make of it: the finding reason, the Zoom Rooms code, and which
// interception product served it. See README.md.
package certcheck

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/ocsp"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Input is one chain to judge.
type Input struct {
	// Chain is what the server presented, leaf first. When nil, DER is parsed.
	Chain []*x509.Certificate
	DER   [][]byte
	// Host is the name the client asked for (SNI, or the probe's target);
	// empty skips the host name check.
	Host string
	// At is the time to judge validity at: packet time corrected by the
	// NTP-measured clock offset (analyzers.Clock.Correct), or probe time.
	At time.Time
	// OCSP is a stapled OCSP response (TLS CertificateStatus), if any.
	OCSP []byte
	// SCTs are signed certificate timestamps from the TLS extension.
	SCTs [][]byte
	// Zoom says the server is Zoom's: its chain must then pass through one of
	// Options.Expected, or it is interception.
	Zoom bool
}

// Issuer is one of Zoom's expected CAs: matched by subject CN, by SPKI
// SHA-256, or both (then both must match); Until (if set) ends its validity
// as an expected issuer (Go Daddy, before 2022).
type Issuer struct {
	CN    string
	SPKI  [32]byte
	Until time.Time

	hasSPKI bool
}

// NewIssuer builds an Issuer from a CN and/or a hex SPKI SHA-256 (colons
// allowed) and an optional end.
func NewIssuer(cn, spkiHex string, until time.Time) (Issuer, error) {
	is := Issuer{CN: strings.TrimSpace(cn), Until: until}
	if spkiHex != "" {
		sum, err := parseSPKI(spkiHex)
		if err != nil {
			return Issuer{}, err
		}
		is.SPKI, is.hasSPKI = sum, true
	}
	if is.CN == "" && !is.hasSPKI {
		return Issuer{}, errors.New("an expected issuer needs a CN or an SPKI SHA-256")
	}
	return is, nil
}

// IssuerFromCert is an Issuer matching exactly cert (by CN and key).
func IssuerFromCert(cert *x509.Certificate) Issuer {
	return Issuer{CN: cert.Subject.CommonName, SPKI: sha256.Sum256(cert.RawSubjectPublicKeyInfo), hasSPKI: true}
}

func (is Issuer) matches(c *x509.Certificate, at time.Time) bool {
	if !is.Until.IsZero() && !at.Before(is.Until) {
		return false
	}
	if is.CN != "" && !strings.EqualFold(is.CN, c.Subject.CommonName) {
		return false
	}
	if is.hasSPKI && sha256.Sum256(c.RawSubjectPublicKeyInfo) != is.SPKI {
		return false
	}
	return true
}

// Options are the judge's settled knowledge, built once per configuration.
type Options struct {
	// Roots are the trusted roots: the system's and the config's extra
	// bundles (LoadRoots). Nil means the system pool.
	Roots *x509.CertPool
	// Expected are Zoom's CAs (config tls.expected_issuers).
	Expected []Issuer
	// Products names interception products (nil: none named).
	Products *Products
	// RequireSCT makes a chain without any SCT ssl_ct_invalid.
	RequireSCT bool
}

// LoadRoots builds the trusted pool: the system's roots (when system is
// true) plus every certificate in the PEM files. Errors name the file.
func LoadRoots(system bool, files []string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if system {
		if sp, err := x509.SystemCertPool(); err == nil && sp != nil {
			pool = sp
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tls.extra_roots: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls.extra_roots: %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// Verdict is the judgement of one chain.
type Verdict struct {
	// Reason is the most important problem, or finding.ReasonOK.
	Reason finding.Reason
	// Problems lists every problem found, most important first.
	Problems []finding.Reason
	// ZoomRoomsCode is the code a Zoom Room shows for Reason (0 for ok).
	ZoomRoomsCode int
	// Intercepted: the chain is not Zoom's (untrusted, self-signed, or, for a
	// Zoom name, not through an expected issuer): someone replaced the certificate.
	Intercepted bool
	// Product is the interception product the chain matched; "unknown" for
	// an intercepted chain that matches none; "" otherwise.
	Product     string
	ProductKind string
	// Issuer is the leaf's issuer DN and IssuerCN its common name.
	Issuer, IssuerCN string
	// Subject is the leaf's subject DN.
	Subject string
	// LeafSHA256 is the hex SHA-256 of the leaf's DER.
	LeafSHA256 string
	// Chain summarises the presented certificates, leaf first ("CN (O)").
	Chain []string
	// NotBefore and NotAfter are the leaf's validity.
	NotBefore, NotAfter time.Time
	// SCTs counts timestamps: embedded, TLS extension, stapled OCSP.
	SCTs int
	// OCSP is the stapled response's status: "none", "good", "revoked",
	// "unknown", "error" (unparsable, wrong signer, or stale at At).
	OCSP string
	// Detail explains the reason in words (for logs and the report).
	Detail string
}

// priority orders problems: the first found in this list becomes Reason.
// A host name mismatch ranks above the issuer: an inspection proxy mints the
// right name (so its verdict is the issuer, code 6), while a captive portal or
// NAC answers with its own name, which Zoom documents as code 1.
var priority = []finding.Reason{
	finding.ReasonInvalidCertificate,
	finding.ReasonInvalidHostname,
	finding.ReasonSelfSigned,
	finding.ReasonUnknownAuthority,
	finding.ReasonUnexpectedIssuer,
	finding.ReasonExpired,
	finding.ReasonNotYetValid,
	finding.ReasonInvalidPurpose,
	finding.ReasonRevoked,
	finding.ReasonOCSPError,
	finding.ReasonCTInvalid,
}

// ocspSkew tolerates an OCSP response dated slightly ahead of the judge.
const ocspSkew = 5 * time.Minute

var (
	oidSCTList     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
	oidOCSPSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 5}
)

// Judge judges a chain. It never panics on hostile input and does no I/O.
func Judge(in Input, opts Options) (v Verdict) {
	v = Verdict{Reason: finding.ReasonOK, OCSP: "none"}
	details := map[finding.Reason]string{}
	problem := func(r finding.Reason, format string, args ...any) {
		if _, dup := details[r]; !dup {
			details[r] = fmt.Sprintf(format, args...)
		}
	}
	defer func() {
		for _, r := range priority {
			if d, ok := details[r]; ok {
				v.Problems = append(v.Problems, r)
				if v.Reason == finding.ReasonOK {
					v.Reason, v.Detail = r, d
				}
			}
		}
		v.ZoomRoomsCode = zoom.RoomsCodeForReason(v.Reason)
		if v.Intercepted && v.Product == "" {
			v.Product = "unknown"
		}
	}()

	chain := in.Chain
	if chain == nil {
		for i, der := range in.DER {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				if i == 0 {
					problem(finding.ReasonInvalidCertificate, "the leaf certificate does not parse: %v", err)
					return v
				}
				continue // an unparsable extra certificate: judge without it
			}
			chain = append(chain, c)
		}
	}
	if len(chain) == 0 || chain[0] == nil {
		problem(finding.ReasonInvalidCertificate, "no certificate presented")
		return v
	}
	leaf := chain[0]
	leafSum := sha256.Sum256(leaf.Raw)
	v.LeafSHA256 = hex.EncodeToString(leafSum[:])
	v.Issuer, v.IssuerCN, v.Subject = leaf.Issuer.String(), leaf.Issuer.CommonName, leaf.Subject.String()
	v.NotBefore, v.NotAfter = leaf.NotBefore, leaf.NotAfter
	for _, c := range chain {
		if c != nil {
			v.Chain = append(v.Chain, summary(c))
		}
	}
	at := in.At
	if at.IsZero() {
		at = time.Now()
	}

	// Validity dates, for every presented certificate.
	for _, c := range chain {
		if c == nil {
			continue
		}
		if at.After(c.NotAfter) {
			problem(finding.ReasonExpired, "%s expired on %s (judged at %s)", name(c), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		} else if at.Before(c.NotBefore) {
			problem(finding.ReasonNotYetValid, "%s is valid only from %s (judged at %s)", name(c), c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
	}

	// Path building at a time every presented certificate was valid, so
	// that trust is judged apart from dates.
	vt := at
	if _, late := details[finding.ReasonExpired]; late {
		vt = validTime(chain, at)
	} else if _, early := details[finding.ReasonNotYetValid]; early {
		vt = validTime(chain, at)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	vo := x509.VerifyOptions{Roots: opts.Roots, Intermediates: inter, CurrentTime: vt, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	chains, err := leaf.Verify(vo)
	var path []*x509.Certificate // certificates of every verified chain
	if err != nil {
		var uae x509.UnknownAuthorityError
		var cie x509.CertificateInvalidError
		switch {
		case errors.As(err, &uae) && isSelfSigned(leaf):
			problem(finding.ReasonSelfSigned, "the certificate is self-signed (%s)", name(leaf))
			v.Intercepted = true
		case errors.As(err, &uae):
			problem(finding.ReasonUnknownAuthority, "the chain does not reach a trusted root (issuer %s)", issuerName(leaf))
			v.Intercepted = true
		case errors.As(err, &cie) && cie.Reason == x509.Expired:
			// dates already judged; the chain's windows do not overlap
			problem(finding.ReasonUnknownAuthority, "no time at which the whole chain is valid: %v", err)
			v.Intercepted = true
		default:
			problem(finding.ReasonInvalidCertificate, "the chain is invalid: %v", err)
		}
	} else {
		for _, ch := range chains {
			path = append(path, ch...)
		}
		// Extended key usage, judged on the verified path.
		vo.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if _, err := leaf.Verify(vo); err != nil {
			var cie x509.CertificateInvalidError
			if errors.As(err, &cie) && cie.Reason == x509.IncompatibleUsage {
				problem(finding.ReasonInvalidPurpose, "the chain does not allow server authentication (extended key usage %s)", ekuNames(leaf))
			}
		}
		if in.Zoom && len(opts.Expected) > 0 && !reachesExpected(path, opts.Expected, at) {
			problem(finding.ReasonUnexpectedIssuer, "the chain is trusted here but does not pass through Zoom's certificate authorities (root %s)", name(chains[0][len(chains[0])-1]))
			v.Intercepted = true
		}
	}
	if err != nil && !hasServerAuth(leaf) {
		problem(finding.ReasonInvalidPurpose, "the certificate does not allow server authentication (extended key usage %s)", ekuNames(leaf))
	}

	if in.Host != "" {
		if err := leaf.VerifyHostname(strings.TrimSuffix(in.Host, ".")); err != nil {
			problem(finding.ReasonInvalidHostname, "the certificate is for %s, not %s", certNames(leaf), in.Host)
		}
	}

	// Stapled OCSP.
	ocspSCTs := 0
	if len(in.OCSP) > 0 {
		var issuer *x509.Certificate
		switch {
		case len(chains) > 0 && len(chains[0]) > 1:
			issuer = chains[0][1]
		case len(chain) > 1:
			issuer = chain[1]
		}
		resp, err := parseOCSP(in.OCSP, leaf, issuer)
		switch {
		case err != nil:
			v.OCSP = "error"
			problem(finding.ReasonOCSPError, "the stapled OCSP response is unusable: %v", err)
		case resp.Status == ocsp.Revoked:
			v.OCSP = "revoked"
			problem(finding.ReasonRevoked, "the stapled OCSP response says revoked on %s", resp.RevokedAt.UTC().Format(time.RFC3339))
		case resp.ThisUpdate.After(at.Add(ocspSkew)) || !resp.NextUpdate.IsZero() && at.After(resp.NextUpdate):
			v.OCSP = "error"
			problem(finding.ReasonOCSPError, "the stapled OCSP response is valid %s to %s, not at %s (check the clock)",
				resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		case resp.Status == ocsp.Good:
			v.OCSP = "good"
		default:
			v.OCSP = "unknown"
		}
		if err == nil {
			for _, e := range resp.Extensions {
				if e.Id.Equal(oidOCSPSCTList) {
					ocspSCTs += countSCTExt(e.Value)
				}
			}
		}
	}

	// Certificate transparency: counted, not verified against log keys.
	v.SCTs = len(in.SCTs) + ocspSCTs
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidSCTList) {
			v.SCTs += countSCTExt(e.Value)
		}
	}
	if opts.RequireSCT && v.SCTs == 0 {
		problem(finding.ReasonCTInvalid, "no signed certificate timestamp: none embedded, in the TLS extension or in stapled OCSP")
	}

	// Product: names and keys in the presented chain and the verified path.
	all := chain
	if len(path) > 0 {
		all = append(append([]*x509.Certificate{}, chain...), path...)
	}
	if p, ok := opts.Products.Match(all); ok {
		v.Product, v.ProductKind = p.Name, p.Kind
	}
	return v
}

func parseOCSP(b []byte, leaf, issuer *x509.Certificate) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(b, leaf, issuer)
	if err != nil {
		return nil, err
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		return nil, errors.New("the response is about another certificate")
	}
	return resp, nil
}

// countSCTExt counts the SCTs in an X.509/OCSP extension value: an OCTET
// STRING wrapping a TLS SignedCertificateTimestampList.
func countSCTExt(val []byte) int {
	var list []byte
	if _, err := asn1.Unmarshal(val, &list); err != nil {
		return 0
	}
	s := cryptobyte.String(list)
	var inner cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&inner) {
		return 0
	}
	n := 0
	for !inner.Empty() {
		var sct cryptobyte.String
		if !inner.ReadUint16LengthPrefixed(&sct) || sct.Empty() {
			return n
		}
		n++
	}
	return n
}

func reachesExpected(path []*x509.Certificate, expected []Issuer, at time.Time) bool {
	for _, c := range path {
		for _, is := range expected {
			if is.matches(c, at) {
				return true
			}
		}
	}
	return false
}

// validTime is a time inside every certificate's window (the latest
// NotBefore), or at when the windows do not overlap.
func validTime(chain []*x509.Certificate, at time.Time) time.Time {
	var lo, hi time.Time
	for _, c := range chain {
		if c == nil {
			continue
		}
		if lo.IsZero() || c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if hi.IsZero() || c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if lo.After(hi) {
		return at
	}
	return lo.Add(time.Second)
}

func isSelfSigned(c *x509.Certificate) bool {
	// CheckSignatureFrom would refuse a non-CA "parent": check the signature itself.
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func hasServerAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

var ekuName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
	x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
}

func ekuNames(c *x509.Certificate) string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := ekuName[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprint(int(u)))
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		out = append(out, o.String())
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

func certNames(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName + " (CN only)"}
	}
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	return strings.Join(names, ", ")
}

func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return fmt.Sprintf("%q", c.Subject.String())
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return fmt.Sprintf("%q", c.Issuer.CommonName)
	}
	return fmt.Sprintf("%q", c.Issuer.String())
}

// summary is "CN (O)" of a certificate, for the chain evidence.
func summary(c *x509.Certificate) string {
	s := c.Subject.CommonName
	if s == "" {
		s = c.Subject.String()
	}
	if len(c.Subject.Organization) > 0 {
		s += " (" + c.Subject.Organization[0] + ")"
	}
	return s
}
