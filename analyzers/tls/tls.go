// Package tls is the passive TLS analyzer: it reassembles each TCP flow's
// handshake (bounded per direction), judges TLS 1.2-and-below certificate chains through
// certcheck (interception, product, Zoom Rooms code), reports clients that
// refuse a certificate, and for TLS 1.3 (certificate encrypted) learns
// server fingerprints and hop counts to report drift as suspected
// interception. See README.md.
package tls

import (
	"cmp"
	"crypto/sha256"
	ctls "crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/bounded"
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
	// What earlier Inits learnt (dedup windows, fingerprint and hop
	// baselines) carries over a reload; each is self-locked.
	sh.dedup = analyzers.Keep(env.Memory, "tls.dedup", cfg.TLS.MaxDedupEntries, func() *bounded.Dedup[dedupKey] { return sh.dedup })
	sh.learn = analyzers.Keep(env.Memory, "tls.fingerprints", cfg.TLS.MaxLearnedFingerprints, func() *learner { return sh.learn })
	sh.hops = analyzers.Keep(env.Memory, "tls.hops", cfg.TLS.MaxLearnedFingerprints, func() *hopLearner { return sh.hops })
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
		return &Analyzer{ext: flow.NewExt[state](env.Slot), sink: sink, sh: sh, verdicts: certcheck.NewCache(sh.opts, cfg.TLS.VerdictCacheBytes),
			budget: ptls.NewBudget(sh.budgetBytes), onHandshake: env.OnHandshake, fingerprints: ptls.NewFingerprintCache(),
			series: seriesCache{}}
	}, nil
}

// Analyzer is one worker's instance.
type Analyzer struct {
	ext  flow.Ext[state]
	sink finding.Sink
	sh   *shared
	free []*state // recycled per-flow state, small buffers kept (at most maxFree)
	// budget bounds the reassembly buffers of all this worker's flows
	// (tls.reassembly_budget_bytes), pooled ones included.
	budget *ptls.Budget
	// onHandshake hears each watched handshake's summary; nil: nobody asks.
	onHandshake func(*flow.Flow, analyzers.HandshakeSummary)
	// verdicts is this worker's verdict cache: a chain already judged is
	// not verified again (no lock: one per worker).
	verdicts *certcheck.Cache
	// fingerprints answers JA3 and JA4 for ClientHello shapes seen before,
	// and the server fingerprint for ServerHello shapes.
	fingerprints *ptls.FingerprintCache
	series       seriesCache // this worker's handshake series, resolved once

	// the packet being handled, for the decoder callbacks
	cur struct {
		f *flow.Flow
		s *state
		p *decode.Packet
		d flow.Dir
	}
	ch       ptls.ClientHello
	srvHello ptls.ServerHello
	certList [][]byte // scratch for the Certificate message's list
}

var _ analyzers.Analyzer = (*Analyzer)(nil)

// skip marks a flow the analyzer has finished with (not TLS, unwatched, or
// its handshake fully seen), so later packets cost one comparison.
var skip = &state{}

// state is the per-flow handshake state.
type state struct {
	dec [2]ptls.Decoder

	helloSeen, serverHelloSeen, certSeen, judged bool
	hrr                                          bool
	synAckTTL, serverHelloTTL                    uint8
	synAckSeen                                   bool
	limited                                      [2]bool // a cap or malformed stop was counted
	// checksumsKept: a packet of this direction had a good TCP checksum,
	// so the capture keeps them and a bad one means a dropped segment.
	checksumsKept [2]bool
	// peekServer: an unwatched flow whose server's first bytes are only
	// checked for an alert answering the ClientHello.
	peekServer bool
	conflicts  [2]int // Stream.Conflicts already counted
	// conflictTTL is the TTL of the first segment that disagreed, and
	// conflictDir its direction; conflictSeen waits for the flow's identity.
	conflictSeen, conflictReported bool
	conflictTTL                    uint8
	conflictDir                    flow.Dir
	conflictAt                     int
	refused                        [2]int // Stream.Refused already counted
	overBudget                     [2]int // Stream.OverBudget already counted
	copied                         int    // bytes of certs, ocsp and scts charged to the budget
	serverTTL                      uint8  // TTL of the server's latest data segment

	sni    [255]byte
	sniLen uint8
	ja3    [16]byte
	ja4    [ptls.JA4Len]byte

	version uint16
	cipher  uint16
	sfp     [ptls.ServerFingerprintLen]byte

	certs   [][]byte // copies of the DER certificates (TLS <= 1.2), in certBuf
	certBuf []byte
	ocsp    []byte
	scts    [][]byte
	v       certcheck.Verdict
}

