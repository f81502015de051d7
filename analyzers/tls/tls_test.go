package tls

import (
	"crypto/sha256"
	ctls "crypto/tls"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/identity"
	"github.com/zoomprobe/zoomprobe/internal/bounded"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// pki is the test PKI: a "Zoom" root and intermediate the config expects, a
// FortiGate inspection CA, an unknown interceptor and a public CA.
type pki struct {
	zoomRoot, zoomInter, forti, unknown, public *tlstest.CA
	dir                                         string
}

var testPKI *pki

func getPKI(t testing.TB) *pki {
	if testPKI != nil {
		return testPKI
	}
	p := &pki{}
	p.zoomRoot = tlstest.NewRoot(t, pkix.Name{CommonName: "Test Zoom Root", Organization: []string{"DigiCert Inc"}})
	p.zoomInter = p.zoomRoot.Intermediate(t, pkix.Name{CommonName: "Test Zoom TLS CA1", Organization: []string{"DigiCert Inc"}})
	p.forti = tlstest.NewRoot(t, pkix.Name{CommonName: "FortiGate CA", Organization: []string{"Fortinet"}})
	p.unknown = tlstest.NewRoot(t, pkix.Name{CommonName: "Gateway Authentication"})
	p.public = tlstest.NewRoot(t, pkix.Name{CommonName: "Test Public CA"})
	dir, err := os.MkdirTemp("", "zoomprobe-tls-test")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	for name, ca := range map[string]*tlstest.CA{"zoom-root.pem": p.zoomRoot, "public.pem": p.public} {
		if err := os.WriteFile(filepath.Join(dir, name), ca.PEM(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testPKI = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testPKI != nil {
		os.RemoveAll(testPKI.dir)
	}
	os.Exit(code)
}

func testConfig(p *pki) *config.Config {
	cfg := config.Default()
	cfg.TLS.SystemRoots = false
	cfg.TLS.ExtraRoots = []string{filepath.Join(p.dir, "zoom-root.pem"), filepath.Join(p.dir, "public.pem")}
	sum := sha256.Sum256(p.zoomRoot.Cert.RawSubjectPublicKeyInfo)
	cfg.TLS.ExpectedIssuers = []config.ExpectedIssuer{{CN: "Test Zoom Root", SPKISHA256: hex.EncodeToString(sum[:])}}
	cfg.TLS.FingerprintBaseline = 2
	return cfg
}

// rig is an analyzer with a flow table, a registry and a finding log.
type rig struct {
	a        *Analyzer
	tab      *flow.Table
	reg      *prometheus.Registry
	findings []finding.Finding
	clock    *certcheck.Clock
	// id decides identity as in the engine: 3.7.35.0/24 is a Meetings range
	// (TCP: media_router), other addresses wait for the SNI.
	id *identity.Stage
}

// rigRanges are the Zoom ranges the rig's identity stage knows.
var rigRanges = zoom.NewRanges([]zoom.RangeEntry{{Prefix: netip.MustParsePrefix("3.7.35.0/24"), Service: zoom.ServiceMedia}})

func newRig(t testing.TB, cfg *config.Config) *rig {
	r := &rig{reg: prometheus.NewRegistry(), clock: &certcheck.Clock{}}
	r.id = identity.New(identity.Config{Classifier: zoom.NewClassifier(rigRanges, cfg.Zoom.Watch)})
	mk, err := plugin{}.Init(analyzers.Env{Config: cfg, Registerer: r.reg, Clock: r.clock, Slot: 3,
		Sink: finding.SinkFunc(func(f finding.Finding) { r.findings = append(r.findings, f) })})
	if err != nil {
		t.Fatal(err)
	}
	r.a = mk().(*Analyzer)
	r.tab = flow.NewTable(flow.DefaultConfig(), r.expire)
	return r
}

func (r *rig) expire(f *flow.Flow, now time.Time, why flow.ExpireReason) {
	r.a.Expire(f, now, why)
	r.id.Expire(f)
}

func (r *rig) feed(pkts []*decode.Packet) *flow.Flow {
	var last *flow.Flow
	for _, p := range pkts {
		f, d, created := r.tab.Packet(p)
		r.id.Packet(f, p, d, created)
		r.a.Packet(f, p, d)
		last = f
	}
	return last
}

func (r *rig) flush() { r.tab.Flush(tlstest.DefaultTime.Add(time.Hour)) }

// conn builds the TCP packets of one connection.
type conn struct {
	client, server netip.AddrPort
	seq            [2]uint32
	ttl            [2]uint8
	t              time.Time
}

func newConn(clientPort uint16, server string) *conn {
	return &conn{
		client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), clientPort),
		server: netip.AddrPortFrom(netip.MustParseAddr(server), 443),
		seq:    [2]uint32{1000 + uint32(clientPort), 0xfffff000}, // the server's sequence wraps
		ttl:    [2]uint8{64, 52},
		t:      tlstest.DefaultTime,
	}
}

func (c *conn) pkt(d flow.Dir, flags uint8, seq uint32, payload []byte) *decode.Packet {
	c.t = c.t.Add(time.Millisecond)
	p := &decode.Packet{Time: c.t, IPVersion: 4, Proto: decode.ProtoTCP, TCPFlags: flags, Seq: seq, Payload: payload, TTL: c.ttl[d]}
	if d == flow.ToServer {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.client.Addr(), c.server.Addr(), c.client.Port(), c.server.Port()
	} else {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.server.Addr(), c.client.Addr(), c.server.Port(), c.client.Port()
	}
	return p
}

func (c *conn) open() []*decode.Packet {
	out := []*decode.Packet{
		c.pkt(flow.ToServer, decode.TCPSyn, c.seq[0], nil),
		c.pkt(flow.ToClient, decode.TCPSyn|decode.TCPAck, c.seq[1], nil),
	}
	c.seq[0]++
	c.seq[1]++
	return append(out, c.pkt(flow.ToServer, decode.TCPAck, c.seq[0], nil))
}

// send cuts data into segments of mss bytes.
func (c *conn) send(d flow.Dir, data []byte, mss int) []*decode.Packet {
	var out []*decode.Packet
	for _, part := range tlstest.Split(data, mss) {
		out = append(out, c.pkt(d, decode.TCPAck|decode.TCPPsh, c.seq[d], part))
		c.seq[d] += uint32(len(part))
	}
	return out
}

// segmentation says how a transcript is cut into packets.
type segmentation struct {
	name string
	// mss per direction; first is the size of the ClientHello's first segment (0: mss)
	clientMSS, serverMSS, firstCut int
	reverseServer, retransmit      bool
}

var inOrder = segmentation{name: "in order", clientMSS: 1400, serverMSS: 1400}

// packets turns a transcript into TCP packets.
func packets(c *conn, tr *tlstest.Transcript, s segmentation) []*decode.Packet {
	out := c.open()
	for i, w := range tr.Writes {
		d := flow.Dir(w.Dir)
		var pk []*decode.Packet
		switch {
		case i == 0 && s.firstCut > 0:
			pk = c.send(d, w.Data[:s.firstCut], s.firstCut)
			pk = append(pk, c.send(d, w.Data[s.firstCut:], s.clientMSS)...)
		case d == flow.ToServer:
			pk = c.send(d, w.Data, s.clientMSS)
		default:
			pk = c.send(d, w.Data, s.serverMSS)
			if s.reverseServer {
				for a, b := 0, len(pk)-1; a < b; a, b = a+1, b-1 {
					pk[a], pk[b] = pk[b], pk[a]
				}
			}
		}
		for _, p := range pk {
			out = append(out, p)
			if s.retransmit {
				dup := *p
				out = append(out, &dup)
			}
		}
	}
	return out
}

// metricValues gathers every non-zero sample as "name{label=value,...}".
func metricValues(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			}
			if v == 0 {
				continue
			}
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func sameMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	var diff []string
	for k, v := range want {
		if got[k] != v {
			diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("unexpected %s = %v", k, v))
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("metrics:\n  %s", strings.Join(diff, "\n  "))
	}
}

const mmr = "zoomfrn99mmr.zoom.us"

func notAfterKey(svc string) string {
	return "zoomprobe_tls_certificate_not_after_seconds{service=" + svc + "}"
}

func TestCertificateVerdicts(t *testing.T) {
	p := getPKI(t)
	at := tlstest.DefaultTime
	zoomLeaf := tlstest.LeafSpec{Names: []string{mmr}, Org: "Zoom Video Communications, Inc."}
	nb, na := tlstest.LeafNotBefore, tlstest.LeafNotAfter
	type want struct {
		kind    finding.Kind
		reason  finding.Reason
		code    int
		product string
		issuer  string
		counted bool // in tls_interceptions_total
	}
	tests := []struct {
		name   string
		cert   func(t *testing.T) ctls.Certificate
		sni    string
		want   *want
		notAft time.Time
	}{
		{"clean Zoom chain", func(t *testing.T) ctls.Certificate { return p.zoomInter.Leaf(t, zoomLeaf, p.zoomInter) }, mmr, nil, na},
		{"FortiGate inspection", func(t *testing.T) ctls.Certificate { return p.forti.Leaf(t, zoomLeaf, p.forti) }, mmr,
			&want{finding.KindTLSInterception, finding.ReasonUnknownAuthority, 6, "FortiGate", "FortiGate CA", true}, na},
		{"unknown interceptor", func(t *testing.T) ctls.Certificate { return p.unknown.Leaf(t, zoomLeaf) }, mmr,
			&want{finding.KindTLSInterception, finding.ReasonUnknownAuthority, 6, "unknown", "Gateway Authentication", true}, na},
		{"trusted public CA, not Zoom's", func(t *testing.T) ctls.Certificate { return p.public.Leaf(t, zoomLeaf) }, mmr,
			&want{finding.KindTLSInterception, finding.ReasonUnexpectedIssuer, 6, "unknown", "Test Public CA", true}, na},
		{"expired", func(t *testing.T) ctls.Certificate {
			return p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}, NotBefore: at.AddDate(-1, 0, 0), NotAfter: at.AddDate(0, 0, -3)}, p.zoomInter)
		}, mmr, &want{finding.KindCertificateProblem, finding.ReasonExpired, 5, "", "Test Zoom TLS CA1", false}, at.AddDate(0, 0, -3)},
		{"not yet valid", func(t *testing.T) ctls.Certificate {
			return p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}, NotBefore: at.AddDate(0, 0, 2), NotAfter: at.AddDate(1, 0, 0)}, p.zoomInter)
		}, mmr, &want{finding.KindCertificateProblem, finding.ReasonNotYetValid, 5, "", "Test Zoom TLS CA1", false}, at.AddDate(1, 0, 0)},
		{"wrong host", func(t *testing.T) ctls.Certificate {
			return p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{"*.zoom.us"}}, p.zoomInter)
		}, "zoomsjccv154mmr.sjc.zoom.us", &want{finding.KindTLSInterception, finding.ReasonInvalidHostname, 1, "", "Test Zoom TLS CA1", true}, na},
		{"self-signed", func(t *testing.T) ctls.Certificate {
			return p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}, SelfSigned: true})
		}, mmr, &want{finding.KindTLSInterception, finding.ReasonSelfSigned, 6, "unknown", mmr, true}, na},
		{"missing serverAuth", func(t *testing.T) ctls.Certificate {
			return p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}, NoServerAuth: true}, p.zoomInter)
		}, mmr, &want{finding.KindTLSInterception, finding.ReasonInvalidPurpose, 7, "", "Test Zoom TLS CA1", true}, na},
		{"revoked (stapled OCSP)", func(t *testing.T) ctls.Certificate {
			c := p.zoomInter.Leaf(t, zoomLeaf, p.zoomInter)
			c.OCSPStaple = p.zoomInter.OCSP(t, c.Leaf, 1 /* ocsp.Revoked */, at.Add(-time.Hour))
			return c
		}, mmr, &want{finding.KindCertificateProblem, finding.ReasonRevoked, 2, "", "Test Zoom TLS CA1", false}, na},
	}
	_ = nb
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, testConfig(p))
			tr := tlstest.Record(t, tlstest.Spec{ServerName: tt.sni, MaxVersion: ctls.VersionTLS12, Cert: tt.cert(t)})
			r.feed(packets(newConn(40000, "3.7.35.10"), tr, inOrder))
			r.flush()
			verdict := finding.ReasonOK
			want := map[string]float64{notAfterKey("media_router"): float64(tt.notAft.Unix())}
			if tt.want == nil {
				if len(r.findings) != 0 {
					t.Fatalf("clean handshake gave findings: %+v", r.findings)
				}
			} else {
				verdict = tt.want.reason
				if len(r.findings) != 1 {
					t.Fatalf("%d findings, want 1: %+v", len(r.findings), r.findings)
				}
				f := r.findings[0]
				if f.Kind != tt.want.kind || f.Reason != tt.want.reason || f.ZoomRoomsCode != tt.want.code || f.Product != tt.want.product ||
					f.Evidence["issuer_cn"] != tt.want.issuer || f.SNI != tt.sni || f.Service != "media_router" || f.Source != "tls" {
					t.Errorf("finding %s %s code %d product %q issuer %v sni %q service %s; want %+v", f.Kind, f.Reason, f.ZoomRoomsCode, f.Product, f.Evidence["issuer_cn"], f.SNI, f.Service, *tt.want)
				}
				if f.Flow == nil || f.Flow.Server != netip.MustParseAddr("3.7.35.10") || f.Flow.ClientPort != 40000 || !f.Time.After(at) {
					t.Errorf("flow %+v time %s", f.Flow, f.Time)
				}
				if _, list := f.Evidence["chain"].([]string); !list || f.Confidence == "" || f.Evidence["confidence"] != f.Confidence {
					t.Errorf("chain %T (the probe's key is a list), confidence %q / %v", f.Evidence["chain"], f.Confidence, f.Evidence["confidence"])
				}
				for _, k := range []string{"leaf_sha256", "chain", "not_after", "ja3", "ja4", "server_fingerprint", "ttl", "version", "cipher_suite", "trust", "problems"} {
					if v, ok := f.Evidence[k]; !ok || v == "" {
						t.Errorf("evidence %s missing", k)
					}
				}
				if f.Evidence["version"] != "tls1.2" || f.UserSees == "" || f.Remediation == "" {
					t.Errorf("version %v user_sees %q remediation %q", f.Evidence["version"], f.UserSees, f.Remediation)
				}
				if tt.want.counted {
					prod := tt.want.product
					if prod == "" {
						prod = "unknown"
					}
					want[fmt.Sprintf("zoomprobe_tls_interceptions_total{product=%s,reason=%s,service=media_router}", prod, tt.want.reason)] = 1
				}
			}
			want[fmt.Sprintf("zoomprobe_tls_handshakes_total{service=media_router,verdict=%s,version=tls1.2}", verdict)] = 1
			sameMetrics(t, metricValues(t, r.reg), want)
		})
	}
}

