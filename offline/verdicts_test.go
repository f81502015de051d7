package offline

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// A 5-tuple used twice (a client port reused a minute later) gets each
// finding on the flow that was live when it was given; TLS details come
// only from the TLS analyzer's findings.
func TestAttachVerdictsReusedTuple(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c, s := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("170.114.10.85")
	flows := []Flow{
		{Transport: "tcp", Client: c, ClientPort: 40000, Server: s, ServerPort: 443, First: t0},
		{Transport: "tcp", Client: c, ClientPort: 40000, Server: s, ServerPort: 443, First: t0.Add(time.Minute)},
	}
	ff := &finding.Flow{Transport: "tcp", Client: c, ClientPort: 40000, Server: s, ServerPort: 443}
	fs := []finding.Finding{
		{Time: t0.Add(time.Second), Kind: finding.KindBlockedConnection, Reason: finding.ReasonConnectionRefused, Source: "reach", Flow: ff,
			Evidence: map[string]any{"version": "bogus"}},
		{Time: t0.Add(61 * time.Second), Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: tlsSource, Flow: ff, SNI: "zoom.us",
			Evidence: map[string]any{"version": "tls1.2", "issuer": "CN=FortiGate CA,O=Fortinet", "issuer_cn": "FortiGate CA"}},
		{Time: t0.Add(62 * time.Second), Kind: finding.KindTLSInterception, Reason: finding.ReasonUnknownAuthority, Source: tlsSource, Flow: ff},
	}
	attachVerdicts(flows, fs)
	if !slices.Equal(flows[0].Verdicts, []string{"blocked_connection/connection_refused"}) || flows[0].TLSVersion != "" || flows[0].SNI != "" {
		t.Errorf("first flow: %+v", flows[0])
	}
	if f := flows[1]; !slices.Equal(f.Verdicts, []string{"tls_interception/ssl_unknown_authority"}) || f.TLSVersion != "tls1.2" || f.Issuer != "FortiGate CA" || f.SNI != "zoom.us" {
		t.Errorf("second flow: %+v", f)
	}
}
