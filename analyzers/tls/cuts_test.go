package tls

import (
	"crypto/sha256"
	ctls "crypto/tls"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
	ptls "github.com/zoomprobe/zoomprobe/proto/tls"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// genConfig trusts testgen's PKI: its Zoom root is the expected issuer.
func genConfig(t testing.TB) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := testgen.WriteCAPEMs(dir); err != nil {
		t.Fatal(err)
	}
	pki, err := testgen.TestPKI()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.TLS.SystemRoots = false
	cfg.TLS.ExtraRoots = []string{filepath.Join(dir, "zoom-root.pem"), filepath.Join(dir, "public-ca.pem")}
	sum := sha256.Sum256(pki.ZoomRoot.Cert.RawSubjectPublicKeyInfo)
	cfg.TLS.ExpectedIssuers = []config.ExpectedIssuer{{CN: pki.ZoomRoot.Cert.Subject.CommonName, SPKISHA256: hex.EncodeToString(sum[:])}}
	return cfg
}

var (
	genClient = netip.MustParseAddrPort("10.20.30.40:40123")
	// A cloud address outside Zoom's ranges: the SNI alone makes the flow
	// Zoom, so the identity is learnt from every cut's ClientHello.
	genServer = netip.MustParseAddrPort("198.51.100.80:443")
)

// capture writes the handshake cut the given way as frames.
func capture(t testing.TB, tr *testgen.TLSTranscript, cut testgen.TLSCut) []testgen.Packet {
	t.Helper()
	g := testgen.New(testgen.DefaultSeed, testgen.DefaultStart)
	c := g.TCPConn(genClient, genServer, testgen.TCPOptions{})
	if err := c.PlayCut(tr, cut); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g.Packets()
}

// replay decodes frames the way the engine does and runs them through the
// analyzer with identity left to the SNI.
func replay(t testing.TB, cfg *config.Config, pkts []testgen.Packet) (*rig, string) {
	t.Helper()
	r := newRig(t, cfg) // genServer is outside the rig's ranges: the SNI decides
	dec := decode.NewDecoder(decode.Options{})
	var last *flow.Flow
	for _, pk := range pkts {
		p := &decode.Packet{}
		if err := dec.Decode(pk.Data, decode.LinkEthernet, pk.Time, len(pk.Data), p); err != nil {
			t.Fatal(err)
		}
		last = r.feed([]*decode.Packet{p})
	}
	identity := fmt.Sprintf("flow service=%s name=%s", last.Service(), last.Name()) // before the table recycles it
	r.tab.Flush(testgen.DefaultStart.Add(time.Hour))
	return r, identity
}

