// Package probes runs zoomprobe's active checks from the probe's own vantage
// point: TLS handshakes judged like the passive analyzer, TCP connects to
// Zoom's ports, Zoom's STUN on UDP, the clock against NTP, and DNS for Zoom's
// names. A prober is a plain function kept in one map from name to function:
// adding a check is one function and one entry in Probers.
package probes

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/zoomprobe/zoomprobe/certcheck"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
)

// Status is a check's verdict as the audit report shows it.
type Status string

const (
	StatusPass Status = "pass"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	// StatusUnknown: the check could not decide (UDP silence without ICMP):
	// neither proof of a path nor of a block.
	StatusUnknown Status = "unknown"
	// StatusNotTested: an earlier step failed (the target's name did not
	// resolve), so the check never tried what it tests. Not a failure of
	// that thing: Cause names the root cause, reported where it belongs.
	StatusNotTested Status = "not_tested"
)

// Target is one thing a check probes.
type Target struct {
	// Label is the metric label value: host:port for connection checks, the
	// name for DNS, the server for NTP. It comes from config, so it is bounded.
	Label string
	// Host is the name resolved and sent as SNI.
	Host string
	Port uint16
	// Address, when set, is dialled instead of resolving Host (ip:port).
	Address string
}

// Env is what a prober may use besides its target.
type Env struct {
	Config *config.ProbesConfig
	// Clock is the NTP-corrected clock; TLS verdicts judge validity at
	// Now() plus its offset.
	Clock *certcheck.Clock
	// Judge judges a TLS peer chain; nil uses the default (see tls.go).
	Judge ChainJudge
	// Resolver resolves target names; nil is Go's resolver with the system
	// configuration.
	Resolver *net.Resolver
	// Own, when set, registers every socket the checks open (see dialer):
	// the engine keeps their packets from the passive analyzers.
	Own *ownflows.Registry
	// Now is the wall clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) resolver() *net.Resolver {
	if e.Resolver != nil {
		return e.Resolver
	}
	if e.Own != nil {
		// The system's servers, with sockets registered like the checks' own.
		return &net.Resolver{Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return e.dialer(ctx).DialContext(ctx, network, address)
		}}
	}
	return net.DefaultResolver
}

// Result is one run of one check against one target.
type Result struct {
	Check  string    `json:"check"`
	Target string    `json:"target"`
	Time   time.Time `json:"time"`
	Status Status    `json:"status"`
	// Success is what zoomprobe_probe_success reports: the path works.
	Success  bool           `json:"success"`
	Duration time.Duration  `json:"duration"`
	Reason   finding.Reason `json:"reason"`
	// Summary is one readable line: what was seen.
	Summary  string            `json:"summary"`
	Evidence map[string]any    `json:"evidence,omitempty"`
	Findings []finding.Finding `json:"findings,omitempty"`
	// Cause is the root cause, as one line, when the check failed or was not
	// tested because of it ("DNS: resolver 10.0.0.53:53 timed out").
	Cause string `json:"cause,omitempty"`
	// Value is the check's number when it has one (NTP: clock offset in
	// seconds); HasValue says whether it is set.
	Value    float64 `json:"value,omitempty"`
	HasValue bool    `json:"-"`
}

// Prober runs one check against one target. It never panics on network
// input and returns within ctx's deadline; a network failure is a Result,
// not an error.
type Prober func(ctx context.Context, target Target, env Env) Result

// Check names, as the `check` metric label and the report use them.
const (
	CheckTLS   = "tls"
	CheckTLS12 = "tls12"
	CheckTCP   = "tcp"
	CheckSTUN  = "stun"
	CheckNTP   = "ntp"
	CheckDNS   = "dns"
)

// Probers maps each check name to its function.
var Probers = map[string]Prober{
	CheckTLS:   ProbeTLS,
	CheckTLS12: ProbeTLS12,
	CheckTCP:   ProbeTCP,
	CheckSTUN:  ProbeSTUN,
	CheckNTP:   ProbeNTP,
	CheckDNS:   ProbeDNS,
}

// CheckOrder is the order the audit runs checks in: the clock first, so TLS
// verdicts judge validity at the right time; DNS before what depends on it.
var CheckOrder = []string{CheckNTP, CheckDNS, CheckTCP, CheckSTUN, CheckTLS12, CheckTLS}

// newResult starts a result; finish sets duration.
func newResult(check string, t Target, env *Env) Result {
	return Result{Check: check, Target: t.Label, Time: env.now(), Evidence: map[string]any{}}
}

func (r *Result) finish(start time.Time) { r.Duration = time.Since(start) }
