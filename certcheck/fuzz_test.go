package certcheck

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

// FuzzJudge feeds hostile chains, names, OCSP responses and SCTs to Judge.
// The input also chooses the trusted root and the CT log key, so that the
// committed seeds (testdata/fuzz/FuzzJudge: real chains, a logged leaf, a
// stapled response) reach trusted paths and SCT verification. Judge must
// not panic, must give a reason of the vocabulary consistent with its
// problems, and the cache must answer as Judge does.
func FuzzJudge(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 1, 2, 3}, []byte{}, []byte{}, "zoom.us", []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, leaf, inter, root []byte, host string, ocspResp, sct, logKey []byte) {
		opts := Options{Roots: x509.NewCertPool(), Products: DefaultProducts(), CTRequiredSince: CTRequiredSince,
			Expected: []Issuer{{CN: "Fuzz Root"}}, Intermediates: NewIntermediates(4)}
		if rc, err := x509.ParseCertificate(root); err == nil {
			opts.Roots.AddCert(rc)
		}
		if k, err := x509.ParsePKIXPublicKey(logKey); err == nil {
			opts.CTLogs = &CTLogs{byID: map[[32]byte]*CTLog{sha256.Sum256(logKey): {Description: "fuzz", Key: k}}}
		}
		in := Input{DER: [][]byte{leaf, inter}, Host: host, At: tlstest.DefaultTime, OCSP: ocspResp, Zoom: strings.HasSuffix(host, "zoom.us")}
		if len(sct) > 0 {
			in.SCTs = [][]byte{sct}
		}
		v := Judge(in, opts)
		if len(v.Problems) != len(v.Details) {
			t.Fatalf("problems %v details %v", v.Problems, v.Details)
		}
		if v.Reason == finding.ReasonOK {
			if len(v.Problems) != 0 || v.ZoomRoomsCode != 0 {
				t.Fatalf("ok with %v code %d", v.Problems, v.ZoomRoomsCode)
			}
		} else if len(v.Problems) == 0 || v.Problems[0] != v.Reason || v.ZoomRoomsCode == 0 || v.Detail == "" {
			t.Fatalf("reason %s problems %v code %d detail %q", v.Reason, v.Problems, v.ZoomRoomsCode, v.Detail)
		}
		if c := v.Confidence; c != "high" && c != "medium" && c != "low" {
			t.Fatalf("confidence %q", c)
		}
		cache := NewCache(opts, 1<<20)
		for i := 0; i < 2; i++ {
			if cv := cache.Judge(in); cv.Reason != v.Reason {
				t.Fatalf("cache round %d: %s, Judge %s", i, cv.Reason, v.Reason)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzJudge when
// ZOOMPROBE_WRITE_SEEDS=1 (the committed files are what the fuzzer starts from).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ZOOMPROBE_WRITE_SEEDS") != "1" {
		t.Skip("set ZOOMPROBE_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	root := tlstest.NewRoot(t, pkixName("Fuzz Root"))
	inter := root.Intermediate(t, pkixName("Fuzz TLS CA"))
	log := newTestLog(t, "fuzz")
	logKey, _ := x509.MarshalPKIXPublicKey(log.key.Public())
	logged, _ := loggedLeaf(t, inter, leafOpts{names: []string{"zoomfrn99mmr.zoom.us"}, logs: []*testLog{log}})
	plain := inter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}}).Leaf
	self := root.Leaf(t, tlstest.LeafSpec{Names: []string{"portal.local"}, SelfSigned: true}).Leaf
	expired := inter.Leaf(t, tlstest.LeafSpec{Names: []string{"zoom.us"}, NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}).Leaf
	good := inter.OCSP(t, plain, ocsp.Good, tlstest.DefaultTime.Add(-time.Hour))
	revoked := inter.OCSP(t, plain, ocsp.Revoked, tlstest.DefaultTime.Add(-time.Hour))
	tlsSCT := log.sct(t, false, nil, plain.Raw)
	seeds := []struct {
		name              string
		leaf, inter, root []byte
		host              string
		ocsp, sct, logKey []byte
	}{
		{"logged-zoom", logged.Raw, inter.Cert.Raw, root.Cert.Raw, "zoomfrn99mmr.zoom.us", nil, nil, logKey},
		{"logged-issuer-missing", logged.Raw, nil, root.Cert.Raw, "zoomfrn99mmr.zoom.us", nil, nil, logKey},
		{"tls-sct-good-ocsp", plain.Raw, inter.Cert.Raw, root.Cert.Raw, "zoom.us", good, tlsSCT, logKey},
		{"revoked", plain.Raw, inter.Cert.Raw, root.Cert.Raw, "zoom.us", revoked, nil, nil},
		{"self-signed-wrong-name", self.Raw, nil, nil, "zoom.us", nil, nil, nil},
		{"expired", expired.Raw, inter.Cert.Raw, root.Cert.Raw, "zoom.us", nil, nil, nil},
		{"untrusted", plain.Raw, inter.Cert.Raw, nil, "zoom.us", nil, tlstest.FakeSCT(), logKey},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzJudge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		body := "go test fuzz v1\n"
		for _, b := range [][]byte{s.leaf, s.inter, s.root} {
			body += fmt.Sprintf("[]byte(%q)\n", b)
		}
		body += fmt.Sprintf("string(%q)\n", s.host)
		for _, b := range [][]byte{s.ocsp, s.sct, s.logKey} {
			body += fmt.Sprintf("[]byte(%q)\n", b)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }
