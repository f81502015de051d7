package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// ProbesConfig configures the active checks (probes/) that the daemon runs on
// schedule and `zoomprobe audit` runs once.
//
// The default targets are Zoom's web names and server names seen in public
// captures; they change, so a site should list the ones its rooms use.
type ProbesConfig struct {
	// Enabled: the daemon runs the checks on schedule (audit always runs them).
	Enabled bool `yaml:"enabled"`
	// RepeatFindings: a check that keeps failing for the same reason reports
	// a finding again after this long (metrics update on every run).
	RepeatFindings time.Duration `yaml:"repeat_findings"`
	// MaxTargets bounds the targets of each check (metric label values).
	MaxTargets int `yaml:"max_targets"`
	// MaxOwnSockets bounds the registry of the checks' own sockets, whose
	// packets the passive analyzers skip (live or within flows.closed_timeout
	// of closing).
	MaxOwnSockets int `yaml:"max_own_sockets"`

	Proxy ProxyConfig     `yaml:"proxy"`
	TLS   TLSProbeConfig  `yaml:"tls"`
	TCP   PortProbeConfig `yaml:"tcp"`
	STUN  PortProbeConfig `yaml:"stun"`
	NTP   NTPProbeConfig  `yaml:"ntp"`
	DNS   DNSProbeConfig  `yaml:"dns"`
}

// Schedule is when and how long a check runs.
type Schedule struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	// Jitter: each run starts up to this much later than its interval, so
	// many probes do not hit Zoom (or the proxy) in step.
	Jitter time.Duration `yaml:"jitter"`
}

// ProxyConfig is the site's web proxy, as Zoom clients are told to use it
// (policy keys ProxyServer and ProxyBypass).
type ProxyConfig struct {
	// URL of the HTTP proxy, like http://proxy.example:3128 (credentials
	// allowed: http://user:password@proxy:3128). Empty: TLS checks go direct.
	URL string `yaml:"url"`
	// Bypass: domains (and their subdomains) reached directly, like a PAC
	// file's DIRECT rule or Zoom's ProxyBypass policy.
	Bypass []string `yaml:"bypass"`

	Parsed *url.URL `yaml:"-"`
}

// TLSProbeConfig: handshakes to Zoom's names, once capped at TLS 1.2 (so the
// chain is visible on the wire too) and once with default versions.
type TLSProbeConfig struct {
	Schedule `yaml:",inline"`
	Targets  []ProbeTarget `yaml:"targets"`
	// TLS12: also handshake with TLS 1.2 as the highest version.
	TLS12 bool `yaml:"tls12"`
}

// PortProbeConfig: TCP connect or Zoom STUN to each target on each port.
type PortProbeConfig struct {
	Schedule `yaml:",inline"`
	// Targets without a port are tried on every port in Ports.
	Targets []ProbeTarget `yaml:"targets"`
	Ports   []uint16      `yaml:"ports"`
	// Attempts: STUN requests sent within the timeout (UDP loses packets).
	Attempts int `yaml:"attempts,omitempty"`
}

// NTPProbeConfig: the clock against the site's and public NTP servers.
type NTPProbeConfig struct {
	Schedule `yaml:",inline"`
	// Servers: host or host:port (default port 123).
	Servers []string `yaml:"servers"`
	// SystemServers adds the servers this host's time daemon uses (chrony,
	// ntpd, systemd-timesyncd configuration), at most 4.
	SystemServers bool `yaml:"system_servers"`
	// Warning and Critical are the absolute offsets that make clock_skew
	// findings (the shipped alert rules use 10s and 5m too).
	Warning  time.Duration `yaml:"warning"`
	Critical time.Duration `yaml:"critical"`
}

// DNSProbeConfig: Zoom's names through the system resolver and others.
type DNSProbeConfig struct {
	Schedule `yaml:",inline"`
	Names    []string `yaml:"names"`
	// System: ask the system resolver (/etc/resolv.conf).
	System bool `yaml:"system"`
	// Resolvers: DNS servers to ask directly, address or address:port.
	Resolvers []string `yaml:"resolvers"`
	// Sinkholes: addresses or networks that a DNS filter answers with
	// (besides 0.0.0.0, ::, loopback and private addresses, always judged).
	Sinkholes []string `yaml:"sinkholes"`
	// PrivateAllowed: domains whose answers may be private on purpose.
	PrivateAllowed []string `yaml:"private_allowed"`

	SinkholePrefixes []netip.Prefix `yaml:"-"`
}

