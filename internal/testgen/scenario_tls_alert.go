package testgen

import (
	"crypto/tls"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

func init() {
	register("tls-alert-after-clienthello", "TLS to the zone controller: the ClientHello is answered 3 ms later by a fatal handshake_failure alert with TTL 64 (the server's packets arrive with 52), then a FIN: a firewall filtering by SNI with an alert instead of a reset", TLSAlertAfterClientHello)
}

// TLSAlertAfterClientHello: a firewall refuses the Zoom ClientHello with a
// plaintext TLS alert (handshake_failure) and closes, instead of resetting.
func TLSAlertAfterClientHello(p Params) (*Scenario, error) {
	const name = "tls-alert-after-clienthello"
	b := newBuilder(name, registry[name].desc, p)
	b.resolveZC()
	ch, err := b.clientHello(TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames})
	if err != nil {
		return nil, err
	}
	c := b.g.TCPConn(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.Send(ClientToServer, ch)
	b.g.Advance(3 * time.Millisecond) // the firewall is close: well before a server RTT
	c.SendWith(ServerToClient, []byte{21, 3, 3, 0, 2, 2, 40}, InjectOptions{TTL: 64})
	c.FINWith(ServerToClient, InjectOptions{TTL: 64})
	c.FIN(ClientToServer)
	c.ACK(ServerToClient)
	b.flow("tcp", c.Client, c.Server, zoom.ServiceZoneController, NameZC)
	f := b.s.Flows[len(b.s.Flows)-1]
	f.SNI = NameZC
	b.s.Flows[len(b.s.Flows)-1] = f
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonSNIFiltering, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController, SNI: NameZC,
		Evidence: map[string]string{"alert": "handshake_failure", "ttl": "64", "ttl_syn_ack": "52"}})
	return b.done()
}
