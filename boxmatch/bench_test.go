package boxmatch

import (
	"testing"
	"time"
)

// BenchmarkBoxmatch is one packet seen on both sides (a TCP segment with
// timestamps and 1,000 bytes of payload through a NAT): the cost per
// matched pair, and its allocations.
func BenchmarkBoxmatch(b *testing.B) {
	x := New(boxCfg(), nil, nil)
	c := newTCP("10.0.0.5:50000", "170.114.0.10:443")
	payload := make([]byte, 1000)
	in := c.Data(t0, true, payload)
	in.HasTimestamps = true
	out := nat(in, time.Millisecond)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.TSval, out.TSval = uint32(i), uint32(i)
		in.Time = t0.Add(time.Duration(i) * time.Microsecond)
		out.Time = in.Time.Add(time.Millisecond)
		x.Observe(Inside, &in, true, 1)
		x.Observe(Outside, &out, true, 1)
	}
}

// BenchmarkBoxmatchFull is a packet seen on one side only with a full
// table: each insert gives up the oldest waiting packet. It reports the
// table's packets per MiB of table_bytes, the memory bound's other side.
func BenchmarkBoxmatchFull(b *testing.B) {
	x := New(boxCfg(), nil, nil)
	c := newUDP("10.0.0.5:50000", "170.114.0.10:8801")
	in := c.Data(t0, true, make([]byte, 200))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.Payload[0], in.Payload[1] = byte(i), byte(i>>8)
		in.Time = t0.Add(time.Duration(i) * time.Nanosecond)
		x.Observe(Inside, &in, true, 1)
	}
	b.ReportMetric(float64(len(x.ring))/float64(x.TableBytes())*(1<<20), "packets/MiB")
}
