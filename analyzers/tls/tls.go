// Package tls is the passive TLS analyzer: it reassembles each TCP flow's
// handshake (bounded per direction), judges TLS 1.2-and-below certificate chains through
// certcheck (interception, product, Zoom Rooms code), reports clients that
// refuse a certificate, and for TLS 1.3 (certificate encrypted) learns
// server fingerprints and hop counts to report drift as suspected
// interception. See README.md.
package tls

import (
	ctls "crypto/tls"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	ptls "github.com/zoomprobe/zoomprobe/proto/tls"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Name is the analyzer's name in analyzers.disabled and log lines.
const Name = "tls"

func init() { analyzers.Register(plugin{}) }

type plugin struct{}

func (plugin) Name() string { return Name }

// Init reads the tls section, loads roots and product signatures, registers
// the metrics and returns the per-worker constructor.
func (plugin) Init(env analyzers.Env) (func() analyzers.Analyzer, error) {
	cfg := env.Config
	if cfg == nil {
		cfg = config.Default()
	}
	sh, err := newShared(cfg, env.Clock)
	if err != nil {
		return nil, err
	}
	if env.Registerer != nil {
		if err := sh.m.register(env.Registerer); err != nil {
			return nil, err
		}
	}
	sink := env.Sink
	if sink == nil {
		sink = finding.Discard
	}
	return func() analyzers.Analyzer {
		return &Analyzer{slot: env.Slot, sink: sink, sh: sh, verdicts: certcheck.NewCache(sh.opts, cfg.TLS.VerdictCacheBytes)}
	}, nil
}

// Analyzer is one worker's instance.
type Analyzer struct {
	slot int
	sink finding.Sink
	sh   *shared
	free []*state // recycled per-flow state with its buffers
	// verdicts is this worker's verdict cache: a chain already judged is
	// not verified again (no lock: one per worker).
	verdicts *certcheck.Cache

	// the packet being handled, for the decoder callbacks
	cur struct {
		f *flow.Flow
		s *state
		p *decode.Packet
		d flow.Dir
	}
	ch       ptls.ClientHello
	srvHello ptls.ServerHello
}

var _ analyzers.Analyzer = (*Analyzer)(nil)

// skip marks a flow the analyzer has finished with (not TLS, unwatched, or
// its handshake fully seen), so later packets cost one comparison.
var skip = &state{}

// state is the per-flow handshake state.
type state struct {
	dec [2]ptls.Decoder

	helloSeen, serverHelloSeen, certSeen, judged, reported bool
	hrr                                                    bool
	synAckTTL, serverHelloTTL                              uint8
	synAckSeen                                             bool
	limited                                                [2]bool // a cap or malformed stop was counted

	sni    [255]byte
	sniLen uint8
	ja3    [16]byte
	ja4    [ptls.JA4Len]byte

	version uint16
	cipher  uint16
	sfp     [ptls.ServerFingerprintLen]byte

	certs [][]byte // copies of the DER certificates (TLS <= 1.2)
	ocsp  []byte
	scts  [][]byte
	v     certcheck.Verdict
}

func (a *Analyzer) get(f *flow.Flow) *state {
	var s *state
	if n := len(a.free); n > 0 {
		s = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		s = new(state)
	}
	max := a.sh.maxBytes
	s.dec[0].Reset(max)
	s.dec[1].Reset(max)
	f.Ext[a.slot] = s
	return s
}

// finish returns the state to the pool and marks the flow done.
func (a *Analyzer) finish(f *flow.Flow, s *state) {
	f.Ext[a.slot] = skip
	if s == skip || s == nil {
		return
	}
	d0, d1 := s.dec[0], s.dec[1]
	*s = state{dec: [2]ptls.Decoder{d0, d1}, certs: s.certs[:0], ocsp: s.ocsp[:0], scts: s.scts[:0]}
	a.free = append(a.free, s)
}

// Packet implements analyzers.Analyzer.
func (a *Analyzer) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if f.Proto != decode.ProtoTCP {
		return
	}
	s, _ := f.Ext[a.slot].(*state)
	if s == skip {
		return
	}
	if s == nil {
		if f.IdentityFinal() && !f.Watched() {
			return
		}
		s = a.get(f)
	}
	if p.TCPFlags&decode.TCPSyn != 0 {
		s.dec[d].Stream.SYN(p.Seq)
		if d == flow.ToClient && p.TCPFlags&decode.TCPAck != 0 && !s.synAckSeen {
			s.synAckSeen, s.synAckTTL = true, p.TTL
		}
	}
	if len(p.Payload) == 0 || s.dec[d].Done() {
		return
	}
	a.cur.f, a.cur.s, a.cur.p, a.cur.d = f, s, p, d
	s.dec[d].Segment(p.Seq, p.Payload, a)
	a.cur.f, a.cur.s, a.cur.p = nil, nil, nil
	if f.Ext[a.slot] == skip {
		return // finished inside a callback
	}
	a.afterSegment(f, s, p, d)
}

