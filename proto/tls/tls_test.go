package tls

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	ctls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// collector records what a Decoder hands out (copies).
type collector struct {
	msgs   []msg
	alerts [][2]uint8
	ccs    int
}

type msg struct {
	typ  uint8
	body []byte
}

func (c *collector) Handshake(typ uint8, body []byte) {
	c.msgs = append(c.msgs, msg{typ, bytes.Clone(body)})
}
func (c *collector) Alert(level, desc uint8) { c.alerts = append(c.alerts, [2]uint8{level, desc}) }
func (c *collector) ChangeCipherSpec()       { c.ccs++ }

func (c *collector) types() []uint8 {
	var out []uint8
	for _, m := range c.msgs {
		out = append(out, m.typ)
	}
	return out
}

func (c *collector) find(typ uint8) []byte {
	for _, m := range c.msgs {
		if m.typ == typ {
			return m.body
		}
	}
	return nil
}

type seg struct {
	seq  uint32
	data []byte
}

// segments cuts data into mss-sized segments starting at isn+1.
func segments(isn uint32, data []byte, mss int) []seg {
	var out []seg
	seq := isn + 1
	for _, p := range tlstest.Split(data, mss) {
		out = append(out, seg{seq, p})
		seq += uint32(len(p))
	}
	return out
}

// decode runs segs through a fresh decoder (with the SYN) and returns what it found.
func decode(isn uint32, segs []seg, max int) (*collector, *Decoder) {
	c := &collector{}
	d := &Decoder{}
	d.Reset(max)
	d.Stream.SYN(isn)
	for _, s := range segs {
		d.Segment(s.seq, s.data, c)
	}
	return c, d
}

var testPKI struct {
	root, inter *tlstest.CA
}

func pki(t testing.TB) (*tlstest.CA, *tlstest.CA) {
	if testPKI.root == nil {
		testPKI.root = tlstest.NewRoot(t, pkix.Name{CommonName: "Test Root"})
		testPKI.inter = testPKI.root.Intermediate(t, pkix.Name{CommonName: "Test Intermediate"})
	}
	return testPKI.root, testPKI.inter
}