// The same FortiGate handshake, cut into packets every way a capture can
// deliver them, gives the same single finding.
func TestSegmentation(t *testing.T) {
	p := getPKI(t)
	cert := p.forti.Leaf(t, tlstest.LeafSpec{Names: []string{mmr, "a-long-name-to-grow-the-certificate-" + strings.Repeat("x", 20) + ".zoom.us"}}, p.forti)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: cert})
	for _, s := range []segmentation{
		inOrder,
		{name: "ClientHello split in two", clientMSS: 1400, serverMSS: 1400, firstCut: 60},
		{name: "certificate over many segments", clientMSS: 1400, serverMSS: 50},
		{name: "server flight out of order", clientMSS: 1400, serverMSS: 90, reverseServer: true},
		{name: "every segment retransmitted", clientMSS: 100, serverMSS: 100, retransmit: true},
		{name: "all at once", clientMSS: 1400, serverMSS: 120, firstCut: 7, reverseServer: true, retransmit: true},
	} {
		t.Run(s.name, func(t *testing.T) {
			r := newRig(t, testConfig(p))
			f := r.feed(packets(newConn(40001, "3.7.35.11"), tr, s))
			if flow.NewExt[state](3).Get(f) != skip {
				t.Errorf("the analyzer did not finish with the flow after the handshake")
			}
			r.flush()
			if len(r.findings) != 1 || r.findings[0].Product != "FortiGate" || r.findings[0].Reason != finding.ReasonUnknownAuthority {
				t.Fatalf("findings %+v", r.findings)
			}
			got := metricValues(t, r.reg)
			if got["zoomprobe_tls_interceptions_total{product=FortiGate,reason=ssl_unknown_authority,service=media_router}"] != 1 {
				t.Errorf("metrics %v", got)
			}
		})
	}
}

