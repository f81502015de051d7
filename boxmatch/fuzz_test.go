package boxmatch

import (
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// FuzzBoxmatch drives a box with packets built from the input, each seen on
// both sides through a NAT (in either order, up to a window apart) unless
// the input says it was lost. A loss may be one the capture reports (its
// drop counter rises, when the input turns counters on). Nothing may panic,
// the table must stay within its size, and a run that lost nothing the
// counters did not report gives no verdict and no drop.
func FuzzBoxmatch(f *testing.F) {
	f.Add([]byte{0, 0, 10, 5, 0, 0, 0, 0})
	f.Add([]byte{1, 0x12, 3, 200, 1, 0, 7, 9, 0x80, 0x02, 0, 0, 4, 1, 1, 1})
	f.Add([]byte{2, 0x04, 0, 0, 0, 0x40, 0, 0, 2, 0x04, 0, 0, 10, 0x40, 0, 0})
	f.Add([]byte{3, 0, 1, 64, 255, 0x80, 1, 2, 3, 0, 1, 64, 255, 0x80, 1, 2})
	f.Fuzz(fuzzBox)
}

func fuzzBox(t *testing.T, data []byte) {
	cfg := boxCfg()
	cfg.TableBytes = 64 << 10
	x, r, m := newBox(t, cfg)
	tcp := newTCP("10.0.0.5:50000", "170.114.0.10:443")
	udp := newUDP("10.0.0.6:50001", "170.114.0.11:8801")
	now := t0
	lost := false
	counters := len(data) > 0 && data[0]&0x80 != 0
	var dropped [2]uint64
	if counters {
		x.CaptureDrops(Inside, now, 0)
		x.CaptureDrops(Outside, now, 0)
	}
	buf := make([]byte, 256)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for len(data) >= 8 {
		rec := data[:8]
		data = data[8:]
		now = now.Add(time.Duration(rec[4]) * time.Millisecond)
		var p decode.Packet
		toServer := rec[1]&0x01 == 0
		switch rec[0] % 4 {
		case 0, 1:
			p = tcp.Data(now, toServer, buf[:int(rec[3])])
			p.TCPFlags = rec[1] &^ 0x01
			p.HasTimestamps, p.TSval, p.TSecr = rec[6]&1 == 1, uint32(rec[6]), uint32(rec[7])
		case 2:
			p = udp.Data(now, toServer, buf[:int(rec[3])])
		case 3:
			q := udp.Data(now, true, buf[:int(rec[3])%8])
			p = unreachable(now, "203.0.113.1", rec[2]%16, q)
			toServer = false
		}
		o := nat(p, time.Duration(rec[2]%16)*100*time.Millisecond)
		if p.IsICMP() {
			o = p
			o.Dst, o.ICMP.QSrc, o.ICMP.QSrcPort = natAddr, natAddr, 61001
			o.Time = now
		}
		// Each side's reader sees its packets in time order: the
		// outside copy is observed when the inside has passed it.
		lose := rec[5]&0x80 != 0
		reported := counters && rec[5]&0x20 != 0
		lost = lost || lose && !reported
		first, second := Inside, Outside
		fp, sp := &p, &o
		if rec[5]&0x40 != 0 {
			first, second, fp, sp = Outside, Inside, &o, &p
		}
		x.Observe(first, fp, toServer, 1)
		if !lose {
			x.Observe(second, sp, toServer, 1)
		} else if reported {
			dropped[second]++
			x.CaptureDrops(second, now.Add(2*time.Second), dropped[second])
		}
		if counters && rec[5]&0x10 != 0 {
			x.CaptureDrops(Inside, now, dropped[Inside])
			x.CaptureDrops(Outside, now, dropped[Outside])
		}
		if x.n > len(x.ring) {
			t.Fatalf("%d entries in a ring of %d", x.n, len(x.ring))
		}
	}
	x.Flush()
	if x.n != 0 {
		t.Fatalf("%d entries left after flush", x.n)
	}
	drops := packets(m, ResultDroppedOutbound) + packets(m, ResultDroppedInbound) + packets(m, ResultMadeByBox)
	if !lost && packets(m, ResultEvicted) == 0 && (drops != 0 || len(r.v) != 0) {
		t.Fatalf("nothing lost, yet %d drops and verdicts %+v", drops, r.v)
	}
}
