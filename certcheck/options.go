package certcheck

import (
	"fmt"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
)

// CTRequiredSince is when browsers began to require SCTs of publicly
// trusted certificates (Chrome, for certificates issued from 2018-05-01).
var CTRequiredSince = time.Date(2018, 5, 1, 0, 0, 0, 0, time.UTC)

// OptionsFromConfig builds the judge's options from the tls section: the one
// place the TLS analyzer and the active TLS probe both get them from, so
// that both judge alike. Errors name the field.
func OptionsFromConfig(c config.TLSConfig) (Options, error) {
	roots, site, err := loadRoots(c.SystemRoots, c.ExtraRoots)
	if err != nil {
		return Options{}, err
	}
	opts := Options{
		Roots: roots, SiteRoots: site, RequireSCT: c.RequireSCT, CTRequiredSince: CTRequiredSince,
		Products: DefaultProducts(), CTLogs: DefaultCTLogs(), Intermediates: NewIntermediates(DefaultMaxIntermediates),
	}
	if c.ProductsFile != "" {
		if opts.Products, err = LoadProducts(c.ProductsFile); err != nil {
			return Options{}, err
		}
	}
	if c.CTLogsFile != "" {
		if opts.CTLogs, err = LoadCTLogs(c.CTLogsFile); err != nil {
			return Options{}, fmt.Errorf("tls.ct_logs_file: %w", err)
		}
	}
	for i, e := range c.ExpectedIssuers {
		until := e.UntilTime
		if until.IsZero() && e.Until != "" { // a config built in code, not validated
			if until, err = time.Parse("2006-01-02", e.Until); err != nil {
				return Options{}, fmt.Errorf("tls.expected_issuers[%d].until: %q is not a date like 2022-01-01", i, e.Until)
			}
		}
		is, err := NewIssuer(e.CN, e.SPKISHA256, until)
		if err != nil {
			return Options{}, fmt.Errorf("tls.expected_issuers[%d]: %w", i, err)
		}
		opts.Expected = append(opts.Expected, is)
	}
	return opts, nil
}
