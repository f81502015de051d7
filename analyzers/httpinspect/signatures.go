package httpinspect

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/proto/http"
)

// defaultSignatures is the built-in copy of configs/proxy-signatures.yml
// (a test keeps the two identical).
//
//go:embed signatures.yml
var defaultSignatures []byte

// Product kinds.
const (
	KindProxy         = "proxy"
	KindFirewall      = "firewall"
	KindCaptivePortal = "captive_portal"
)

// Signatures names proxies, block pages and captive portals.
type Signatures struct {
	Products           []Product           `yaml:"products"`
	ConnectivityChecks []ConnectivityCheck `yaml:"connectivity_checks"`
}

// Product is one vendor's recognisable marks.
type Product struct {
	Name    string          `yaml:"name"`
	Kind    string          `yaml:"kind"`
	Headers []HeaderPattern `yaml:"headers"`
	Body    []string        `yaml:"body"`
}

// HeaderPattern matches a header whose value contains Contains (any case).
type HeaderPattern struct {
	Header   string `yaml:"header"`
	Contains string `yaml:"contains"`
}

// ConnectivityCheck is an operating system's captive-portal probe URL.
type ConnectivityCheck struct {
	Host   string `yaml:"host"`
	Path   string `yaml:"path"`
	Status int    `yaml:"status"` // the answer expected without a portal; 0: any
}

// DefaultSignatures returns the built-in signatures, parsed once; callers
// must not modify them.
var DefaultSignatures = sync.OnceValue(func() *Signatures {
	s, err := ParseSignatures(defaultSignatures, "built-in proxy-signatures.yml")
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return s
})

// LoadSignatures reads a signatures file; errors start with its name.
func LoadSignatures(path string) (*Signatures, error) {
	b, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reachability.proxy_signatures_file: %w", err)
	}
	return ParseSignatures(b, path)
}

// ParseSignatures decodes and validates signatures; name is used in errors.
func ParseSignatures(b []byte, name string) (*Signatures, error) {
	var s Signatures
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s", name, strings.Join(te.Errors, "; "))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, name+": "+fmt.Sprintf(format, args...)) }
	for i, p := range s.Products {
		if p.Name == "" {
			fail("products[%d].name: must be set", i)
		}
		switch p.Kind {
		case KindProxy, KindFirewall, KindCaptivePortal:
		default:
			fail("products[%d].kind: %q is not one of proxy, firewall, captive_portal", i, p.Kind)
		}
		if len(p.Headers) == 0 && len(p.Body) == 0 {
			fail("products[%d]: give at least one headers or body pattern", i)
		}
		for j, h := range p.Headers {
			if h.Header == "" || strings.ContainsAny(h.Header, " :") {
				fail("products[%d].headers[%d].header: %q is not a header name", i, j, h.Header)
			}
		}
		for j, b := range p.Body {
			if len(b) < 4 {
				fail("products[%d].body[%d]: %q is too short to match safely (4 characters at least)", i, j, b)
			}
		}
	}
	for i, c := range s.ConnectivityChecks {
		if c.Host == "" || strings.ContainsAny(c.Host, " /:") {
			fail("connectivity_checks[%d].host: %q is not a host name", i, c.Host)
		}
		if !strings.HasPrefix(c.Path, "/") {
			fail("connectivity_checks[%d].path: %q must start with /", i, c.Path)
		}
		if c.Status != 0 && (c.Status < 100 || c.Status > 599) {
			fail("connectivity_checks[%d].status: %d is not an HTTP status", i, c.Status)
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return &s, nil
}

// Match returns the first product whose marks the answer carries.
func (s *Signatures) Match(r *http.Response, body []byte) (*Product, bool) {
	for i := range s.Products {
		p := &s.Products[i]
		for _, h := range p.Headers {
			if v := r.Header(h.Header); v != nil && http.ContainsFold(v, h.Contains) {
				return p, true
			}
			if h.Contains == "" && r.Has(h.Header) {
				return p, true
			}
		}
		for _, b := range p.Body {
			if http.ContainsFold(body, b) {
				return p, true
			}
		}
	}
	return nil, false
}

// Check returns the connectivity check a request is, if any.
func (s *Signatures) Check(host, path []byte) (*ConnectivityCheck, bool) {
	for i := range s.ConnectivityChecks {
		c := &s.ConnectivityChecks[i]
		if equalFold(host, c.Host) && string(path) == c.Path {
			return c, true
		}
	}
	return nil, false
}

func equalFold(b []byte, s string) bool { return len(b) == len(s) && http.ContainsFold(b, s) }
