package finding

// Reasons the active probes need beyond the shared vocabulary.
const (
	// ReasonEOF: the peer (or a middlebox) closed the connection without a
	// reset, typically right after the ClientHello (OONI's eof_error).
	ReasonEOF Reason = "eof_error"
	// ReasonProbeSkipped: the check could not run (no address, not configured).
	ReasonProbeSkipped Reason = "probe_skipped"
)

func init() { AllReasons = append(AllReasons, ReasonEOF, ReasonProbeSkipped) }
