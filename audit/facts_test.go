package audit

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/probes"
)

// The facts come from the checks' own evidence: two STUN servers that saw
// different public addresses (more than one egress), the system resolver
// named by resolv.conf and a configured one that sinkholes, the proxy
// without its credentials, and the offset of the NTP server with the lowest
// round trip.
func TestNetworkFacts(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("# generated\nsearch corp.example\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver 10.0.0.54\n"), 0o644)
	old := resolvConf
	resolvConf = conf
	defer func() { resolvConf = old }()

	results := []probes.Result{
		{Check: probes.CheckSTUN, Target: "zoomfrn99mmr.zoom.us:3478", Status: probes.StatusPass, Evidence: map[string]any{"mapped_address": "203.0.113.40:51000"}},
		{Check: probes.CheckSTUN, Target: "zoomfrn99mmr.zoom.us:3479", Status: probes.StatusPass, Evidence: map[string]any{"mapped_address": "203.0.113.40:51002"}},
		{Check: probes.CheckSTUN, Target: "zoomsjc.zoom.us:3478", Status: probes.StatusPass, Evidence: map[string]any{"mapped_address": "198.51.100.7:40000"}},
		{Check: probes.CheckSTUN, Target: "silent.zoom.us:3478", Status: probes.StatusUnknown, Evidence: map[string]any{}},
		{Check: probes.CheckDNS, Target: "zoom.us", Evidence: map[string]any{"resolvers": map[string]any{
			"system": map[string]any{"reason": "ok"}, "10.9.9.9": map[string]any{"reason": "dns_sinkhole"}}}},
		{Check: probes.CheckTLS, Target: "zoom.us:443", Evidence: map[string]any{"proxy": "10.0.0.8:3128", "proxy_via": "1.1 squid"}},
		{Check: probes.CheckNTP, Target: "far.ntp", Evidence: map[string]any{"offset_seconds": 2.5, "rtt_seconds": 0.120}},
		{Check: probes.CheckNTP, Target: "near.ntp", Evidence: map[string]any{"offset_seconds": -0.0123, "rtt_seconds": 0.004}},
		{Check: probes.CheckNTP, Target: "dead.ntp", Evidence: map[string]any{"error": "timeout"}},
	}
	pc := config.ProbesConfig{}
	pc.Proxy.Parsed, _ = url.Parse("http://user:secret@10.0.0.8:3128")
	got := map[string]string{}
	var order []string
	for _, f := range networkFacts(results, &pc) {
		got[f.ID] = f.Value
		order = append(order, f.ID)
	}
	if strings.Join(order, " ") != "egress_address resolvers proxy clock_offset" {
		t.Errorf("facts %v", order)
	}
	want := map[string]string{
		"egress_address": "198.51.100.7 (seen by zoomsjc.zoom.us:3478); 203.0.113.40 (seen by zoomfrn99mmr.zoom.us:3478, zoomfrn99mmr.zoom.us:3479). Different servers saw different addresses",
		"resolvers":      "10.9.9.9: dns_sinkhole; system resolver (10.0.0.53, fe80::1%eth0, 10.0.0.54 from " + conf + "): ok",
		"proxy":          "http://10.0.0.8:3128 (Via: 1.1 squid)",
		"clock_offset":   "-0.012 s from near.ntp (round trip 4.0 ms)",
	}
	for id, w := range want {
		if !strings.HasPrefix(got[id], w) {
			t.Errorf("%s = %q, want %q", id, got[id], w)
		}
	}
	if strings.Contains(got["proxy"], "secret") {
		t.Errorf("proxy fact shows the credentials: %q", got["proxy"])
	}

	// Nothing learnt is said so, not left out.
	none := networkFacts([]probes.Result{{Check: probes.CheckNTP, Target: "dead.ntp", Evidence: map[string]any{}}}, &config.ProbesConfig{})
	if len(none) != 2 || none[0].Value != "none configured (probes.proxy.url): the checks went direct" || none[1].Value != "unknown: no NTP server answered" {
		t.Errorf("facts with nothing learnt: %+v", none)
	}
}
