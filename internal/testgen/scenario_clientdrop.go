package testgen

import (
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Where a block happens, seen from the capture point: answers that pass it
// toward the client and are lost before the client (its own firewall or
// security software), and the shapes that must not be taken for that.

func init() {
	register("client-drop-synack", "The zone controller's SYN-ACKs (443) pass the capture point; the client's own firewall drops them and the client retransmits its SYN at 1 and 3 s as if nothing came (Windows retries twice), the server retransmitting its SYN-ACK each time", ClientDropSYNACK)
	register("client-drop-serverhello", "TCP to the zone controller (443) connects; the ServerHello passes the capture point and is dropped before the client (security software filtering TLS), which retransmits its ClientHello three times, never acknowledging it", ClientDropServerHello)
	register("client-drop-udp", "The media router answers the UDP 8801 set-up and STUN on 3478; the answers pass the capture point, the client's firewall drops them and the client repeats the same set-up and STUN transaction", ClientDropUDP)
	register("lossy-client-side", "Ordinary life: losses between the capture point and the client; a SYN-ACK, a ServerHello and a set-up answer are each lost once, the client retries and then proceeds; no finding", LossyClientSide)
	register("asymmetric-routing", "Ordinary life: the capture point sees one direction only: the media router's answers (TLS on 443, UDP 8801 media) come back another way, and the zone controller's connection from a second client is seen only from the server side; no finding", AsymmetricRouting)
}

// zcHelloSpec is the zone controller handshake these scenarios replay
// (cached transcript shared with the other zone controller scenarios).
var zcHelloSpec = TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames}

// serverHelloRecord returns the first TLS record of the server's first
// flight: the ServerHello alone.
func serverHelloRecord(t *TLSTranscript) []byte {
	for _, f := range t.Flights {
		if f.Dir == ServerToClient && len(f.Data) >= 5 {
			n := min(len(f.Data), 5+int(f.Data[3])<<8|int(f.Data[4]))
			return f.Data[:n]
		}
	}
	return nil
}

// ClientDropSYNACK: every SYN is answered, no answer reaches the client.
func ClientDropSYNACK(p Params) (*Scenario, error) {
	b := newBuilder("client-drop-synack", registry["client-drop-synack"].desc, p)
	b.resolveZC()
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 0} {
		c.SYN()
		b.g.Advance(24 * time.Millisecond)
		c.SYNACK()
		if i < 2 {
			b.g.Advance(wait - 24*time.Millisecond)
		}
	}
	b.flow("tcp", c.Client, c.Server, zoom.ServiceZoneController, NameZC)
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonClientSideDrop, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController,
		Evidence: map[string]string{"where": "client_host", "lost": "syn_ack", "syn_retransmits_after_synack": "2", "answers_passed_probe": "3"}})
	return b.done()
}

// ClientDropServerHello: the handshake completes, the ServerHello is lost
// after the capture point; the client retransmits its ClientHello (RTO 200,
// 400, 800 ms) and the server its ServerHello.
func ClientDropServerHello(p Params) (*Scenario, error) {
	b := newBuilder("client-drop-serverhello", registry["client-drop-serverhello"].desc, p)
	b.resolveZC()
	t, err := RecordTLS(zcHelloSpec)
	if err != nil {
		return nil, err
	}
	b.noteTLS(t)
	c := b.g.TCPConn(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.Send(ClientToServer, t.Flights[0].Data)
	b.g.Advance(24 * time.Millisecond)
	c.Send(ServerToClient, serverHelloRecord(t))
	for _, rto := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		c.RetransmitUnanswered(ClientToServer, rto-24*time.Millisecond)
		c.Retransmit(ServerToClient)
	}
	b.s.Flows = append(b.s.Flows, ExpectedFlow{Transport: "tcp", Client: c.Client, Server: c.Server, Service: zoom.ServiceZoneController, Name: NameZC, SNI: NameZC})
	b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonClientSideDrop, Transport: "tcp",
		Client: b.a.Client, Server: b.a.ZC, ServerPort: 443, Service: zoom.ServiceZoneController, SNI: NameZC,
		Evidence: map[string]string{"where": "client_host", "lost": "server_hello", "client_retransmits_after_answer": "3", "server_retransmits": "3"}})
	return b.done()
}

