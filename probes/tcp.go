package probes

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// ProbeTCP connects to the target's port: an accepted connection proves the
// path; a refusal, reset, ICMP error or timeout is classified.
func ProbeTCP(ctx context.Context, t Target, env Env) Result {
	r := newResult(CheckTCP, t, &env)
	start := time.Now()
	defer r.finish(start)
	c, remote, err := dialTCP(ctx, t, &env)
	if remote != "" {
		r.Evidence["remote"] = remote
	}
	r.Evidence["port"] = int(t.Port)
	if err != nil {
		if notResolved(&r, t.Host, err) {
			return r
		}
		r.Reason = Classify(err)
		r.Evidence["error"] = err.Error()
		r.Status = StatusFail
		r.Summary = fmt.Sprintf("TCP %d to %s failed: %s", t.Port, t.Host, r.Reason)
		r.Findings = append(r.Findings, connectFinding(&env, t, "tcp", zoom.ProtoTCP, r.Reason, remote, r.Evidence))
		return r
	}
	c.Close()
	r.Status, r.Success, r.Reason = StatusPass, true, finding.ReasonOK
	r.Summary = fmt.Sprintf("TCP %d to %s connected (%s)", t.Port, t.Host, remote)
	return r
}

// connectFinding describes a blocked path to a Zoom port.
func connectFinding(env *Env, t Target, transport string, proto uint8, reason finding.Reason, remote string, ev map[string]any) finding.Finding {
	f := finding.Finding{
		Time:        env.now(),
		Kind:        finding.KindProbeFailure,
		Reason:      reason,
		Source:      "probe/" + transport,
		Service:     serviceFor(t, proto),
		SNI:         t.Host,
		UserSees:    userSeesConnect,
		Remediation: connectRemediation(transport, t.Port, reason),
		Confidence:  "high",
		Evidence:    copyEvidence(ev),
	}
	if fl := findingFlow(transport, remote); fl != nil {
		f.Flow = fl
	}
	return f
}

const userSeesConnect = "Error 5003 (the 5000-5004 / 104101-104118 family): \"Unable to connect: Make sure you are connected to the internet and Connection to Zoom is not blocked by a firewall or proxy.\""

func connectRemediation(transport string, port uint16, reason finding.Reason) string {
	rule := "Allow " + transport + " " + strconv.Itoa(int(port)) + " outbound to Zoom's published ranges (Zoom.txt / ZoomMeetings.txt)"
	switch reason {
	case finding.ReasonConnectionRefused:
		return rule + ": something on the path answers with a TCP reset (a firewall REJECT rule), or the target does not listen there."
	case finding.ReasonTimeout:
		return rule + ": packets are silently dropped (a firewall DROP rule or a missing route)."
	case finding.ReasonConnectionReset:
		return rule + ": a middlebox resets the connection."
	case finding.ReasonHostUnreachable, finding.ReasonNetworkUnreachable:
		return "Check routing to Zoom from this network; a router or firewall answers host/network unreachable. " + rule + "."
	}
	return rule + "."
}