func TestClientRejectsCertificate(t *testing.T) {
	p := getPKI(t)
	for _, tt := range []struct {
		name  string
		patch uint8 // rewrite the client's alert to this description (0: as Go sent it)
		alert string
	}{
		{"Go client sends bad_certificate", 0, "bad_certificate"},
		{"client sends unknown_ca (as OpenSSL does)", 48, "unknown_ca"},
		{"client sends certificate_expired", 45, "certificate_expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, testConfig(p))
			// A client that trusts only the Zoom root meets the FortiGate chain.
			tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.forti.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.forti), Roots: pool(p.zoomRoot)})
			if tr.ClientErr == nil {
				t.Fatal("the client accepted the FortiGate chain")
			}
			if tt.patch != 0 && !patchAlert(tr, tt.patch) {
				t.Fatal("no plaintext client alert to patch")
			}
			r.feed(packets(newConn(40002, "3.7.35.12"), tr, inOrder))
			r.flush()
			if len(r.findings) != 2 {
				t.Fatalf("%d findings: %+v", len(r.findings), r.findings)
			}
			inter, rej := r.findings[0], r.findings[1]
			if inter.Kind != finding.KindTLSInterception || rej.Kind != finding.KindCertRejected || rej.Reason != finding.ReasonClientRejectedCert ||
				rej.ZoomRoomsCode != 6 || rej.Product != "FortiGate" || rej.Evidence["verdict"] != "ssl_unknown_authority" || rej.Evidence["alert"] != tt.alert {
				t.Errorf("findings %+v / %+v", inter, rej)
			}
			sameMetrics(t, metricValues(t, r.reg), map[string]float64{
				"zoomprobe_tls_handshakes_total{service=media_router,verdict=ssl_unknown_authority,version=tls1.2}":      1,
				"zoomprobe_tls_interceptions_total{product=FortiGate,reason=ssl_unknown_authority,service=media_router}": 1,
				"zoomprobe_tls_client_alerts_total{alert=" + tt.alert + ",service=media_router}":                         1,
				notAfterKey("media_router"): float64(tlstest.LeafNotAfter.Unix()),
			})
		})
	}
}