// maxFree bounds the recycled states a worker keeps; keepBytes is the most
// reassembly buffer a recycled direction keeps (a ClientHello, a usual server
// flight with its chain): bigger ones go back to the budget at flow end.
const (
	maxFree   = 64
	keepBytes = 16 << 10
)

// get makes the flow's state when it first carries payload: a flow that only
// opened (or never answered) costs the analyzer nothing. The handshake's
// start and the SYN-ACK's TTL come from what the flow kept.
func (a *Analyzer) get(f *flow.Flow) *state {
	var s *state
	if n := len(a.free); n > 0 {
		s = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		s = new(state)
	}
	max := a.sh.maxBytes
	for d := range s.dec {
		s.dec[d].Stream.SetBudget(a.budget)
		s.dec[d].Reset(max)
		if isn, ok := f.ISN(flow.Dir(d)); ok {
			s.dec[d].Stream.SYN(isn)
		}
	}
	for d := range s.checksumsKept {
		s.checksumsKept[d] = f.SYNChecksumGood(flow.Dir(d))
	}
	if f.SynAckCount > 0 {
		// The SYN-ACK is the server's first packet of a flow seen from its start.
		s.synAckSeen, s.synAckTTL = true, f.FirstTTL[flow.ToClient]
	}
	a.ext.Set(f, s)
	return s
}

// finish returns the state to the pool, its big buffers to the budget, and
// marks the flow done.
func (a *Analyzer) finish(f *flow.Flow, s *state) {
	a.ext.Set(f, skip)
	if s == skip || s == nil {
		return
	}
	a.budget.Give(s.copied)
	s.copied = 0
	for d := range s.dec {
		if s.dec[d].BufferBytes() > keepBytes {
			s.dec[d].Release()
		}
	}
	if len(a.free) >= maxFree {
		s.dec[0].Release()
		s.dec[1].Release()
		return
	}
	d0, d1 := s.dec[0], s.dec[1]
	clear(s.certs)
	clear(s.scts)
	certBuf := s.certBuf[:0]
	if cap(certBuf) > keepBytes {
		certBuf = nil
	}
	*s = state{dec: [2]ptls.Decoder{d0, d1}, certs: s.certs[:0], certBuf: certBuf, ocsp: s.ocsp[:0], scts: s.scts[:0]}
	a.free = append(a.free, s)
}

