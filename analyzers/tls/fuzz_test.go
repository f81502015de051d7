package tls

import (
	ctls "crypto/tls"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// FuzzAnalyzer drives the whole analyzer with hostile segments: the client's
// and the server's bytes, cut at a fuzzed size and with fuzzed sequence
// offsets, on a watched and on a pending flow. Nothing may panic, and a
// finding must always carry its source and kind.
func FuzzAnalyzer(f *testing.F) {
	p := getPKI(f)
	tr := tlstest.Record(f, tlstest.Spec{ServerName: mmr, MaxVersion: ctls.VersionTLS12, Cert: p.forti.Leaf(f, tlstest.LeafSpec{Names: []string{mmr}}, p.forti)})
	f.Add(tr.Bytes(tlstest.FromClient), tr.Bytes(tlstest.FromServer), uint16(1400), uint16(0), false)
	f.Add(tr.Bytes(tlstest.FromClient), tr.Bytes(tlstest.FromServer), uint16(33), uint16(7), true)
	cfg := testConfig(p)
	cfg.TLS.MaxHandshakeBytes = 4096
	r := newRig(f, cfg) // built once: loading roots and signatures is slow
	f.Fuzz(func(t *testing.T, client, server []byte, mss, skew uint16, pending bool) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				panic("FuzzAnalyzer: one input took over 2s")
			}
		}()
		r.findings = r.findings[:0]
		r.tab = flow.NewTable(flow.Config{MaxFlows: 16, EmbryonicTimeout: time.Minute, TCPTimeout: time.Minute, UDPTimeout: time.Minute, ClosedTimeout: time.Minute}, r.expire)
		addr := "3.7.35.10" // a Zoom range: identity known from the address
		if pending {
			addr = "52.1.2.10" // identity waits for the SNI
		}
		c := newConn(40000, addr)
		pk := c.open()
		// Bound the work per input: at most 16 KiB each way, segments of 20+ bytes.
		client, server = client[:min(len(client), 16<<10)], server[:min(len(server), 16<<10)]
		seg := int(mss%2000) + 20
		pk = append(pk, c.send(flow.ToServer, client, seg)...)
		pk = append(pk, c.send(flow.ToClient, server, seg)...)
		for i, x := range pk {
			if i%3 == 1 && x.Payload != nil {
				x.Seq += uint32(skew) // some segments land elsewhere
			}
		}
		r.feed(pk)
		r.flush()
		for _, fd := range r.findings {
			if fd.Source != Name || fd.Kind == "" || fd.Reason == "" || fd.Reason == finding.ReasonOK {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// A TLS 1.3 HelloRetryRequest (the server wants another key share) is
// still a TLS 1.3 handshake whose certificate is not observable.
func TestHelloRetryRequest(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p))
	tr := tlstest.Record(t, tlstest.Spec{ServerName: mmr, Cert: p.zoomInter.Leaf(t, tlstest.LeafSpec{Names: []string{mmr}}, p.zoomInter),
		ServerCurvePreferences: []ctls.CurveID{ctls.CurveP256}})
	r.feed(packets(newConn(48000, "3.7.35.19"), tr, inOrder))
	r.flush()
	if len(r.findings) != 0 {
		t.Fatalf("findings %+v", r.findings)
	}
	sameMetrics(t, metricValues(t, r.reg), map[string]float64{
		"zoomprobe_tls_handshakes_total{service=media_router,verdict=ssl_cert_not_observable,version=tls1.3}": 1,
	})
}

var _ = decode.ProtoTCP

// The built-in configuration loads: system roots, the default expected
// issuers and the embedded product signatures.
func TestInitWithDefaults(t *testing.T) {
	sh, err := newShared(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.opts.Expected) != len(config.DefaultExpectedIssuers()) || sh.opts.Products.Len() == 0 || sh.opts.Roots == nil {
		t.Errorf("options %+v", sh.opts)
	}
}

// A flow whose first client bytes are not TLS (plain HTTP, a CONNECT) is let
// go: its identity stays what the address said (none here).
func TestNotTLSLetGo(t *testing.T) {
	p := getPKI(t)
	r := newRig(t, testConfig(p))
	c := newConn(49000, "52.1.2.4")
	pk := append(c.open(), c.send(flow.ToServer, []byte("CONNECT zoom.us:443 HTTP/1.1\r\nHost: zoom.us:443\r\n\r\n"), 1400)...)
	f := r.feed(pk)
	if s := flow.NewExt[state](3).Get(f); !f.IdentityFinal() || f.Watched() || s != nil && s != skip {
		t.Errorf("identity %+v ext %v", f.Identity(), flow.NewExt[state](3).Get(f))
	}
	r.flush()
	if len(r.findings) != 0 {
		t.Errorf("findings %+v", r.findings)
	}
}