// afterSegment counts why a direction stopped early and decides whether
// the flow still needs this analyzer.
func (a *Analyzer) afterSegment(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	dec := &s.dec[d]
	if dec.Done() && !s.limited[d] {
		switch err := dec.Err(); {
		case err == ptls.ErrTooBig || dec.Stream.Overflow:
			s.limited[d] = true
			a.sh.m.limits.WithLabelValues("cap").Inc()
		case err != nil && s.helloSeen:
			s.limited[d] = true
			a.sh.m.limits.WithLabelValues("malformed").Inc()
		}
	}
	if d == flow.ToServer && !s.helloSeen && dec.Done() {
		// The client's first bytes are not a TLS ClientHello (or beyond the
		// cap): not ours to judge. Identity stays for others to learn.
		a.finish(f, s)
		return
	}
	if d == flow.ToClient && !s.serverHelloSeen && dec.Done() {
		a.finish(f, s)
		return
	}
	if s.dec[0].Done() && s.dec[1].Done() {
		if s.certSeen && !s.judged {
			a.judge(f, s, p.Time) // judge what we have before giving up
		}
		a.finish(f, s)
	}
}

// ICMP implements analyzers.Analyzer (nothing to do for TLS).
func (a *Analyzer) ICMP(*flow.Flow, *decode.Packet, flow.Dir) {}

// Expire implements analyzers.Analyzer: a certificate seen but not yet
// judged (the server's flight was cut short) is judged now.
func (a *Analyzer) Expire(f *flow.Flow, now time.Time, _ flow.ExpireReason) {
	s, _ := f.Ext[a.slot].(*state)
	if s == nil || s == skip {
		f.Ext[a.slot] = nil
		return
	}
	if s.certSeen && !s.judged {
		a.judge(f, s, now)
	}
	if s.dec[0].Stream.Gap() || s.dec[1].Stream.Gap() {
		a.sh.m.limits.WithLabelValues("gap").Inc()
	}
	a.finish(f, s)
	f.Ext[a.slot] = nil
}

// Handshake implements ptls.Handler.
func (a *Analyzer) Handshake(typ uint8, body []byte) {
	f, s, d := a.cur.f, a.cur.s, a.cur.d
	if d == flow.ToServer {
		if typ == ptls.HandshakeClientHello && !s.helloSeen {
			a.clientHello(f, s, body)
		}
		return
	}
	if !s.helloSeen && !f.IdentityFinal() {
		return // server talking first: wait for the client's ClientHello
	}
	switch typ {
	case ptls.HandshakeServerHello:
		if !s.serverHelloSeen {
			a.serverHello(f, s, body)
		}
	case ptls.HandshakeCertificate:
		if s.certSeen || s.version == ptls.VersionTLS13 {
			return
		}
		list, err := ptls.CertificateList(nil, body)
		if err != nil {
			a.sh.m.limits.WithLabelValues("malformed").Inc()
			return
		}
		s.certSeen = true
		for _, der := range list {
			s.certs = append(s.certs, append([]byte(nil), der...))
		}
	case ptls.HandshakeCertificateStatus:
		if resp, err := ptls.CertificateStatus(body); err == nil {
			s.ocsp = append(s.ocsp[:0], resp...)
		}
	case ptls.HandshakeServerHelloDone:
		if s.certSeen && !s.judged {
			a.judge(f, s, a.cur.p.Time)
		}
	}
}

