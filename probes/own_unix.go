//go:build unix

package probes

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// bindLocal binds the socket to local and a port the kernel picks, and
// returns the port.
func bindLocal(c syscall.RawConn, network string, local netip.Addr) (uint16, error) {
	var sa syscall.Sockaddr
	if strings.HasSuffix(network, "6") {
		s6 := &syscall.SockaddrInet6{Addr: local.As16()}
		if z := local.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				s6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = s6
	} else {
		if !local.Unmap().Is4() {
			return 0, errors.New("IPv6 source for an IPv4 socket")
		}
		sa = &syscall.SockaddrInet4{Addr: local.Unmap().As4()}
	}
	var port uint16
	var opErr error
	err := c.Control(func(fd uintptr) {
		if opErr = syscall.Bind(int(fd), sa); opErr != nil {
			return
		}
		got, err := syscall.Getsockname(int(fd))
		if err != nil {
			opErr = err
			return
		}
		switch a := got.(type) {
		case *syscall.SockaddrInet4:
			port = uint16(a.Port)
		case *syscall.SockaddrInet6:
			port = uint16(a.Port)
		}
	})
	if err == nil {
		err = opErr
	}
	return port, err
}