// patchAlert rewrites the description of the client's plaintext fatal alert.
func patchAlert(tr *tlstest.Transcript, desc uint8) bool {
	for _, w := range tr.Writes {
		b := w.Data
		if w.Dir == tlstest.FromClient && len(b) == 7 && b[0] == 21 && b[3] == 0 && b[4] == 2 {
			b[6] = desc
			return true
		}
	}
	return false
}

func pool(cas ...*tlstest.CA) *x509Pool {
	pl := newPool()
	for _, c := range cas {
		pl.AddCert(c.Cert)
	}
	return pl
}

// TLS 1.3: nothing to judge; the server fingerprint is learned per (service,
// client fingerprint), and a different one after the baseline is drift.
func TestTLS13Drift(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p)) // baseline 2
	good := p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter)
	normal := tlstest.Record(t, tlstest.Spec{ServerName: mmr, Cert: good})
	port := uint16(41000)
	for range 3 {
		r.feed(packets(newConn(port, "3.7.35.13"), normal, inOrder))
		port++
	}
	if len(r.findings) != 0 {
		t.Fatalf("steady TLS 1.3 gave findings: %+v", r.findings)
	}
	// An interceptor's TLS stack answers differently (here: it picks X25519
	// instead of the post-quantum group).
	other := recordWithServerCurves(t, mmr, p.unknown.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}))
	r.feed(packets(newConn(port, "3.7.35.13"), other, inOrder))
	r.flush()
	if len(r.findings) != 1 {
		t.Fatalf("%d findings: %+v", len(r.findings), r.findings)
	}
	f := r.findings[0]
	if f.Kind != finding.KindTLSSuspected || f.Reason != finding.ReasonFingerprintDrift || f.Confidence != "low" || f.Evidence["drift"] != "server_fingerprint" || f.Evidence["learned_fingerprints"] != 1 {
		t.Errorf("finding %+v", f)
	}
	sameMetrics(t, metricValues(t, r.reg), map[string]float64{
		"zoomprobe_tls_handshakes_total{service=media_router,verdict=ssl_cert_not_observable,version=tls1.3}":  4,
		"zoomprobe_tls_interceptions_total{product=unknown,reason=tls_fingerprint_drift,service=media_router}": 1,
	})
}

