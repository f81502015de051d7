package certcheck

import "time"

// AddEvidence writes the verdict into a finding's evidence, under the keys
// the passive TLS analyzer and the active TLS probe both use. at is the time
// judged at (packet or probe time, corrected by the NTP offset).
func (v *Verdict) AddEvidence(ev map[string]any, at time.Time) {
	ev["issuer"] = v.Issuer
	ev["issuer_cn"] = v.IssuerCN
	ev["subject"] = v.Subject
	ev["leaf_sha256"] = v.LeafSHA256
	ev["chain"] = append([]string(nil), v.Chain...)
	ev["not_before"] = v.NotBefore.UTC().Format(time.RFC3339)
	ev["not_after"] = v.NotAfter.UTC().Format(time.RFC3339)
	ev["judged_at"] = at.UTC().Format(time.RFC3339)
	ev["trust"] = v.Trust
	if v.Root != "" {
		ev["root"] = v.Root
	}
	ev["detail"] = v.Detail
	problems := make([]string, len(v.Problems))
	for i, p := range v.Problems {
		problems[i] = string(p)
	}
	ev["problems"] = problems
	ev["problem_details"] = append([]string{}, v.Details...)
	ev["confidence"] = v.Confidence
	ev["ocsp"] = v.OCSP
	ev["scts"] = v.SCTs
	ev["scts_valid"] = v.CT.Valid
	if len(v.CT.Logs) > 0 {
		ev["ct_logs"] = append([]string(nil), v.CT.Logs...)
	}
	if v.CT.Invalid > 0 {
		ev["scts_invalid"] = v.CT.Invalid
	}
	if v.ProductKind != "" {
		ev["product_kind"] = v.ProductKind
	}
}
