package probes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// ChainInput is what a TLS handshake showed about the server's identity.
type ChainInput struct {
	ServerName string
	// Chain is the peer chain as sent, leaf first.
	Chain []*x509.Certificate
	// Now is the time to judge validity at: wall clock plus the NTP offset.
	Now     time.Time
	Version uint16
	// OCSP is the stapled OCSP response, SCTs the TLS-extension SCTs.
	OCSP []byte
	SCTs [][]byte
}

// ChainVerdict is the judgement of a chain, in the analyzer's vocabulary.
type ChainVerdict struct {
	Reason finding.Reason // ok, or an ssl_* reason
	// Intercepted: the chain was issued by someone other than Zoom's CA
	// (an inspection proxy, antivirus, firewall).
	Intercepted bool
	Product     string // interception product, when the issuer names one
	RoomsCode   int    // Zoom Rooms certificate code (1-7, 100); 0 when ok
	Confidence  string
	Detail      string
	Evidence    map[string]any
}

// ChainJudge judges a peer chain. zoomprobe uses the same code as the
// passive TLS analyzer (package certcheck) so active and passive verdicts
// speak one vocabulary; see judge.go.
type ChainJudge func(ChainInput) ChainVerdict

// ProbeTLS handshakes with the default TLS versions (1.3 where the server
// offers it) and judges the peer chain.
func ProbeTLS(ctx context.Context, t Target, env Env) Result {
	return probeTLS(ctx, CheckTLS, t, env, 0)
}

// ProbeTLS12 handshakes with TLS 1.2 as the highest version, as Zoom's zone
// controllers and media routers answer, so the chain also crosses the wire
// in clear (what the passive analyzer and middleboxes see).
func ProbeTLS12(ctx context.Context, t Target, env Env) Result {
	return probeTLS(ctx, CheckTLS12, t, env, tls.VersionTLS12)
}

func probeTLS(ctx context.Context, check string, t Target, env Env, maxVersion uint16) Result {
	r := newResult(check, t, &env)
	start := time.Now()
	defer r.finish(start)
	proxy := useProxy(&env, t.Host)
	d, err := dialVia(ctx, t, &env, proxy)
	if d.proxy != "" {
		r.Evidence["proxy"] = d.proxy
	}
	if d.remote != "" {
		r.Evidence["remote"] = d.remote
	}
	if err != nil {
		return tlsConnectFailed(&env, t, r, err, d)
	}
	defer d.conn.Close()
	cfg := &tls.Config{
		ServerName: t.Host,
		// The chain is judged below by the same code as the passive analyzer,
		// so that verdicts (and their Zoom Rooms codes) are identical.
		InsecureSkipVerify: true,
		MaxVersion:         maxVersion,
		NextProtos:         []string{"http/1.1"},
	}
	tc := tls.Client(d.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		r.Reason = Classify(err)
		if r.Reason == finding.ReasonUnknown {
			r.Reason = finding.ReasonSSLFailedHandshake
		}
		r.Evidence["error"] = err.Error()
		r.Status = StatusFail
		r.Summary = fmt.Sprintf("TLS handshake with %s failed: %s", t.Label, r.Reason)
		f := connectFinding(&env, t, "tcp", zoom.ProtoTCP, r.Reason, d.remote, r.Evidence)
		f.Source = "probe/" + check
		f.Remediation = tlsHandshakeRemediation(r.Reason)
		r.Findings = append(r.Findings, f)
		return r
	}
	st := tc.ConnectionState()
	r.Evidence["version"] = tlsVersionName(st.Version)
	r.Evidence["cipher_suite"] = tls.CipherSuiteName(st.CipherSuite)
	if st.NegotiatedProtocol != "" {
		r.Evidence["alpn"] = st.NegotiatedProtocol
	}
	if len(st.PeerCertificates) == 0 {
		r.Status, r.Reason = StatusFail, finding.ReasonInvalidCertificate
		r.Summary = "server sent no certificate"
		return r
	}
	leaf := st.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	r.Evidence["subject"] = leaf.Subject.String()
	r.Evidence["issuer"] = leaf.Issuer.String()
	r.Evidence["leaf_sha256"] = hex.EncodeToString(sum[:])
	r.Evidence["not_after"] = leaf.NotAfter.UTC().Format(time.RFC3339)
	r.Evidence["chain_length"] = len(st.PeerCertificates)
	now := env.Clock.Correct(env.now())
	if off := env.Clock.Offset(); off != 0 {
		r.Evidence["clock_offset_seconds"] = off.Seconds()
	}
	judge := env.Judge
	if judge == nil {
		judge = DefaultJudge
	}
	v := judge(ChainInput{ServerName: t.Host, Chain: st.PeerCertificates, Now: now, Version: st.Version, OCSP: st.OCSPResponse, SCTs: st.SignedCertificateTimestamps})
	for k, val := range v.Evidence {
		r.Evidence[k] = val
	}
	if v.Product != "" {
		r.Evidence["product"] = v.Product
	}
	r.Reason = v.Reason
	if v.Reason == finding.ReasonOK || v.Reason == "" {
		r.Reason = finding.ReasonOK
		r.Status, r.Success = StatusPass, true
		r.Summary = fmt.Sprintf("%s: %s, chain by %q trusted", t.Label, tlsVersionName(st.Version), issuerName(leaf))
		return r
	}
	r.Status = StatusFail
	what := string(v.Reason)
	switch {
	case v.Intercepted && v.Product != "" && v.Product != "unknown":
		what = "intercepted by " + v.Product + " (" + what + ")"
	case v.Intercepted:
		what = "intercepted (" + what + ")"
	}
	r.Summary = fmt.Sprintf("%s: %s, certificate from %q: %s", t.Label, tlsVersionName(st.Version), issuerName(leaf), what)
	r.Findings = append(r.Findings, tlsVerdictFinding(&env, t, check, d.remote, issuerName(leaf), v, r.Evidence))
	if v.Intercepted {
		// For the report only (the finding stays small): the certificates
		// the interceptor sent, to hand to whoever runs it.
		r.Evidence["chain_pem"] = chainPEM(st.PeerCertificates)
		if ca := sentIssuer(leaf, st.PeerCertificates); ca != nil {
			r.Evidence["issuer_pem"] = chainPEM([]*x509.Certificate{ca})
		}
	}
	return r
}