// A ServerHello whose TTL differs from the SYN-ACK's came from a closer box.
func TestTLS13HopCountMismatch(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p))
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, Cert: p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter)})
	c := newConn(42000, "3.7.35.14")
	pk := packets(c, tr, inOrder)
	for _, x := range pk[3:] {
		if x.SrcPort == 443 {
			x.TTL = 63 // the SYN-ACK came with 52
		}
	}
	r.feed(pk)
	r.flush()
	if len(r.findings) != 1 || r.findings[0].Evidence["drift"] != "hop_count" || r.findings[0].Evidence["hops_syn_ack"] != 12 || r.findings[0].Evidence["hops_server_hello"] != 1 {
		t.Fatalf("findings %+v", r.findings)
	}
}

// A full TLS proxy answers the TCP handshake itself: the server's SYN-ACKs
// suddenly come from fewer hops than learned.
func TestTLS13HopCountChange(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p)) // baseline 2
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, Cert: p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter)})
	for i, ttl := range []uint8{52, 52, 53, 63} { // 12, 12, 11 (a wobble), then 1 hop
		c := newConn(uint16(42100+i), "3.7.35.20")
		c.ttl[flow.ToClient] = ttl
		r.feed(packets(c, tr, inOrder))
	}
	r.flush()
	if len(r.findings) != 1 || r.findings[0].Evidence["drift"] != "hop_count_change" || r.findings[0].Evidence["hops_learned"] != 12 || r.findings[0].Evidence["hops_syn_ack"] != 1 {
		t.Fatalf("findings %+v", r.findings)
	}
}

