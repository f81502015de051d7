package engine

import (
	"testing"

	"github.com/zoomprobe/zoomprobe/decode"
)

// When both ends of a packet could be servers (the box's outside address
// inside a watched network), the port says which one is.
func TestTowardServerPort(t *testing.T) {
	for _, c := range []struct {
		proto        uint8
		sport, dport uint16
		want         bool
	}{
		{decode.ProtoTCP, 51842, 443, true},
		{decode.ProtoTCP, 443, 51842, false},
		{decode.ProtoUDP, 22752, 8801, true},
		{decode.ProtoUDP, 8801, 1500, false},  // a NAT port below Zoom's: Zoom's port still wins
		{decode.ProtoTCP, 50000, 40000, true}, // neither known: the lower port
	} {
		if got := towardServerPort(c.proto, c.sport, c.dport); got != c.want {
			t.Errorf("%d %d>%d: toward server %v, want %v", c.proto, c.sport, c.dport, got, c.want)
		}
	}
}
