package probes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/beevik/ntp"

	"github.com/zoomprobe/zoomprobe/finding"
)

// ProbeNTP asks one NTP server for the time (NTPv4): offset of the local
// clock, round-trip time, stratum. A server that does not answer is
// ntp_unreachable (UDP 123 blocked is itself a finding); an offset beyond
// probes.ntp.warning / .critical is clock_skew. Value is the offset in
// seconds (true time = local time + offset).
func ProbeNTP(ctx context.Context, t Target, env Env) Result {
	r := newResult(CheckNTP, t, &env)
	start := time.Now()
	defer r.finish(start)
	server := t.Address
	if server == "" {
		port := t.Port
		if port == 0 {
			port = 123
		}
		server = net.JoinHostPort(t.Host, strconv.Itoa(int(port)))
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return ntpUnreachable(&env, t, r, context.DeadlineExceeded)
	}
	resp, err := queryNTP(server, ntp.QueryOptions{Timeout: timeout, Dialer: func(_, remote string) (net.Conn, error) {
		return env.dialer(ctx).DialContext(ctx, "udp", remote)
	}})
	var bad *malformedNTPError
	if errors.As(err, &bad) {
		r.Evidence["server"] = server
		r.Status, r.Reason = StatusWarn, finding.ReasonUnknown
		r.Evidence["invalid"] = err.Error()
		r.Summary = fmt.Sprintf("NTP server %s answered with a malformed packet", t.Label)
		return r
	}
	if err != nil {
		return ntpUnreachable(&env, t, r, err)
	}
	r.Evidence["server"] = server
	r.Evidence["offset_seconds"] = resp.ClockOffset.Seconds()
	r.Evidence["rtt_seconds"] = resp.RTT.Seconds()
	r.Evidence["stratum"] = int(resp.Stratum)
	r.Evidence["root_distance_seconds"] = resp.RootDistance.Seconds()
	if resp.Stratum == 0 && resp.KissCode != "" {
		r.Evidence["kiss_code"] = resp.KissCode
	}
	if err := resp.Validate(); err != nil {
		// It answered, but its time is not usable (unsynchronised, kiss of
		// death): the path works, the server does not.
		r.Status, r.Reason = StatusWarn, finding.ReasonUnknown
		r.Evidence["invalid"] = err.Error()
		r.Summary = fmt.Sprintf("NTP server %s answered but its time is unusable: %v", t.Label, err)
		return r
	}
	r.Success, r.Value, r.HasValue = true, resp.ClockOffset.Seconds(), true
	off := resp.ClockOffset
	abs := time.Duration(math.Abs(float64(off)))
	warn, crit := 10*time.Second, 5*time.Minute
	if env.Config != nil {
		warn, crit = env.Config.NTP.Warning, env.Config.NTP.Critical
	}
	r.Status, r.Reason = StatusPass, finding.ReasonOK
	r.Summary = fmt.Sprintf("clock offset %s from %s (stratum %d, RTT %s)", fmtOffset(off), t.Label, resp.Stratum, fmtRTT(resp.RTT))
	switch {
	case abs >= crit:
		r.Status, r.Reason = StatusFail, finding.ReasonClockSkewCritical
	case abs >= warn:
		r.Status, r.Reason = StatusWarn, finding.ReasonClockSkewWarning
	default:
		return r
	}
	r.Findings = append(r.Findings, clockSkewFinding(&env, t, r.Reason, off, warn, crit, r.Evidence))
	return r
}

// malformedNTPError: the server answered, but the answer made the NTP
// library fail.
type malformedNTPError struct{ detail any }

func (e *malformedNTPError) Error() string { return fmt.Sprintf("malformed NTP answer: %v", e.detail) }

// queryNTP asks server for the time. beevik/ntp v1.6.0 panics on some
// answers (a poll exponent of -128 shifts by a negative amount): an answer
// from the network must never take the daemon down.
func queryNTP(server string, opts ntp.QueryOptions) (resp *ntp.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, &malformedNTPError{p}
		}
	}()
	return ntp.QueryWithOptions(server, opts)
}

func clockSkewFinding(env *Env, t Target, reason finding.Reason, off, warn, crit time.Duration, ev map[string]any) finding.Finding {
	f := finding.Finding{
		Time:       env.now(),
		Kind:       finding.KindClockSkew,
		Reason:     reason,
		Source:     "probe/ntp",
		Confidence: "high",
		UserSees:   "A certificate warning (\"Your connection is not private\"); a Zoom Room shows untrusted-certificate code 5 (expired or not yet valid) or 3 (OCSP error). Zoom names a wrong clock as the most common cause.",
		Remediation: fmt.Sprintf("This host's clock is %s off NTP server %s (warning at %s, critical at %s): point the host and the Zoom Rooms at a reachable NTP server and check that the time daemon is running.",
			fmtOffset(off), t.Label, warn, crit),
		Evidence: copyEvidence(ev),
	}
	if reason == finding.ReasonClockSkewCritical {
		f.ZoomRoomsCode = 5
	} else {
		f.UserSees = "Nothing yet; beyond a few minutes certificates look expired or not yet valid (Zoom Rooms code 5) and OCSP checks fail (code 3)."
	}
	return f
}

func ntpUnreachable(env *Env, t Target, r Result, err error) Result {
	class := Classify(err)
	r.Status, r.Reason = StatusFail, finding.ReasonNTPUnreachable
	r.Evidence["error"] = err.Error()
	r.Evidence["error_class"] = string(class)
	r.Summary = fmt.Sprintf("NTP server %s did not answer (%s)", t.Label, class)
	r.Findings = append(r.Findings, finding.Finding{
		Time:        env.now(),
		Kind:        finding.KindProbeFailure,
		Reason:      finding.ReasonNTPUnreachable,
		Source:      "probe/ntp",
		Confidence:  "medium",
		UserSees:    "Nothing at first; without time synchronisation the clock drifts until Zoom's certificates look expired (Zoom Rooms code 5).",
		Remediation: "Allow UDP 123 to the NTP servers the site uses (or run one on site) and point the Zoom Rooms at it.",
		Evidence:    copyEvidence(r.Evidence),
	})
	return r
}

// fmtRTT rounds a round-trip time to what is worth reading.
func fmtRTT(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

// fmtOffset writes an offset with its sign: "+2m0.5s", "-350ms".
func fmtOffset(d time.Duration) string {
	s := d.Round(time.Millisecond).String()
	if d >= 0 {
		s = "+" + s
	}
	return s
}
