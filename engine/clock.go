package engine

import "time"

const (
	// maxClockJump: a packet this far ahead of (or behind) the worker's packet
	// clock is an outlier (a corrupt record, a clock step) until confirmed.
	maxClockJump = 10 * time.Minute
	// jumpConfirm packets in a row beyond maxClockJump make the jump real
	// (a capture resumed after a gap, an NTP step).
	jumpConfirm = 64
	// maxClockSec is the latest packet time the clock takes (2242): beyond,
	// Unix nanoseconds overflow int64.
	maxClockSec = 1<<33 - 1
)

// packetClock is a worker's notion of "now" on packet time. It moves forward
// with the packets, ignores a lone timestamp far off (one bogus future stamp
// would otherwise expire every flow with a year's wait), and follows a jump
// once enough packets agree.
type packetClock struct {
	now     time.Time
	nowNS   int64 // now as Unix ns: compared per packet, cheaper than time.Time's Sub
	pending int   // consecutive packets beyond maxClockJump
}

// observe takes a packet time and says what happened to the clock.
func (c *packetClock) observe(t time.Time) clockStep {
	if sec := t.Unix(); sec < 0 || sec > maxClockSec {
		return clockOutlier // Unix ns would overflow; no real capture is stamped there
	}
	ns := t.UnixNano()
	switch d := ns - c.nowNS; {
	case c.now.IsZero():
		c.set(t, ns)
		return clockForward
	case d > int64(maxClockJump) || d < -int64(maxClockJump):
		c.pending++
		if c.pending < jumpConfirm {
			return clockOutlier
		}
		c.pending = 0
		c.set(t, ns)
		if d < 0 {
			return clockBack
		}
		return clockForward
	case d > 0:
		c.pending = 0
		c.set(t, ns)
		return clockForward
	}
	c.pending = 0
	return clockSame // a few µs behind across directions: normal on a mirror
}

func (c *packetClock) set(t time.Time, ns int64) { c.now, c.nowNS = t, ns }

type clockStep uint8

const (
	clockSame clockStep = iota
	clockForward
	clockBack    // the clock stepped back for real: flows' times are in its future
	clockOutlier // ignored for the clock; the packet is still analysed
)
