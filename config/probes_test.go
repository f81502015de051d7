package config

import (
	"strings"
	"testing"
	"time"
)

func TestProbesDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Probes
	if !p.Enabled || !p.TLS.TLS12 || p.NTP.Warning != 10*time.Second || p.NTP.Critical != 5*time.Minute {
		t.Errorf("defaults: %+v", p)
	}
	if len(p.TCP.Ports) != 3 || p.TCP.Ports[1] != 8801 || len(p.STUN.Ports) != 2 || p.STUN.Ports[0] != 3478 {
		t.Errorf("ports: tcp %v stun %v", p.TCP.Ports, p.STUN.Ports)
	}
	if p.TLS.Targets[0].String() != "zoom.us" || p.Proxy.Parsed != nil {
		t.Errorf("tls targets %v proxy %v", p.TLS.Targets, p.Proxy.Parsed)
	}
}

func TestProbesValues(t *testing.T) {
	c, err := Parse([]byte(`probes:
  proxy:
    url: http://user:pw@proxy.example:3128
    bypass: [zoom.com]
  tls:
    targets: ["zoom.us:8443", {host: zoom.com, address: "203.0.113.7:443"}]
  dns:
    resolvers: [10.0.0.53, "[2001:db8::53]:5353"]
    sinkholes: [146.112.61.104, 198.51.100.0/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Probes
	if p.Proxy.Parsed == nil || p.Proxy.Parsed.Host != "proxy.example:3128" {
		t.Errorf("proxy %v", p.Proxy.Parsed)
	}
	if p.TLS.Targets[0].Port != 8443 || p.TLS.Targets[1].Address != "203.0.113.7:443" {
		t.Errorf("targets %+v", p.TLS.Targets)
	}
	if len(p.DNS.SinkholePrefixes) != 2 || p.DNS.SinkholePrefixes[0].String() != "146.112.61.104/32" {
		t.Errorf("sinkholes %v", p.DNS.SinkholePrefixes)
	}
	b, err := c.Marshal()
	if err != nil || !strings.Contains(string(b), "- zoom.us:8443") || !strings.Contains(string(b), "address: 203.0.113.7:443") {
		t.Errorf("marshal: %v\n%s", err, b)
	}
}

// One broken rule a case; the error names the field (and line).
func TestProbesBad(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"probes:\n  tcp:\n    interval: 500ms\n", "line 3: probes.tcp.interval: must be between 1s and 24h, got 500ms"},
		{"probes:\n  tls:\n    interval: 10s\n    timeout: 20s\n", "line 4: probes.tls.timeout: must not exceed probes.tls.interval (10s), got 20s"},
		{"probes:\n  ntp:\n    jitter: 2m\n", "line 3: probes.ntp.jitter: must be at least 0s and less than probes.ntp.interval (1m0s), got 2m0s"},
		{"probes:\n  ntp:\n    warning: 10m\n", "line 2: probes.ntp.critical: must be above probes.ntp.warning (10m0s) and at most 168h, got 5m0s"},
		{"probes:\n  proxy:\n    url: socks5://p:1080\n", `line 3: probes.proxy.url: scheme "socks5" is not supported`},
		{"probes:\n  proxy:\n    url: http://proxy\n", `line 3: probes.proxy.url: "http://proxy" needs a host and a port`},
		{"probes:\n  tcp:\n    targets: [\"zoom.us:0\"]\n", `line 3: "zoom.us:0": port "0" is not 1-65535`},
		{"probes:\n  tcp:\n    targets: [{host: zoom.us, adress: 1.2.3.4:5}]\n", "line 3: field adress not found in a target"},
		{"probes:\n  tls:\n    targets: [{host: zoom.us, address: zoom.us}]\n", `line 3: probes.tls.targets[0].address: "zoom.us" is not address:port`},
		{"probes:\n  stun:\n    ports: []\n", "line 3: probes.stun.ports: is empty, but some targets have no port of their own"},
		{"probes:\n  stun:\n    attempts: 0\n", "line 3: probes.stun.attempts: must be between 1 and 10, got 0"},
		{"probes:\n  dns:\n    resolvers: [dns.example]\n", `line 3: probes.dns.resolvers[0]: "dns.example" is not an IP address`},
		{"probes:\n  dns:\n    sinkholes: [nowhere]\n", `line 3: probes.dns.sinkholes[0]: "nowhere" is not an address or CIDR network`},
		{"probes:\n  dns:\n    names: [\"bad name\"]\n", `line 3: probes.dns.names[0]: "bad name" is not a domain name`},
		{"probes:\n  max_targets: 1\n", "probes.tls.targets: at most probes.max_targets (1) targets, got 5"},
		{"probes:\n  tls:\n    timout: 1s\n", "line 3: field timout not found in type config.TLSProbeConfig"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
}