// ProbeTarget is a host to check: written "host" or "host:port", or as a
// mapping {host: zoom.us, port: 443, address: 203.0.113.7:443} to connect
// to a given address while naming (SNI) the host.
type ProbeTarget struct {
	Host    string `yaml:"host"`
	Port    uint16 `yaml:"port,omitempty"`
	Address string `yaml:"address,omitempty"`
}

// UnmarshalYAML accepts the scalar and the mapping forms.
func (t *ProbeTarget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		host, port, err := splitHostPortOpt(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %q: %v (write host or host:port)", n.Line, n.Value, err)
		}
		*t = ProbeTarget{Host: host, Port: port}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a target is host, host:port or a mapping with host, port, address", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "host", "port", "address":
		default:
			return fmt.Errorf("line %d: field %s not found in a target (use host, port, address)", n.Content[i].Line, k)
		}
	}
	type plain ProbeTarget
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = ProbeTarget(p)
	return nil
}

// MarshalYAML writes the short form when it suffices.
func (t ProbeTarget) MarshalYAML() (any, error) {
	if t.Address == "" {
		return t.String(), nil
	}
	type plain ProbeTarget
	return plain(t), nil
}

// String is host or host:port.
func (t ProbeTarget) String() string {
	if t.Port == 0 {
		return t.Host
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

func splitHostPortOpt(s string) (string, uint16, error) {
	s = strings.TrimSpace(s)
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("port %q is not 1-65535", p)
		}
		return h, uint16(n), nil
	}
	if strings.Count(s, ":") == 1 {
		return "", 0, fmt.Errorf("bad host:port")
	}
	return strings.Trim(s, "[]"), 0, nil
}

// Default targets: Zoom's web names and a zone controller users need for
// TLS; server names from public captures for the media ports.
var (
	defaultWebNames    = []string{"zoom.us", "www.zoom.us", "zoom.com", "log.zoom.us", "zoomam104zc.zoom.us"}
	defaultMediaHosts  = []string{"zoomfrn99mmr.zoom.us", "zoomsjccv154mmr.sjc.zoom.us"}
	defaultNTPServers  = []string{"pool.ntp.org", "time.cloudflare.com"}
	defaultMaxTargets  = 32
	maxTargetsCeiling  = 256
	defaultSTUNAttempt = 3
)

func hostsToTargets(hosts []string) []ProbeTarget {
	out := make([]ProbeTarget, len(hosts))
	for i, h := range hosts {
		out[i] = ProbeTarget{Host: h}
	}
	return out
}

func (c *ProbesConfig) setDefaults() {
	c.Enabled = true
	c.RepeatFindings = time.Hour
	c.MaxTargets = defaultMaxTargets
	c.MaxOwnSockets = 4096
	c.TLS = TLSProbeConfig{
		Schedule: Schedule{Enabled: true, Interval: 5 * time.Minute, Timeout: 15 * time.Second, Jitter: 30 * time.Second},
		Targets:  hostsToTargets(defaultWebNames),
		TLS12:    true,
	}
	c.TCP = PortProbeConfig{
		Schedule: Schedule{Enabled: true, Interval: 2 * time.Minute, Timeout: 10 * time.Second, Jitter: 20 * time.Second},
		Targets:  append(hostsToTargets(defaultWebNames[:1]), hostsToTargets(defaultMediaHosts)...),
		Ports:    []uint16{443, 8801, 8802},
	}
	c.STUN = PortProbeConfig{
		Schedule: Schedule{Enabled: true, Interval: 2 * time.Minute, Timeout: 5 * time.Second, Jitter: 20 * time.Second},
		Targets:  hostsToTargets(defaultMediaHosts),
		Ports:    []uint16{3478, 3479},
		Attempts: defaultSTUNAttempt,
	}
	c.NTP = NTPProbeConfig{
		Schedule:      Schedule{Enabled: true, Interval: time.Minute, Timeout: 5 * time.Second, Jitter: 10 * time.Second},
		Servers:       append([]string(nil), defaultNTPServers...),
		SystemServers: true,
		Warning:       10 * time.Second,
		Critical:      5 * time.Minute,
	}
	c.DNS = DNSProbeConfig{
		Schedule: Schedule{Enabled: true, Interval: 5 * time.Minute, Timeout: 5 * time.Second, Jitter: 30 * time.Second},
		Names:    append([]string(nil), defaultWebNames...),
		System:   true,
	}
}