// Alert implements ptls.Handler.
func (a *Analyzer) Alert(level, desc uint8) {
	f, s, d := a.cur.f, a.cur.s, a.cur.d
	if d != flow.ToServer || !s.helloSeen || !f.Watched() {
		return
	}
	a.sh.m.alerts.WithLabelValues(f.Service().String(), ptls.AlertName(desc)).Inc()
	if !ptls.IsCertificateAlert(desc) || !s.certSeen {
		return
	}
	if !s.judged {
		a.judge(f, s, a.cur.p.Time)
	}
	a.rejected(f, s, level, desc)
}

// ChangeCipherSpec implements ptls.Handler.
func (a *Analyzer) ChangeCipherSpec() {
	f, s, d := a.cur.f, a.cur.s, a.cur.d
	if d != flow.ToClient || !s.serverHelloSeen {
		return
	}
	if s.certSeen {
		if !s.judged {
			a.judge(f, s, a.cur.p.Time)
		}
		return
	}
	if s.version != ptls.VersionTLS13 && f.Watched() {
		// TLS 1.2 resumption: no certificate on the wire.
		a.sh.m.handshake(f.Service(), s.version, finding.ReasonCertNotObservable)
	}
}

func validSNI(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '*') {
			return false
		}
	}
	return true
}

func (a *Analyzer) clientHello(f *flow.Flow, s *state, body []byte) {
	if ptls.ParseClientHello(body, &a.ch) != nil {
		a.sh.m.limits.WithLabelValues("malformed").Inc()
		s.dec[0].Stop()
		return
	}
	s.helloSeen = true
	ch := &a.ch
	sni := ch.SNI
	if !validSNI(sni) {
		sni = nil
	}
	s.sniLen = uint8(copy(s.sni[:], sni))
	// The identity stage has read this ClientHello before us: the flow's
	// service already reflects its SNI.
	if !f.Watched() {
		s.dec[0].Stop()
		s.dec[1].Stop()
		a.finish(f, s)
		return
	}
	s.ja3 = ptls.JA3Hash(ch)
	s.ja4 = ptls.JA4(ch)
}

func (a *Analyzer) serverHello(f *flow.Flow, s *state, body []byte) {
	sh := &a.srvHello
	if ptls.ParseServerHello(body, sh) != nil {
		a.sh.m.limits.WithLabelValues("malformed").Inc()
		s.dec[1].Stop()
		return
	}
	s.serverHelloSeen = true
	s.hrr = sh.HelloRetryRequest
	s.version, s.cipher = sh.Version(), sh.CipherSuite
	if s.hrr {
		s.version = ptls.VersionTLS13 // only TLS 1.3 retries
	}
	s.sfp = ptls.ServerFingerprint(sh)
	s.serverHelloTTL = a.cur.p.TTL
	if sh.SCTList != nil {
		s.scts = s.scts[:0]
		for _, sct := range ptls.AppendSCTs(nil, sh.SCTList) {
			s.scts = append(s.scts, append([]byte(nil), sct...))
		}
	}
	if s.version != ptls.VersionTLS13 {
		return
	}
	// TLS 1.3: the rest is encrypted, certificate included.
	s.dec[0].Stop()
	s.dec[1].Stop()
	a.sh.m.handshake(f.Service(), s.version, finding.ReasonCertNotObservable)
	a.tls13(f, s)
}

// tls13 learns the server fingerprint per (service, client fingerprint) and
// compares the ServerHello's hop count with the SYN-ACK's.
func (a *Analyzer) tls13(f *flow.Flow, s *state) {
	t := a.cur.p.Time
	drift, known := a.sh.learn.observe(f.Service(), s.ja4, s.sfp, a.sh.baseline)
	if drift {
		ev := a.baseEvidence(f, s)
		ev["learned_fingerprints"] = known
		a.suspected(f, s, t, "server_fingerprint", ev)
	}
	if s.synAckSeen {
		if drift, learned := a.sh.hops.observe(f.Server.Addr(), hops(s.synAckTTL), a.sh.baseline); drift {
			ev := a.baseEvidence(f, s)
			ev["hops_learned"] = learned
			ev["hops_syn_ack"] = hops(s.synAckTTL)
			a.suspected(f, s, t, "hop_count_change", ev)
		}
	}
	if s.synAckSeen && s.synAckTTL != s.serverHelloTTL {
		ev := a.baseEvidence(f, s)
		ev["ttl_syn_ack"] = int(s.synAckTTL)
		ev["ttl_server_hello"] = int(s.serverHelloTTL)
		ev["hops_syn_ack"] = hops(s.synAckTTL)
		ev["hops_server_hello"] = hops(s.serverHelloTTL)
		a.suspected(f, s, t, "hop_count", ev)
	}
}

