package reach_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers/reach"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// again is p sent again (a retransmission) at t: the same segment, the
// sender's next IP ID.
func again(p decode.Packet, t time.Time, ipid *uint16) decode.Packet {
	p.Time = t
	if p.IPVersion == 4 {
		*ipid++
		p.IPID = *ipid
	}
	return p
}

// Answers that pass the probe toward the client and are lost before it (the
// client's own firewall) are told apart from a lossy path (some answer gets
// through: the client acknowledges or moves on), from asymmetric routing (the
// server hears the client by another way) and from a client that gives up
// silently.
func TestClientSideDrop(t *testing.T) {
	serverHello := append([]byte{0x16, 0x03, 0x03, 0x00, 0x5a, 0x02}, make([]byte, 0x59)...)
	hello := reachtest.ClientHello("zoomfrn99mmr.zoom.us")
	setup := append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...)
	setupAnswer := append([]byte{0x02, 0x00, 0x02}, make([]byte, 16)...)
	step3 := append([]byte{0x03, 0x00, 0x02}, make([]byte, 16)...)

	// synAckLost: each SYN (0, 1, 3 s) draws a SYN-ACK that passes the probe;
	// the client never ACKs.
	synAckLost := func(c *reachtest.Conn, retries int) []decode.Packet {
		var ps []decode.Packet
		d := time.Duration(0)
		for i := 0; i <= retries; i++ {
			ps = append(ps, c.SYN(at(d)), c.SYNACK(at(d+20*time.Millisecond)))
			d = d*2 + time.Second
		}
		return ps
	}
	// helloLost: the handshake completes, the ServerHello passes the probe
	// and the client retransmits its ClientHello (RTO 200 ms, doubling).
	helloLost := func(c *reachtest.Conn, retries int) []decode.Packet {
		ps := handshake(c, 0)
		ch := c.Data(at(30*time.Millisecond), true, hello)
		ps = append(ps, ch)
		sh := c.Data(at(55*time.Millisecond), false, serverHello)
		ps = append(ps, sh)
		d := 230 * time.Millisecond
		for i := 0; i < retries; i++ {
			ps = append(ps, again(ch, at(d), &c.ClientIPID), again(sh, at(d+25*time.Millisecond), &c.ServerIPID))
			d = d*2 + 30*time.Millisecond
		}
		return ps
	}
	udpLost := func(u *reachtest.Conn, req, answer []byte, tries int) []decode.Packet {
		var ps []decode.Packet
		for i := 0; i < tries; i++ {
			d := time.Duration(i) * 250 * time.Millisecond
			ps = append(ps, u.Data(at(d), true, req), u.Data(at(d+20*time.Millisecond), false, answer))
		}
		return ps
	}
	stunReq := append([]byte{0x00, 0x01, 0x00, 24, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 36)...)
	stunAnswer := append([]byte{0x01, 0x01, 0x00, 12, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 24)...)

	keys := []string{"where", "lost", "syn_retransmits_after_synack", "client_retransmits_after_answer", "client_retries_after_answers", "answers_passed_probe", "udp_failure"}
	tests := []struct {
		name  string
		build func() []decode.Packet
		want  []string
		cell  string // port matrix media_router/tcp/8801 after
	}{
		{
			name:  "SYN-ACKs pass the probe, the client retransmits its SYN twice",
			build: func() []decode.Packet { return synAckLost(reachtest.NewTCP(client+":40001", mmr+":8801"), 2) },
			want:  []string{"blocked_connection/client_side_drop media_router tcp:8801 answers_passed_probe=3 lost=syn_ack syn_retransmits_after_synack=2 where=client_host"},
			cell:  reach.StatusNotSeen,
		},
		{
			name:  "one SYN retransmission after the SYN-ACK: below client_drop_min_retries",
			build: func() []decode.Packet { return synAckLost(reachtest.NewTCP(client+":40001", mmr+":8801"), 1) },
			cell:  reach.StatusOpen,
		},
		{
			name: "lossy path: the first SYN-ACK is lost, the second gets through and the client ACKs",
			build: func() []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := synAckLost(c, 2)
				return append(ps, c.ACK(at(3021*time.Millisecond), true))
			},
			cell: reach.StatusOpen,
		},
		{
			name: "the client stays silent after the SYN-ACK (its packets take another way, or it gave up)",
			build: func() []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				syn, sa := c.SYN(at(0)), c.SYNACK(at(20*time.Millisecond))
				return []decode.Packet{syn, sa, again(sa, at(time.Second), &c.ServerIPID), again(sa, at(3*time.Second), &c.ServerIPID)}
			},
			cell: reach.StatusOpen,
		},
		{
			name: "asymmetric: the server acknowledges client data the probe never saw",
			build: func() []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := synAckLost(c, 2)
				unseen := c.Data(at(3100*time.Millisecond), true, hello) // goes another way: not fed
				_ = unseen
				return append(ps, c.Data(at(3150*time.Millisecond), false, serverHello))
			},
			cell: reach.StatusOpen,
		},
		{
			name:  "ServerHello passes the probe, the client retransmits its ClientHello",
			build: func() []decode.Packet { return helloLost(reachtest.NewTCP(client+":40001", mmr+":8801"), 3) },
			want:  []string{"blocked_connection/client_side_drop media_router tcp:8801 answers_passed_probe=5 client_retransmits_after_answer=3 lost=server_hello where=client_host"},
			cell:  reach.StatusOpen, // the SYN-ACK got through: the port is open
		},
		{
			name: "lossy path: the ClientHello is retransmitted once, then the client acknowledges the ServerHello",
			build: func() []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := helloLost(c, 2)
				return append(ps, c.ACK(at(time.Second), true))
			},
			cell: reach.StatusOpen,
		},
		{
			name: "UDP set-up answers pass the probe, the client repeats its set-up",
			build: func() []decode.Packet {
				return udpLost(reachtest.NewUDP(client+":40001", mmr+":8801"), setup, setupAnswer, 3)
			},
			want: []string{"blocked_connection/client_side_drop media udp:8801 answers_passed_probe=3 client_retries_after_answers=2 lost=udp_answers where=client_host"},
		},
		{
			name: "STUN answers pass the probe, the client repeats the transaction",
			build: func() []decode.Packet {
				return udpLost(reachtest.NewUDP(client+":40001", mmr+":3478"), stunReq, stunAnswer, 4)
			},
			want: []string{"blocked_connection/client_side_drop media udp:3478 answers_passed_probe=4 client_retries_after_answers=3 lost=udp_answers where=client_host"},
		},
		{
			name: "lossy path: the set-up is repeated, then the client moves on to the next step",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":40001", mmr+":8801")
				ps := udpLost(u, setup, setupAnswer, 3)
				return append(ps, u.Data(at(800*time.Millisecond), true, step3))
			},
		},
		{
			name: "UDP answers lost on the client's side, then TCP 443 to the media router: the fallback follows",
			build: func() []decode.Packet {
				ps := udpLost(reachtest.NewUDP(client+":40001", mmr+":8801"), setup, setupAnswer, 3)
				c := reachtest.NewTCP(client+":40002", mmr+":443")
				return append(ps, handshake(c, 2*time.Second)...)
			},
			want: []string{
				"blocked_connection/client_side_drop media udp:8801 answers_passed_probe=3 client_retries_after_answers=2 lost=udp_answers where=client_host",
				"udp_fallback/udp_fallback_to_tcp media_router tcp:443 udp_failure=client_side_drop",
			},
			cell: reach.StatusNotSeen,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.h.Feed(tc.build()...)
			e.h.FlushAt(e.h.Last.Add(time.Minute))
			equal(t, summary(e.sink.All(), keys...), tc.want)
			if tc.cell != "" {
				if got := e.a.PortStatus(zoom.ServiceMediaRouter, decode.ProtoTCP, 8801); got != tc.cell {
					t.Errorf("port status media_router/tcp/8801 = %s, want %s", got, tc.cell)
				}
			}
			for _, f := range e.sink.All() {
				if f.Reason != "client_side_drop" {
					continue
				}
				if !strings.Contains(f.Remediation, "Zoom.exe") || f.Time.IsZero() || f.Evidence["first_answer"] == nil || f.Evidence["last_client_retry"] == nil {
					t.Errorf("incomplete finding %+v", f)
				}
				want := `zoomprobe_blocked_connections_total{port="` + strconv.Itoa(int(f.Flow.ServerPort)) + `",reason="client_side_drop",service="` + f.Service + `",transport="` + f.Flow.Transport + `",where="client_host"} 1`
				if got := gather(t, e.reg, "zoomprobe_blocked_connections_total"); !strings.Contains(got, want) {
					t.Errorf("want %s in\n%s", want, got)
				}
			}
		})
	}
}
