package certcheck

import (
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// BenchmarkJudge is one TLS 1.2 handshake's judgement of a genuine
// two-certificate chain, parsed from DER as the passive analyzer gives it.
func BenchmarkJudge(b *testing.B) {
	c := newCAs(b)
	name := "zoomfrn99mmr.zoom.us"
	cert := c.zoomInter.Leaf(b, tlstest.LeafSpec{Names: []string{name}, EmbedSCT: true}, c.zoomInter)
	opts := Options{Roots: pool(c.zoomRoot), Expected: []Issuer{IssuerFromCert(c.zoomRoot.Cert)}, Products: DefaultProducts()}
	in := Input{DER: cert.Certificate, Host: name, Zoom: true, At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if v := Judge(in, opts); v.Reason != "ok" {
			b.Fatal(v.Reason, v.Detail)
		}
	}
}