// chainPEM is the certificates as PEM blocks, in order.
func chainPEM(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// sentIssuer is the certificate of the chain that issued the leaf (by name
// and signature); nil when the server did not send it.
func sentIssuer(leaf *x509.Certificate, chain []*x509.Certificate) *x509.Certificate {
	for _, c := range chain[1:] {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}

func tlsVerdictFinding(env *Env, t Target, check, remote, issuer string, v ChainVerdict, ev map[string]any) finding.Finding {
	code := v.RoomsCode
	if code == 0 {
		code = zoom.RoomsCodeForReason(v.Reason)
	}
	kind := finding.KindCertificateProblem
	if v.Intercepted {
		kind = finding.KindTLSInterception
	}
	f := finding.Finding{
		Time:          env.now(),
		Kind:          kind,
		Reason:        v.Reason,
		Source:        "probe/" + check,
		Service:       serviceFor(t, zoom.ProtoTCP),
		Flow:          findingFlow("tcp", remote),
		SNI:           t.Host,
		ZoomRoomsCode: code,
		Product:       v.Product,
		Confidence:    v.Confidence,
		Evidence:      copyEvidence(ev),
	}
	if f.Confidence == "" {
		f.Confidence = "high"
	}
	f.UserSees = "\"Your connection is not private… This server could not prove that it is Zoom. Its certificate is from " + issuer + ".\""
	if code != 0 {
		f.UserSees += fmt.Sprintf(" A Zoom Room shows untrusted-certificate code %d", code)
		if e, ok := zoom.LookupRoomsCertError(code); ok {
			f.UserSees += " (" + e.Description + ")"
			f.Remediation = e.Remediation
		}
		f.UserSees += "."
	}
	if f.Remediation == "" {
		f.Remediation = "Inspect the certificate chain this host receives for " + t.Host + " and compare it with Zoom's."
	}
	return f
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.String()
}

// tlsConnectFailed reports a failure before the handshake: the proxy, the
// TCP connect, or name resolution.
func tlsConnectFailed(env *Env, t Target, r Result, err error, d dialResult) Result {
	host := t.Host
	if d.proxy != "" {
		host = "the proxy " + d.proxy
	}
	if notResolved(&r, host, err) {
		return r
	}
	r.Reason = Classify(err)
	r.Evidence["error"] = err.Error()
	var pe *ProxyError
	if errors.As(err, &pe) {
		r.Status = StatusFail
		if pe.Status != 0 {
			r.Evidence["proxy_status"] = pe.Status
		}
		if pe.Via != "" {
			r.Evidence["proxy_via"] = pe.Via
		}
		r.Summary = fmt.Sprintf("proxy %s refused CONNECT to %s: %s", d.proxy, t.Label, r.Reason)
		r.Findings = append(r.Findings, finding.Finding{
			Time:        env.now(),
			Kind:        finding.KindProxyDenial,
			Reason:      r.Reason,
			Source:      "probe/" + r.Check,
			Service:     serviceFor(t, zoom.ProtoTCP),
			SNI:         t.Host,
			Product:     pe.Via,
			Confidence:  "high",
			UserSees:    userSeesConnect,
			Remediation: proxyRemediation(r.Reason, d.proxy),
			Evidence:    copyEvidence(r.Evidence),
		})
		return r
	}
	r.Status = StatusFail
	r.Summary = fmt.Sprintf("TCP to %s failed before TLS: %s", t.Label, r.Reason)
	f := connectFinding(env, t, "tcp", zoom.ProtoTCP, r.Reason, d.remote, r.Evidence)
	f.Source = "probe/" + r.Check
	r.Findings = append(r.Findings, f)
	return r
}

func proxyRemediation(r finding.Reason, proxy string) string {
	switch r {
	case finding.ReasonProxyAuthRequired:
		return "Proxy " + proxy + " wants authentication for Zoom: exempt Zoom's domains from proxy authentication (Zoom Rooms cannot answer it), or set ProxyBypass for Zoom."
	case finding.ReasonProxyDenied:
		return "Proxy " + proxy + " denies CONNECT to Zoom: allow CONNECT to *.zoom.us and *.zoom.com on port 443 (and 8801/8802 if clients use the proxy for media)."
	case finding.ReasonProxyBadGateway:
		return "Proxy " + proxy + " could not reach Zoom (bad gateway): check the proxy's own DNS and outbound firewall."
	}
	return "Proxy " + proxy + " closed the CONNECT without an answer: check its policy and logs for Zoom's names."
}

func tlsHandshakeRemediation(r finding.Reason) string {
	switch r {
	case finding.ReasonConnectionReset:
		return "A middlebox resets the TLS handshake (SNI filtering or an inspection policy): allow Zoom's names in the firewall's TLS/URL policy."
	case finding.ReasonEOF:
		return "The connection was closed right after the ClientHello (SNI filtering or an inspection policy): allow Zoom's names in the firewall's TLS/URL policy."
	case finding.ReasonTimeout:
		return "The TLS handshake stalled: a middlebox may drop packets after the ClientHello; check the firewall's TLS inspection and MTU."
	}
	return "The TLS handshake failed: check the firewall's TLS inspection policy for Zoom's names."
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// X509Judge verifies chains with crypto/x509 against roots (nil: the
// system roots). Tests use it with their own "Zoom" root.
func X509Judge(roots *x509.CertPool) ChainJudge {
	return func(in ChainInput) ChainVerdict { return x509Judge(in, roots) }
}

// x509Judge verifies with crypto/x509 against roots (nil: system roots).
func x509Judge(in ChainInput, roots *x509.CertPool) ChainVerdict {
	leaf := in.Chain[0]
	inter := x509.NewCertPool()
	for _, c := range in.Chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: in.ServerName, Roots: roots, Intermediates: inter, CurrentTime: in.Now})
	if err == nil {
		return ChainVerdict{Reason: finding.ReasonOK}
	}
	r, ok := classifyX509(err)
	if !ok {
		r = finding.ReasonInvalidCertificate
	}
	if r == finding.ReasonExpired && in.Now.Before(leaf.NotBefore) {
		r = finding.ReasonNotYetValid
	}
	if r == finding.ReasonUnknownAuthority && len(in.Chain) == 1 && strings.EqualFold(leaf.Subject.String(), leaf.Issuer.String()) {
		r = finding.ReasonSelfSigned
	}
	v := ChainVerdict{Reason: r, Detail: err.Error(), Intercepted: r == finding.ReasonUnknownAuthority || r == finding.ReasonSelfSigned}
	v.RoomsCode = zoom.RoomsCodeForReason(r)
	return v
}
