package config

import "time"

// FindingsConfig is the daemon's findings page and API (/findings,
// /api/v1/findings): what is broken now, grouped, kept in memory.
type FindingsConfig struct {
	// ResolveAfter: a group that no finding has refreshed for this long is
	// taken as resolved and leaves the page. It must not be shorter than the
	// windows in which analyzers and probes hold back repeats of a finding,
	// or a problem still there would come and go.
	ResolveAfter time.Duration `yaml:"resolve_after"`
	// MaxBytes bounds the memory the groups take (each about 1 KiB plus its
	// texts, 1.2 KiB in all); when full, the group refreshed longest ago is
	// dropped (counted).
	MaxBytes int `yaml:"max_bytes"`
}

func (c *FindingsConfig) setDefaults() {
	c.ResolveAfter = 2 * time.Hour
	c.MaxBytes = 4 << 20
}

func (c *FindingsConfig) validate(v *Validator) {
	v.Check(c.ResolveAfter >= time.Minute && c.ResolveAfter <= 30*24*time.Hour, "findings.resolve_after", "must be between 1m and 720h, got %s", c.ResolveAfter)
	v.Check(c.MaxBytes >= 64<<10 && c.MaxBytes <= 1<<30, "findings.max_bytes", "must be between 65536 and 1073741824, got %d", c.MaxBytes)
}

// validateFindingsWindows keeps findings.resolve_after at or above every
// window that holds back a repeated finding: a group must outlive the
// silence between two findings of a problem that is still there.
func (c *Config) validateFindingsWindows(v *Validator) {
	windows := []struct {
		field string
		d     time.Duration
	}{{"tls.dedup_window", c.TLS.DedupWindow}, {"reachability.dns_repeat_interval", c.Reach.DNSRepeatInterval}}
	if c.Probes.Enabled {
		windows = append(windows, struct {
			field string
			d     time.Duration
		}{"probes.repeat_findings", c.Probes.RepeatFindings})
	}
	for _, w := range windows {
		v.Check(c.Findings.ResolveAfter >= w.d, "findings.resolve_after",
			"%s is shorter than %s (%s): a problem still there would leave the findings page between two of its findings; set it to %s or more", c.Findings.ResolveAfter, w.field, w.d, w.d)
	}
}