// ClientDropUDP: the set-up on 8801 and a STUN binding on 3478 are answered
// each time; the client repeats them (three tries, 250 ms apart).
func ClientDropUDP(p Params) (*Scenario, error) {
	b := newBuilder("client-drop-udp", registry["client-drop-udp"].desc, p)
	b.lookup(b.a.Client, NameMMR, b.a.MMR)
	var id [16]byte
	copy(id[:], b.fill(16))
	media := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 8801), UDPOptions{})
	stun := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 3478), UDPOptions{})
	for i := 0; i < 3; i++ {
		media.Send(ClientToServer, ZoomSetupRequest(id))
		media.Send(ServerToClient, ZoomSetupResponse(id))
		b.g.Advance(250 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		stun.Send(ClientToServer, ZoomSTUNRequest(id))
		stun.Send(ServerToClient, ZoomSTUNResponse(id, b.mapped4(), stun.Client.Port()))
		b.g.Advance(250 * time.Millisecond)
	}
	b.flow("udp", media.Client, media.Server, zoom.ServiceMedia, NameMMR)
	b.flow("udp", stun.Client, stun.Server, zoom.ServiceMedia, NameMMR)
	for _, port := range []uint16{8801, 3478} {
		b.expect(ExpectedFinding{Kind: finding.KindBlockedConnection, Reason: finding.ReasonClientSideDrop, Transport: "udp",
			Client: b.a.Client, Server: b.a.MMR, ServerPort: port, Service: zoom.ServiceMedia,
			Evidence: map[string]string{"where": "client_host", "lost": "udp_answers", "client_retries_after_answers": "2", "answers_passed_probe": "3"}})
	}
	return b.done()
}

// LossyClientSide: each kind of answer is lost once before the client, which
// retries and gets the next one.
func LossyClientSide(p Params) (*Scenario, error) {
	b := newBuilder("lossy-client-side", registry["lossy-client-side"].desc, p)
	b.resolveZC()
	t, err := RecordTLS(zcHelloSpec)
	if err != nil {
		return nil, err
	}
	b.noteTLS(t)
	// The first SYN-ACK is lost; the second gets through.
	c := b.g.NewTCP(b.ephemeral(b.a.Client), b.port(b.a.ZC, 443), TCPOptions{})
	c.SYN()
	b.g.Advance(24 * time.Millisecond)
	c.SYNACK()
	b.g.Advance(976 * time.Millisecond)
	c.SYN()
	b.g.Advance(24 * time.Millisecond)
	c.SYNACK()
	c.ACK(ClientToServer)
	// The first ServerHello is lost: the ClientHello goes again, then the
	// rest of the handshake follows as usual.
	c.Send(ClientToServer, t.Flights[0].Data)
	b.g.Advance(24 * time.Millisecond)
	sh := serverHelloRecord(t)
	c.Send(ServerToClient, sh)
	c.RetransmitUnanswered(ClientToServer, 176*time.Millisecond)
	c.Retransmit(ServerToClient)
	c.Send(ServerToClient, t.Flights[1].Data[len(sh):])
	for _, f := range t.Flights[2:] {
		c.Send(f.Dir, f.Data)
	}
	c.Close()
	b.s.Flows = append(b.s.Flows, ExpectedFlow{Transport: "tcp", Client: c.Client, Server: c.Server, Service: zoom.ServiceZoneController,
		Name: NameZC, SNI: NameZC, TLSVersion: t.Version, Chain: t.Chain})

	// The first set-up answer is lost; the repeated set-up is answered and
	// the client moves on to the next step and media.
	b.lookup(b.a.Client, NameMMR, b.a.MMR)
	var id [16]byte
	copy(id[:], b.fill(16))
	u := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 8801), UDPOptions{})
	u.Send(ClientToServer, ZoomSetupRequest(id))
	u.Send(ServerToClient, ZoomSetupResponse(id))
	b.g.Advance(250 * time.Millisecond)
	b.g.ZoomUDPMediaOn(u, id, ZoomMediaOptions{AudioPackets: 10, VideoFrames: 2})
	b.flow("udp", u.Client, u.Server, zoom.ServiceMedia, NameMMR)
	return b.done()
}

// AsymmetricRouting: the capture point sees the client's packets to the media
// router but not the answers, and only the zone controller's answers to a
// second client.
func AsymmetricRouting(p Params) (*Scenario, error) {
	b := newBuilder("asymmetric-routing", registry["asymmetric-routing"].desc, p)
	b.lookup(b.a.Client, NameMMR, b.a.MMR)
	b.tlsFlow(b.a.Client, b.port(b.a.MMR, 443), zoom.ServiceMediaRouter, NameMMR,
		TLSSpec{ServerName: NameMMR, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, Request: pattern(300), Response: pattern(900)}, true)
	u := b.g.UDP(b.ephemeral(b.a.Client), b.port(b.a.MMR, 8801), UDPOptions{})
	b.g.ZoomUDPMedia(u, ZoomMediaOptions{AudioPackets: 10, VideoFrames: 2})
	b.g.Advance(time.Second)
	b.tlsFlow(b.a.Client2, b.port(b.a.ZC, 443), zoom.ServiceZoneController, NameZC, zcHelloSpec, true)
	b.flow("udp", u.Client, u.Server, zoom.ServiceMedia, NameMMR)
	b.hideFrom(b.a.MMR, b.a.Client2)
	return b.done()
}

// hideFrom removes every packet sent by these addresses, as if they took
// another path than the capture point's.
func (b *builder) hideFrom(srcs ...netip.Addr) {
	kept := b.g.out[:0]
	for _, p := range b.g.out {
		_, src, err := parseIPFrame(p.Data)
		hide := false
		for _, s := range srcs {
			hide = hide || err == nil && src == s
		}
		if !hide {
			kept = append(kept, p)
		}
	}
	b.g.out = kept
}