// Packet implements analyzers.Analyzer.
func (a *Analyzer) Packet(f *flow.Flow, p *decode.Packet, d flow.Dir) {
	if f.Proto != decode.ProtoTCP {
		return
	}
	s := a.ext.Get(f)
	if s == skip {
		return
	}
	if s == nil {
		if len(p.Payload) == 0 || f.IdentityFinal() && !f.Watched() && !firstHello(f, p, d) {
			return
		}
		s = a.get(f)
	}
	if s.peekServer {
		if d == flow.ToClient && len(p.Payload) > 0 {
			a.peek(f, s, p)
		}
		return
	}
	if (p.TCPFlags&decode.TCPSyn != 0 || len(p.Payload) > 0) && !s.dec[d].Done() && a.badChecksum(s, p, d) {
		return
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
	if d == flow.ToClient {
		s.serverTTL = p.TTL
		if awaitingHello(f, s) {
			// Whose flow this is waits for the ClientHello, which a mirror
			// merging two inputs may deliver after the server's answer:
			// hold the answer (bounded by the cap) until then.
			s.dec[d].Stream.Segment(p.Seq, p.Payload)
			a.streamEvents(f, s, p, d)
			return
		}
	}
	a.cur.f, a.cur.s, a.cur.p, a.cur.d = f, s, p, d
	s.dec[d].Segment(p.Seq, p.Payload, a)
	a.streamEvents(f, s, p, d)
	if d == flow.ToServer && s.helloSeen && a.ext.Get(f) == s && s.dec[1].Stream.Len() > 0 && !s.dec[1].Done() {
		// The server's answer arrived first: read it now.
		a.cur.d = flow.ToClient
		s.dec[1].Process(a)
		if a.ext.Get(f) == s {
			a.afterSegment(f, s, p, flow.ToClient)
		}
		a.cur.d = d
	}
	a.cur.f, a.cur.s, a.cur.p = nil, nil, nil
	if a.ext.Get(f) != s {
		return // finished inside a callback
	}
	a.afterSegment(f, s, p, d)
}

// charge takes room in the worker's budget for copies of bs kept until the
// flow is done; false (counted) when the budget cannot pay.
func (a *Analyzer) charge(s *state, bs ...[]byte) bool {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	if !a.budget.Take(n) {
		a.sh.m.overBudget.Add(float64(n))
		return false
	}
	s.copied += n
	return true
}

// firstHello: the client's first bytes look like a TLS handshake record. An
// unwatched flow is still followed that far, so an alert answering its
// ClientHello is counted (filtering by name affects other traffic too).
func firstHello(f *flow.Flow, p *decode.Packet, d flow.Dir) bool {
	return d == flow.ToServer && f.Bytes[flow.ToServer] == uint64(len(p.Payload)) && f.Bytes[flow.ToClient] == 0 &&
		len(p.Payload) >= 3 && p.Payload[0] == ptls.RecordHandshake && p.Payload[1] == 3
}

// badChecksum reports a segment to ignore: its TCP checksum is wrong in a
// direction whose capture keeps checksums (one of its packets verified), so
// the receiver dropped it and a copy with other bytes may follow. Until a
// packet verifies, bad checksums are taken as the capture's doing (rewritten
// or zeroed by a tool), not the segment's; a checksum the sender's stack
// left to its NIC (decode.ChecksumOffloaded) is not bad.
func (a *Analyzer) badChecksum(s *state, p *decode.Packet, d flow.Dir) bool {
	switch p.TCPChecksum() {
	case decode.ChecksumGood:
		s.checksumsKept[d] = true
	case decode.ChecksumBad:
		if s.checksumsKept[d] {
			a.sh.m.badChecksum.Inc()
			return true
		}
	}
	return false
}

// streamEvents counts what the reassembly refused and the copies that
// disagreed, after each segment.
func (a *Analyzer) streamEvents(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	st := &s.dec[d].Stream
	if n := st.Refused - s.refused[d]; n > 0 {
		s.refused[d] = st.Refused
		a.sh.m.refused.Add(float64(n))
		if m := st.OverBudget - s.overBudget[d]; m > 0 {
			s.overBudget[d] = st.OverBudget
			a.sh.m.overBudget.Add(float64(m))
		}
	}
	if n := st.Conflicts - s.conflicts[d]; n > 0 {
		s.conflicts[d] = st.Conflicts
		a.sh.m.conflicts.WithLabelValues(f.Service().String()).Add(float64(n))
		if !s.conflictSeen {
			s.conflictSeen, s.conflictTTL, s.conflictDir, s.conflictAt = true, p.TTL, d, st.ConflictAt
		}
	}
	if s.conflictSeen && !s.conflictReported && f.IdentityFinal() && f.Service().IsZoom() {
		a.overlapConflict(f, s, p.Time)
	}
}

// awaitingHello: the server's bytes wait for the client's ClientHello while
// the flow's identity is open, or while the hello has begun to arrive: the
// identity stage may name the flow from the hello's first segment, and a
// mirror may deliver the answer before the hello's last one.
func awaitingHello(f *flow.Flow, s *state) bool {
	c := &s.dec[flow.ToServer].Stream
	return !s.helloSeen && (!f.IdentityFinal() || c.Len() > 0 || c.Gap())
}

// afterSegment counts why a direction stopped early and decides whether
// the flow still needs this analyzer.
func (a *Analyzer) afterSegment(f *flow.Flow, s *state, p *decode.Packet, d flow.Dir) {
	if s.peekServer {
		return // waits for the server's first bytes
	}
	dec := &s.dec[d]
	if dec.Done() && !s.limited[d] {
		switch err := dec.Err(); {
		case err == ptls.ErrBudget:
			s.limited[d] = true
			a.sh.m.limits.WithLabelValues("budget").Inc()
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
	s := a.ext.Get(f)
	if s == nil || s == skip {
		a.ext.Set(f, nil)
		return
	}
	if s.certSeen && !s.judged {
		a.judge(f, s, now)
	}
	if s.conflictSeen && !s.conflictReported && f.Service().IsZoom() {
		a.overlapConflict(f, s, now)
	}
	if s.dec[0].Stream.Gap() || s.dec[1].Stream.Gap() {
		a.sh.m.limits.WithLabelValues("gap").Inc()
	}
	a.finish(f, s)
	a.ext.Set(f, nil)
}

// Forget implements analyzers.Forgetter: the flow's buffers and copies go
// back to the budget, its state (perhaps left half-way by a panic) is not
// recycled.
func (a *Analyzer) Forget(f *flow.Flow) {
	s := a.ext.Get(f)
	a.ext.Set(f, nil)
	if s == nil || s == skip {
		return
	}
	a.budget.Give(s.copied)
	s.copied = 0
	s.dec[0].Release()
	s.dec[1].Release()
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
	if awaitingHello(f, s) {
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
		list, err := ptls.CertificateList(a.certList[:0], body)
		a.certList = list
		if err != nil {
			a.sh.m.limits.WithLabelValues("malformed").Inc()
			return
		}
		if !a.charge(s, list...) {
			// The worker's budget cannot hold the chain until it is
			// judged: give up on this handshake (counted).
			a.sh.m.limits.WithLabelValues("budget").Inc()
			s.limited[1] = true
			s.dec[1].Stop()
			return
		}
		s.certSeen = true
		// One buffer for the chain, kept with the recycled state.
		s.certBuf = s.certBuf[:0]
		for _, der := range list {
			s.certBuf = append(s.certBuf, der...)
		}
		off := 0
		for _, der := range list {
			s.certs = append(s.certs, s.certBuf[off:off+len(der):off+len(der)])
			off += len(der)
		}
		clear(list) // the scratch list must not keep the packet's bytes
	case ptls.HandshakeCertificateStatus:
		if resp, err := ptls.CertificateStatus(body); err == nil && a.charge(s, resp) {
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
	if d == flow.ToClient {
		if s.helloSeen && !s.serverHelloSeen {
			a.serverAlert(f, s, a.cur.p.Time, level, desc)
		}
		return
	}
	if !s.helloSeen || !f.Watched() {
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
		a.sh.m.handshake(a.series, f.Service(), s.version, finding.ReasonCertNotObservable)
		a.summarize(f, s, "", finding.ReasonCertNotObservable)
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
		// Not ours to judge; only an alert answering this ClientHello is
		// still counted (filtering by name affects other traffic too).
		s.dec[0].Stop()
		s.dec[1].Stop()
		if held := s.dec[1].Stream.Bytes(); len(held) > 0 {
			a.peekAlert(f, held) // the server's answer came first
			a.finish(f, s)
			return
		}
		s.peekServer = true
		return
	}
	s.ja3, s.ja4 = a.fingerprints.Fingerprints(ch)
}

func (a *Analyzer) serverHello(f *flow.Flow, s *state, body []byte) {
	sh := &a.srvHello
	if ptls.ParseServerHello(body, sh) != nil {
		a.sh.m.limits.WithLabelValues("malformed").Inc()
		s.dec[1].Stop()
		return
	}
	if sh.HelloRetryRequest {
		// TLS 1.3 asks the client for another key share; the real
		// ServerHello follows the client's second ClientHello, after a
		// dummy ChangeCipherSpec.
		s.hrr = true
		s.dec[1].AllowCompatCCS()
		return
	}
	s.serverHelloSeen = true
	s.version, s.cipher = sh.Version(), sh.CipherSuite
	s.sfp = a.fingerprints.ServerFingerprint(sh)
	s.serverHelloTTL = s.serverTTL
	if sh.SCTList != nil {
		s.scts = s.scts[:0]
		if scts := ptls.AppendSCTs(nil, sh.SCTList); a.charge(s, scts...) {
			for _, sct := range scts {
				s.scts = append(s.scts, append([]byte(nil), sct...))
			}
		}
	}
	if s.version != ptls.VersionTLS13 {
		return
	}
	// TLS 1.3: the rest is encrypted, certificate included.
	s.dec[0].Stop()
	s.dec[1].Stop()
	a.sh.m.handshake(a.series, f.Service(), s.version, finding.ReasonCertNotObservable)
	if f.Watched() {
		a.summarize(f, s, "", finding.ReasonCertNotObservable)
	}
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
		if drift, learned := a.sh.hops.observe(f.Server().Addr(), hops(s.synAckTTL), a.sh.baseline); drift {
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
	a.sh.m.handshake(a.series, f.Service(), s.version, v.Reason)
	a.summarize(f, s, cmp.Or(v.IssuerCN, v.Issuer), v.Reason)
	if !v.NotAfter.IsZero() {
		a.sh.notAfter(f.Service(), v.NotAfter)
	}
	if v.Reason == finding.ReasonOK {
		return
	}
	kind := finding.KindCertificateProblem
	if isInterception(v) {
		kind = finding.KindTLSInterception
		a.series.counter(a.sh.m.interceptions, f.Service().String(), string(v.Reason), a.sh.productLabel(v.Product)).Inc()
	}
	if !a.sh.dedup.First(dedupKey{server: f.Server().Addr(), leaf: leafKey(s, v), kind: kind}, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev := a.baseEvidence(f, s)
	certEvidence(ev, v, at, t)
	ev["leaf_sha256"] = leafKey(s, v)
	us, rem := certTexts(v)
	a.sink.Emit(finding.Finding{
		Time: t, Kind: kind, Reason: v.Reason, Source: Name, Service: f.Service().String(),
		Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), ZoomRoomsCode: v.ZoomRoomsCode,
		Product: v.Product, Confidence: v.Confidence, UserSees: us, Remediation: rem, Evidence: ev,
	})
}

// summarize tells who asked (analyze --flows) what this handshake was.
func (a *Analyzer) summarize(f *flow.Flow, s *state, issuer string, verdict finding.Reason) {
	if a.onHandshake == nil {
		return
	}
	if len(issuer) > analyzers.MaxIssuerBytes {
		issuer = strings.ToValidUTF8(issuer[:analyzers.MaxIssuerBytes], "")
	}
	a.onHandshake(f, analyzers.HandshakeSummary{Version: ptls.VersionName(s.version), Issuer: issuer, Verdict: verdict})
}

// leafKey identifies the leaf certificate: certcheck's SHA-256 of the leaf,
// or, when no leaf parsed (certcheck leaves it empty), the SHA-256 of the
// first certificate's raw bytes, so two different unparsable certificates
// are not deduplicated as one.
func leafKey(s *state, v certcheck.Verdict) string {
	if v.LeafSHA256 != "" || len(s.certs) == 0 {
		return v.LeafSHA256
	}
	sum := sha256.Sum256(s.certs[0])
	return hex.EncodeToString(sum[:])
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
	if !a.sh.dedup.First(dedupKey{server: f.Server().Addr(), leaf: leafKey(s, s.v), kind: finding.KindCertRejected, alert: desc}, t, a.sh.window) {
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
	key := dedupKey{server: f.Server().Addr(), leaf: string(s.sfp[:]) + what, kind: finding.KindTLSSuspected}
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
	if s.hrr {
		ev["hello_retry_request"] = true
	}
	return ev
}

// peek checks an unwatched flow's first server bytes for an alert answering
// the ClientHello (counted, no finding), then lets go of the flow.
func (a *Analyzer) peek(f *flow.Flow, s *state, p *decode.Packet) {
	if s.dec[1].Stream.Offset(p.Seq) == 0 {
		a.peekAlert(f, p.Payload)
	}
	a.finish(f, s)
}

// peekAlert counts an alert record at the start of the server's bytes b.
func (a *Analyzer) peekAlert(f *flow.Flow, b []byte) {
	if len(b) >= 7 && b[0] == ptls.RecordAlert && b[1] == 3 && b[3] == 0 && b[4] >= 2 {
		a.sh.m.serverAlerts.WithLabelValues(f.Service().String(), ptls.AlertName(b[6])).Inc()
	}
}

// serverAlert handles a plaintext alert from the server side before any
// ServerHello: a fatal one on a Zoom name is filtering by name (a firewall
// that refuses the handshake instead of resetting the connection).
func (a *Analyzer) serverAlert(f *flow.Flow, s *state, t time.Time, level, desc uint8) {
	alert := ptls.AlertName(desc)
	a.sh.m.serverAlerts.WithLabelValues(f.Service().String(), alert).Inc()
	if level != ptls.AlertLevelFatal || !f.Service().IsZoom() {
		return
	}
	if !a.sh.dedup.First(dedupKey{server: f.Server().Addr(), kind: finding.KindBlockedConnection, alert: desc}, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev := map[string]any{
		"sni": a.sniString(s), "ja3": hex.EncodeToString(s.ja3[:]), "ja4": string(s.ja4[:]),
		"alert": alert, "alert_level": "fatal", "ttl": int(s.serverTTL), "signal": "tls_alert",
	}
	origin, confidence := "server_or_middlebox", "medium"
	if s.synAckSeen {
		ev["ttl_syn_ack"] = int(s.synAckTTL)
		if s.synAckTTL != s.serverTTL {
			// The server's own packets keep one TTL: another one answered.
			origin, confidence = "middlebox", "high"
		}
	}
	ev["origin"] = origin
	if s.hrr {
		ev["hello_retry_request"] = true
	}
	a.sink.Emit(finding.Finding{
		Time: t, Kind: finding.KindBlockedConnection, Reason: finding.ReasonSNIFiltering, Source: Name,
		Service: f.Service().String(), Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), Confidence: confidence,
		UserSees:    fmt.Sprintf("Zoom cannot connect (error 5003 or another code of the 5000-5004 / 104101-104118 family): the TLS handshake to %s was refused with alert %s right after the client named the server.", a.sniString(s), alert),
		Remediation: "A firewall or web filter refuses Zoom by name (SNI) with a TLS alert instead of a reset: allow Zoom's domains (*.zoom.us, *.zoom.com, *.zoomgov.com) in the web filter or application control, or exempt them from SSL/TLS inspection policies that filter by category.",
		Evidence:    ev,
	})
}

// overlapConflict reports two copies of the same handshake bytes that
// disagree on a Zoom flow: the copy kept (the first) may not be the one the
// endpoint accepted.
func (a *Analyzer) overlapConflict(f *flow.Flow, s *state, t time.Time) {
	s.conflictReported = true
	if !a.sh.dedup.First(dedupKey{server: f.Server().Addr(), leaf: string(finding.ReasonOverlapConflict), kind: finding.KindTLSSuspected}, t, a.sh.window) {
		a.sh.m.suppressed.Inc()
		return
	}
	ev := a.baseEvidence(f, s)
	ev["direction"] = map[flow.Dir]string{flow.ToServer: "to_server", flow.ToClient: "to_client"}[s.conflictDir]
	ev["stream_offset"] = s.conflictAt
	ev["conflicting_segments"] = s.conflicts[0] + s.conflicts[1]
	ev["ttl_conflicting_segment"] = int(s.conflictTTL)
	a.sink.Emit(finding.Finding{
		Time: t, Kind: finding.KindTLSSuspected, Reason: finding.ReasonOverlapConflict, Source: Name,
		Service: f.Service().String(), Flow: analyzers.FindingFlow(f), SNI: a.sniString(s), Confidence: "medium",
		UserSees:    "Possibly a certificate warning or a failed connection: two copies of the same bytes of this Zoom TLS handshake disagree, so a device on the path injected data (or tried to hide the handshake from inspection).",
		Remediation: "Look for an inline device (IPS, TLS inspection, traffic shaper) that injects TCP segments on Zoom's connections; confirm with zoomprobe's active TLS probe, and exempt Zoom's names and ranges from it.",
		Evidence:    ev,
	})
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
