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
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/zoomprobe/zoomprobe/config"
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
	// NTP-measured clock offset (certcheck.Clock.Correct), or probe time.
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

// Options are the judge's settled knowledge, built once per configuration
// (OptionsFromConfig does it for the analyzer and the probes alike).
type Options struct {
	// Roots are the trusted roots: the system's and the config's extra
	// bundles (LoadRoots). Nil means the system pool.
	Roots *x509.CertPool
	// SiteRoots are the SHA-256 of the roots the admin installed
	// (tls.extra_roots): a chain to one of them is the site's own CA, and on
	// a Zoom name positive evidence of inspection. Other roots are public.
	SiteRoots [][32]byte
	// Expected are Zoom's CAs (config tls.expected_issuers).
	Expected []Issuer
	// Products names interception products (nil: none named).
	Products *Products
	// CTLogs are the known CT logs SCTs are verified against (nil: none
	// known, every SCT is from an unknown log).
	CTLogs *CTLogs
	// RequireSCT makes a chain without a valid SCT from a known log
	// ssl_ct_invalid.
	RequireSCT bool
	// CTRequiredSince, when set, makes a chain to a public root whose leaf
	// was issued after it, with no SCT at all, ssl_ct_invalid (browsers
	// require CT for certificates issued since 2018-05-01).
	CTRequiredSince time.Time
	// Intermediates remembers CA certificates of chains that verified, to
	// judge servers that omit their intermediate (nil: no memory).
	Intermediates *Intermediates
}

// LoadRoots builds the trusted pool: the system's roots (when system is
// true) plus every certificate in the PEM files. Errors name the file.
func LoadRoots(system bool, files []string) (*x509.CertPool, error) {
	pool, _, err := loadRoots(system, files)
	return pool, err
}

// PreloadSystemRoots starts reading the system's root certificates in the
// background (a fifth of analyze's start-up on a small file): crypto/x509
// reads them once, so the first LoadRoots waits for this read instead of
// doing its own, and the rest of the start-up runs meanwhile.
func PreloadSystemRoots() { go x509.SystemCertPool() }

// loadRoots is LoadRoots that also returns the SHA-256 of the files' certificates.
func loadRoots(system bool, files []string) (*x509.CertPool, [][32]byte, error) {
	pool := x509.NewCertPool()
	if system {
		if sp, err := x509.SystemCertPool(); err == nil && sp != nil {
			pool = sp
		}
	}
	var site [][32]byte
	for _, f := range files {
		b, err := config.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.extra_roots: %w", err)
		}
		n := 0
		for {
			var blk *pem.Block
			if blk, b = pem.Decode(b); blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if blk.Type != "CERTIFICATE" || err != nil {
				continue
			}
			pool.AddCert(c)
			site = append(site, sha256.Sum256(c.Raw))
			n++
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("tls.extra_roots: %s holds no PEM certificate", f)
		}
	}
	return pool, site, nil
}

// Verdict is the judgement of one chain. Its slices may be shared with a
// Cache: treat a Verdict as read-only.
type Verdict struct {
	// Reason is the most important problem (Precedence), or finding.ReasonOK.
	Reason finding.Reason
	// Problems lists every problem found, in Precedence order; Details
	// explains each (same index).
	Problems []finding.Reason
	Details  []string
	// ZoomRoomsCode is the code a Zoom Room shows for Reason (0 for ok).
	ZoomRoomsCode int
	// Intercepted: the chain is not Zoom's (untrusted, self-signed, or, for a
	// Zoom name, not through an expected issuer): someone replaced the certificate.
	Intercepted bool
	// Confidence in Reason: "high" when the evidence is positive (see
	// README), "medium" or "low" otherwise.
	Confidence string
	// Trust is how the chain ends: "public_root", "site_root" (a root of
	// tls.extra_roots), "incomplete" (verifies only with an intermediate
	// the server did not send), "self_signed", "untrusted", "invalid".
	Trust string
	// Root is the root of the verified path ("CN (O)"), if any.
	Root string
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
	// SCTs counts timestamps: embedded, TLS extension, stapled OCSP; CT
	// says which verified.
	SCTs int
	CT   CTResult
	// OCSP is the stapled response's status: "none", "good", "revoked",
	// "unknown", "error" (unparsable, wrong signer, or stale at At).
	OCSP string
	// Detail explains the reason in words (for logs and the report).
	Detail string

	// validFrom and validUntil bound the times at which this verdict holds
	// for the same input (zero: it must not be reused). Set by Judge.
	validFrom, validUntil time.Time
}

