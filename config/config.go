// Package config is zoomprobe's configuration: YAML decoded onto defaults with
// unknown fields rejected, then validated; every error names the field (and
// the line, when the field was written in the file) and what to do.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	yaml "go.yaml.in/yaml/v3"
)

// Config is the whole configuration. Each section lives in its own file.
type Config struct {
	// Site names the office or network this probe watches (the --site flag
	// overrides it). It goes into zoomprobe_site_info, the event log and the
	// audit; Prometheus adds it to every series as an external label.
	Site      string          `yaml:"site"`
	Capture   CaptureConfig   `yaml:"capture"`
	Flows     FlowsConfig     `yaml:"flows"`
	Zoom      ZoomConfig      `yaml:"zoom"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	EventLog  EventLogConfig  `yaml:"event_log"`
	Analyzers AnalyzersConfig `yaml:"analyzers"`
	TLS       TLSConfig       `yaml:"tls"`
	Reach     ReachConfig     `yaml:"reachability"`
	Probes    ProbesConfig    `yaml:"probes"`
	Findings  FindingsConfig  `yaml:"findings"`
	Evidence  EvidenceConfig  `yaml:"evidence"`
}

//go:embed default.yml
var defaultYAML []byte

// DefaultYAML is the embedded default configuration, used when no file is given.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the built-in defaults (what an empty file gives).
func Default() *Config {
	c := &Config{}
	c.Capture.setDefaults()
	c.Flows.setDefaults()
	c.Zoom.setDefaults()
	c.Metrics.setDefaults()
	c.EventLog.setDefaults()
	c.Analyzers.setDefaults()
	c.TLS.setDefaults()
	c.Reach.setDefaults()
	c.Probes.setDefaults()
	c.Findings.setDefaults()
	c.Evidence.setDefaults()
	return c
}

// LoadFile reads and validates a config file; errors start with the file name.
func LoadFile(path string) (*Config, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Load reads the config file at path, or the built-in default when path is
// empty, and applies a site name given on the command line (--site).
func Load(path, site string) (*Config, error) {
	if err := ValidateSite(site); err != nil {
		return nil, fmt.Errorf("--site: %w", err)
	}
	var c *Config
	var err error
	if path == "" {
		if c, err = Parse(DefaultYAML()); err != nil {
			return nil, fmt.Errorf("built-in default config: %w", err)
		}
	} else if c, err = LoadFile(path); err != nil {
		return nil, err
	}
	if site != "" {
		c.Site = site
	}
	return c, nil
}

// Parse decodes YAML onto the defaults, rejecting unknown fields, and validates.
func Parse(b []byte) (*Config, error) {
	c := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, cleanYAMLError(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, cleanYAMLError(err)
	}
	v := &Validator{root: &root}
	c.validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) validate(v *Validator) {
	if err := ValidateSite(c.Site); err != nil {
		v.Fail("site", "%v", err)
	}
	c.Capture.validate(v)
	c.Flows.validate(v)
	c.Zoom.validate(v)
	c.Metrics.validate(v)
	c.EventLog.validate(v)
	c.Analyzers.validate(v)
	c.TLS.validate(v)
	c.Reach.validate(v)
	c.Probes.validate(v)
	c.Findings.validate(v)
	c.validateFindingsWindows(v)
	c.Evidence.validate(v)
}

// Marshal writes the config back as YAML (for `check-config --print`).
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

func cleanYAMLError(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// Validator collects field errors. Paths are dotted YAML keys, with list
// indexes in brackets: "probes.tls.targets[2].address".
type Validator struct {
	root *yaml.Node
	errs []string
}

// Check records msg for path when ok is false.
func (v *Validator) Check(ok bool, path, format string, args ...any) {
	if !ok {
		v.Fail(path, format, args...)
	}
}

// Fail records an error for path.
func (v *Validator) Fail(path, format string, args ...any) {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if line := v.line(path); line > 0 {
		msg = "line " + strconv.Itoa(line) + ": " + msg
	}
	v.errs = append(v.errs, msg)
}

// Err joins the recorded errors, or returns nil.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.errs, "\n"))
}

// line finds where path was written, or the nearest written parent.
func (v *Validator) line(path string) int {
	if v.root == nil || len(v.root.Content) == 0 {
		return 0
	}
	n := v.root.Content[0]
	best := 0
	for _, part := range splitPath(path) {
		next := child(n, part)
		if next == nil {
			break
		}
		n = next
		best = n.Line
	}
	return best
}

func splitPath(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, seg[:i])
			}
			j := strings.IndexByte(seg, ']')
			if j < i {
				break
			}
			out = append(out, seg[i:j+1])
			seg = seg[j+1:]
		}
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

func child(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			if n.Content[i+1].Kind == yaml.ScalarNode {
				return n.Content[i+1]
			}
			// point at the key for sections, at the value for scalars
			c := *n.Content[i+1]
			c.Line = n.Content[i].Line
			return &c
		}
	}
	return nil
}

// ValidateSite checks a site name: empty (unnamed), or 1-63 letters, digits,
// '.', '_' or '-', starting with a letter or digit, so it is a safe label value
// and file name everywhere it goes.
func ValidateSite(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 63 {
		return fmt.Errorf("%q is longer than 63 characters", s)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("%q: use letters, digits, '.', '_' and '-', starting with a letter or digit", s)
		}
	}
	return nil
}

// MaxFileBytes bounds every file the configuration names (roots, CT logs,
// ranges, signatures, BPF): more is a mistake, and /dev/zero would never end.
const MaxFileBytes = 64 << 20

// ReadFile reads a file the configuration names: a regular file of at most
// MaxFileBytes, so a device, a FIFO or a runaway file gives an error instead
// of a hang.
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer, before the regular-file check below could refuse it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a configured file may have", path, st.Size(), MaxFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err == nil && len(b) > MaxFileBytes {
		err = fmt.Errorf("%s grew past %d bytes while read", path, MaxFileBytes)
	}
	return b, err
}
