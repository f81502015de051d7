package probes

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// maxSTUNAnswerBytes bounds one datagram read; Zoom's answer is 32 bytes.
const maxSTUNAnswerBytes = 1500

// ProbeSTUN sends Zoom's STUN binding request (type 0x0001 with attribute
// 0x0101) over UDP and waits for Zoom's answer (type 0x0002 with attribute
// 0x0103, the address the server saw). An answer proves the UDP path.
// Silence is "unknown", not "blocked": some Zoom servers stay silent or
// answer ICMP by design. An ICMP error (port unreachable, administratively
// prohibited...) is a block, and the ICMP sender is the evidence.
func ProbeSTUN(ctx context.Context, t Target, env Env) Result {
	r := newResult(CheckSTUN, t, &env)
	start := time.Now()
	defer r.finish(start)
	r.Evidence["port"] = int(t.Port)
	addrs, err := targetAddrs(ctx, t, &env)
	if err != nil {
		if !notResolved(&r, t.Host, err) {
			r.Reason, r.Status = Classify(err), StatusUnknown
			r.Evidence["error"] = err.Error()
			r.Summary = fmt.Sprintf("could not resolve %s: %s", t.Host, r.Reason)
		}
		return r
	}
	remote := addrs[0]
	r.Evidence["remote"] = remote
	raddr, err := net.ResolveUDPAddr("udp", remote)
	if err != nil {
		r.Reason, r.Status = finding.ReasonUnknown, StatusUnknown
		r.Evidence["error"] = err.Error()
		r.Summary = "bad target address " + remote
		return r
	}
	nc, err := env.dialer(ctx).DialContext(ctx, "udp", raddr.String())
	if err != nil {
		return stunFailed(&env, t, r, remote, err, nil)
	}
	conn := nc.(*net.UDPConn)
	defer conn.Close()
	enableICMPErrors(conn, raddr.IP.To4() == nil)

	attempts := 3
	if env.Config != nil && env.Config.STUN.Attempts > 0 {
		attempts = env.Config.STUN.Attempts
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	per := time.Until(deadline) / time.Duration(attempts)
	var id [16]byte
	rand.Read(id[:])
	req := zoom.BuildZoomSTUNRequest(id)
	buf := make([]byte, maxSTUNAnswerBytes)
	sent := 0
	for a := 0; a < attempts && ctx.Err() == nil; a++ {
		if _, err := conn.Write(req); err != nil {
			return stunFailed(&env, t, r, remote, err, conn)
		}
		sent++
		wait := time.Now().Add(per)
		if a == attempts-1 || wait.After(deadline) {
			wait = deadline
		}
		conn.SetReadDeadline(wait)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}
				r.Evidence["requests_sent"] = sent
				return stunFailed(&env, t, r, remote, err, conn)
			}
			si, ok := zoom.ParseSTUN(buf[:n])
			if !ok || si.TxID != id || (si.Kind != zoom.STUNZoomResponse && si.Kind != zoom.STUNSuccess) {
				r.Evidence["ignored_datagrams"] = intEvidence(r.Evidence["ignored_datagrams"]) + 1
				continue
			}
			r.Status, r.Success, r.Reason = StatusPass, true, finding.ReasonOK
			r.Evidence["requests_sent"] = sent
			r.Evidence["answer"] = si.Kind.String()
			if si.Mapped.IsValid() {
				r.Evidence["mapped_address"] = si.Mapped.String()
			}
			r.Summary = fmt.Sprintf("UDP %d to %s answered Zoom's STUN request (%s)", t.Port, t.Host, remote)
			return r
		}
	}
	r.Evidence["requests_sent"] = sent
	r.Status, r.Reason = StatusUnknown, finding.ReasonUDPNoAnswer
	r.Summary = fmt.Sprintf("UDP %d to %s: no answer to %d STUN requests and no ICMP error (unknown: the server may be silent or UDP dropped)", t.Port, t.Host, sent)
	f := connectFinding(&env, t, "udp", zoom.ProtoUDP, r.Reason, remote, r.Evidence)
	f.Confidence = "low"
	f.UserSees = userSeesUDP
	f.Remediation = "Allow UDP 3478-3479 and 8801-8810 outbound to Zoom's ranges, with return traffic. Silence from one server is not proof of a block: compare other servers and the passive udp_no_answer findings."
	r.Findings = append(r.Findings, f)
	return r
}

const userSeesUDP = "Meetings still connect, but Zoom falls back from UDP to TCP 8801/8802 or TLS 443: more delay and worse audio and video; a Zoom Room may show poor network quality."

func intEvidence(v any) int {
	n, _ := v.(int)
	return n
}

// stunFailed reports a UDP send or receive error: an ICMP error proves a block.
func stunFailed(env *Env, t Target, r Result, remote string, err error, conn *net.UDPConn) Result {
	r.Reason = ClassifyUDP(err)
	r.Evidence["error"] = err.Error()
	if conn != nil {
		if ic, ok := readICMPError(conn); ok {
			r.Reason = ic.reason()
			r.Evidence["icmp_type"] = int(ic.Type)
			r.Evidence["icmp_code"] = int(ic.Code)
			if ic.From.IsValid() {
				r.Evidence["icmp_sender"] = ic.From.String()
			}
		}
	}
	r.Status = StatusFail
	r.Summary = fmt.Sprintf("UDP %d to %s blocked: %s", t.Port, t.Host, r.Reason)
	f := connectFinding(env, t, "udp", zoom.ProtoUDP, r.Reason, remote, r.Evidence)
	f.UserSees = userSeesUDP
	if !isICMPReason(r.Reason) {
		f.Confidence = "medium"
	}
	r.Findings = append(r.Findings, f)
	return r
}