// One proxy, many connections: one finding per (server, leaf) per window,
// every handshake counted.
func TestDeduplication(t *testing.T) {
	p := getPKI(t)
	cfg := testConfig(p)
	cfg.TLS.DedupWindow = time.Minute
	r := newRig(t, cfg)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.forti.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.forti)})
	for i := range 5 {
		c := newConn(uint16(43000+i), "3.7.35.15")
		c.t = c.t.Add(time.Duration(i) * 20 * time.Second) // the last two are past the window
		r.feed(packets(c, tr, inOrder))
	}
	r.flush()
	if len(r.findings) != 2 {
		t.Fatalf("%d findings, want 2 (at 0s and 60s+)", len(r.findings))
	}
	got := metricValues(t, r.reg)
	if got["zoomprobe_tls_interceptions_total{product=FortiGate,reason=ssl_unknown_authority,service=media_router}"] != 5 || got["zoomprobe_tls_findings_suppressed_total{}"] != 3 {
		t.Errorf("metrics %v", got)
	}
}

// A flow the identity stage could not place by address learns its identity
// from the SNI; the analyzer lets a non-Zoom name go after the ClientHello.
func TestIdentityFromSNI(t *testing.T) {
	p := getPKI(t)
	cert := p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoomam104zc.zoom.us"}}, p.zoomInter)
	for _, tt := range []struct {
		sni     string
		service zoom.Service
		name    string
	}{
		{"zoomam104zc.zoom.us", zoom.ServiceZoneController, "zoomam104zc.zoom.us"},
		{"example.org", zoom.ServiceNone, ""},
		{"", zoom.ServiceNone, ""},
	} {
		t.Run(tt.sni, func(t *testing.T) {
			r := newRig(t, testConfig(p))
			tr := tlstest.Record(t, tlstest.Spec{ServerName: tt.sni, MaxVersion: ctls.VersionTLS12, Cert: cert})
			pk := packets(newConn(44000, "52.1.2.3"), tr, segmentation{name: "split", clientMSS: 1400, serverMSS: 1400, firstCut: 30})
			f := r.feed(pk[:5])
			if !f.IdentityFinal() || f.Service() != tt.service || f.Name() != tt.name {
				t.Errorf("identity %+v", f.Identity())
			}
			if tt.service != zoom.ServiceNone {
				return
			}
			// Only the server's first bytes are still looked at (an alert
			// answering the ClientHello is counted for every flow).
			if s := flow.NewExt[state](3).Get(f); s == nil || !s.peekServer || !s.dec[0].Done() || !s.dec[1].Done() {
				t.Errorf("unwatched flow: state %+v", flow.NewExt[state](3).Get(f))
			}
			if f = r.feed(pk[5:6]); flow.NewExt[state](3).Get(f) != skip {
				t.Errorf("unwatched flow still tracked after the server's first bytes")
			}
		})
	}
}