// Precedence orders problems, most serious first: Reason is the first
// present. It follows Chromium's MapCertStatusToNetError (net/cert/
// cert_status_flags.cc): invalid, revoked, authority, common name,
// certificate transparency, date, unable to check revocation. One
// departure: a certificate for another name comes before the authority. The
// server is then not the one asked for at all (a captive portal, a block
// page, NAC): Zoom Rooms report that as code 1, and Go's verifier checks the
// name first; an inspection box mints the right name, so its verdict stays
// the authority (code 6). Zoom's expected issuers act as a pin, judged on a
// certificate for the right name; a wrong extended key usage, which Chromium
// folds into "invalid", keeps Zoom's own code 7 after the authority.
var Precedence = []finding.Reason{
	finding.ReasonInvalidCertificate,
	finding.ReasonRevoked,
	finding.ReasonInvalidHostname,
	finding.ReasonSelfSigned,
	finding.ReasonUnknownAuthority,
	finding.ReasonIncompleteChain,
	finding.ReasonUnexpectedIssuer,
	finding.ReasonInvalidPurpose,
	finding.ReasonCTInvalid,
	finding.ReasonExpired,
	finding.ReasonNotYetValid,
	finding.ReasonOCSPError,
}

// status is the per-problem state of one judgement: one bit and one detail
// per entry of Precedence, as a browser keeps a status bit per error.
type status struct {
	bits    uint32
	details [16]string
}

func (s *status) set(r finding.Reason, format string, args ...any) {
	for i, p := range Precedence {
		if p == r {
			if s.bits&(1<<i) == 0 {
				s.bits |= 1 << i
				s.details[i] = fmt.Sprintf(format, args...)
			}
			return
		}
	}
}

func (s *status) has(r finding.Reason) bool {
	for i, p := range Precedence {
		if p == r {
			return s.bits&(1<<i) != 0
		}
	}
	return false
}

// ocspSkew tolerates an OCSP response dated slightly ahead of the judge.
const ocspSkew = 5 * time.Minute

var (
	oidSCTList     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
	oidOCSPSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 5}
)

// verifications counts path verifications (crypto/x509 Verify calls), so
// tests and benchmarks can show what the cache saves.
var verifications atomic.Uint64