// hops estimates the hop count from a TTL, assuming the sender started at the
// next common initial value (64, 128 or 255).
func hops(ttl uint8) int {
	switch {
	case ttl <= 64:
		return 64 - int(ttl)
	case ttl <= 128:
		return 128 - int(ttl)
	}
	return 255 - int(ttl)
}

func (a *Analyzer) sniString(s *state) string { return string(s.sni[:s.sniLen]) }

// judge runs certcheck on the chain and reports.
func (a *Analyzer) judge(f *flow.Flow, s *state, t time.Time) {
	s.judged = true
	if !f.Watched() {
		return
	}
	at := a.sh.clock.Correct(t)
	v := a.verdicts.Judge(certcheck.Input{
		DER: s.certs, Host: a.sniString(s), At: at, OCSP: s.ocsp, SCTs: s.scts, Zoom: f.Service().IsZoom(),
	})
	s.v = v
	a.sh.m.handshake(f.Service(), s.version, v.Reason)
	if !v.NotAfter.IsZero() {
		a.sh.notAfter(f.Service(), v.NotAfter)
	}
	if v.Reason == finding.ReasonOK {
		return
	}
	kind := finding.KindCertificateProblem
	if isInterception(v) {
		kind = finding.KindTLSInterception
		a.sh.m.interceptions.WithLabelValues(f.Service().String(), string(v.Reason), a.sh.productLabel(v.Product)).Inc()
	}
	if !a.sh.dedup.First(dedupKey{server: f.Server.Addr(), leaf: v.LeafSHA256, kind: kind}, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev := a.baseEvidence(f, s)
	certEvidence(ev, v, at, t)
	us, rem := certTexts(v)
	a.sink.Emit(finding.Finding{
		Time: t, Kind: kind, Reason: v.Reason, Source: Name, Service: f.Service().String(),
		Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), ZoomRoomsCode: v.ZoomRoomsCode,
		Product: v.Product, Confidence: v.Confidence, UserSees: us, Remediation: rem, Evidence: ev,
	})
}

// isInterception: someone other than Zoom served the chain, or it is for
// another name or purpose (proxies and portals), as opposed to a Zoom chain
// with a date, revocation or transparency problem.
func isInterception(v certcheck.Verdict) bool {
	if v.Intercepted || v.Product != "" {
		return true
	}
	switch v.Reason {
	case finding.ReasonInvalidHostname, finding.ReasonInvalidPurpose:
		return true
	}
	return false
}

func (a *Analyzer) rejected(f *flow.Flow, s *state, level, desc uint8) {
	t := a.cur.p.Time
	alert := ptls.AlertName(desc)
	if !a.sh.dedup.First(dedupKey{server: f.Server.Addr(), leaf: s.v.LeafSHA256, kind: finding.KindCertRejected, alert: desc}, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev := a.baseEvidence(f, s)
	ev["alert"] = alert
	ev["alert_level"] = map[uint8]string{1: "warning", 2: "fatal"}[level]
	reason := finding.ReasonClientRejectedCert
	code := s.v.ZoomRoomsCode
	if s.v.LeafSHA256 != "" {
		certEvidence(ev, s.v, a.sh.clock.Correct(t), t)
		ev["verdict"] = string(s.v.Reason)
	}
	if code == 0 {
		code = zoom.RoomsCodeForReason(alertReason(desc))
	}
	a.sink.Emit(finding.Finding{
		Time: t, Kind: finding.KindCertRejected, Reason: reason, Source: Name, Service: f.Service().String(),
		Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), ZoomRoomsCode: code, Product: s.v.Product,
		Confidence:  "high",
		UserSees:    fmt.Sprintf(`The Zoom client refused the server certificate (TLS alert %s): the user sees "Your connection is not private… This server could not prove that it is Zoom" and cannot connect; a Zoom Room shows an untrusted-certificate code.`, alert),
		Remediation: "Users are seeing a certificate warning now. " + remediation(s.v),
		Evidence:    ev,
	})
}