// outcome is everything a cut must not change: findings with the identity
// and fingerprints they carry, the handshake counters, the flow's identity.
func outcome(t testing.TB, r *rig, identity string) string {
	var lines []string
	for _, x := range r.findings {
		lines = append(lines, fmt.Sprintf("finding %s/%s service=%s sni=%s product=%s code=%d ja3=%v ja4=%v server_fingerprint=%v leaf=%v version=%v",
			x.Kind, x.Reason, x.Service, x.SNI, x.Product, x.ZoomRoomsCode, x.Evidence["ja3"], x.Evidence["ja4"],
			x.Evidence["server_fingerprint"], x.Evidence["leaf_sha256"], x.Evidence["version"]))
	}
	got := metricValues(t, r.reg)
	for k, v := range got {
		if strings.HasPrefix(k, "zoomprobe_tls_handshakes") || strings.HasPrefix(k, "zoomprobe_tls_interceptions") {
			lines = append(lines, fmt.Sprintf("%s %v", k, v))
		}
	}
	lines = append(lines, identity)
	for k, e := range r.a.sh.learn.m.All() { // TLS 1.3: what was learnt is the fingerprints
		for _, fp := range e.fps[:e.n] {
			lines = append(lines, fmt.Sprintf("learned service=%s ja4=%s server_fingerprint=%s count=%d", k.svc, k.ja4[:], fp.fp[:], fp.count))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Every cut of a real handshake gives the same verdict, identity and
// fingerprints as the bytes crypto/tls wrote, with no cap and no gap.
func TestEveryCutSameVerdict(t *testing.T) {
	cfg := genConfig(t)
	for _, spec := range testgen.CutSpecs() {
		tr, err := testgen.RecordTLS(spec)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s/%s/tls%x", spec.ServerName, spec.Chain, tr.Version)
		if spec.ServerCurves != nil {
			name += "/hello-retry"
		}
		t.Run(name, func(t *testing.T) {
			ref := ""
			for _, cut := range testgen.TLSCuts() {
				r, f := replay(t, cfg, capture(t, tr, cut))
				got := outcome(t, r, f)
				m := metricValues(t, r.reg)
				for _, why := range []string{"cap", "gap", "malformed"} {
					if n := m["zoomprobe_tls_handshakes_incomplete_total{reason="+why+"}"]; n != 0 {
						t.Errorf("%s: %v handshakes incomplete (%s)", cut.Name, n, why)
					}
				}
				if ref == "" {
					ref = got
					if !strings.Contains(ref, "zoomprobe_tls_handshakes_total") || !strings.Contains(ref, "name="+spec.ServerName) {
						t.Fatalf("uncut handshake not judged or not identified:\n%s", ref)
					}
					t.Logf("%s:\n%s", cut.Name, ref)
					if want := finalServerFingerprint(t, tr); tr.Version == ctls.VersionTLS13 && !strings.Contains(ref, "server_fingerprint="+want) {
						t.Errorf("TLS 1.3: learned fingerprint is not the real ServerHello's %s", want)
					}
					continue
				}
				if got != ref {
					t.Errorf("%s differs from as-recorded:\n%s\nwant\n%s", cut.Name, got, ref)
				}
			}
		})
	}
}

// finalServerFingerprint is zs1 of the last ServerHello the server wrote
// (after a HelloRetryRequest, the real one), found without the Decoder.
func finalServerFingerprint(t testing.TB, tr *testgen.TLSTranscript) string {
	var fp string
	for _, fl := range tr.Flights {
		b := fl.Data
		for fl.Dir == testgen.ServerToClient && len(b) >= 9 && b[0] == ptls.RecordHandshake {
			n := int(b[3])<<8 | int(b[4])
			if b[5] == ptls.HandshakeServerHello {
				var sh ptls.ServerHello
				if err := ptls.ParseServerHello(b[9:5+n], &sh); err != nil {
					t.Fatal(err)
				}
				if !sh.HelloRetryRequest {
					f := ptls.ServerFingerprint(&sh)
					fp = string(f[:])
				}
			}
			b = b[5+n:]
		}
	}
	return fp
}

// A copy of the server's certificate flight with a bad TCP checksum, sent
// first, is what the client's stack dropped: it must not hide the real
// (intercepted) chain. The same copy with a good checksum is an injection:
// the first copy is still what is judged, but the disagreement is reported.
func TestFirstCopyHostile(t *testing.T) {
	cfg := genConfig(t)
	forti, err := testgen.RecordTLS(testgen.CutSpecs()[0])
	if err != nil {
		t.Fatal(err)
	}
	decoy, err := testgen.RecordTLS(testgen.TLSSpec{ServerName: testgen.NameZC, Version: forti.Spec.Version, Chain: testgen.ChainZoom, Names: forti.Spec.Names})
	if err != nil {
		t.Fatal(err)
	}
	// The decoy: the Zoom server's flight at the same stream positions.
	decoyFlight := decoy.Flights[1].Data
	// The decoy races the server's answer to the ClientHello.
	withDecoy := func(bad bool) []testgen.Packet {
		g := testgen.New(testgen.DefaultSeed, testgen.DefaultStart)
		c := g.TCPConn(genClient, genServer, testgen.TCPOptions{})
		for i, fl := range forti.Flights {
			if i == 1 {
				seq := c.NextSeq(testgen.ServerToClient)
				for off := 0; off < len(decoyFlight); off += 1000 {
					c.Inject(testgen.ServerToClient, seq+uint32(off), decoyFlight[off:min(off+1000, len(decoyFlight))], testgen.InjectOptions{BadChecksum: bad})
				}
			}
			c.Send(fl.Dir, fl.Data)
		}
		c.Close()
		if g.Err() != nil {
			t.Fatal(g.Err())
		}
		return g.Packets()
	}
	r, _ := replay(t, cfg, withDecoy(true))
	if len(r.findings) != 1 || r.findings[0].Product != "FortiGate" {
		t.Errorf("bad-checksum decoy first: findings %+v", r.findings)
	}
	m := metricValues(t, r.reg)
	if m["zoomprobe_tls_segments_skipped_total{reason=bad_checksum}"] != float64((len(decoyFlight)+999)/1000) {
		t.Errorf("skipped segments: %v", m)
	}

	r, _ = replay(t, cfg, withDecoy(false))
	var kinds []string
	for _, x := range r.findings {
		kinds = append(kinds, string(x.Kind)+"/"+string(x.Reason))
		if x.Reason == finding.ReasonOverlapConflict && (x.Evidence["direction"] != "to_client" || x.Service != "zone_controller") {
			t.Errorf("conflict finding %+v", x)
		}
	}
	if !strings.Contains(strings.Join(kinds, " "), "tls_interception_suspected/tcp_overlap_conflict") {
		t.Errorf("injected decoy with good checksums: findings %v", kinds)
	}
	if m := metricValues(t, r.reg); m["zoomprobe_tls_overlap_conflicts_total{service=zone_controller}"] == 0 {
		t.Errorf("conflicts not counted: %v", m)
	}
}

// BenchmarkCutHandshake is the per-packet cost on decoded frames (TCP
// checksums verified): a TLS 1.3 handshake to a Zoom name written in
// one-byte records over 7-byte segments, and as recorded. allocs/op is per
// handshake: the one allocation is the flow's name.
func BenchmarkCutHandshake(b *testing.B) {
	tr, err := testgen.RecordTLS(testgen.CutSpecs()[3])
	if err != nil {
		b.Fatal(err)
	}
	for _, cut := range []testgen.TLSCut{{Name: "as-recorded"}, {Name: "fragment-1-segment-7", Fragment: 1, Segment: 7}} {
		b.Run(cut.Name, func(b *testing.B) {
			frames := capture(b, tr, cut)
			dec := decode.NewDecoder(decode.Options{})
			pkts := make([]*decode.Packet, len(frames))
			for i, fr := range frames {
				pkts[i] = &decode.Packet{}
				if err := dec.Decode(fr.Data, decode.LinkEthernet, fr.Time, len(fr.Data), pkts[i]); err != nil {
					b.Fatal(err)
				}
			}
			r := newRig(b, genConfig(b))
			r.sinkOff()
			f := flow.New(decode.ProtoTCP, genClient, genServer, time.Time{})
			dirs := make([]flow.Dir, len(pkts))
			for i, x := range pkts {
				dirs[i] = f.DirOf(x.Src, x.SrcPort)
			}
			b.ReportAllocs()
			for b.Loop() {
				for i, x := range pkts {
					r.id.Packet(f, x, dirs[i], i == 0) // the first packet starts the flow's identity afresh
					r.a.Packet(f, x, dirs[i])
				}
				r.expire(f, testgen.DefaultStart, flow.ExpireFlush)
			}
			if f.Service() != zoom.ServiceWeb {
				b.Fatalf("service %s", f.Service())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
		})
	}
}
