package engine

import "time"

const (
	// maxClockJump: a packet this far ahead of (or behind) the worker's packet
	// clock is an outlier (a corrupt record, a clock step) until confirmed.
	maxClockJump = 10 * time.Minute
	// jumpConfirm packets in a row beyond maxClockJump make the jump real
	// (a capture resumed after a gap, an NTP step).
	jumpConfirm = 64
)

// packetClock is a worker's notion of "now" on packet time. It moves forward
// with the packets, ignores a lone timestamp far off (one bogus future stamp
// would otherwise expire every flow with a year's wait), and follows a jump
// once enough packets agree.
type packetClock struct {
	now     time.Time
	pending int // consecutive packets beyond maxClockJump
}

// observe takes a packet time and says what happened to the clock.
func (c *packetClock) observe(t time.Time) clockStep {
	switch {
	case c.now.IsZero():
		c.now = t
		return clockForward
	case t.Sub(c.now) > maxClockJump || c.now.Sub(t) > maxClockJump:
		c.pending++
		if c.pending < jumpConfirm {
			return clockOutlier
		}
		c.pending = 0
		back := t.Before(c.now)
		c.now = t
		if back {
			return clockBack
		}
		return clockForward
	case t.After(c.now):
		c.pending = 0
		c.now = t
		return clockForward
	}
	c.pending = 0
	return clockSame // a few µs behind across directions: normal on a mirror
}

type clockStep uint8

const (
	clockSame clockStep = iota
	clockForward
	clockBack    // the clock stepped back for real: flows' times are in its future
	clockOutlier // ignored for the clock; the packet is still analysed
)
