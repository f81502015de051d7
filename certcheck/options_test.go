package certcheck

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
)

func TestOptionsFromConfig(t *testing.T) {
	c := newCAs(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "site.pem")
	if err := os.WriteFile(root, append(c.forti.PEM(), c.unknown.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().TLS
	cfg.SystemRoots = false
	cfg.ExtraRoots = []string{root}
	opts, err := OptionsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.SiteRoots) != 2 || opts.SiteRoots[1] != sha256.Sum256(c.unknown.Cert.Raw) {
		t.Errorf("site roots %x", opts.SiteRoots)
	}
	if opts.CTLogs.Len() == 0 || opts.Products.Len() == 0 || opts.Intermediates == nil || len(opts.Expected) != 6 || opts.CTRequiredSince.IsZero() {
		t.Errorf("options %+v", opts)
	}
	// Go Daddy's end date is honoured even from a config built in code.
	if opts.Expected[4].Until.IsZero() {
		t.Error("expected_issuers[4].until not parsed")
	}
	bad := filepath.Join(dir, "logs.json")
	if err := os.WriteFile(bad, []byte(`{"operators":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.CTLogsFile = bad
	if _, err := OptionsFromConfig(cfg); err == nil || !strings.HasPrefix(err.Error(), "tls.ct_logs_file: "+bad) {
		t.Errorf("bad log list: %v", err)
	}
}
