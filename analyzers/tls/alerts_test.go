package tls

import (
	"net/netip"
	"testing"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// A server-side alert right after the ClientHello: filtering by name on Zoom
// flows (origin from the TTL), counted for every flow.
func TestServerAlertAfterClientHello(t *testing.T) {
	cfg := genConfig(t)
	zoomTr, err := testgen.RecordTLS(testgen.CutSpecs()[3]) // SNI zoom.us
	if err != nil {
		t.Fatal(err)
	}
	otherTr, err := testgen.RecordTLS(testgen.TLSSpec{ServerName: testgen.NameExample, Chain: testgen.ChainPublic})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		tr           *testgen.TLSTranscript
		server       string
		level, desc  uint8
		ttl          uint8
		thenHello    bool // the server goes on with its ServerHello
		wantFinding  string
		wantMetric   string
		wantEvidence map[string]any
	}{
		{"handshake_failure from a closer box", zoomTr, "198.51.100.80:443", 2, 40, 64, false,
			"blocked_connection/sni_filtering high", "zoomprobe_tls_server_alerts_total{alert=handshake_failure,service=web}",
			map[string]any{"alert": "handshake_failure", "origin": "middlebox", "ttl": 64, "ttl_syn_ack": 52, "sni": "zoom.us"}},
		{"access_denied with the server's TTL", zoomTr, "198.51.100.80:443", 2, 49, 52, false,
			"blocked_connection/sni_filtering medium", "zoomprobe_tls_server_alerts_total{alert=access_denied,service=web}",
			map[string]any{"alert": "access_denied", "origin": "server_or_middlebox"}},
		{"protocol_version", zoomTr, "198.51.100.80:443", 2, 70, 64, false, "blocked_connection/sni_filtering high",
			"zoomprobe_tls_server_alerts_total{alert=protocol_version,service=web}", map[string]any{"alert": "protocol_version"}},
		{"unrecognized_name", zoomTr, "198.51.100.80:443", 2, 112, 64, false, "blocked_connection/sni_filtering high",
			"zoomprobe_tls_server_alerts_total{alert=unrecognized_name,service=web}", map[string]any{"alert": "unrecognized_name"}},
		{"internal_error", zoomTr, "198.51.100.80:443", 2, 80, 64, false, "blocked_connection/sni_filtering high",
			"zoomprobe_tls_server_alerts_total{alert=internal_error,service=web}", map[string]any{"alert": "internal_error"}},
		{"warning unrecognized_name, then the handshake goes on", zoomTr, "198.51.100.80:443", 1, 112, 52, true, "",
			"zoomprobe_tls_server_alerts_total{alert=unrecognized_name,service=web}", nil},
		{"not Zoom: counted only", otherTr, "203.0.113.10:443", 2, 40, 64, false, "",
			"zoomprobe_tls_server_alerts_total{alert=handshake_failure,service=none}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testgen.New(testgen.DefaultSeed, testgen.DefaultStart)
			c := g.TCPConn(genClient, netip.MustParseAddrPort(tt.server), testgen.TCPOptions{})
			c.Send(testgen.ClientToServer, tt.tr.Flights[0].Data)
			c.SendWith(testgen.ServerToClient, []byte{21, 3, 3, 0, 2, tt.level, tt.desc}, testgen.InjectOptions{TTL: tt.ttl})
			if tt.thenHello {
				c.Send(testgen.ServerToClient, tt.tr.Flights[1].Data)
			}
			c.Close()
			r, _ := replay(t, cfg, g.Packets())
			var got string
			for _, f := range r.findings {
				got += string(f.Kind) + "/" + string(f.Reason) + " " + f.Confidence
				for k, v := range tt.wantEvidence {
					if f.Evidence[k] != v {
						t.Errorf("evidence %s = %v, want %v", k, f.Evidence[k], v)
					}
				}
			}
			if got != tt.wantFinding {
				t.Errorf("findings %q, want %q", got, tt.wantFinding)
			}
			if m := metricValues(t, r.reg); m[tt.wantMetric] != 1 {
				t.Errorf("%s not counted: %v", tt.wantMetric, m)
			}
		})
	}
}

// Two different unparsable certificates from one server are two findings:
// the deduplication key hashes the raw bytes when no leaf parsed.
func TestUnparsableLeavesNotDeduplicatedAsOne(t *testing.T) {
	r := newRig(t, genConfig(t))
	for i, garbage := range [][]byte{[]byte("not a certificate"), []byte("another broken one")} {
		f := r.feed(newConn(uint16(41000+i), "3.7.35.40").open())
		s := r.a.get(f)
		s.helloSeen, s.serverHelloSeen, s.certSeen = true, true, true
		s.certs = append(s.certs, garbage)
		r.a.judge(f, s, testgen.DefaultStart)
	}
	if len(r.findings) != 2 {
		t.Fatalf("%d findings, want 2: %+v", len(r.findings), r.findings)
	}
	if r.findings[0].Reason == finding.ReasonOK || r.findings[0].Evidence["leaf_sha256"] == r.findings[1].Evidence["leaf_sha256"] {
		t.Errorf("findings %v / %v", r.findings[0].Evidence["leaf_sha256"], r.findings[1].Evidence["leaf_sha256"])
	}
}
