package certcheck

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/zoomprobe/zoomprobe/configs"
)

// FuzzParseProducts feeds hostile YAML as an interception-products file:
// no panic, and the globs of a file it accepts match a real chain without
// panicking.
func FuzzParseProducts(f *testing.F) {
	f.Add(configs.InterceptionProducts)
	for _, s := range []string{
		"products:\n  - {name: X, kind: firewall, issuer_cn: ['*Forti*']}\n",
		"products:\n  - {name: X, kind: proxy, issuer_o: ['**?*'], subject_cn: ['*.zoom.us'], spki_sha256: ['00:11']}\n",
		"products: [{name: ' ', kind: antivirus, issuer_ou: ['']}]\n",
		"products: {}\n",
	} {
		f.Add([]byte(s))
	}
	var chain []*x509.Certificate
	for _, name := range []string{"fortigate-ca.pem", "zoom-root.pem"} {
		b, err := os.ReadFile("../testdata/ca/" + name)
		if err != nil {
			f.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			f.Fatalf("%s: no PEM block", name)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			f.Fatal(err)
		}
		chain = append(chain, c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProducts(b, "fuzz.yml")
		if err != nil {
			return
		}
		p.Match(chain)
		p.Match(chain[1:])
	})
}
