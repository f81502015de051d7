package probes

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// enableICMPErrors sets IP_RECVERR: the kernel then reports every ICMP error
// for the socket (also "soft" ones like host unreachable, which a connected
// UDP socket otherwise ignores) and queues the ICMP message for reading.
func enableICMPErrors(c *net.UDPConn, v6 bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if v6 {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
}

// readICMPError reads one queued ICMP error (struct sock_extended_err and
// the offender's address) without blocking.
func readICMPError(c *net.UDPConn) (icmpError, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return icmpError{}, false
	}
	var out icmpError
	found := false
	rc.Read(func(fd uintptr) bool {
		var buf [64]byte
		oob := make([]byte, 512)
		_, oobn, _, _, err := unix.Recvmsg(int(fd), buf[:], oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return true
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return true
		}
		for _, m := range msgs {
			v4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
			v6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
			if (!v4 && !v6) || len(m.Data) < 16 {
				continue
			}
			// struct sock_extended_err: errno u32, origin u8, type u8, code u8, pad u8, info u32, data u32
			origin := m.Data[4]
			if origin != unix.SO_EE_ORIGIN_ICMP && origin != unix.SO_EE_ORIGIN_ICMP6 {
				continue
			}
			out = icmpError{V6: origin == unix.SO_EE_ORIGIN_ICMP6, Type: m.Data[5], Code: m.Data[6]}
			out.From = offender(m.Data[16:])
			found = true
		}
		return true
	})
	return out, found
}

// offender parses the sockaddr after sock_extended_err (SO_EE_OFFENDER).
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}