// Judge judges a chain: each property on its own (trust, dates of every
// certificate, name, key usage, self-signature, completeness, stapled OCSP,
// CT), the most serious as Reason. It never panics on hostile input and does
// no I/O.
func Judge(in Input, opts Options) (v Verdict) {
	v = Verdict{Reason: finding.ReasonOK, OCSP: "none", Confidence: "high"}
	var st status
	defer func() { finish(&v, &st) }()

	chain := in.Chain
	if chain == nil {
		for i, der := range in.DER {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				if i == 0 {
					st.set(finding.ReasonInvalidCertificate, "the leaf certificate does not parse: %v", err)
					v.Trust = "invalid"
					return v
				}
				continue // an unparsable extra certificate: judge without it
			}
			chain = append(chain, c)
		}
	}
	for len(chain) > 0 && chain[len(chain)-1] == nil {
		chain = chain[:len(chain)-1]
	}
	if len(chain) == 0 || chain[0] == nil {
		st.set(finding.ReasonInvalidCertificate, "no certificate presented")
		v.Trust = "invalid"
		return v
	}
	clean := chain[:0:0]
	for _, c := range chain {
		if c != nil {
			clean = append(clean, c)
		}
	}
	chain = clean
	leaf := chain[0]
	leafSum := sha256.Sum256(leaf.Raw)
	v.LeafSHA256 = hex.EncodeToString(leafSum[:])
	v.Issuer, v.IssuerCN, v.Subject = leaf.Issuer.String(), leaf.Issuer.CommonName, leaf.Subject.String()
	v.NotBefore, v.NotAfter = leaf.NotBefore, leaf.NotAfter
	for _, c := range chain {
		v.Chain = append(v.Chain, summary(c))
	}
	at := in.At
	if at.IsZero() {
		at = time.Now()
	}
	zoomName := in.Zoom

	// Trust, apart from dates.
	pb := buildPath(leaf, chain, opts, at)
	selfSigned := isSelfSigned(leaf)
	path := pb.path
	var issuer *x509.Certificate // the leaf's issuer, wherever it came from
	switch {
	case len(path) > 1:
		issuer = path[1]
	case pb.presentedIssuer != nil:
		issuer = pb.presentedIssuer
	case pb.learnedIssuer != nil:
		issuer = pb.learnedIssuer
	}

	// Stapled OCSP (its SCTs are needed for CT below).
	var ocspSCTs [][]byte
	ocspFrom, ocspUntil := time.Time{}, time.Time{}
	if len(in.OCSP) > 0 {
		resp, err := parseOCSP(in.OCSP, leaf, issuer)
		switch {
		case err != nil:
			v.OCSP = "error"
			st.set(finding.ReasonOCSPError, "the stapled OCSP response is unusable: %v", err)
		case resp.Status == ocsp.Revoked:
			v.OCSP = "revoked"
			st.set(finding.ReasonRevoked, "the stapled OCSP response says revoked on %s", resp.RevokedAt.UTC().Format(time.RFC3339))
		case resp.ThisUpdate.After(at.Add(ocspSkew)) || !resp.NextUpdate.IsZero() && at.After(resp.NextUpdate):
			v.OCSP = "error"
			st.set(finding.ReasonOCSPError, "the stapled OCSP response is valid %s to %s, not at %s (check the clock)",
				resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		case resp.Status == ocsp.Good:
			v.OCSP = "good"
		default:
			v.OCSP = "unknown"
		}
		if err == nil {
			ocspFrom, ocspUntil = resp.ThisUpdate.Add(-ocspSkew), resp.NextUpdate
			for _, e := range resp.Extensions {
				if e.Id.Equal(oidOCSPSCTList) {
					l, _ := sctListExt(e.Value)
					ocspSCTs = append(ocspSCTs, l...)
				}
			}
		}
	}

	// Certificate transparency, verified against the known logs.
	v.CT = checkSCTs(leaf, issuer, in.SCTs, ocspSCTs, opts.CTLogs)
	v.SCTs = v.CT.Total
	public := v.CT.Public()

	switch {
	case pb.err == nil && pb.viaLearned:
		v.Trust = "incomplete"
		st.set(finding.ReasonIncompleteChain, "the server does not send the certificate of its issuer %s; with it (seen from other servers) the chain reaches %s: a server misconfiguration, fix the chain it sends",
			issuerName(leaf), summary(path[len(path)-1]))
	case pb.err == nil:
		v.Trust = "public_root"
		if pb.siteRoot {
			v.Trust = "site_root"
		}
	case selfSigned:
		v.Trust = "self_signed"
		st.set(finding.ReasonSelfSigned, "the certificate is self-signed (%s)", name(leaf))
		v.Intercepted = true
	case pb.invalid:
		v.Trust = "invalid"
		st.set(finding.ReasonInvalidCertificate, "the chain is invalid: %v", pb.err)
	case pb.presentedIssuer == nil && pb.learnedIssuer == nil && (public || v.CT.Unverifiable > 0):
		// The issuer is missing and known logs vouch for the leaf: a public
		// CA's certificate whose server forgot the intermediate.
		v.Trust = "incomplete"
		how := fmt.Sprintf("valid SCTs from %s", strings.Join(v.CT.Logs, ", "))
		if !public {
			how = "SCTs from known CT logs (not verifiable without the issuer's key)"
		}
		st.set(finding.ReasonIncompleteChain, "the server does not send the certificate of its issuer %s, so the chain cannot be built here; %s say a public CA issued it: a server misconfiguration, fix the chain it sends",
			issuerName(leaf), how)
	case public:
		// Complete, publicly logged, yet untrusted here: a public CA this
		// machine's store lacks (an old capture, a distrusted CA).
		v.Trust = "untrusted"
		st.set(finding.ReasonUnknownAuthority, "the chain ends at %s, which this machine does not trust; valid SCTs from %s show a public CA issued it: this machine's root store may lack that CA (old capture, distrusted CA)",
			summary(chain[len(chain)-1]), strings.Join(v.CT.Logs, ", "))
	default:
		v.Trust = "untrusted"
		missing := ""
		if pb.presentedIssuer == nil {
			missing = " (the server sent no certificate for it)"
		}
		st.set(finding.ReasonUnknownAuthority, "the chain does not reach a trusted root (issuer %s%s)", issuerName(leaf), missing)
		v.Intercepted = true
	}
	if len(path) > 0 {
		v.Root = summary(path[len(path)-1])
	}

	// Validity at the judged time, for every certificate of the path (or,
	// without one, every presented certificate); a trust anchor's own dates
	// are not checked, as browsers do not.
	dated := chain
	if len(path) > 0 {
		dated = path[:len(path)-1]
	}
	for _, c := range dated {
		if at.After(c.NotAfter) {
			st.set(finding.ReasonExpired, "%s expired on %s (judged at %s)", name(c), c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		} else if at.Before(c.NotBefore) {
			st.set(finding.ReasonNotYetValid, "%s is valid only from %s (judged at %s)", name(c), c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
	}

	// Extended key usage: the leaf and every CA above it that restricts it.
	eku := dated
	if len(path) > 0 {
		eku = path
	}
	for _, c := range eku {
		if !hasServerAuth(c) {
			st.set(finding.ReasonInvalidPurpose, "%s does not allow server authentication (extended key usage %s)", name(c), ekuNames(c))
			break
		}
	}

	// Host name (RFC 6125 as crypto/x509 applies it).
	if in.Host != "" {
		if err := leaf.VerifyHostname(strings.TrimSuffix(in.Host, ".")); err != nil {
			st.set(finding.ReasonInvalidHostname, "the certificate is for %s, not %s", certNames(leaf), in.Host)
		}
	}

	// Zoom's expected issuers: a pin on a chain that verifies.
	if zoomName && pb.err == nil && len(opts.Expected) > 0 && !reachesExpected(pb.all, opts.Expected, at) {
		st.set(finding.ReasonUnexpectedIssuer, "the chain is trusted here but does not pass through Zoom's certificate authorities (root %s)", summary(path[len(path)-1]))
		v.Intercepted = true
	}

	// CT verdicts.
	switch {
	case v.CT.Invalid > 0:
		st.set(finding.ReasonCTInvalid, "the SCT from %s does not verify: the certificate was not the one logged (forged or altered)", strings.Join(v.CT.InvalidLogs, ", "))
	case opts.RequireSCT && !public:
		st.set(finding.ReasonCTInvalid, "no valid SCT from a known CT log (%d found: %d from unknown logs, %d unverifiable, %d malformed)", v.CT.Total, v.CT.UnknownLog, v.CT.Unverifiable, v.CT.Malformed)
	case !opts.CTRequiredSince.IsZero() && pb.err == nil && !pb.siteRoot && v.CT.Total == 0 && !leaf.NotBefore.Before(opts.CTRequiredSince):
		st.set(finding.ReasonCTInvalid, "a publicly trusted certificate issued on %s carries no SCT (none embedded, in the TLS extension or in stapled OCSP); browsers and Zoom require them since %s",
			leaf.NotBefore.UTC().Format("2006-01-02"), opts.CTRequiredSince.UTC().Format("2006-01-02"))
	}

	// Product: names and keys in the presented chain and the verified path.
	all := chain
	if len(pb.all) > 0 {
		all = append(append([]*x509.Certificate{}, chain...), pb.all...)
	}
	if p, ok := opts.Products.Match(all); ok {
		v.Product, v.ProductKind = p.Name, p.Kind
	}

	v.Confidence = confidence(&v, &st, pb, zoomName, selfSigned)

	// Learn the intermediates of a path that verified to a root.
	if pb.err == nil && !pb.viaLearned && opts.Intermediates != nil && len(path) > 2 {
		opts.Intermediates.learn(path[1 : len(path)-1])
	}

	// The verdict holds for the same input at any time inside every
	// certificate's window (and the OCSP response's, and before any
	// expected issuer's end) unless trust depended on learned state.
	dependsOnMemory := opts.Intermediates != nil && pb.presentedIssuer == nil && !selfSigned && (pb.err != nil || pb.viaLearned)
	if st.bits&dateBits == 0 && !dependsOnMemory {
		lo, hi := window(chain, path)
		if len(in.OCSP) > 0 {
			if ocspUntil.IsZero() {
				hi = lo // no window: do not reuse
			} else {
				lo, hi = maxTime(lo, ocspFrom), minTime(hi, ocspUntil)
			}
		}
		for _, is := range opts.Expected {
			if is.Until.IsZero() {
				continue
			}
			if at.Before(is.Until) {
				hi = minTime(hi, is.Until)
			} else {
				lo = maxTime(lo, is.Until)
			}
		}
		if !at.Before(lo) && at.Before(hi) {
			v.validFrom, v.validUntil = lo, hi
		}
	}
	return v
}

// dateBits are the status bits of the date problems.
var dateBits = func() uint32 {
	var b uint32
	for i, r := range Precedence {
		if r == finding.ReasonExpired || r == finding.ReasonNotYetValid {
			b |= 1 << i
		}
	}
	return b
}()

// confidence grades the verdict. Interception is "high" only on positive
// evidence: a known product, a private CA (self-signed, or untrusted with no
// valid SCT) on a Zoom name, a root the site installed on a Zoom name, or a
// public root with no SCT where one is required.
func confidence(v *Verdict, st *status, pb pathResult, zoomName, selfSigned bool) string {
	switch {
	case st.bits == 0:
		return "high"
	case v.Intercepted:
		switch {
		case v.Product != "":
			return "high"
		case zoomName && (selfSigned || pb.err != nil && !v.CT.Public()):
			return "high"
		case zoomName && pb.err == nil && pb.siteRoot:
			return "high"
		case zoomName && pb.err == nil && st.has(finding.ReasonCTInvalid):
			return "high"
		}
		return "medium"
	case v.Trust == "incomplete" && !pb.viaLearned:
		return "low" // the missing issuer could not be checked
	case v.Trust == "untrusted":
		return "low" // a public CA missing from this machine's store
	}
	return "high"
}

// finish derives Reason, Problems, Details and the Zoom Rooms code.
func finish(v *Verdict, st *status) {
	for i, r := range Precedence {
		if st.bits&(1<<i) == 0 {
			continue
		}
		v.Problems = append(v.Problems, r)
		v.Details = append(v.Details, st.details[i])
		if v.Reason == finding.ReasonOK {
			v.Reason, v.Detail = r, st.details[i]
		}
	}
	v.ZoomRoomsCode = zoom.RoomsCodeForReason(v.Reason)
	if v.Intercepted && v.Product == "" {
		v.Product = "unknown"
	}
	if v.Reason != finding.ReasonOK && v.Confidence == "" {
		v.Confidence = "high"
	}
}

// pathResult is the outcome of path building.
type pathResult struct {
	path []*x509.Certificate // the first verified chain, leaf to root
	all  []*x509.Certificate // every certificate of every verified chain
	err  error               // nil when a path verified
	// invalid: the failure is not about trust (a malformed or misused CA).
	invalid bool
	// presentedIssuer is a presented certificate that signed the leaf;
	// learnedIssuer one from Options.Intermediates (the server omitted it).
	presentedIssuer, learnedIssuer *x509.Certificate
	viaLearned                     bool // the path needed learnedIssuer
	siteRoot                       bool // the path ends at a root of SiteRoots
}

// buildPath finds a path from the leaf to a trusted root, apart from dates:
// at the judged time first, then at a time every presented certificate was
// valid, then link by link (the leaf signed by its issuer, the issuer's own
// chain verified inside the issuer's window), so that an expired leaf under
// a trusted issuer is judged "expired" even when the windows do not overlap.
func buildPath(leaf *x509.Certificate, chain []*x509.Certificate, opts Options, at time.Time) pathResult {
	var r pathResult
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
		if r.presentedIssuer == nil && bytes.Equal(leaf.RawIssuer, c.RawSubject) && leaf.CheckSignatureFrom(c) == nil {
			r.presentedIssuer = c
		}
	}
	verify := func(c *x509.Certificate, pool *x509.CertPool, t time.Time) ([][]*x509.Certificate, error) {
		verifications.Add(1)
		return c.Verify(x509.VerifyOptions{Roots: opts.Roots, Intermediates: pool, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	}
	done := func(chains [][]*x509.Certificate) pathResult {
		r.err = nil
		r.path = chains[0]
		for _, ch := range chains {
			r.all = append(r.all, ch...)
		}
		root := sha256.Sum256(r.path[len(r.path)-1].Raw)
		for _, s := range opts.SiteRoots {
			r.siteRoot = r.siteRoot || s == root
		}
		return r
	}
	// try verifies the leaf with pool; err is the failure at the judged time.
	try := func(pool *x509.CertPool) (chains [][]*x509.Certificate, err error) {
		times := []time.Time{at}
		if t, ok := commonTime(chain); ok && !t.Equal(at) {
			times = append(times, t)
		}
		for _, t := range times {
			chains, e := verify(leaf, pool, t)
			if e == nil {
				return chains, nil
			}
			if err == nil {
				err = e
			}
		}
		// Link by link, only when dates were the failure (never around a
		// name constraint or a malformed leaf): the issuer's chain inside
		// its own window, and the leaf's signature by it.
		var cie x509.CertificateInvalidError
		if !errors.As(err, &cie) || cie.Reason != x509.Expired {
			return nil, err
		}
		for _, is := range []*x509.Certificate{r.presentedIssuer, r.learnedIssuer} {
			if is == nil {
				continue
			}
			for _, t := range []time.Time{at, mid(is)} {
				chains, e := verify(is, pool, t)
				if e == nil {
					out := make([][]*x509.Certificate, len(chains))
					for i, ch := range chains {
						out[i] = append([]*x509.Certificate{leaf}, ch...)
					}
					return out, nil
				}
			}
		}
		return nil, err
	}
	chains, firstErr := try(inter)
	if firstErr == nil {
		return done(chains)
	}
	// The server may have omitted the leaf's issuer: complete the chain
	// with a remembered intermediate (AIA fetching, offline).
	if r.presentedIssuer == nil && opts.Intermediates != nil && !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		for _, c := range opts.Intermediates.issuersOf(leaf) {
			if leaf.CheckSignatureFrom(c) != nil {
				continue
			}
			r.learnedIssuer = c
			more := inter.Clone()
			more.AddCert(c)
			if chains, err := try(more); err == nil {
				r = done(chains)
				r.viaLearned = true
				return r
			}
		}
	}
	r.err = firstErr
	var uae x509.UnknownAuthorityError
	var cie x509.CertificateInvalidError
	switch {
	case errors.As(firstErr, &uae):
	case errors.As(firstErr, &cie) && cie.Reason == x509.Expired:
		// no time at which the chain is valid: a trust problem, judged as unknown authority
	case firstErr != nil:
		r.invalid = true
	}
	return r
}

// commonTime is a time inside every certificate's window (one second after
// the latest NotBefore), if the windows overlap.
func commonTime(chain []*x509.Certificate) (time.Time, bool) {
	lo, hi := window(chain, nil)
	if !lo.Before(hi) {
		return time.Time{}, false
	}
	return lo.Add(time.Second), true
}

// window is the intersection of the certificates' validity windows (the
// presented ones and the path's, its root excluded).
func window(chain, path []*x509.Certificate) (lo, hi time.Time) {
	all := chain
	if len(path) > 1 {
		all = append(append([]*x509.Certificate{}, chain...), path[:len(path)-1]...)
	}
	for i, c := range all {
		if i == 0 || c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	return lo, hi
}

func mid(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func parseOCSP(b []byte, leaf, issuer *x509.Certificate) (*ocsp.Response, error) {
	if issuer == nil {
		return nil, errors.New("the issuer's certificate is missing: the response's signature cannot be checked")
	}
	resp, err := ocsp.ParseResponseForCert(b, leaf, issuer)
	if err != nil {
		return nil, err
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		return nil, errors.New("the response is about another certificate")
	}
	return resp, nil
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
