package config

import (
	"net/netip"
	"strings"
	"time"
)

// ReachConfig configures the reachability, reset, proxy, portal and DNS analyzers.
type ReachConfig struct {
	// UDPAnswerWindow is how long a datagram to a Zoom media or STUN port may
	// go unanswered before it counts as udp_no_answer.
	UDPAnswerWindow time.Duration `yaml:"udp_answer_window"`
	// SYNTimeout is how long (packet time) a client's first SYN must go
	// unanswered before the connection counts as dropped.
	SYNTimeout time.Duration `yaml:"syn_timeout"`
	// SYNMinAttempts is how many SYNs (the first and its retransmissions) an
	// unanswered connection needs before it counts as dropped; a single SYN is
	// usually an attempt the client abandoned.
	SYNMinAttempts int `yaml:"syn_min_attempts"`
	// HappyEyeballsWindow: an unanswered SYN is not a drop when the same client
	// reached the same service and port on another address within this time.
	HappyEyeballsWindow time.Duration `yaml:"happy_eyeballs_window"`
	// FallbackWindow is how long after a UDP failure a TCP connection from the
	// same client to Zoom still counts as the fallback it caused.
	FallbackWindow time.Duration `yaml:"fallback_window"`
	// ClientDropMinRetries is how many times a client must repeat a request
	// after Zoom's answer to it passed the probe (a SYN after the SYN-ACK, a
	// ClientHello after the ServerHello, a UDP request after its reply), with
	// no sign it received any answer, before the answers count as lost on the
	// client's side of the probe (client_side_drop). Windows retries a SYN
	// twice: more would miss it.
	ClientDropMinRetries int `yaml:"client_drop_min_retries"`
	// ResetMiddleboxScore is the evidence score from which a reset is judged
	// sent by a middlebox rather than the server.
	ResetMiddleboxScore int `yaml:"reset_middlebox_score"`
	// MaxTrackedClients bounds the per-client memory shared by workers (UDP
	// fallback join, Happy Eyeballs, server TTLs, DNS finding de-duplication).
	MaxTrackedClients int `yaml:"max_tracked_clients"`
	// HTTPMaxHeaderBytes caps the bytes of a cleartext HTTP request or answer
	// (head and start of body) kept per flow and direction.
	HTTPMaxHeaderBytes int `yaml:"http_max_header_bytes"`
	// HTTPBudgetBytes bounds, per worker, the header buffers of the plain
	// HTTP flows being read at once (2 × http_max_header_bytes each); a flow
	// beyond it is not inspected, counted in
	// zoomprobe_http_inspect_refused_total.
	HTTPBudgetBytes int `yaml:"http_budget_bytes"`
	// ProxySignaturesFile replaces the built-in proxy, block-page and captive
	// portal signatures (format: configs/proxy-signatures.yml).
	ProxySignaturesFile string `yaml:"proxy_signatures_file"`
	// DNSSinkholes are addresses or networks that DNS filters answer with
	// (besides 0.0.0.0, ::, loopback and private addresses, always judged).
	DNSSinkholes []string `yaml:"dns_sinkholes"`
	// DNSPrivateAllowed are domains (and their subdomains) whose answers may be
	// private addresses on purpose (split horizon, Zoom on-premises connectors).
	DNSPrivateAllowed []string `yaml:"dns_private_allowed"`
	// DNSRepeatInterval: the same client, name and reason give one finding per
	// interval (the metric still counts every answer).
	DNSRepeatInterval time.Duration `yaml:"dns_repeat_interval"`

	SinkholePrefixes []netip.Prefix `yaml:"-"` // parsed DNSSinkholes
}

func (c *ReachConfig) setDefaults() {
	c.UDPAnswerWindow = 3 * time.Second
	c.SYNTimeout = 5 * time.Second
	c.SYNMinAttempts = 2
	c.HappyEyeballsWindow = 2 * time.Second
	c.FallbackWindow = 2 * time.Minute
	c.ClientDropMinRetries = 2
	c.ResetMiddleboxScore = 2
	c.MaxTrackedClients = 8192
	c.HTTPMaxHeaderBytes = 4096
	c.HTTPBudgetBytes = 4 << 20
	c.DNSRepeatInterval = 5 * time.Minute
}

func (c *ReachConfig) validate(v *Validator) {
	v.Check(c.UDPAnswerWindow >= 100*time.Millisecond && c.UDPAnswerWindow <= 5*time.Minute, "reachability.udp_answer_window", "must be between 100ms and 5m, got %s", c.UDPAnswerWindow)
	v.Check(c.SYNTimeout >= time.Second && c.SYNTimeout <= 5*time.Minute, "reachability.syn_timeout", "must be between 1s and 5m, got %s", c.SYNTimeout)
	v.Check(c.SYNMinAttempts >= 1 && c.SYNMinAttempts <= 16, "reachability.syn_min_attempts", "must be between 1 and 16, got %d", c.SYNMinAttempts)
	v.Check(c.HappyEyeballsWindow >= 0 && c.HappyEyeballsWindow <= time.Minute, "reachability.happy_eyeballs_window", "must be between 0s and 1m, got %s", c.HappyEyeballsWindow)
	v.Check(c.FallbackWindow >= time.Second && c.FallbackWindow <= time.Hour, "reachability.fallback_window", "must be between 1s and 1h, got %s", c.FallbackWindow)
	v.Check(c.ClientDropMinRetries >= 1 && c.ClientDropMinRetries <= 16, "reachability.client_drop_min_retries", "must be between 1 and 16, got %d", c.ClientDropMinRetries)
	v.Check(c.ResetMiddleboxScore >= 1 && c.ResetMiddleboxScore <= 10, "reachability.reset_middlebox_score", "must be between 1 and 10, got %d", c.ResetMiddleboxScore)
	v.Check(c.MaxTrackedClients >= 16 && c.MaxTrackedClients <= 1_000_000, "reachability.max_tracked_clients", "must be between 16 and 1000000, got %d", c.MaxTrackedClients)
	v.Check(c.HTTPMaxHeaderBytes >= 512 && c.HTTPMaxHeaderBytes <= 65536, "reachability.http_max_header_bytes", "must be between 512 and 65536, got %d", c.HTTPMaxHeaderBytes)
	v.Check(c.HTTPBudgetBytes >= 2*c.HTTPMaxHeaderBytes && c.HTTPBudgetBytes <= 1<<30, "reachability.http_budget_bytes",
		"must be between 2 × reachability.http_max_header_bytes (%d) and 1073741824, got %d", 2*c.HTTPMaxHeaderBytes, c.HTTPBudgetBytes)
	v.Check(c.DNSRepeatInterval >= 0 && c.DNSRepeatInterval <= 24*time.Hour, "reachability.dns_repeat_interval", "must be between 0s and 24h, got %s", c.DNSRepeatInterval)
	c.SinkholePrefixes = c.SinkholePrefixes[:0]
	for i, s := range c.DNSSinkholes {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			c.SinkholePrefixes = append(c.SinkholePrefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.Fail(idx("reachability.dns_sinkholes", i), "%q is not an address or CIDR network (like 146.112.61.104 or 198.51.100.0/24)", s)
			continue
		}
		a = a.Unmap()
		c.SinkholePrefixes = append(c.SinkholePrefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	for i, n := range c.DNSPrivateAllowed {
		v.Check(n != "" && !strings.ContainsAny(n, " /:*"), idx("reachability.dns_private_allowed", i), "%q is not a domain name (write example.com to cover it and its subdomains)", n)
	}
}
