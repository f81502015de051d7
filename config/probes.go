package config

// ProbesConfig configures the active checks (probes/) and the audit.
type ProbesConfig struct {
	Enabled bool `yaml:"enabled"`
}

func (c *ProbesConfig) setDefaults() {}

func (c *ProbesConfig) validate(v *Validator) {}
