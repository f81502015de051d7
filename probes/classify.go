package probes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/zoomprobe/zoomprobe/finding"
)

// Classify turns an error from dialling, a proxy, a handshake or a lookup
// into the closed failure vocabulary (OONI's strings where one fits). It is
// the one classifier every check uses: typed errors first (proxy, DNS,
// x509, TLS alerts), then the errno, then timeouts and EOF, then known
// message suffixes, then unknown_failure.
func Classify(err error) finding.Reason {
	if err == nil {
		return finding.ReasonOK
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return finding.ReasonDNSNXDomain
		case dnsErr.IsTimeout:
			return finding.ReasonTimeout
		}
		return finding.ReasonDNSLookupError
	}
	if r, ok := classifyX509(err); ok {
		return r
	}
	var alert tls.AlertError
	var recHdr tls.RecordHeaderError
	if errors.As(err, &alert) || errors.As(err, &recHdr) {
		return finding.ReasonSSLFailedHandshake
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return finding.ReasonConnectionRefused
		case syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED:
			return finding.ReasonConnectionReset
		case syscall.EHOSTUNREACH, syscall.EHOSTDOWN:
			return finding.ReasonHostUnreachable
		case syscall.ENETUNREACH, syscall.ENETDOWN:
			return finding.ReasonNetworkUnreachable
		case syscall.ETIMEDOUT:
			return finding.ReasonTimeout
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return finding.ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return finding.ReasonTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return finding.ReasonEOF
	}
	msg := err.Error()
	switch {
	case strings.HasSuffix(msg, "connection reset by peer"):
		return finding.ReasonConnectionReset
	case strings.HasSuffix(msg, "connection refused"):
		return finding.ReasonConnectionRefused
	case strings.HasSuffix(msg, "i/o timeout"):
		return finding.ReasonTimeout
	case strings.HasPrefix(msg, "tls: "):
		return finding.ReasonSSLFailedHandshake
	}
	return finding.ReasonUnknown
}

// classifyX509 maps crypto/x509's verification errors (used when a chain is
// verified by Go itself rather than certcheck).
func classifyX509(err error) (finding.Reason, bool) {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return finding.ReasonUnknownAuthority, true
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return finding.ReasonInvalidHostname, true
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			return finding.ReasonExpired, true
		case x509.IncompatibleUsage:
			return finding.ReasonInvalidPurpose, true
		}
		return finding.ReasonInvalidCertificate, true
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return finding.ReasonInvalidCertificate, true
	}
	return "", false
}

// ClassifyUDP is Classify for a connected UDP socket, where the kernel turns
// ICMP errors into errno values: ECONNREFUSED is ICMP port unreachable,
// EHOSTUNREACH host unreachable (or administratively prohibited), ENETUNREACH
// network unreachable. With the ICMP message itself (see icmp_linux.go) the
// caller refines this further.
func ClassifyUDP(err error) finding.Reason {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return finding.ReasonICMPPortUnreachable
		case syscall.EHOSTUNREACH:
			return finding.ReasonICMPHostUnreachable
		case syscall.ENETUNREACH:
			return finding.ReasonICMPNetUnreachable
		case syscall.EACCES, syscall.EPERM:
			// the local firewall refused to send (an OUTPUT rule)
			return finding.ReasonICMPAdminProhibited
		}
	}
	return Classify(err)
}

// isICMPReason reports whether r proves a block by an ICMP answer.
func isICMPReason(r finding.Reason) bool {
	switch r {
	case finding.ReasonICMPAdminProhibited, finding.ReasonICMPPortUnreachable, finding.ReasonICMPHostUnreachable,
		finding.ReasonICMPNetUnreachable, finding.ReasonICMPUnreachable:
		return true
	}
	return false
}
