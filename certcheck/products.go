package certcheck

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/configs"
)

// Product is an interception product a chain was recognised as.
type Product struct {
	Name string `yaml:"name"`
	// Kind: firewall, proxy, cloud_proxy, antivirus, captive_portal.
	Kind string `yaml:"kind"`

	IssuerCN   []string `yaml:"issuer_cn"`
	IssuerO    []string `yaml:"issuer_o"`
	IssuerOU   []string `yaml:"issuer_ou"`
	SubjectCN  []string `yaml:"subject_cn"`
	SPKISHA256 []string `yaml:"spki_sha256"`

	spki [][32]byte
}

// Products is a loaded signature list.
type Products struct {
	list []Product
}

// ProductKinds lists the valid kinds.
var ProductKinds = []string{"firewall", "proxy", "cloud_proxy", "antivirus", "captive_portal"}

// DefaultProducts parses the built-in signature list (configs/interception-products.yml).
func DefaultProducts() *Products {
	p, err := ParseProducts(configs.InterceptionProducts, "built-in interception-products.yml")
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return p
}

// LoadProducts reads a signature file; errors name the file and the entry.
func LoadProducts(path string) (*Products, error) {
	b, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls.products_file: %w", err)
	}
	return ParseProducts(b, path)
}

// ParseProducts parses the YAML of a signature list; name labels errors.
func ParseProducts(b []byte, name string) (*Products, error) {
	var doc struct {
		Products []Product `yaml:"products"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []string
	for i := range doc.Products {
		p := &doc.Products[i]
		at := fmt.Sprintf("%s: products[%d]", name, i)
		if strings.TrimSpace(p.Name) == "" {
			errs = append(errs, at+".name: must be set")
		}
		if !contains(ProductKinds, p.Kind) {
			errs = append(errs, fmt.Sprintf("%s.kind: %q is not one of %s", at, p.Kind, strings.Join(ProductKinds, ", ")))
		}
		if len(p.IssuerCN)+len(p.IssuerO)+len(p.IssuerOU)+len(p.SubjectCN)+len(p.SPKISHA256) == 0 {
			errs = append(errs, at+": needs at least one of issuer_cn, issuer_o, issuer_ou, subject_cn, spki_sha256")
		}
		// Lowercased once here: matching folds the names, not the patterns.
		for _, l := range [][]string{p.IssuerCN, p.IssuerO, p.IssuerOU, p.SubjectCN} {
			for j := range l {
				l[j] = strings.ToLower(l[j])
			}
		}
		for j, h := range p.SPKISHA256 {
			sum, err := parseSPKI(h)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s.spki_sha256[%d]: %v", at, j, err))
				continue
			}
			p.spki = append(p.spki, sum)
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return &Products{list: doc.Products}, nil
}

func parseSPKI(h string) ([32]byte, error) {
	var out [32]byte
	h = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(h), ":", ""))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("%q is not a SHA-256 in hex (64 hex digits, colons allowed)", h)
	}
	copy(out[:], b)
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Len is the number of products.
func (p *Products) Len() int {
	if p == nil {
		return 0
	}
	return len(p.list)
}

// Match returns the first product whose signature matches the chain
// (presented certificates, leaf first, plus any verified path).
func (p *Products) Match(chain []*x509.Certificate) (Product, bool) {
	if p == nil || len(chain) == 0 {
		return Product{}, false
	}
	leaf := chain[0]
	for _, prod := range p.list {
		if prod.matches(leaf, chain) {
			return prod, true
		}
	}
	return Product{}, false
}

func (p *Product) matches(leaf *x509.Certificate, chain []*x509.Certificate) bool {
	names := func(n x509Name) bool {
		return anyGlob(p.IssuerCN, n.cn) || anyGlobs(p.IssuerO, n.o) || anyGlobs(p.IssuerOU, n.ou)
	}
	if names(nameOf(leaf.Issuer.CommonName, leaf.Issuer.Organization, leaf.Issuer.OrganizationalUnit)) {
		return true
	}
	for _, c := range chain[1:] {
		if names(nameOf(c.Subject.CommonName, c.Subject.Organization, c.Subject.OrganizationalUnit)) ||
			names(nameOf(c.Issuer.CommonName, c.Issuer.Organization, c.Issuer.OrganizationalUnit)) {
			return true
		}
	}
	if len(p.SubjectCN) > 0 {
		if anyGlob(p.SubjectCN, leaf.Subject.CommonName) || anyGlobs(p.SubjectCN, leaf.DNSNames) {
			return true
		}
	}
	if len(p.spki) > 0 {
		for _, c := range chain {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			for _, s := range p.spki {
				if s == sum {
					return true
				}
			}
		}
	}
	return false
}

type x509Name struct {
	cn    string
	o, ou []string
}

func nameOf(cn string, o, ou []string) x509Name { return x509Name{cn, o, ou} }

func anyGlobs(patterns, values []string) bool {
	for _, v := range values {
		if anyGlob(patterns, v) {
			return true
		}
	}
	return false
}

// anyGlob matches v, case-insensitively, against lowercased patterns.
func anyGlob(patterns []string, v string) bool {
	if v == "" || len(patterns) == 0 {
		return false
	}
	if !isASCII(v) {
		v = strings.ToLower(v) // rare: Unicode folding allocates
	}
	for _, p := range patterns {
		if glob(p, v) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// glob matches s against the lowercase pattern p where '*' stands for any
// run of characters; ASCII letters of s are folded to lower case.
func glob(p, s string) bool {
	star, back := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, back = i, j
			i++
		case i < len(p) && p[i] == lowerASCII(s[j]):
			i++
			j++
		case star >= 0:
			back++
			i, j = star+1, back
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}