func TestRealHandshakes(t *testing.T) {
	root, inter := pki(t)
	cert := inter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoomfrn99mmr.zoom.us"}}, inter)
	cert.OCSPStaple = inter.OCSP(t, cert.Leaf, 0, tlstest.DefaultTime.Add(-1e12))
	cert.SignedCertificateTimestamps = [][]byte{tlstest.FakeSCT(), tlstest.FakeSCT()}
	_ = root
	tests := []struct {
		name        string
		max         uint16
		mss         int
		wantVersion uint16
		serverTypes []uint8
	}{
		{"tls1.2", ctls.VersionTLS12, 1460, VersionTLS12,
			[]uint8{HandshakeServerHello, HandshakeCertificate, HandshakeCertificateStatus, HandshakeServerKeyExchange, HandshakeServerHelloDone}},
		{"tls1.2 tiny segments", ctls.VersionTLS12, 7, VersionTLS12,
			[]uint8{HandshakeServerHello, HandshakeCertificate, HandshakeCertificateStatus, HandshakeServerKeyExchange, HandshakeServerHelloDone}},
		{"tls1.3", ctls.VersionTLS13, 1400, VersionTLS13, []uint8{HandshakeServerHello}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tlstest.Record(t, tlstest.Spec{ServerName: "zoomfrn99mmr.zoom.us", MaxVersion: tt.max, Cert: cert, ALPN: []string{"h2", "http/1.1"}})
			cli, cd := decode(1000, segments(1000, tr.Bytes(tlstest.FromClient), tt.mss), 65536)
			srv, sd := decode(5000, segments(5000, tr.Bytes(tlstest.FromServer), tt.mss), 65536)
			if cd.Err() != nil || sd.Err() != nil {
				t.Fatalf("decoder errors: client %v, server %v", cd.Err(), sd.Err())
			}
			if !cd.Done() || !sd.Done() {
				t.Fatalf("decoders did not stop at the encrypted part: client %v server %v", cd.Done(), sd.Done())
			}
			wantClient := []uint8{HandshakeClientHello}
			if tt.max == ctls.VersionTLS12 {
				wantClient = append(wantClient, HandshakeClientKeyExchange)
			}
			if got := cli.types(); !bytes.Equal(got, wantClient) {
				t.Fatalf("client messages %v, want %v", got, wantClient)
			}
			var ch ClientHello
			if err := ParseClientHello(cli.msgs[0].body, &ch); err != nil {
				t.Fatal(err)
			}
			if string(ch.SNI) != "zoomfrn99mmr.zoom.us" || string(ch.FirstALPN()) != "h2" {
				t.Errorf("SNI %q ALPN %q", ch.SNI, ch.FirstALPN())
			}
			if ch.MaxVersion() != tt.max {
				t.Errorf("max version %x, want %x", ch.MaxVersion(), tt.max)
			}
			if !ch.StatusRequest || !ch.SCTRequest {
				t.Errorf("Go asks for OCSP and SCTs: status %v sct %v", ch.StatusRequest, ch.SCTRequest)
			}
			if got := srv.types(); !bytes.Equal(got, tt.serverTypes) {
				t.Fatalf("server messages %v, want %v", got, tt.serverTypes)
			}
			if srv.ccs != 1 && tt.max == ctls.VersionTLS12 {
				t.Errorf("server CCS seen %d times", srv.ccs)
			}
			var sh ServerHello
			if err := ParseServerHello(srv.find(HandshakeServerHello), &sh); err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 moves ALPN into the encrypted extensions.
			wantALPN := "h2"
			if tt.max == ctls.VersionTLS13 {
				wantALPN = ""
			}
			if sh.Version() != tt.wantVersion || string(sh.ALPN) != wantALPN {
				t.Errorf("server version %x ALPN %q", sh.Version(), sh.ALPN)
			}
			fp := ServerFingerprint(&sh)
			wantFP := "zs1_" + ja4Version(tt.wantVersion) + hex.EncodeToString([]byte{byte(sh.CipherSuite >> 8), byte(sh.CipherSuite)})
			if !strings.HasPrefix(string(fp[:]), wantFP) || (wantALPN == "h2") != (string(fp[12:14]) == "h2") {
				t.Errorf("server fingerprint %s, want prefix %s", fp, wantFP)
			}
			ja4 := JA4(&ch)
			if !strings.HasPrefix(string(ja4[:]), "t"+ja4Version(tt.max)+"d") || string(ja4[8:10]) != "h2" {
				t.Errorf("JA4 %s", ja4)
			}
			if tt.max == ctls.VersionTLS13 {
				return
			}
			if n, ok := SCTCount(sh.SCTList); !ok || n != 2 {
				t.Errorf("SCTs in ServerHello: %d %v, want 2", n, ok)
			}
			certs, err := CertificateList(nil, srv.find(HandshakeCertificate))
			if err != nil || len(certs) != 2 {
				t.Fatalf("certificates: %d, %v", len(certs), err)
			}
			leaf, err := x509.ParseCertificate(certs[0])
			if err != nil || leaf.Subject.CommonName != "zoomfrn99mmr.zoom.us" {
				t.Fatalf("leaf %v %v", leaf, err)
			}
			resp, err := CertificateStatus(srv.find(HandshakeCertificateStatus))
			if err != nil || !bytes.Equal(resp, cert.OCSPStaple) {
				t.Errorf("stapled OCSP differs: %v", err)
			}
		})
	}
}

// A Go client's ClientHello carries a post-quantum key share and exceeds
// 1400 bytes: it must be reassembled from two segments, in either order.
func TestPostQuantumClientHelloAcrossSegments(t *testing.T) {
	_, inter := pki(t)
	cert := inter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}}, inter)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: "zoom.us", Cert: cert})
	hello := tr.Writes[0].Data
	if tr.Writes[0].Dir != tlstest.FromClient || len(hello) <= 1400 {
		t.Fatalf("first write is %d bytes from %d; want a ClientHello > 1400 bytes", len(hello), tr.Writes[0].Dir)
	}
	segs := segments(77, hello, 1400)
	for _, order := range [][]int{{0, 1}, {1, 0}} {
		c, d := decode(77, []seg{segs[order[0]], segs[order[1]]}, 65536)
		if len(c.msgs) != 1 || d.Err() != nil {
			t.Fatalf("order %v: %d messages, err %v", order, len(c.msgs), d.Err())
		}
		var ch ClientHello
		if err := ParseClientHello(c.msgs[0].body, &ch); err != nil {
			t.Fatal(err)
		}
		groups := ch.KeyShareGroups(nil)
		if string(ch.SNI) != "zoom.us" || len(groups) == 0 || groups[0] != 0x11ec {
			t.Errorf("order %v: SNI %q key shares %x (want X25519MLKEM768 0x11ec first)", order, ch.SNI, groups)
		}
	}
	// Only the first half: nothing yet.
	if c, _ := decode(77, segs[:1], 65536); len(c.msgs) != 0 {
		t.Error("a half ClientHello produced a message")
	}
}

