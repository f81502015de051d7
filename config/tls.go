package config

// TLSConfig configures the TLS analyzer and the TLS probe's verdicts.
type TLSConfig struct {
	// MaxHandshakeBytes caps reassembled handshake bytes per direction.
	MaxHandshakeBytes int `yaml:"max_handshake_bytes"`
}

func (c *TLSConfig) setDefaults() { c.MaxHandshakeBytes = 64 * 1024 }

func (c *TLSConfig) validate(v *Validator) {
	v.Check(c.MaxHandshakeBytes >= 4096 && c.MaxHandshakeBytes <= 1<<20, "tls.max_handshake_bytes", "must be between 4096 and 1048576, got %d", c.MaxHandshakeBytes)
}
