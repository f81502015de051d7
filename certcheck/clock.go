package certcheck

import (
	"sync/atomic"
	"time"
)

// Clock holds the best known offset of the local clock from true time
// (true = local + offset), learned by the NTP probe. Certificate validity is
// judged at packet time plus this offset.
type Clock struct{ offset atomic.Int64 }

// SetOffset records the measured offset.
func (c *Clock) SetOffset(d time.Duration) { c.offset.Store(int64(d)) }

// Offset returns the offset; zero when unknown.
func (c *Clock) Offset() time.Duration {
	if c == nil {
		return 0
	}
	return time.Duration(c.offset.Load())
}

// Correct maps a local (packet) time to true time.
func (c *Clock) Correct(t time.Time) time.Time { return t.Add(c.Offset()) }
