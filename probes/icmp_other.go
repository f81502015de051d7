//go:build !linux

package probes

import "net"

func enableICMPErrors(*net.UDPConn, bool) {}

func readICMPError(*net.UDPConn) (icmpError, bool) { return icmpError{}, false }
