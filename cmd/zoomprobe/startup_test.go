package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/config"
)

func startupText(t *testing.T, yml string, passive bool) string {
	t.Helper()
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range startupLines(cfg, passive, []string{":18801"}, "/metrics") {
		fmt.Fprintln(&b, l.msg, l.attrs)
	}
	return b.String()
}

// The startup log names what the daemon listens on, what it contacts and
// where findings go, and never a proxy's credentials.
func TestStartupLines(t *testing.T) {
	yml := `capture: {interfaces: [eth1, eth2], workers: 3, boxes: [{name: fw1, inside: eth1, outside: eth2}]}
analyzers: {disabled: [httpinspect]}
event_log: {path: /var/log/zoomprobe/events.jsonl}
probes:
  proxy: {url: "http://user:secret@proxy.example:3128"}
  ntp: {servers: [ntp.example], system_servers: false}
  dns: {resolvers: [10.0.0.53]}
  stun: {enabled: false}
`
	active := startupText(t, yml, false)
	for _, want := range []string{"interfaces eth1,eth2", "workers 3", "analyzers dnsfilter,reach,tls", "active checks on",
		"check tls", "zoom.us:443", "through proxy proxy.example:3128", "check tcp", "zoom.us:443/8801/8802",
		"check ntp", "ntp.example (UDP 123)", "check dns", "the system resolver,10.0.0.53",
		"/var/log/zoomprobe/events.jsonl", "address :18801", "box fw1 inside eth1 outside eth2 window 2s table_bytes 4194304"} {
		if !strings.Contains(active, want) {
			t.Errorf("startup log lacks %q:\n%s", want, active)
		}
	}
	for _, bad := range []string{"secret", "check stun", "httpinspect"} {
		if strings.Contains(active, bad) {
			t.Errorf("startup log has %q:\n%s", bad, active)
		}
	}
	for name, text := range map[string]string{
		"--passive":             startupText(t, yml, true),
		"probes.enabled: false": startupText(t, "probes: {enabled: false}\n", false),
	} {
		if !strings.Contains(text, "active checks off ("+name+")") || strings.Contains(text, "check ") {
			t.Errorf("%s:\n%s", name, text)
		}
	}
	if def := startupText(t, string(config.DefaultYAML()), false); !strings.Contains(def, "pool.ntp.org,time.cloudflare.com") || !strings.Contains(def, "standard output") {
		t.Errorf("built-in config:\n%s", def)
	}
}
