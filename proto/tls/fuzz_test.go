package tls

import (
	ctls "crypto/tls"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// realStreams returns both directions of real TLS 1.2 and 1.3 handshakes.
func realStreams(f *testing.F) [][]byte {
	_, inter := pki(f)
	cert := inter.Leaf(f, tlstest.LeafSpec{Names: []string{"zoom.us"}}, inter)
	cert.OCSPStaple = inter.OCSP(f, cert.Leaf, 0, tlstest.DefaultTime.Add(-1e12))
	cert.SignedCertificateTimestamps = [][]byte{tlstest.FakeSCT()}
	var out [][]byte
	for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
		tr := tlstest.Record(f, tlstest.Spec{ServerName: "zoom.us", MaxVersion: v, Cert: cert, ALPN: []string{"h2"}})
		out = append(out, tr.Bytes(tlstest.FromClient), tr.Bytes(tlstest.FromServer))
	}
	return out
}

// messagesOf returns the handshake messages (type byte then body) in s.
func messagesOf(s []byte) [][]byte {
	c, _ := decode(0, []seg{{1, s}}, 1<<20)
	var out [][]byte
	for _, m := range c.msgs {
		out = append(out, append([]byte{m.typ}, m.body...))
	}
	return out
}

type nopHandler struct{ n int }

func (h *nopHandler) Handshake(typ uint8, body []byte) {
	h.n++
	switch typ {
	case HandshakeClientHello:
		var ch ClientHello
		if ParseClientHello(body, &ch) == nil {
			_ = JA3Hash(&ch)
			_ = JA4(&ch)
		}
	case HandshakeServerHello:
		var sh ServerHello
		if ParseServerHello(body, &sh) == nil {
			_ = ServerFingerprint(&sh)
			_, _ = SCTCount(sh.SCTList)
		}
	case HandshakeCertificate:
		_, _ = CertificateList(nil, body)
	case HandshakeCertificateStatus:
		_, _ = CertificateStatus(body)
	}
}
func (h *nopHandler) Alert(uint8, uint8) {}
func (h *nopHandler) ChangeCipherSpec()  {}

// FuzzRecord feeds arbitrary bytes, cut at two points and delivered out of
// order with an overlap, through the stream and record decoder.
func FuzzRecord(f *testing.F) {
	for _, s := range realStreams(f) {
		f.Add(s, uint16(100), uint16(700), uint16(4096))
	}
	f.Add([]byte{21, 3, 3, 0, 2, 2, 48}, uint16(3), uint16(5), uint16(64))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2, max uint16) {
		m := int(max)%(1<<16) + 16
		d := &Decoder{}
		d.Reset(m)
		d.Stream.SYN(0xfffffff0)
		a, b := int(cut1)%(len(data)+1), int(cut2)%(len(data)+1)
		if a > b {
			a, b = b, a
		}
		h := &nopHandler{}
		d.Segment(0xfffffff1+uint32(b), data[b:], h)
		d.Segment(0xfffffff1+uint32(a/2), data[a/2:b], h) // overlaps the first part
		d.Segment(0xfffffff1, data[:a], h)
		if held := d.Stream.Held() + len(d.hs); held > m {
			t.Fatalf("direction holds %d bytes, cap %d", held, m)
		}
		// The unread bytes must equal the input at the same offset (every
		// copy here is the same, so there is no conflict either).
		got, at := d.Stream.Bytes(), d.Stream.Consumed()
		for i := range got {
			if got[i] != data[at+i] {
				t.Fatalf("byte %d differs", at+i)
			}
		}
		if d.Stream.Conflicts != 0 {
			t.Fatalf("%d conflicts between identical copies", d.Stream.Conflicts)
		}
	})
}

// FuzzClientHello parses arbitrary ClientHello bodies and fingerprints them.
func FuzzClientHello(f *testing.F) {
	for _, s := range realStreams(f) {
		for _, m := range messagesOf(s) {
			if m[0] == HandshakeClientHello {
				f.Add(m[1:])
			}
		}
	}
	f.Add(handBuilt())
	cache := NewFingerprintCache() // kept across inputs: an entry must never answer for another shape
	f.Fuzz(func(t *testing.T, body []byte) {
		var ch ClientHello
		if ParseClientHello(body, &ch) != nil {
			return
		}
		ja4 := JA4(&ch)
		for range 2 { // a miss, then a hit
			if cja3, cja4 := cache.Fingerprints(&ch); cja3 != JA3Hash(&ch) || cja4 != ja4 {
				t.Fatalf("cached JA3 %x JA4 %s, computed %x %s", cja3, cja4, JA3Hash(&ch), ja4)
			}
		}
		if ja4[0] != 't' || ja4[10] != '_' || ja4[23] != '_' {
			t.Fatalf("JA4 %s", ja4)
		}
		if len(ch.SNI) > 255 {
			t.Fatalf("SNI of %d bytes", len(ch.SNI))
		}
		_ = AppendJA3(nil, &ch)
		_ = ch.KeyShareGroups(nil)
		_ = ch.FirstALPN()
	})
}

// FuzzHandshake parses arbitrary bodies as every server message type.
func FuzzHandshake(f *testing.F) {
	for _, s := range realStreams(f) {
		for _, m := range messagesOf(s) {
			f.Add(m[0], m[1:])
		}
	}
	cache := NewFingerprintCache() // kept across inputs: an entry must never answer for another shape
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		h := &nopHandler{}
		h.Handshake(typ, body)
		var sh ServerHello
		if ParseServerHello(body, &sh) == nil {
			fp := ServerFingerprint(&sh)
			if string(fp[:4]) != "zs1_" {
				t.Fatalf("fingerprint %s", fp)
			}
			for range 2 { // a miss, then a hit
				if c := cache.ServerFingerprint(&sh); c != fp {
					t.Fatalf("cached server fingerprint %s, computed %s", c, fp)
				}
			}
		}
		certs, err := CertificateList(nil, body)
		if err == nil && len(certs) > MaxChainCerts {
			t.Fatalf("%d certificates", len(certs))
		}
		n, ok := SCTCount(body)
		if ok && len(AppendSCTs(nil, body)) != n {
			t.Fatal("SCT count and list disagree")
		}
	})
}

// Two ClientHellos with the same fingerprint key have the same JA3 and JA4:
// the key holds every input of both.
func FuzzFingerprintKey(f *testing.F) {
	var hellos [][]byte
	for _, s := range realStreams(f) {
		for _, m := range messagesOf(s) {
			if m[0] == HandshakeClientHello {
				hellos = append(hellos, m[1:])
			}
		}
	}
	hellos = append(hellos, handBuilt())
	for _, a := range hellos {
		for _, b := range hellos {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var x, y ClientHello
		if ParseClientHello(a, &x) != nil || ParseClientHello(b, &y) != nil {
			return
		}
		if string(appendFingerprintKey(nil, &x)) != string(appendFingerprintKey(nil, &y)) {
			return
		}
		if JA3Hash(&x) != JA3Hash(&y) || JA4(&x) != JA4(&y) {
			t.Fatalf("same key, different fingerprints: %s / %s", AppendJA3(nil, &x), AppendJA3(nil, &y))
		}
	})
}
