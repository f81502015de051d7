package tls

import (
	ctls "crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/tlstest"
)

type x509Pool = x509.CertPool

func newPool() *x509.CertPool { return x509.NewCertPool() }

// recordWithServerCurves records a TLS 1.3 handshake whose server prefers
// X25519 (a different TLS stack from the usual server's).
func recordWithServerCurves(t *testing.T, sni string, cert ctls.Certificate) *tlstest.Transcript {
	return tlstest.Record(t, tlstest.Spec{ServerName: sni, Cert: cert, ServerCurvePreferences: []ctls.CurveID{ctls.X25519}})
}
