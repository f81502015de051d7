package finding

// Reason is the closed vocabulary of failure reasons shared by analyzers,
// probes, metrics and reports. OONI's failure strings are used where one fits.
// docs/reasons.md explains each; a test keeps the two in step.
type Reason string

const (
	// TLS certificate verdicts (Zoom Rooms code in brackets).
	ReasonOK                 Reason = "ok"
	ReasonInvalidHostname    Reason = "ssl_invalid_hostname"     // (1)
	ReasonRevoked            Reason = "ssl_revoked"              // (2)
	ReasonOCSPError          Reason = "ssl_ocsp_error"           // (3)
	ReasonCTInvalid          Reason = "ssl_ct_invalid"           // (4)
	ReasonExpired            Reason = "ssl_expired"              // (5)
	ReasonNotYetValid        Reason = "ssl_not_yet_valid"        // (5)
	ReasonUnknownAuthority   Reason = "ssl_unknown_authority"    // (6)
	ReasonUnexpectedIssuer   Reason = "ssl_unexpected_issuer"    // (6) chain valid, but not to Zoom's expected roots
	ReasonIncompleteChain    Reason = "ssl_incomplete_chain"     // (6) the server omits its intermediate: misconfiguration
	ReasonSelfSigned         Reason = "ssl_self_signed"          // (6)
	ReasonInvalidPurpose     Reason = "ssl_invalid_purpose"      // (7)
	ReasonInvalidCertificate Reason = "ssl_invalid_certificate"  // (100)
	ReasonCertNotObservable  Reason = "ssl_cert_not_observable"  // TLS 1.3: chain encrypted
	ReasonFingerprintDrift   Reason = "tls_fingerprint_drift"    // TLS 1.3 server fingerprint or hop count changed
	ReasonClientRejectedCert Reason = "ssl_client_rejected_cert" // client sent a certificate alert
	ReasonOverlapConflict    Reason = "tcp_overlap_conflict"     // two copies of the same handshake bytes disagree
	ReasonSSLFailedHandshake Reason = "ssl_failed_handshake"

	// Reachability.
	ReasonTimeout             Reason = "generic_timeout_error" // SYN never answered
	ReasonConnectionRefused   Reason = "connection_refused"    // SYN answered by RST
	ReasonConnectionReset     Reason = "connection_reset"
	ReasonICMPAdminProhibited Reason = "icmp_admin_prohibited"
	ReasonICMPPortUnreachable Reason = "icmp_port_unreachable"
	ReasonICMPHostUnreachable Reason = "icmp_host_unreachable"
	ReasonICMPNetUnreachable  Reason = "icmp_net_unreachable"
	ReasonICMPUnreachable     Reason = "icmp_unreachable" // any other destination-unreachable code
	ReasonUDPNoAnswer         Reason = "udp_no_answer"
	ReasonUDPFallback         Reason = "udp_fallback_to_tcp"
	ReasonClientSideDrop      Reason = "client_side_drop" // answers passed the probe, the client acts as if none came
	ReasonSNIFiltering        Reason = "sni_filtering"    // reset or TLS alert right after a Zoom ClientHello

	// Proxies, portals, DNS.
	ReasonProxyDenied       Reason = "proxy_denied"        // 403 to CONNECT
	ReasonProxyAuthRequired Reason = "proxy_auth_required" // 407
	ReasonProxyBadGateway   Reason = "proxy_bad_gateway"   // 502/503/504
	ReasonProxyClosed       Reason = "proxy_closed"        // CONNECT closed without answer
	ReasonCaptivePortal     Reason = "captive_portal_redirect"
	ReasonBlockPage         Reason = "block_page"
	ReasonDNSNXDomain       Reason = "dns_nxdomain"
	ReasonDNSRefused        Reason = "dns_refused"
	ReasonDNSServFail       Reason = "dns_servfail"
	ReasonDNSTimeout        Reason = "dns_timeout"  // the resolver did not answer
	ReasonDNSSinkhole       Reason = "dns_sinkhole" // 0.0.0.0, :: or a configured sinkhole
	ReasonDNSLoopback       Reason = "dns_loopback"
	ReasonDNSPrivate        Reason = "dns_private_address"
	ReasonDNSInconsistent   Reason = "dns_inconsistent"

	// Clock and probes.
	ReasonClockSkewWarning   Reason = "clock_skew_warning"
	ReasonClockSkewCritical  Reason = "clock_skew_critical"
	ReasonNTPUnreachable     Reason = "ntp_unreachable"
	ReasonDNSLookupError     Reason = "dns_lookup_error"
	ReasonHostUnreachable    Reason = "host_unreachable"
	ReasonNetworkUnreachable Reason = "network_unreachable"
	ReasonUnknown            Reason = "unknown_failure"
)

// AllReasons lists the vocabulary; metrics pre-create label values from it.
var AllReasons = []Reason{
	ReasonOK, ReasonInvalidHostname, ReasonRevoked, ReasonOCSPError, ReasonCTInvalid,
	ReasonExpired, ReasonNotYetValid, ReasonUnknownAuthority, ReasonUnexpectedIssuer, ReasonIncompleteChain,
	ReasonSelfSigned, ReasonInvalidPurpose, ReasonInvalidCertificate, ReasonCertNotObservable,
	ReasonFingerprintDrift, ReasonClientRejectedCert, ReasonOverlapConflict, ReasonSSLFailedHandshake,
	ReasonTimeout, ReasonConnectionRefused, ReasonConnectionReset, ReasonICMPAdminProhibited,
	ReasonICMPPortUnreachable, ReasonICMPHostUnreachable, ReasonICMPNetUnreachable,
	ReasonICMPUnreachable, ReasonUDPNoAnswer, ReasonUDPFallback, ReasonClientSideDrop, ReasonSNIFiltering,
	ReasonProxyDenied, ReasonProxyAuthRequired, ReasonProxyBadGateway, ReasonProxyClosed,
	ReasonCaptivePortal, ReasonBlockPage, ReasonDNSNXDomain, ReasonDNSRefused, ReasonDNSServFail,
	ReasonDNSTimeout, ReasonDNSSinkhole, ReasonDNSLoopback, ReasonDNSPrivate, ReasonDNSInconsistent,
	ReasonClockSkewWarning, ReasonClockSkewCritical, ReasonNTPUnreachable, ReasonDNSLookupError,
	ReasonHostUnreachable, ReasonNetworkUnreachable, ReasonUnknown,
}
