package config

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"time"
)

// TLSConfig configures the TLS analyzer and the TLS probe's verdicts.
type TLSConfig struct {
	// MaxHandshakeBytes caps reassembled handshake bytes per direction.
	MaxHandshakeBytes int `yaml:"max_handshake_bytes"`
	// SystemRoots trusts the system's root certificates (plus ExtraRoots).
	SystemRoots bool `yaml:"system_roots"`
	// ExtraRoots are PEM bundles of further trusted roots: the site's own
	// inspection CA, so that a chain to it is judged "unexpected issuer"
	// (valid, but not Zoom's) rather than "unknown authority".
	ExtraRoots []string `yaml:"extra_roots"`
	// ExpectedIssuers are the CAs a Zoom name's chain must pass through; a
	// chain that reaches none of them is interception even when trusted.
	ExpectedIssuers []ExpectedIssuer `yaml:"expected_issuers"`
	// ProductsFile maps issuer names and key hashes to interception products;
	// empty uses the built-in copy of configs/interception-products.yml.
	ProductsFile string `yaml:"products_file"`
	// RequireSCT reports certificates with no valid signed certificate
	// timestamp from a known CT log (embedded, TLS extension or stapled
	// OCSP) as ssl_ct_invalid. Off by default: keep CTLogsFile fresh first.
	RequireSCT bool `yaml:"require_sct"`
	// CTLogsFile replaces the built-in list of known CT logs: Google's
	// log_list.json (v3 format) as downloaded. Checked on load and reload.
	CTLogsFile string `yaml:"ct_logs_file"`
	// ReassemblyBudgetBytes bounds the handshake bytes one worker's TLS
	// reassembly holds across all its flows (buffers' capacity); segments
	// beyond it are refused and counted.
	ReassemblyBudgetBytes int `yaml:"reassembly_budget_bytes"`
	// VerdictCacheBytes bounds each worker's cache of certificate verdicts
	// (a chain already judged is not verified again); 0 turns it off.
	VerdictCacheBytes int `yaml:"verdict_cache_bytes"`
	// DedupWindow: the same (server, leaf fingerprint) gives one finding per window.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// MaxDedupEntries bounds the deduplication memory (oldest dropped first).
	MaxDedupEntries int `yaml:"max_dedup_entries"`
	// MaxLearnedFingerprints bounds the TLS 1.3 server fingerprints learned
	// per (service, client fingerprint) and per server address.
	MaxLearnedFingerprints int `yaml:"max_learned_fingerprints"`
	// FingerprintBaseline is how many handshakes a (service, client
	// fingerprint) must show before a new server fingerprint counts as drift.
	FingerprintBaseline int `yaml:"fingerprint_baseline"`
}

// ExpectedIssuer names one CA Zoom's chains go through: by subject common
// name, by SHA-256 of its SubjectPublicKeyInfo (hex), or both (then both must
// match). Until, when set (YYYY-MM-DD), limits it to judgements before that
// day (Go Daddy served Zoom until 2021).
type ExpectedIssuer struct {
	CN         string `yaml:"cn,omitempty"`
	SPKISHA256 string `yaml:"spki_sha256,omitempty"`
	Until      string `yaml:"until,omitempty"`

	UntilTime time.Time `yaml:"-"` // parsed Until; zero: no limit
}

// DefaultExpectedIssuers are Zoom's CAs as of 2026: DigiCert's roots (by key)
// and its 2020 TLS intermediates (by name), and Go Daddy's (before 2022).
func DefaultExpectedIssuers() []ExpectedIssuer {
	return []ExpectedIssuer{
		{CN: "DigiCert Global Root CA", SPKISHA256: "aff988906dde12955d9bebbf928fdcc31cce328d5b9384f21c8941ca26e20391"},
		{CN: "DigiCert Global Root G2", SPKISHA256: "8bb593a93be1d0e8a822bb887c547890c3e706aad2dab76254f97fb36b82fc26"},
		{CN: "DigiCert TLS RSA SHA256 2020 CA1"},
		{CN: "DigiCert Global G2 TLS RSA SHA256 2020 CA1"},
		{CN: "Go Daddy Root Certificate Authority - G2", SPKISHA256: "2a8f2d8af0eb123898f74c866ac3fa669054e23c17bc7a95bd0234192dc635d0", Until: "2022-01-01", UntilTime: goDaddyUntil},
		{CN: "Go Daddy Secure Certificate Authority - G2", Until: "2022-01-01", UntilTime: goDaddyUntil},
	}
}

