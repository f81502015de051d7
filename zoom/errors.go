package zoom

import (
	"github.com/zoomprobe/zoomprobe/finding"
)

// ConnectErrorText is what the Zoom client shows for error 5003 (and, with
// its own number, the rest of the connectivity family).
const ConnectErrorText = "Unable to connect: Make sure you are connected to the internet and Connection to Zoom is not blocked by a firewall or proxy."

// ConnectErrorMeaning is the one meaning Zoom documents for the whole family.
const ConnectErrorMeaning = "The Zoom client cannot reach Zoom's servers: a firewall, proxy, antivirus or web security gateway is blocking or interfering with the connection."

// ClientError is one of the Zoom client's connectivity error codes.
//
// Zoom documents 5000-5004 and 104101-104118 only as one family: the client
// cannot reach Zoom's servers because of a firewall, proxy, antivirus or web
// security gateway. No per-code meaning is published, so every code carries
// the same meaning and the family should be treated as one signal. The SDKs
// reuse some of these numbers with other meanings: this table is about the
// desktop, mobile and Rooms clients.
type ClientError struct {
	Code     int
	UserSees string // the dialog text (the client shows the code with it)
	Meaning  string
	Causes   []string
}

var connectCauses = []string{
	"a firewall blocks Zoom's ports (TCP 443, 8801, 8802; UDP 3478, 3479, 8801-8810) or ranges",
	"a web proxy denies or requires authentication for CONNECT to Zoom",
	"an antivirus or web security gateway intercepts or drops the TLS connection",
	"a web security gateway blocks Zoom's names or ranges",
}

// ClientErrors lists the connectivity family: 5000-5004 and 104101-104118.
var ClientErrors = func() []ClientError {
	var out []ClientError
	add := func(code int) {
		out = append(out, ClientError{Code: code, UserSees: ConnectErrorText, Meaning: ConnectErrorMeaning, Causes: connectCauses})
	}
	for c := 5000; c <= 5004; c++ {
		add(c)
	}
	for c := 104101; c <= 104118; c++ {
		add(c)
	}
	return out
}()

// LookupClientError returns the entry for a client error code.
func LookupClientError(code int) (ClientError, bool) {
	if !IsConnectErrorCode(code) {
		return ClientError{}, false
	}
	for _, e := range ClientErrors {
		if e.Code == code {
			return e, true
		}
	}
	return ClientError{}, false
}

// IsConnectErrorCode reports whether code belongs to the connectivity family.
func IsConnectErrorCode(code int) bool {
	return (code >= 5000 && code <= 5004) || (code >= 104101 && code <= 104118)
}

// RoomsCertError is one of the codes a Zoom Room shows when it does not
// trust a server's certificate. Zoom says the most common cause of
// certificate problems is a wrong clock (NTP); SSL inspection, captive
// portals and VPNs come next.
type RoomsCertError struct {
	Code        int
	Name        string // short label for reports
	Description string
	Causes      []string
	Remediation string
	// Reasons are the finding reasons that lead a Room to this code.
	Reasons []finding.Reason
}

// RoomsCertErrors lists the Zoom Rooms untrusted-certificate codes 1-7 and 100.
var RoomsCertErrors = []RoomsCertError{
	{1, "host_name_invalid", "The certificate's host name does not match the server name.",
		[]string{"captive portal", "proxy answering for the server", "network access control (NAC) redirect"},
		"Let Zoom's names through the captive portal or NAC without redirection; check that the proxy does not answer for Zoom's hosts.",
		[]finding.Reason{finding.ReasonInvalidHostname, finding.ReasonCaptivePortal}},
	{2, "revoked", "The certificate has been revoked.",
		[]string{"an interception device serving a revoked certificate", "a stale certificate on the path"},
		"Find the device that presents the certificate and replace it, or exempt Zoom from inspection.",
		[]finding.Reason{finding.ReasonRevoked}},
	{3, "ocsp_error", "The certificate's revocation status (OCSP) could not be checked.",
		[]string{"wrong clock on the Room (most often)", "OCSP responders blocked by the firewall or proxy"},
		"Fix the Room's time source (NTP) and allow the certificate authority's OCSP responders.",
		[]finding.Reason{finding.ReasonOCSPError}},
	{4, "ct_invalid", "The certificate lacks valid certificate transparency proofs.",
		[]string{"SSL inspection re-signing with a private CA", "a certificate not logged publicly"},
		"Exempt Zoom's names and ranges from SSL inspection.",
		[]finding.Reason{finding.ReasonCTInvalid}},
	{5, "expired_or_not_yet_valid", "The certificate is expired or not yet valid.",
		[]string{"wrong clock on the Room (most often)", "an interception device serving an expired certificate"},
		"Fix the Room's time source (NTP); if the clock is right, find the device serving the certificate.",
		[]finding.Reason{finding.ReasonExpired, finding.ReasonNotYetValid, finding.ReasonClockSkewCritical}},
	{6, "issuer_not_trusted", "The certificate's issuer is not trusted.",
		[]string{"SSL inspection", "web proxy or firewall replacing the certificate", "antivirus SSL scanning"},
		"Exempt Zoom's names and ranges from SSL inspection (Zoom pins its certificate authority).",
		[]finding.Reason{finding.ReasonUnknownAuthority, finding.ReasonUnexpectedIssuer, finding.ReasonSelfSigned, finding.ReasonIncompleteChain}},
	{7, "invalid_purpose", "The certificate's purpose (extended key usage) does not include server authentication.",
		[]string{"SSL inspection", "web proxy or firewall replacing the certificate"},
		"Exempt Zoom's names and ranges from SSL inspection.",
		[]finding.Reason{finding.ReasonInvalidPurpose}},
	{100, "other", "Another certificate problem.",
		[]string{"any other certificate fault, often an interception device"},
		"Inspect the certificate chain the Room receives and compare it with Zoom's.",
		[]finding.Reason{finding.ReasonInvalidCertificate}},
}

// LookupRoomsCertError returns the entry for a Zoom Rooms certificate code.
func LookupRoomsCertError(code int) (RoomsCertError, bool) {
	for _, e := range RoomsCertErrors {
		if e.Code == code {
			return e, true
		}
	}
	return RoomsCertError{}, false
}

// RoomsCodeForReason returns the Zoom Rooms certificate code a Room would
// show for a finding reason, or 0 when none applies. Captive portals show 1;
// a critical clock skew shows 5.
func RoomsCodeForReason(r finding.Reason) int {
	for _, e := range RoomsCertErrors {
		for _, x := range e.Reasons {
			if x == r {
				return e.Code
			}
		}
	}
	return 0
}
