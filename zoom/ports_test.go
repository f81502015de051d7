package zoom

import "testing"

func TestServiceForPort(t *testing.T) {
	tests := []struct {
		proto uint8
		port  uint16
		want  Service
	}{
		{ProtoTCP, 8801, ServiceMediaRouter},
		{ProtoTCP, 8802, ServiceMediaRouter},
		{ProtoTCP, 8803, ServiceNone},
		{ProtoTCP, 443, ServiceNone},
		{ProtoTCP, 80, ServiceWeb},
		{ProtoTCP, 5090, ServicePhone},
		{ProtoTCP, 5091, ServicePhone},
		{ProtoUDP, 3478, ServiceMedia},
		{ProtoUDP, 3479, ServiceMedia},
		{ProtoUDP, 3480, ServiceNone},
		{ProtoUDP, 8800, ServiceNone},
		{ProtoUDP, 8801, ServiceMedia},
		{ProtoUDP, 8810, ServiceMedia},
		{ProtoUDP, 8811, ServiceNone},
		{ProtoUDP, 5090, ServicePhone},
		{ProtoUDP, 30000, ServiceNone}, // Phone RTP range: too broad
		{ProtoUDP, 443, ServiceNone},
		{1, 8801, ServiceNone},
	}
	for _, tc := range tests {
		if got := ServiceForPort(tc.proto, tc.port); got != tc.want {
			t.Errorf("ServiceForPort(%d, %d) = %v, want %v", tc.proto, tc.port, got, tc.want)
		}
	}
}

// The port table and the functions must say the same thing.
func TestPortsTableAgrees(t *testing.T) {
	for _, p := range Ports {
		for port := uint32(p.First); port <= uint32(p.Last); port++ {
			if p.Cloud && p.Product == "meetings" && p.Proto == ProtoUDP && !IsZoomPort(p.Proto, uint16(port)) {
				t.Errorf("UDP %d listed for meetings but IsZoomPort is false", port)
			}
			if !p.Cloud && !IsZoomRoomsPort(p.Proto, uint16(port)) {
				t.Errorf("%d/%d listed for rooms but IsZoomRoomsPort is false", p.Proto, port)
			}
		}
	}
	for _, c := range []struct {
		proto uint8
		port  uint16
		want  bool
	}{{ProtoTCP, 9090, true}, {ProtoTCP, 8888, true}, {ProtoUDP, 8889, true}, {ProtoUDP, 5595, true}, {ProtoTCP, 5600, true}, {ProtoTCP, 5601, false}, {ProtoUDP, 8888, false}, {ProtoTCP, 443, false}} {
		if got := IsZoomRoomsPort(c.proto, c.port); got != c.want {
			t.Errorf("IsZoomRoomsPort(%d, %d) = %v", c.proto, c.port, got)
		}
	}
}

func TestPortLabel(t *testing.T) {
	tests := []struct {
		proto uint8
		port  uint16
		want  string
	}{
		{ProtoTCP, 443, "443"}, {ProtoTCP, 8801, "8801"}, {ProtoTCP, 8803, "other"}, {ProtoUDP, 8805, "8805"},
		{ProtoUDP, 3478, "3478"}, {ProtoUDP, 53, "other"}, {ProtoTCP, 65535, "other"}, {1, 443, "other"},
		{ProtoTCP, 80, "80"}, {ProtoTCP, 5091, "5091"}, {ProtoUDP, 5090, "5090"}, {ProtoUDP, 20000, "other"}, // from Ports
		{ProtoTCP, 9090, "other"}, {ProtoUDP, 8889, "other"}, // Zoom Rooms' LAN ports are not cloud ports
	}
	for _, tc := range tests {
		if got := PortLabel(tc.proto, tc.port); got != tc.want {
			t.Errorf("PortLabel(%d, %d) = %q, want %q", tc.proto, tc.port, got, tc.want)
		}
	}
	labels := PortLabels()
	seen := map[string]bool{}
	for _, l := range labels {
		seen[l] = true
	}
	for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
		for port := 0; port < 65536; port++ {
			if l := PortLabel(proto, uint16(port)); !seen[l] {
				t.Fatalf("PortLabel(%d,%d) = %q is not in PortLabels", proto, port, l)
			}
		}
	}
	if len(labels) > 25 {
		t.Errorf("%d port labels: the set must stay small", len(labels))
	}
	if n := testing.AllocsPerRun(100, func() { PortLabel(ProtoUDP, 8801); PortLabel(ProtoTCP, 1) }); n != 0 {
		t.Errorf("PortLabel allocates %.1f", n)
	}
}

// The media port predicates agree with ServiceForPort, the one table of
// what a UDP port means.
func TestMediaPorts(t *testing.T) {
	for port := 0; port < 65536; port++ {
		p := uint16(port)
		if IsMediaPort(p) != (ServiceForPort(ProtoUDP, p) == ServiceMedia) {
			t.Errorf("IsMediaPort(%d) = %v, ServiceForPort %s", p, IsMediaPort(p), ServiceForPort(ProtoUDP, p))
		}
		if IsMediaDataPort(p) != (IsMediaPort(p) && p != 3478 && p != 3479) {
			t.Errorf("IsMediaDataPort(%d) = %v", p, IsMediaDataPort(p))
		}
		if IsMediaPort(p) && !IsZoomPort(ProtoUDP, p) {
			t.Errorf("media port %d is not a Zoom port", p)
		}
	}
}
