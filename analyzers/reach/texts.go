package reach

import "github.com/zoomprobe/zoomprobe/finding"

// texts returns what a Zoom user sees and what to do, in the words an admin
// and a helpdesk share. README.md lists them.
func texts(r finding.Reason) (userSees, remediation string) {
	switch r {
	case finding.ReasonTimeout:
		return `Zoom hangs on "Connecting..." and then shows error 5003/5004 family ("Unable to connect ... not blocked by a firewall or proxy").`,
			"Dropped beyond the probe (our SYN passed it outward and nothing came back): a firewall between the probe and Zoom silently drops this Zoom port. Allow outbound TCP 443, 8801 and 8802 to Zoom's published ranges (Zoom.txt, ZoomMeetings.txt) and the return traffic."
	case finding.ReasonConnectionRefused:
		return `Zoom fails at once with error 5003/5004 family ("Unable to connect").`,
			"Refused beyond the probe: a firewall (or the path) between the probe and Zoom rejects this Zoom port with a reset. Allow outbound TCP 443, 8801 and 8802 to Zoom's published ranges."
	case finding.ReasonICMPAdminProhibited:
		return `Zoom fails with error 5003/5004 family ("Unable to connect"), or meetings join with degraded audio/video when only UDP is refused.`,
			"Rejected beyond the probe: a firewall rejects this Zoom port (ICMP administratively prohibited). Allow TCP 443, 8801, 8802 and UDP 3478, 3479, 8801-8810 to Zoom's ranges."
	case finding.ReasonICMPPortUnreachable, finding.ReasonICMPHostUnreachable, finding.ReasonICMPNetUnreachable, finding.ReasonICMPUnreachable:
		return `Zoom fails with error 5003/5004 family ("Unable to connect"), or meetings join with degraded audio/video when only UDP fails.`,
			"Beyond the probe, a router or firewall reports Zoom unreachable: check the routes and reject rules toward Zoom's ranges and allow Zoom's ports."
	case finding.ReasonUDPNoAnswer:
		return "Meetings join but audio and video are degraded or late (UDP media blocked, Zoom falls back to TCP or 443).",
			"Our datagrams passed the probe outward and nothing came back: a firewall beyond the probe drops Zoom's UDP. Allow outbound UDP 3478, 3479 and 8801-8810 to Zoom's Meetings ranges, and the return traffic."
	case finding.ReasonUDPFallback:
		return "Meetings work but audio/video are degraded (UDP blocked, media over TCP).",
			"Allow outbound UDP 3478, 3479 and 8801-8810 to Zoom's Meetings ranges so media uses UDP again."
	case finding.ReasonClientSideDrop:
		return `Zoom hangs on "Connecting..." and then shows error 5003 (the 5000-5004 / 104101-104118 family), or meetings join with degraded audio/video when only UDP answers are lost.`,
			"Zoom's answers reached this network and passed the probe, but the client never got them: the client's own firewall or security software drops them (or a filter between the probe and the client). On the client host, allow Zoom.exe (Zoom Workplace) in Windows Defender Firewall (inbound and outbound, TCP and UDP, all profiles) or the host firewall in use, add Zoom to the antivirus/endpoint-protection exceptions (its firewall and web/TLS filtering), and check any internal firewall between the probe and that host. The perimeter firewall is not the cause."
	case finding.ReasonSNIFiltering:
		return `Zoom fails with error 5003 or 104101-104118 family as soon as it names the Zoom server (the connection is reset after the TLS ClientHello).`,
			"A firewall or web gateway filters by server name: allow Zoom's domains (*.zoom.us, *.zoom.com, zoomgov.com...) in URL/application filtering and exempt them from SSL inspection."
	case finding.ReasonConnectionReset:
		return `Zoom shows error 5003 or 104101-104118 family, or a meeting drops and reconnects.`,
			"Something on the path resets Zoom connections: exempt Zoom's domains and ranges from SSL inspection, IPS and session limits on the firewall or proxy."
	}
	return "Zoom cannot reach its servers (error 5003 family).", "Allow Zoom's ports and ranges in the firewall."
}
