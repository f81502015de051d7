package zoom

// IsZoomPort reports whether port is one Zoom's servers listen on for proto
// (6 TCP, 17 UDP): TCP 443, 8801, 8802; UDP 443, 3478, 3479, 8801-8810.
func IsZoomPort(proto uint8, port uint16) bool {
	switch proto {
	case 6:
		return port == 443 || port == 8801 || port == 8802
	case 17:
		return port == 443 || port == 3478 || port == 3479 || (port >= 8801 && port <= 8810)
	}
	return false
}
