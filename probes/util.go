package probes

import (
	"maps"
	"net/netip"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// serviceFor names the Zoom service of a target, from its name then its port.
func serviceFor(t Target, proto uint8) string {
	if s := zoom.ServiceForName(t.Host); s != zoom.ServiceNone {
		return s.String()
	}
	if s := zoom.ServiceForPort(proto, t.Port); s != zoom.ServiceNone {
		return s.String()
	}
	return zoom.ServiceNone.String()
}

func copyEvidence(ev map[string]any) map[string]any {
	if len(ev) == 0 {
		return nil
	}
	return maps.Clone(ev)
}

// findingFlow describes the connection a probe made; the client side is
// left empty (the probe's own address is not evidence).
func findingFlow(transport, remote string) *finding.Flow {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return nil
	}
	return &finding.Flow{Transport: transport, Server: ap.Addr().Unmap(), ServerPort: ap.Port()}
}
