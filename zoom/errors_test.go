package zoom

import (
	"strings"
	"testing"

	"github.com/zoomprobe/zoomprobe/finding"
)

func TestClientErrors(t *testing.T) {
	if len(ClientErrors) != 5+18 {
		t.Fatalf("%d client errors, want 23 (5000-5004, 104101-104118)", len(ClientErrors))
	}
	for _, code := range []int{5000, 5003, 5004, 104101, 104110, 104118} {
		e, ok := LookupClientError(code)
		if !ok || e.Code != code || !strings.Contains(e.UserSees, "Unable to connect") || !strings.Contains(e.Meaning, "firewall") {
			t.Errorf("LookupClientError(%d) = %+v, %v", code, e, ok)
		}
	}
	for _, code := range []int{4999, 5005, 104100, 104119, 0, -1} {
		if _, ok := LookupClientError(code); ok || IsConnectErrorCode(code) {
			t.Errorf("code %d accepted", code)
		}
	}
}

func TestRoomsCertErrors(t *testing.T) {
	want := map[int]string{1: "host", 2: "revoked", 3: "OCSP", 4: "transparency", 5: "expired", 6: "issuer", 7: "purpose", 100: "Another"}
	if len(RoomsCertErrors) != len(want) {
		t.Fatalf("%d codes, want %d", len(RoomsCertErrors), len(want))
	}
	for code, word := range want {
		e, ok := LookupRoomsCertError(code)
		if !ok || e.Code != code || !strings.Contains(e.Description, word) || len(e.Causes) == 0 || e.Remediation == "" {
			t.Errorf("LookupRoomsCertError(%d) = %+v, %v", code, e, ok)
		}
	}
	if _, ok := LookupRoomsCertError(8); ok {
		t.Error("code 8 accepted")
	}
	for r, code := range map[finding.Reason]int{
		finding.ReasonInvalidHostname: 1, finding.ReasonCaptivePortal: 1, finding.ReasonRevoked: 2, finding.ReasonOCSPError: 3,
		finding.ReasonCTInvalid: 4, finding.ReasonExpired: 5, finding.ReasonNotYetValid: 5, finding.ReasonUnknownAuthority: 6,
		finding.ReasonUnexpectedIssuer: 6, finding.ReasonSelfSigned: 6, finding.ReasonInvalidPurpose: 7,
		finding.ReasonInvalidCertificate: 100, finding.ReasonConnectionReset: 0, finding.ReasonTimeout: 0,
	} {
		if got := RoomsCodeForReason(r); got != code {
			t.Errorf("RoomsCodeForReason(%s) = %d, want %d", r, got, code)
		}
	}
	// the mapping uses only reasons of the closed vocabulary
	known := map[finding.Reason]bool{}
	for _, r := range finding.AllReasons {
		known[r] = true
	}
	for _, e := range RoomsCertErrors {
		for _, r := range e.Reasons {
			if !known[r] {
				t.Errorf("code %d maps from unknown reason %q", e.Code, r)
			}
		}
	}
}
