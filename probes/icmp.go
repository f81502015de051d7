package probes

import (
	"net/netip"

	"github.com/zoomprobe/zoomprobe/finding"
)

// icmpError is the ICMP message the kernel matched to a UDP socket.
type icmpError struct {
	V6         bool
	Type, Code uint8
	From       netip.Addr // the router or host that sent the ICMP error
}

// reason maps ICMP destination unreachable codes to the vocabulary.
func (e icmpError) reason() finding.Reason {
	if e.V6 {
		if e.Type != 1 { // destination unreachable
			return finding.ReasonICMPUnreachable
		}
		switch e.Code {
		case 1, 5, 6: // administratively prohibited, source policy, reject route
			return finding.ReasonICMPAdminProhibited
		case 3:
			return finding.ReasonICMPHostUnreachable
		case 4:
			return finding.ReasonICMPPortUnreachable
		case 0:
			return finding.ReasonICMPNetUnreachable
		}
		return finding.ReasonICMPUnreachable
	}
	if e.Type != 3 {
		return finding.ReasonICMPUnreachable
	}
	switch e.Code {
	case 9, 10, 13: // network/host administratively prohibited, communication prohibited
		return finding.ReasonICMPAdminProhibited
	case 1:
		return finding.ReasonICMPHostUnreachable
	case 3:
		return finding.ReasonICMPPortUnreachable
	case 0:
		return finding.ReasonICMPNetUnreachable
	}
	return finding.ReasonICMPUnreachable
}
