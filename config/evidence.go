package config

import "time"

// EvidenceConfig is where and how the packets behind each finding are kept
// (package evidence): a bounded per-worker buffer of undecided flows'
// headers and handshake bytes, written as one pcapng per finding.
type EvidenceConfig struct {
	// Dir receives one pcapng file per finding; empty turns evidence off.
	Dir string `yaml:"dir"`
	// MaxBufferBytes is each worker's pool of 512-byte chunks, allocated at
	// start: the packets of undecided flows wait there.
	MaxBufferBytes int `yaml:"max_buffer_bytes"`
	// MaxPacketsPerFlow and MaxBytesPerFlow bound one flow's share.
	MaxPacketsPerFlow int `yaml:"max_packets_per_flow"`
	MaxBytesPerFlow   int `yaml:"max_bytes_per_flow"`
	// MaxDirBytes caps the files in Dir; the oldest go first.
	MaxDirBytes int64 `yaml:"max_dir_bytes"`
	// Retention: files older than this are removed.
	Retention time.Duration `yaml:"retention"`
}

func (c *EvidenceConfig) setDefaults() {
	c.MaxBufferBytes = 4 << 20
	c.MaxPacketsPerFlow = 32
	c.MaxBytesPerFlow = 32 << 10
	c.MaxDirBytes = 256 << 20
	c.Retention = 720 * time.Hour
}

func (c *EvidenceConfig) validate(v *Validator) {
	v.Check(c.MaxBufferBytes >= 64<<10 && c.MaxBufferBytes <= 1<<30, "evidence.max_buffer_bytes", "must be between 65536 and 1073741824, got %d", c.MaxBufferBytes)
	v.Check(c.MaxPacketsPerFlow >= 8 && c.MaxPacketsPerFlow <= 1024, "evidence.max_packets_per_flow", "must be between 8 and 1024, got %d", c.MaxPacketsPerFlow)
	v.Check(c.MaxBytesPerFlow >= 4096 && c.MaxBytesPerFlow <= 1<<20, "evidence.max_bytes_per_flow", "must be between 4096 and 1048576, got %d", c.MaxBytesPerFlow)
	v.Check(c.MaxBytesPerFlow <= c.MaxBufferBytes, "evidence.max_bytes_per_flow", "%d is more than evidence.max_buffer_bytes (%d); raise the buffer or lower the per-flow cap", c.MaxBytesPerFlow, c.MaxBufferBytes)
	v.Check(c.MaxDirBytes >= 1<<20, "evidence.max_dir_bytes", "must be at least 1048576, got %d", c.MaxDirBytes)
	v.Check(c.Retention >= time.Minute, "evidence.retention", "must be at least 1m, got %s", c.Retention)
}