func TestStreamReassembly(t *testing.T) {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	tests := []struct {
		name     string
		segs     []seg // seq relative to isn 100 (first byte at 101)
		max      int
		want     string
		gap      bool
		overflow bool
	}{
		{"in order", []seg{{101, data[:10]}, {111, data[10:20]}, {121, data[20:]}}, 100, string(data), false, false},
		{"reversed", []seg{{121, data[20:]}, {111, data[10:20]}, {101, data[:10]}}, 100, string(data), false, false},
		{"retransmission and overlap", []seg{{101, data[:10]}, {101, data[:10]}, {105, data[4:15]}, {111, data[10:]}}, 100, string(data), false, false},
		{"first copy wins", []seg{{101, data[:10]}, {105, []byte("XXXX")}, {111, []byte("abc")}, {111, []byte("ZZZ")}}, 100, "0123456789abc", false, false},
		{"first copy wins out of order", []seg{{111, []byte("abc")}, {109, []byte("YYZZZ")}, {101, data[:8]}}, 100, "01234567YYabc", false, false},
		{"gap holds back", []seg{{101, data[:10]}, {121, data[20:]}}, 100, string(data[:10]), true, false},
		{"before the start", []seg{{91, []byte("ignored!!!0123")}, {105, data[4:10]}}, 100, "0123456789", false, false},
		{"cap", []seg{{101, data[:10]}, {111, data[10:]}}, 16, string(data[:16]), false, true},
		{"far beyond cap", []seg{{101, data[:10]}, {1 << 20, data}}, 16, string(data[:10]), false, true},
		{"sequence wrap", nil, 100, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stream
			s.Reset(tt.max)
			s.SYN(100)
			for _, sg := range tt.segs {
				s.Segment(sg.seq, sg.data)
			}
			if got := string(s.Bytes()); got != tt.want {
				t.Errorf("bytes %q, want %q", got, tt.want)
			}
			if s.Gap() != tt.gap || s.Overflow != tt.overflow {
				t.Errorf("gap %v overflow %v, want %v %v", s.Gap(), s.Overflow, tt.gap, tt.overflow)
			}
		})
	}
	t.Run("wrap", func(t *testing.T) {
		var s Stream
		s.Reset(100)
		s.SYN(0xfffffff0)
		s.Segment(0xfffffff1+10, data[10:])
		s.Segment(0xfffffff1, data[:10])
		if string(s.Bytes()) != string(data) {
			t.Errorf("across the sequence wrap: %q", s.Bytes())
		}
	})
	t.Run("one-byte segments shuffled, duplicated and conflicting", func(t *testing.T) {
		var s Stream
		s.Reset(100)
		s.SYN(0)
		order := rand.New(rand.NewPCG(3, 4)).Perm(len(data))
		for _, i := range order {
			s.Segment(uint32(1+i), data[i:i+1])
		}
		for _, i := range order[:5] {
			s.Segment(uint32(1+i), data[i:i+1]) // same bytes again: no conflict
		}
		s.Segment(uint32(1+order[0]), []byte{'#'})
		if string(s.Bytes()) != string(data) || s.Gap() || s.Conflicts != 1 {
			t.Errorf("bytes %q gap %v conflicts %d", s.Bytes(), s.Gap(), s.Conflicts)
		}
	})
}