// alertReason maps a client's certificate alert to the verdict it implies,
// for the Zoom Rooms code when the chain was not judged ok or not at all.
func alertReason(desc uint8) finding.Reason {
	switch desc {
	case ptls.AlertCertificateExpired:
		return finding.ReasonExpired
	case ptls.AlertCertificateRevoked:
		return finding.ReasonRevoked
	case ptls.AlertBadCertStatusResponse:
		return finding.ReasonOCSPError
	case ptls.AlertUnknownCA:
		return finding.ReasonUnknownAuthority
	}
	return finding.ReasonInvalidCertificate
}

func (a *Analyzer) suspected(f *flow.Flow, s *state, t time.Time, what string, ev map[string]any) {
	a.sh.m.interceptions.WithLabelValues(f.Service().String(), string(finding.ReasonFingerprintDrift), "unknown").Inc()
	key := dedupKey{server: f.Server.Addr(), leaf: string(s.sfp[:]) + what, kind: finding.KindTLSSuspected}
	if !a.sh.dedup.First(key, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev["drift"] = what
	a.sink.Emit(finding.Finding{
		Time: t, Kind: finding.KindTLSSuspected, Reason: finding.ReasonFingerprintDrift, Source: Name,
		Service: f.Service().String(), Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), Confidence: "low",
		UserSees:    "Possibly nothing yet; if a TLS-inspecting device took over this Zoom server's connections, Zoom shows an untrusted-certificate warning (Zoom Rooms code 6).",
		Remediation: "TLS 1.3 hides the certificate: confirm with zoomprobe's active TLS probe from this network; if it reports interception, exempt Zoom's names and ranges from SSL inspection.",
		Evidence:    ev,
	})
}

// baseEvidence holds what every TLS finding carries.
func (a *Analyzer) baseEvidence(f *flow.Flow, s *state) map[string]any {
	ev := map[string]any{
		"sni":                a.sniString(s),
		"ja3":                hex.EncodeToString(s.ja3[:]),
		"ja4":                string(s.ja4[:]),
		"version":            ptls.VersionName(s.version),
		"cipher_suite":       ctls.CipherSuiteName(s.cipher),
		"server_fingerprint": string(s.sfp[:]),
		"ttl":                int(s.serverHelloTTL),
	}
	if s.synAckSeen {
		ev["ttl_syn_ack"] = int(s.synAckTTL)
	}
	return ev
}

func certEvidence(ev map[string]any, v certcheck.Verdict, at, packetTime time.Time) {
	v.AddEvidence(ev, at)
	if off := at.Sub(packetTime); off != 0 {
		ev["clock_offset_seconds"] = off.Seconds()
	}
}

func remediation(v certcheck.Verdict) string {
	if e, ok := zoom.LookupRoomsCertError(v.ZoomRoomsCode); ok {
		return e.Remediation
	}
	return "Exempt Zoom's names and ranges from SSL inspection."
}

func certTexts(v certcheck.Verdict) (userSees, rem string) {
	issuer := v.IssuerCN
	if issuer == "" {
		issuer = v.Issuer
	}
	code := ""
	if v.ZoomRoomsCode != 0 {
		code = fmt.Sprintf(" A Zoom Room shows untrusted-certificate code %d.", v.ZoomRoomsCode)
	}
	rem = remediation(v)
	if v.Product != "" && v.Product != "unknown" {
		rem = fmt.Sprintf("The certificate comes from %s (%s): ", v.Product, v.ProductKind) + rem
	}
	switch v.Reason {
	case finding.ReasonExpired, finding.ReasonNotYetValid:
		return fmt.Sprintf(`Zoom warns that the server certificate is expired or not yet valid (valid %s to %s).%s`,
			v.NotBefore.UTC().Format("2006-01-02"), v.NotAfter.UTC().Format("2006-01-02"), code), rem
	case finding.ReasonInvalidHostname:
		return `Zoom warns "Your connection is not private": the certificate is for another host name (captive portal, proxy or NAC).` + code, rem
	}
	return fmt.Sprintf(`Zoom warns "Your connection is not private… This server could not prove that it is Zoom. Its certificate is from %s."%s`, issuer, code), rem
}
