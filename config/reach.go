package config

import "time"

// ReachConfig configures the reachability, reset, proxy, portal and DNS analyzers.
type ReachConfig struct {
	// UDPAnswerWindow is how long a datagram to a Zoom media or STUN port may
	// go unanswered before it counts as udp_no_answer.
	UDPAnswerWindow time.Duration `yaml:"udp_answer_window"`
}

func (c *ReachConfig) setDefaults() { c.UDPAnswerWindow = 5 * time.Second }

func (c *ReachConfig) validate(v *Validator) {
	v.Check(c.UDPAnswerWindow >= 100*time.Millisecond && c.UDPAnswerWindow <= 5*time.Minute, "reachability.udp_answer_window", "must be between 100ms and 5m, got %s", c.UDPAnswerWindow)
}
