package probes

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/zoomprobe/zoomprobe/engine/ownflows"
)

// maxProbeLife bounds a socket's registration when the check has no deadline.
const maxProbeLife = time.Minute

// dialer is the net.Dialer every check connects with. With env.Own set, each
// socket is bound to the local address routing picks for the remote and to
// a free port, registered with its 5-tuple, and only then connected: the
// engine, capturing on the same interface, knows its packets from the first
// SYN or datagram and keeps them from the passive analyzers. The entry ends
// flows.closed_timeout after the check's deadline (the registry's linger).
func (e *Env) dialer(ctx context.Context) *net.Dialer {
	d := &net.Dialer{}
	if e.Own == nil {
		return d
	}
	d.Resolver = e.resolver()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxProbeLife)
	}
	d.ControlContext = func(_ context.Context, network, address string, c syscall.RawConn) error {
		registerSocket(e.Own, network, address, c, deadline)
		return nil
	}
	return d
}

// registerSocket binds the socket c about to connect to address and
// registers its 5-tuple. When it cannot (an address that is not an IP, no
// route, a bind error), the socket connects unregistered: the check's own
// verdict matters more than keeping its packets from the passive analyzers.
func registerSocket(own *ownflows.Registry, network, address string, c syscall.RawConn, deadline time.Time) {
	remote, err := netip.ParseAddrPort(address)
	if err != nil {
		return
	}
	local, err := sourceAddr(remote)
	if err != nil {
		return
	}
	port, err := bindLocal(c, network, local)
	if err != nil {
		return
	}
	proto := ownflows.ProtoTCP
	if strings.HasPrefix(network, "udp") {
		proto = ownflows.ProtoUDP
	}
	own.Register(ownflows.Key{Proto: proto, Local: netip.AddrPortFrom(local, port), Remote: remote}, deadline)
}

// sourceAddr is the local address the kernel uses to reach remote: a
// connected UDP socket takes it from the routing table and sends nothing.
func sourceAddr(remote netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), nil
}
