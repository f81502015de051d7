package tls

// MaxChainCerts bounds how many certificates of a Certificate message are
// returned; real chains have 2 to 4.
const MaxChainCerts = 16

// CertificateList splits a TLS 1.0-1.2 Certificate message body into its DER
// certificates (sub-slices of body), appended to dst, at most MaxChainCerts.
func CertificateList(dst [][]byte, body []byte) ([][]byte, error) {
	if len(body) < 3 {
		return dst, ErrMalformed
	}
	n := int(body[0])<<16 | int(body[1])<<8 | int(body[2])
	if n != len(body)-3 {
		return dst, ErrMalformed
	}
	b := body[3:]
	for len(b) > 0 {
		if len(b) < 3 {
			return dst, ErrMalformed
		}
		l := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if l == 0 || l > len(b)-3 {
			return dst, ErrMalformed
		}
		if len(dst) < MaxChainCerts {
			dst = append(dst, b[3:3+l])
		}
		b = b[3+l:]
	}
	return dst, nil
}

// CertificateStatus returns the OCSPResponse of a CertificateStatus message
// body (status_type ocsp), a sub-slice of body.
func CertificateStatus(body []byte) ([]byte, error) {
	if len(body) < 4 || body[0] != 1 {
		return nil, ErrMalformed
	}
	n := int(body[1])<<16 | int(body[2])<<8 | int(body[3])
	if n == 0 || n != len(body)-4 {
		return nil, ErrMalformed
	}
	return body[4:], nil
}

// Alert levels.
const (
	AlertLevelWarning uint8 = 1
	AlertLevelFatal   uint8 = 2
)

// Alert descriptions a certificate judgement, or filtering by name, uses.
const (
	AlertCloseNotify            uint8 = 0
	AlertHandshakeFailure       uint8 = 40
	AlertBadCertificate         uint8 = 42
	AlertUnsupportedCertificate uint8 = 43
	AlertCertificateRevoked     uint8 = 44
	AlertCertificateExpired     uint8 = 45
	AlertCertificateUnknown     uint8 = 46
	AlertUnknownCA              uint8 = 48
	AlertAccessDenied           uint8 = 49
	AlertDecryptError           uint8 = 51
	AlertProtocolVersion        uint8 = 70
	AlertInternalError          uint8 = 80
	AlertUnrecognizedName       uint8 = 112
	AlertBadCertStatusResponse  uint8 = 113
)

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
	22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error", 60: "export_restriction",
	70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
	109: "missing_extension", 110: "unsupported_extension", 111: "certificate_unobtainable",
	112: "unrecognized_name", 113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
	115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
}

// AlertName names an alert description ("unknown_ca"); descriptions outside
// the registry are "other", so the result is a bounded label value.
func AlertName(desc uint8) string {
	if n, ok := alertNames[desc]; ok {
		return n
	}
	return "other"
}

// AlertNames lists every value AlertName returns.
func AlertNames() []string {
	out := make([]string, 0, len(alertNames)+1)
	for _, n := range alertNames {
		out = append(out, n)
	}
	return append(out, "other")
}

// IsCertificateAlert reports whether an alert says the peer refused a
// certificate (what a client sends when it shows a certificate warning).
func IsCertificateAlert(desc uint8) bool {
	switch desc {
	case AlertBadCertificate, AlertUnsupportedCertificate, AlertCertificateRevoked,
		AlertCertificateExpired, AlertCertificateUnknown, AlertUnknownCA, AlertAccessDenied,
		AlertBadCertStatusResponse:
		return true
	}
	return false
}
