package probes

import (
	"fmt"
	"sync"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// CertcheckJudge judges chains with certcheck, the passive TLS analyzer's
// code, so the probe's verdicts, Zoom Rooms codes and product names are the
// analyzer's.
func CertcheckJudge(opts certcheck.Options) ChainJudge {
	return func(in ChainInput) ChainVerdict {
		v := certcheck.Judge(certcheck.Input{
			Chain: in.Chain, Host: in.ServerName, At: in.Now, OCSP: in.OCSP, SCTs: in.SCTs,
			Zoom: zoom.IsZoomName(in.ServerName),
		}, opts)
		ev := map[string]any{"chain": v.Chain, "ocsp": v.OCSP, "scts": v.SCTs}
		if v.Detail != "" {
			ev["detail"] = v.Detail
		}
		if len(v.Problems) > 1 {
			ps := make([]string, len(v.Problems))
			for i, p := range v.Problems {
				ps[i] = string(p)
			}
			ev["problems"] = ps
		}
		if v.ProductKind != "" {
			ev["product_kind"] = v.ProductKind
		}
		out := ChainVerdict{Reason: v.Reason, Intercepted: v.Intercepted, Product: v.Product, RoomsCode: v.ZoomRoomsCode, Detail: v.Detail, Evidence: ev}
		if out.Reason == "" {
			out.Reason = finding.ReasonOK
		}
		return out
	}
}

// CertcheckOptions builds certcheck's options from the tls section (roots,
// Zoom's expected issuers, interception products, SCT policy), as the TLS
// analyzer does.
func CertcheckOptions(tc config.TLSConfig) (certcheck.Options, error) {
	roots, err := certcheck.LoadRoots(tc.SystemRoots, tc.ExtraRoots)
	if err != nil {
		return certcheck.Options{}, err
	}
	opts := certcheck.Options{Roots: roots, RequireSCT: tc.RequireSCT, Products: certcheck.DefaultProducts()}
	if tc.ProductsFile != "" {
		if opts.Products, err = certcheck.LoadProducts(tc.ProductsFile); err != nil {
			return certcheck.Options{}, err
		}
	}
	for i, e := range tc.ExpectedIssuers {
		is, err := certcheck.NewIssuer(e.CN, e.SPKISHA256, e.UntilTime)
		if err != nil {
			return certcheck.Options{}, fmt.Errorf("tls.expected_issuers[%d]: %w", i, err)
		}
		opts.Expected = append(opts.Expected, is)
	}
	return opts, nil
}

// JudgeFromConfig is CertcheckJudge with the options of the tls section.
func JudgeFromConfig(tc config.TLSConfig) (ChainJudge, error) {
	opts, err := CertcheckOptions(tc)
	if err != nil {
		return nil, err
	}
	return CertcheckJudge(opts), nil
}

var (
	defaultJudgeOnce sync.Once
	defaultJudge     ChainJudge
)

// DefaultJudge is certcheck with the default tls section: the system roots,
// Zoom's expected issuers and the built-in product signatures. The daemon
// and the audit replace it with JudgeFromConfig (Scheduler.SetJudge).
var DefaultJudge ChainJudge = func(in ChainInput) ChainVerdict {
	defaultJudgeOnce.Do(func() {
		var j ChainJudge
		cfg, err := config.Parse(nil) // validated defaults (issuer end dates parsed)
		if err == nil {
			j, err = JudgeFromConfig(cfg.TLS)
		}
		if err != nil {
			j = X509Judge(nil)
		}
		defaultJudge = j
	})
	return defaultJudge(in)
}