// Judged at packet time plus the NTP offset: a probe whose clock runs two
// years fast does not call Zoom's certificate expired.
func TestClockOffset(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p))
	skew := 2 * 365 * 24 * time.Hour
	r.clock.SetOffset(-skew)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter)})
	c := newConn(45000, "3.7.35.16")
	c.t = c.t.Add(skew)
	r.feed(packets(c, tr, inOrder))
	r.flush()
	if len(r.findings) != 0 {
		t.Errorf("findings with a corrected clock: %+v", r.findings)
	}
	r.clock.SetOffset(0)
	c = newConn(45001, "3.7.35.16")
	c.t = c.t.Add(skew)
	r.feed(packets(c, tr, inOrder))
	r.flush()
	if len(r.findings) != 1 || r.findings[0].Reason != finding.ReasonExpired || r.findings[0].ZoomRoomsCode != 5 {
		t.Errorf("uncorrected: %+v", r.findings)
	}
}

// The handshake cap bounds the buffer: a certificate flight larger than
// tls.max_handshake_bytes is dropped and counted.
func TestHandshakeCap(t *testing.T) {
	p := getPKI(t)
	cfg := testConfig(p)
	cfg.TLS.MaxHandshakeBytes = 4096
	r := newRig(t, cfg)
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("zoom%03dmmr.zoom.us", i))
	}
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.forti.Leaf(t, tlstest.LeafSpec{Names: append([]string{mmr}, names...)}, p.forti)})
	f := r.feed(packets(newConn(46000, "3.7.35.17"), tr, inOrder))
	if flow.NewExt[state](3).Get(f) != skip {
		t.Error("still tracking past the cap")
	}
	r.flush()
	if len(r.findings) != 0 {
		t.Errorf("findings %+v", r.findings)
	}
	if got := metricValues(t, r.reg); got["zoomprobe_tls_handshakes_incomplete_total{reason=cap}"] != 1 {
		t.Errorf("metrics %v", got)
	}
}