func (s *Schedule) validate(v *Validator, path string) {
	v.Check(s.Interval >= time.Second && s.Interval <= 24*time.Hour, path+".interval", "must be between 1s and 24h, got %s", s.Interval)
	v.Check(s.Timeout >= 100*time.Millisecond && s.Timeout <= 5*time.Minute, path+".timeout", "must be between 100ms and 5m, got %s", s.Timeout)
	v.Check(s.Timeout <= s.Interval, path+".timeout", "must not exceed %s.interval (%s), got %s", path, s.Interval, s.Timeout)
	v.Check(s.Jitter >= 0 && s.Jitter < s.Interval, path+".jitter", "must be at least 0s and less than %s.interval (%s), got %s", path, s.Interval, s.Jitter)
}

func (c *ProbesConfig) validate(v *Validator) {
	v.Check(c.RepeatFindings >= time.Minute && c.RepeatFindings <= 7*24*time.Hour, "probes.repeat_findings", "must be between 1m and 168h, got %s", c.RepeatFindings)
	v.Check(c.MaxTargets >= 1 && c.MaxTargets <= maxTargetsCeiling, "probes.max_targets", "must be between 1 and %d, got %d", maxTargetsCeiling, c.MaxTargets)
	v.Check(c.MaxOwnSockets >= 64 && c.MaxOwnSockets <= 1_000_000, "probes.max_own_sockets", "must be between 64 and 1000000, got %d", c.MaxOwnSockets)

	c.Proxy.Parsed = nil
	if c.Proxy.URL != "" {
		u, err := url.Parse(c.Proxy.URL)
		switch {
		case err != nil:
			v.Fail("probes.proxy.url", "%q is not a URL (write http://proxy.example:3128)", redactUserinfo(c.Proxy.URL))
		case u.Scheme != "http":
			v.Fail("probes.proxy.url", "scheme %q is not supported: only an HTTP proxy (http://host:port) that accepts CONNECT", u.Scheme)
		case u.Hostname() == "" || u.Port() == "":
			v.Fail("probes.proxy.url", "%q needs a host and a port (http://proxy.example:3128)", u.Redacted())
		default:
			c.Proxy.Parsed = u
		}
	}
	for i, d := range c.Proxy.Bypass {
		v.Check(isDomainName(d), idx("probes.proxy.bypass", i), "%q is not a domain name (write example.com to cover it and its subdomains)", d)
	}

	c.TLS.Schedule.validate(v, "probes.tls")
	c.validateTargets(v, "probes.tls.targets", c.TLS.Targets)
	c.TCP.Schedule.validate(v, "probes.tcp")
	c.validateTargets(v, "probes.tcp.targets", c.TCP.Targets)
	validatePorts(v, "probes.tcp.ports", c.TCP.Ports, c.TCP.Targets)
	c.STUN.Schedule.validate(v, "probes.stun")
	c.validateTargets(v, "probes.stun.targets", c.STUN.Targets)
	validatePorts(v, "probes.stun.ports", c.STUN.Ports, c.STUN.Targets)
	v.Check(c.STUN.Attempts >= 1 && c.STUN.Attempts <= 10, "probes.stun.attempts", "must be between 1 and 10, got %d", c.STUN.Attempts)

	c.NTP.Schedule.validate(v, "probes.ntp")
	v.Check(len(c.NTP.Servers) <= c.MaxTargets, "probes.ntp.servers", "at most probes.max_targets (%d) servers, got %d", c.MaxTargets, len(c.NTP.Servers))
	for i, s := range c.NTP.Servers {
		h, _, err := splitHostPortOpt(s)
		v.Check(err == nil && h != "" && !strings.ContainsAny(h, " /"), idx("probes.ntp.servers", i), "%q is not host or host:port", s)
	}
	v.Check(c.NTP.Warning > 0 && c.NTP.Warning <= 24*time.Hour, "probes.ntp.warning", "must be between 1ns and 24h, got %s", c.NTP.Warning)
	v.Check(c.NTP.Critical > c.NTP.Warning && c.NTP.Critical <= 7*24*time.Hour, "probes.ntp.critical", "must be above probes.ntp.warning (%s) and at most 168h, got %s", c.NTP.Warning, c.NTP.Critical)

	c.DNS.Schedule.validate(v, "probes.dns")
	v.Check(len(c.DNS.Names) <= c.MaxTargets, "probes.dns.names", "at most probes.max_targets (%d) names, got %d", c.MaxTargets, len(c.DNS.Names))
	for i, n := range c.DNS.Names {
		v.Check(isDomainName(n), idx("probes.dns.names", i), "%q is not a domain name", n)
	}
	v.Check(len(c.DNS.Resolvers) <= 16, "probes.dns.resolvers", "at most 16 resolvers, got %d", len(c.DNS.Resolvers))
	for i, r := range c.DNS.Resolvers {
		h, _, err := splitHostPortOpt(r)
		_, aerr := netip.ParseAddr(h)
		v.Check(err == nil && aerr == nil, idx("probes.dns.resolvers", i), "%q is not an IP address or address:port (like 10.0.0.53 or [2001:db8::53]:53)", r)
	}
	c.DNS.SinkholePrefixes = c.DNS.SinkholePrefixes[:0]
	for i, s := range c.DNS.Sinkholes {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			c.DNS.SinkholePrefixes = append(c.DNS.SinkholePrefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.Fail(idx("probes.dns.sinkholes", i), "%q is not an address or CIDR network (like 146.112.61.104 or 198.51.100.0/24)", s)
			continue
		}
		a = a.Unmap()
		c.DNS.SinkholePrefixes = append(c.DNS.SinkholePrefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	for i, n := range c.DNS.PrivateAllowed {
		v.Check(isDomainName(n), idx("probes.dns.private_allowed", i), "%q is not a domain name (write example.com to cover it and its subdomains)", n)
	}
}

func (c *ProbesConfig) validateTargets(v *Validator, path string, ts []ProbeTarget) {
	v.Check(len(ts) <= c.MaxTargets, path, "at most probes.max_targets (%d) targets, got %d", c.MaxTargets, len(ts))
	for i, t := range ts {
		p := idx(path, i)
		if !isDomainName(t.Host) {
			if _, err := netip.ParseAddr(t.Host); err != nil {
				v.Fail(p, "%q is not a host name or IP address", t.Host)
			}
		}
		if t.Address != "" {
			ap, err := netip.ParseAddrPort(t.Address)
			v.Check(err == nil && ap.Port() != 0, p+".address", "%q is not address:port (like 203.0.113.7:443 or [2001:db8::7]:443)", t.Address)
		}
	}
}

func validatePorts(v *Validator, path string, ports []uint16, ts []ProbeTarget) {
	needPorts := false
	for _, t := range ts {
		if t.Port == 0 {
			needPorts = true
		}
	}
	v.Check(!needPorts || len(ports) > 0, path, "is empty, but some targets have no port of their own")
	v.Check(len(ports) <= 16, path, "at most 16 ports, got %d", len(ports))
	for i, p := range ports {
		v.Check(p != 0, idx(path, i), "port 0 is not a port")
	}
}

func isDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 || strings.ContainsAny(s, " /:*@") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

// redactUserinfo hides what stands before the last '@' of a URL that did not
// parse, so an error message never shows the proxy's password.
func redactUserinfo(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := strings.Index(s, "://") + 3 // 2 without a scheme: from the start
	if start > at {
		start = 0
	}
	return s[:start] + "xxxxx" + s[at:]
}