// The cap bounds what the window holds, not how long the stream is: bytes
// read make room, and are compared with later copies while they stay.
func TestStreamWindow(t *testing.T) {
	var s Stream
	s.Reset(64)
	s.SYN(0)
	stream := make([]byte, 1000)
	for i := range stream {
		stream[i] = byte(i * 7)
	}
	for off := 0; off < len(stream); off += 10 {
		s.Segment(uint32(1+off), stream[off:off+10])
		if got := s.Bytes(); string(got) != string(stream[s.Consumed():off+10]) {
			t.Fatalf("at %d: window bytes differ", off)
		}
		if s.Held() > 64 || s.Overflow {
			t.Fatalf("at %d: holds %d overflow %v", off, s.Held(), s.Overflow)
		}
		s.Consume(len(s.Bytes()) - 3) // the reader keeps a few bytes back
	}
	// A disagreeing copy of bytes read but still in the window is seen.
	s.Segment(uint32(1+990), []byte("xxxxxxxxxx"))
	if s.Conflicts != 1 {
		t.Errorf("conflicts %d, want 1", s.Conflicts)
	}
	// Unread bytes past the cap are refused and counted; reading up to them stalls.
	var r Stream
	r.Reset(32)
	r.SYN(0)
	r.Segment(1, stream[:20])
	r.Segment(21, stream[20:40])
	if !r.Overflow || r.Refused != 8 || r.Held() != 32 || !r.Stalled() {
		t.Errorf("overflow %v refused %d held %d stalled %v", r.Overflow, r.Refused, r.Held(), r.Stalled())
	}
	// The reader's reserve counts against the cap.
	var q Stream
	q.Reset(32)
	q.SYN(0)
	q.Reserve(30)
	q.Segment(1, stream[:5])
	if q.Len() != 2 || q.Refused != 3 {
		t.Errorf("with a reserve of 30 of 32: len %d refused %d", q.Len(), q.Refused)
	}
}

// handBuilt is a ClientHello written by hand, so its fingerprints can be
// worked out by hand too.
func handBuilt() []byte {
	ext := func(typ uint16, data ...byte) []byte {
		return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
	}
	var exts []byte
	exts = append(exts, ext(0x1a1a)...) // GREASE
	exts = append(exts, ext(ExtServerName, 0, 10, 0, 0, 7, 'z', 'o', 'o', 'm', '.', 'u', 's')...)
	exts = append(exts, ext(ExtALPN, 0, 3, 2, 'h', '2')...)
	exts = append(exts, ext(ExtSupportedVersions, 6, 0x2a, 0x2a, 3, 4, 3, 3)...)
	exts = append(exts, ext(ExtSupportedGroups, 0, 6, 0x3a, 0x3a, 0, 29, 0, 23)...)
	exts = append(exts, ext(ExtECPointFormats, 1, 0)...)
	exts = append(exts, ext(ExtSignatureAlgorithms, 0, 4, 4, 3, 8, 4)...)
	b := []byte{3, 3}
	b = append(b, make([]byte, 32)...)
	b = append(b, 0)                                                    // session id
	b = append(b, 0, 8, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2b, 0x13, 0x02) // ciphers
	b = append(b, 1, 0)                                                 // compression
	b = append(b, byte(len(exts)>>8), byte(len(exts)))
	return append(b, exts...)
}

func sha12(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

func TestFingerprintsByHand(t *testing.T) {
	var ch ClientHello
	if err := ParseClientHello(handBuilt(), &ch); err != nil {
		t.Fatal(err)
	}
	if got, want := string(AppendJA3(nil, &ch)), "771,4865-49195-4866,0-16-43-10-11-13,29-23,0"; got != want {
		t.Errorf("JA3 %q, want %q", got, want)
	}
	if ja3 := JA3Hash(&ch); ja3 != md5.Sum([]byte("771,4865-49195-4866,0-16-43-10-11-13,29-23,0")) {
		t.Errorf("JA3 hash %x is not the MD5 of the JA3 string", ja3)
	}
	want := "t13d0306h2_" + sha12("1301,1302,c02b") + "_" + sha12("000a,000b,000d,002b_0403,0804")
	if got := JA4(&ch); string(got[:]) != want {
		t.Errorf("JA4 %s, want %s", got, want)
	}
}

// The JA4 specification's own example (a Chrome ClientHello): its cipher and
// extension strings hash to the published parts, so our hashing convention
// (sorted 4-hex lists, SHA-256 truncated to 12 hex) matches the spec.
func TestJA4SpecExampleHashes(t *testing.T) {
	if got := sha12("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"); got != "8daaf6152771" {
		t.Errorf("cipher hash %s, want 8daaf6152771", got)
	}
	if got := sha12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601"); got != "e5627efa2ab1" {
		t.Errorf("extension hash %s, want e5627efa2ab1", got)
	}
}

