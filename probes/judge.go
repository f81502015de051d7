package probes

import (
	"sync"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// CertcheckJudge judges chains with certcheck, the passive TLS analyzer's
// code, so the probe's verdicts, Zoom Rooms codes, product names, confidence
// and evidence keys are the analyzer's.
func CertcheckJudge(opts certcheck.Options) ChainJudge {
	return func(in ChainInput) ChainVerdict {
		v := certcheck.Judge(certcheck.Input{
			Chain: in.Chain, Host: in.ServerName, At: in.Now, OCSP: in.OCSP, SCTs: in.SCTs,
			Zoom: zoom.IsZoomName(in.ServerName),
		}, opts)
		ev := map[string]any{}
		v.AddEvidence(ev, in.Now)
		out := ChainVerdict{Reason: v.Reason, Intercepted: v.Intercepted, Product: v.Product, RoomsCode: v.ZoomRoomsCode,
			Confidence: v.Confidence, Detail: v.Detail, Evidence: ev}
		if out.Reason == "" {
			out.Reason = finding.ReasonOK
		}
		return out
	}
}

// CertcheckOptions builds certcheck's options from the tls section: the
// same function the TLS analyzer uses (certcheck.OptionsFromConfig).
func CertcheckOptions(tc config.TLSConfig) (certcheck.Options, error) {
	return certcheck.OptionsFromConfig(tc)
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
