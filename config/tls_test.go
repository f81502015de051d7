package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func realRootPEM(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTLSDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.SystemRoots || c.TLS.DedupWindow != time.Hour || len(c.TLS.ExpectedIssuers) != 6 || c.TLS.RequireSCT {
		t.Errorf("defaults: %+v", c.TLS)
	}
	gd := c.TLS.ExpectedIssuers[4]
	if !gd.UntilTime.Equal(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Go Daddy until %v", gd.UntilTime)
	}
}

func TestTLSOverrides(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, []byte(realRootPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte("tls:\n  extra_roots: [" + root + "]\n  expected_issuers:\n    - cn: Test Root\n      spki_sha256: 'AB:" + strings.Repeat("cd", 31) + "'\n  require_sct: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TLS.ExpectedIssuers) != 1 || c.TLS.ExpectedIssuers[0].SPKISHA256 != "ab"+strings.Repeat("cd", 31) || !c.TLS.RequireSCT {
		t.Errorf("overrides: %+v", c.TLS)
	}
}

func TestTLSBad(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ yaml, want string }{
		{"tls:\n  max_handshake_bytes: 100\n", "line 2: tls.max_handshake_bytes: must be between 4096 and 1048576, got 100"},
		{"tls:\n  dedup_window: 10ms\n", "line 2: tls.dedup_window: must be between 1s and 168h, got 10ms"},
		{"tls:\n  extra_roots:\n    - /nonexistent/ca.pem\n", `line 3: tls.extra_roots[0]: cannot read "/nonexistent/ca.pem"`},
		{"tls:\n  extra_roots: [" + junk + "]\n", `tls.extra_roots[0]: "` + junk + `" holds no PEM CERTIFICATE block that parses`},
		{"tls:\n  products_file: /nonexistent.yml\n", `line 2: tls.products_file: cannot read "/nonexistent.yml"`},
		{"tls:\n  expected_issuers:\n    - until: 2021-01-01\n", "line 3: tls.expected_issuers[0]: set cn, spki_sha256 or both"},
		{"tls:\n  expected_issuers:\n    - spki_sha256: abcd\n", `line 3: tls.expected_issuers[0].spki_sha256: "abcd" is not a SHA-256 in hex`},
		{"tls:\n  expected_issuers:\n    - cn: X\n      until: soon\n", `line 4: tls.expected_issuers[0].until: "soon" is not a date like 2022-01-01`},
		{"tls:\n  max_dedup_entries: 1\n", "line 2: tls.max_dedup_entries: must be between 16 and 1000000, got 1"},
		{"tls:\n  fingerprint_baseline: 0\n", "line 2: tls.fingerprint_baseline: must be between 1 and 100000, got 0"},
		{"tls:\n  ct_logs_file: /nonexistent.json\n", `line 2: tls.ct_logs_file: cannot read "/nonexistent.json"`},
		{"tls:\n  verdict_cache_bytes: 1000\n", "line 2: tls.verdict_cache_bytes: must be 0 (off) or between 65536 and 1073741824, got 1000"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
