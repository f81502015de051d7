package zoom

import "strconv"

// IP protocol numbers used by the port tables.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// PortRange is one line of Zoom's published firewall rules.
type PortRange struct {
	Proto       uint8  // ProtoTCP or ProtoUDP
	First, Last uint16 // inclusive
	Service     Service
	// Cloud: the port is on Zoom's servers (Meetings, Phone). Otherwise it is
	// a LAN port between Zoom Rooms devices.
	Cloud   bool
	Product string // "meetings", "rooms", "phone"
	Purpose string
}

// Ports are the ports Zoom's products use, from Zoom's firewall guidance.
// Fallback order for media: UDP 8801, then TCP 8801/8802, then TLS on 443.
var Ports = []PortRange{
	{Proto: ProtoTCP, First: 443, Last: 443, Service: ServiceOther, Cloud: true, Product: "meetings", Purpose: "web, sign-in, signalling; TLS media fallback"},
	{Proto: ProtoTCP, First: 80, Last: 80, Service: ServiceWeb, Cloud: true, Product: "meetings", Purpose: "web (redirects to 443)"},
	{Proto: ProtoUDP, First: 443, Last: 443, Service: ServiceOther, Cloud: true, Product: "meetings", Purpose: "web (QUIC) and media fallback"},
	{Proto: ProtoTCP, First: 8801, Last: 8802, Service: ServiceMediaRouter, Cloud: true, Product: "meetings", Purpose: "media over TCP to multimedia routers (fallback after UDP)"},
	{Proto: ProtoUDP, First: 3478, Last: 3479, Service: ServiceMedia, Cloud: true, Product: "meetings", Purpose: "STUN"},
	{Proto: ProtoUDP, First: 8801, Last: 8810, Service: ServiceMedia, Cloud: true, Product: "meetings", Purpose: "media (8801 video, 8802 screen share, 8803 audio with port separation)"},
	{Proto: ProtoTCP, First: 9090, Last: 9090, Service: ServiceOther, Cloud: false, Product: "rooms", Purpose: "controller to room"},
	{Proto: ProtoTCP, First: 8888, Last: 8888, Service: ServiceOther, Cloud: false, Product: "rooms", Purpose: "Direct Share"},
	{Proto: ProtoUDP, First: 8889, Last: 8889, Service: ServiceOther, Cloud: false, Product: "rooms", Purpose: "Direct Share"},
	{Proto: ProtoTCP, First: 5590, Last: 5600, Service: ServiceOther, Cloud: false, Product: "rooms", Purpose: "companion audio"},
	{Proto: ProtoUDP, First: 5590, Last: 5600, Service: ServiceOther, Cloud: false, Product: "rooms", Purpose: "companion audio"},
	// Zoom Phone: an older list, not verified against today's guidance.
	{Proto: ProtoTCP, First: 5090, Last: 5091, Service: ServicePhone, Cloud: true, Product: "phone", Purpose: "SIP signalling (TCP, TLS)"},
	{Proto: ProtoUDP, First: 5090, Last: 5090, Service: ServicePhone, Cloud: true, Product: "phone", Purpose: "SIP signalling"},
	{Proto: ProtoUDP, First: 20000, Last: 64000, Service: ServicePhone, Cloud: true, Product: "phone", Purpose: "RTP media (too broad to judge a flow by; ServiceForPort ignores it)"},
}

// IsZoomPort reports whether port is one Zoom's Meetings servers listen on
// for proto (6 TCP, 17 UDP): TCP 443, 8801, 8802 (where media falls back
// to when UDP fails); UDP 443, 3478, 3479, 8801-8810.
func IsZoomPort(proto uint8, port uint16) bool {
	switch proto {
	case ProtoTCP:
		return port == 443 || port == 8801 || port == 8802
	case ProtoUDP:
		return port == 443 || port == 3478 || port == 3479 || (port >= 8801 && port <= 8810)
	}
	return false
}

// IsMediaPort reports whether a UDP port carries Zoom's media or STUN (3478,
// 3479, 8801-8810): the ports whose silence means media is blocked.
func IsMediaPort(port uint16) bool { return port == 3478 || port == 3479 || IsMediaDataPort(port) }

// IsMediaDataPort reports whether a UDP port carries Zoom's media itself
// (8801-8810): an answer there, unlike one on STUN's ports, proves UDP media
// gets through.
func IsMediaDataPort(port uint16) bool { return port >= 8801 && port <= 8810 }

// ServiceForPort is the service a server port of Zoom's implies: TCP
// 8801/8802 media router; UDP 3478/3479 and 8801-8810 media; TCP 5090/5091
// and UDP 5090 phone; TCP 80 web. Ports shared by several services (443),
// the Zoom Rooms LAN ports, Phone's broad RTP range and any other port give
// ServiceNone: the port alone says nothing.
func ServiceForPort(proto uint8, port uint16) Service {
	switch proto {
	case ProtoTCP:
		switch {
		case port == 8801 || port == 8802:
			return ServiceMediaRouter
		case port == 5090 || port == 5091:
			return ServicePhone
		case port == 80:
			return ServiceWeb
		}
	case ProtoUDP:
		switch {
		case port == 3478 || port == 3479 || (port >= 8801 && port <= 8810):
			return ServiceMedia
		case port == 5090:
			return ServicePhone
		}
	}
	return ServiceNone
}

// IsZoomRoomsPort reports whether port is one of the Zoom Rooms LAN ports
// (controller TCP 9090, Direct Share TCP 8888 / UDP 8889, companion audio
// TCP and UDP 5590-5600).
func IsZoomRoomsPort(proto uint8, port uint16) bool {
	for i := range Ports {
		p := &Ports[i]
		if !p.Cloud && p.Proto == proto && port >= p.First && port <= p.Last {
			return true
		}
	}
	return false
}

// maxLabelledRange: a line of Ports wider than this (Phone's RTP range) gets
// no port labels of its own, so the label set stays small.
const maxLabelledRange = 16

// portLabels are the metric `port` label values, from Ports: Zoom's cloud
// ports one by one, everything else "other" (bounded, whatever is watched).
var portLabels = func() (m [2][]string) {
	labelled := func(p PortRange) bool { return p.Cloud && int(p.Last)-int(p.First) < maxLabelledRange }
	size := 0
	for _, p := range Ports {
		if labelled(p) {
			size = max(size, int(p.Last)+1)
		}
	}
	for i := range m {
		m[i] = make([]string, size) // indexed by port; TCP, UDP
	}
	for _, p := range Ports {
		if !labelled(p) {
			continue
		}
		t := 0
		if p.Proto == ProtoUDP {
			t = 1
		}
		for port := int(p.First); port <= int(p.Last); port++ {
			m[t][port] = strconv.Itoa(port)
		}
	}
	return m
}()

// PortLabel is the value of the metric label `port`: the port number for
// Zoom's cloud ports (TCP 80, 443, 5090, 5091, 8801, 8802; UDP 443, 3478,
// 3479, 5090, 8801-8810), "other" for anything else. No allocation.
func PortLabel(proto uint8, port uint16) string {
	var t []string
	switch proto {
	case ProtoTCP:
		t = portLabels[0]
	case ProtoUDP:
		t = portLabels[1]
	}
	if int(port) < len(t) && t[port] != "" {
		return t[port]
	}
	return "other"
}

// PortLabels lists every value PortLabel returns, for pre-creating series.
func PortLabels() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range portLabels {
		for _, l := range t {
			if l != "" && !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return append(out, "other")
}
