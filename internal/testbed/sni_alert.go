package testbed

import (
	"bytes"
	"fmt"
	"net"
	"time"
)

// startSNIAlert runs the router's SNI filter: connections to 443 are
// redirected to it; it reads the ClientHello and, when it carries the
// behaviour's string, answers with a fatal TLS alert and closes (FIN), as
// firewalls that filter by name without a reset do. Anything else is closed.
func startSNIAlert(b *Bed, bh Behaviour) error {
	ln4, err := b.routerListen("tcp4", fmt.Sprintf(":%d", AlertPort))
	if err != nil {
		return err
	}
	ln6, err := b.routerListen("tcp6", fmt.Sprintf("[::]:%d", AlertPort))
	if err != nil {
		return err
	}
	alert := []byte{21, 3, 3, 0, 2, 2, bh.Alert}
	for _, ln := range []net.Listener{ln4, ln6} {
		go func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func(c net.Conn) {
					done := b.track(c)
					defer done()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					// The ClientHello: one record, read whole (its length
					// is in the header) so the alert answers all of it.
					var hello []byte
					buf := make([]byte, 4096)
					for len(hello) < 5 || len(hello) < 5+(int(hello[3])<<8|int(hello[4])) {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						hello = append(hello, buf[:n]...)
					}
					if bytes.Contains(hello, []byte(bh.Match)) {
						_, _ = c.Write(alert)
					}
				}(c)
			}
		}(ln)
	}
	return nil
}
