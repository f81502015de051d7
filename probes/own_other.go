//go:build !unix

package probes

import (
	"errors"
	"net/netip"
	"syscall"
)

// bindLocal is not implemented here: sockets connect unregistered.
func bindLocal(syscall.RawConn, string, netip.Addr) (uint16, error) {
	return 0, errors.New("binding before connect is not supported on this platform")
}