func TestProductLabelBound(t *testing.T) {
	p := getPKI(t)
	cfg := testConfig(p)
	cfg.Metrics.MaxProductLabels = 1
	sh, err := newShared(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sh.productLabel("FortiGate") != "FortiGate" || sh.productLabel("ESET") != "other" || sh.productLabel("FortiGate") != "FortiGate" {
		t.Error("product labels not bounded")
	}
	d := bounded.NewDedup[dedupKey](16)
	for i := range 100 {
		d.First(dedupKey{leaf: fmt.Sprint(i)}, tlstest.DefaultTime, time.Hour)
	}
	if d.Len() != 16 {
		t.Errorf("dedup holds %d", d.Len())
	}
}

func BenchmarkHandshake(b *testing.B) {
	p := getPKI(b)
	for _, bc := range []struct {
		name    string
		version uint16
		cert    ctls.Certificate
		service zoom.Service
	}{
		{"tls1.2 FortiGate judged", ctls.VersionTLS12, p.forti.Leaf(b, tlstest.LeafSpec{Names: []string{mmr}}, p.forti), zoom.ServiceMediaRouter},
		{"tls1.3 learned", ctls.VersionTLS13, p.zoomInter.Leaf(b, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter), zoom.ServiceMediaRouter},
		{"unwatched ClientHello", ctls.VersionTLS13, p.public.Leaf(b, tlstest.LeafSpec{Names: []string{"example.org"}}), zoom.ServiceNone},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(p)
			r := newRig(b, cfg)
			r.sinkOff()
			sni, server := mmr, "3.7.35.18"
			if bc.service == zoom.ServiceNone {
				sni, server = "example.org", "52.1.2.18"
			}
			tr := tlstest.Record(b, tlstest.Spec{ServerName: sni, MaxVersion: bc.version, Cert: bc.cert})
			pk := packets(newConn(47000, server), tr, segmentation{clientMSS: 1400, serverMSS: 1400})
			// One flow, replayed: expire it between rounds like the table would.
			f := flow.New(decode.ProtoTCP, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), 47000), netip.AddrPortFrom(netip.MustParseAddr(server), 443), time.Time{})
			dirs := make([]flow.Dir, len(pk))
			for i, x := range pk {
				dirs[i] = f.DirOf(x.Src, x.SrcPort)
			}
			b.ReportAllocs()
			for b.Loop() {
				for i, x := range pk {
					r.id.Packet(f, x, dirs[i], i == 0)
					r.a.Packet(f, x, dirs[i])
				}
				r.expire(f, tlstest.DefaultTime, flow.ExpireFlush)
			}
		})
	}
}

func (r *rig) sinkOff() { r.a.sink = finding.Discard }

// The reassembly budget gets every byte back: when a flow's handshake is done
// and when a flow the engine dropped after a panic is forgotten.
func TestBudgetComesBack(t *testing.T) {
	p := getPKI(t)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.forti.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.forti)})
	r := newRig(t, testConfig(p))
	pk := packets(newConn(40001, "3.7.35.11"), tr, segmentation{clientMSS: 1400, serverMSS: 90, reverseServer: true})
	r.feed(pk)
	r.flush()
	if len(r.findings) != 1 {
		t.Fatalf("findings %+v", r.findings)
	}
	pooled := 0
	for _, s := range r.a.free {
		pooled += s.dec[0].BufferBytes() + s.dec[1].BufferBytes()
	}
	if n := r.a.budget.InUse(); n != pooled {
		t.Errorf("after the flow ended %d bytes are charged, the recycled states hold %d", n, pooled)
	}
	// Half a handshake, then the flow is forgotten as after a panic.
	r2 := newRig(t, testConfig(p))
	f := r2.feed(pk[:len(pk)/2])
	if r2.a.budget.InUse() == 0 {
		t.Fatal("half a handshake charged nothing")
	}
	r2.a.Forget(f)
	if n := r2.a.budget.InUse(); n != 0 {
		t.Errorf("after Forget %d bytes are still charged", n)
	}
}