// goDaddyUntil is Until parsed, as validation would: Default() must equal
// what an empty file gives.
var goDaddyUntil = time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *TLSConfig) setDefaults() {
	c.MaxHandshakeBytes = 64 * 1024
	c.SystemRoots = true
	c.ExpectedIssuers = DefaultExpectedIssuers()
	c.DedupWindow = time.Hour
	c.MaxDedupEntries = 4096
	c.MaxLearnedFingerprints = 4096
	c.FingerprintBaseline = 20
	c.VerdictCacheBytes = 4 << 20
	c.ReassemblyBudgetBytes = 16 << 20
}

func (c *TLSConfig) validate(v *Validator) {
	v.Check(c.MaxHandshakeBytes >= 4096 && c.MaxHandshakeBytes <= 1<<20, "tls.max_handshake_bytes", "must be between 4096 and 1048576, got %d", c.MaxHandshakeBytes)
	v.Check(c.ReassemblyBudgetBytes >= 2*c.MaxHandshakeBytes && c.ReassemblyBudgetBytes <= 1<<30, "tls.reassembly_budget_bytes", "must be between 2 × tls.max_handshake_bytes (%d, one handshake both ways) and 1073741824, got %d", 2*c.MaxHandshakeBytes, c.ReassemblyBudgetBytes)
	v.Check(c.DedupWindow >= time.Second && c.DedupWindow <= 7*24*time.Hour, "tls.dedup_window", "must be between 1s and 168h, got %s", c.DedupWindow)
	v.Check(c.MaxDedupEntries >= 16 && c.MaxDedupEntries <= 1_000_000, "tls.max_dedup_entries", "must be between 16 and 1000000, got %d", c.MaxDedupEntries)
	v.Check(c.MaxLearnedFingerprints >= 16 && c.MaxLearnedFingerprints <= 1_000_000, "tls.max_learned_fingerprints", "must be between 16 and 1000000, got %d", c.MaxLearnedFingerprints)
	v.Check(c.FingerprintBaseline >= 1 && c.FingerprintBaseline <= 100_000, "tls.fingerprint_baseline", "must be between 1 and 100000, got %d", c.FingerprintBaseline)
	for i, f := range c.ExtraRoots {
		path := idx("tls.extra_roots", i)
		b, err := ReadFile(f)
		if err != nil {
			v.Fail(path, "cannot read %q: %v", f, err)
			continue
		}
		if n := countPEMCerts(b); n == 0 {
			v.Fail(path, "%q holds no PEM CERTIFICATE block that parses", f)
		}
	}
	if c.ProductsFile != "" {
		if _, err := os.Stat(c.ProductsFile); err != nil {
			v.Fail("tls.products_file", "cannot read %q: %v (leave empty for the built-in signatures)", c.ProductsFile, err)
		}
	}
	if c.CTLogsFile != "" {
		if _, err := os.Stat(c.CTLogsFile); err != nil {
			v.Fail("tls.ct_logs_file", "cannot read %q: %v (leave empty for the built-in list)", c.CTLogsFile, err)
		}
	}
	v.Check(c.VerdictCacheBytes == 0 || c.VerdictCacheBytes >= 64<<10 && c.VerdictCacheBytes <= 1<<30, "tls.verdict_cache_bytes", "must be 0 (off) or between 65536 and 1073741824, got %d", c.VerdictCacheBytes)
	for i := range c.ExpectedIssuers {
		e := &c.ExpectedIssuers[i]
		path := idx("tls.expected_issuers", i)
		e.CN = strings.TrimSpace(e.CN)
		e.SPKISHA256 = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(e.SPKISHA256), ":", ""))
		v.Check(e.CN != "" || e.SPKISHA256 != "", path, "set cn, spki_sha256 or both")
		if e.SPKISHA256 != "" {
			if b, err := hex.DecodeString(e.SPKISHA256); err != nil || len(b) != 32 {
				v.Fail(path+".spki_sha256", "%q is not a SHA-256 in hex (64 hex digits, colons allowed)", e.SPKISHA256)
			}
		}
		e.UntilTime = time.Time{}
		if e.Until != "" {
			t, err := time.Parse("2006-01-02", e.Until)
			if err != nil {
				v.Fail(path+".until", "%q is not a date like 2022-01-01", e.Until)
			} else {
				e.UntilTime = t
			}
		}
	}
}

func countPEMCerts(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err == nil {
				n++
			}
		}
	}
}