func TestAlertsAndMalformed(t *testing.T) {
	alert := []byte{21, 3, 3, 0, 2, 2, 48}
	c, d := decode(0, []seg{{1, alert}}, 4096)
	if len(c.alerts) != 1 || c.alerts[0] != [2]uint8{2, AlertUnknownCA} || d.Done() {
		t.Errorf("alerts %v done %v", c.alerts, d.Done())
	}
	if AlertName(48) != "unknown_ca" || AlertName(200) != "other" || !IsCertificateAlert(AlertCertificateExpired) || IsCertificateAlert(AlertCloseNotify) {
		t.Error("alert names")
	}
	for _, bad := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n"),
		{22, 3, 1, 0xff, 0xff},                // record too long
		{21, 3, 3, 0, 3, 2, 48, 1},            // odd alert length
		{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, // message larger than the cap
	} {
		_, d := decode(0, []seg{{1, bad}}, 4096)
		if !d.Done() || d.Err() == nil {
			t.Errorf("%x: done %v err %v, want a stop with an error", bad, d.Done(), d.Err())
		}
	}
}

// A handshake message spread over several records (record-level
// fragmentation) comes out whole.
func TestMessageAcrossRecords(t *testing.T) {
	body := handBuilt()
	msg := append([]byte{HandshakeClientHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	var stream []byte
	for _, part := range tlstest.Split(msg, 13) {
		stream = append(stream, 22, 3, 1, 0, byte(len(part)))
		stream = append(stream, part...)
	}
	c, d := decode(0, segments(0, stream, 50), 4096)
	if d.Err() != nil || len(c.msgs) != 1 || !bytes.Equal(c.msgs[0].body, body) {
		t.Fatalf("err %v messages %d", d.Err(), len(c.msgs))
	}
}

func TestShuffledSegments(t *testing.T) {
	_, inter := pki(t)
	cert := inter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}}, inter)
	tr := tlstest.Record(t, tlstest.Spec{ServerName: "zoom.us", MaxVersion: ctls.VersionTLS12, Cert: cert})
	server := tr.Bytes(tlstest.FromServer)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		segs := segments(9, server, 100+i*37)
		// duplicate some, then shuffle
		segs = append(segs, segs[:len(segs)/3]...)
		r.Shuffle(len(segs), func(a, b int) { segs[a], segs[b] = segs[b], segs[a] })
		c, d := decode(9, segs, 65536)
		if d.Err() != nil || len(c.msgs) != 4 {
			t.Fatalf("round %d: %d messages err %v", i, len(c.msgs), d.Err())
		}
	}
}

func BenchmarkClientHello(b *testing.B) {
	_, inter := pki(b)
	cert := inter.Leaf(b, tlstest.LeafSpec{Names: []string{"zoom.us"}}, inter)
	tr := tlstest.Record(b, tlstest.Spec{ServerName: "zoom.us", Cert: cert})
	hello := tr.Writes[0].Data
	var d Decoder
	var h benchHandler
	parts := tlstest.Split(hello, 1400) // the post-quantum ClientHello spans two segments
	h.sni = "zoom.us"
	b.ReportAllocs()
	b.SetBytes(int64(len(hello)))
	for b.Loop() {
		d.Reset(65536)
		d.Stream.SYN(0)
		for i, p := range parts {
			d.Segment(uint32(1+i*1400), p, &h)
		}
	}
	if h.sni != "zoom.us" {
		b.Fatalf("SNI %q", h.sni)
	}
}

type benchHandler struct {
	ch  ClientHello
	sni string
}

func (h *benchHandler) Handshake(typ uint8, body []byte) {
	if typ != HandshakeClientHello || ParseClientHello(body, &h.ch) != nil {
		return
	}
	_ = JA3Hash(&h.ch)
	_ = JA4(&h.ch)
	if string(h.ch.SNI) != h.sni {
		panic("SNI lost")
	}
}
func (h *benchHandler) Alert(uint8, uint8) {}
func (h *benchHandler) ChangeCipherSpec()  {}
