package reach_test

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/analyzers/reach"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
	"github.com/zoomprobe/zoomprobe/zoom"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	client   = "192.168.10.20"
	mmr      = "170.114.52.10" // a media router in Zoom's ranges
	mmr2     = "170.114.52.11" // another one
	webFront = "203.0.113.80"  // a web front end known by name only
	router   = "192.168.10.1"  // the site firewall
	client6  = "2001:db8:10::20"
	mmr6     = "2620:123:2000::10"
)

type env struct {
	a    *reach.Analyzer
	h    *reachtest.Harness
	sink *reachtest.Sink
	reg  *prometheus.Registry
}

func newEnv(t testing.TB) *env {
	cfg := config.Default().Reach
	sink := &reachtest.Sink{}
	a := reach.New(cfg, 0, sink)
	reg := prometheus.NewRegistry()
	for _, c := range a.Collectors() {
		reg.MustRegister(c)
	}
	h := reachtest.NewHarness(a)
	for _, s := range []string{mmr, mmr2, mmr6} {
		h.Services[netip.MustParseAddr(s)] = zoom.ServiceMediaRouter
	}
	return &env{a: a, h: h, sink: sink, reg: reg}
}

// summary renders findings as "kind/reason service port k=v..." lines for exact comparison.
func summary(fs []finding.Finding, keys ...string) []string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("%s/%s %s", f.Kind, f.Reason, f.Service)
		if f.Flow != nil {
			s += fmt.Sprintf(" %s:%d", f.Flow.Transport, f.Flow.ServerPort)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v, ok := f.Evidence[k]; ok {
				s += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n got %q\nwant %q", got, want)
	}
}

func synRetries(c *reachtest.Conn, until time.Duration) []decode.Packet {
	var ps []decode.Packet
	for d := time.Duration(0); d <= until; d = d*2 + time.Second {
		ps = append(ps, c.SYN(at(d)))
	}
	return ps
}

func handshake(c *reachtest.Conn, start time.Duration) []decode.Packet {
	return []decode.Packet{c.SYN(at(start)), c.SYNACK(at(start + 20*time.Millisecond)), c.ACK(at(start+21*time.Millisecond), true)}
}

func TestTCPVerdicts(t *testing.T) {
	hello := reachtest.ClientHello("zoomfrn99mmr.zoom.us")
	if len(hello) < 100 {
		t.Fatalf("ClientHello of %d bytes", len(hello))
	}
	serverHello := append([]byte{0x16, 0x03, 0x03, 0x00, 0x5a, 0x02}, make([]byte, 0x59)...)
	appData := append([]byte{0x17, 0x03, 0x03, 0x00, 0x20}, make([]byte, 0x20)...)

	tests := []struct {
		name   string
		build  func(e *env) []decode.Packet
		flush  time.Duration // capture end; 0: last packet
		keys   []string
		want   []string
		port   string // port matrix cell media_router/tcp/<cell> after
		cell   uint16 // 8801 unless set
		metric string // expected text of the resets/blocked metrics
	}{
		{
			name: "SYN dropped after retransmissions",
			build: func(e *env) []decode.Packet {
				return synRetries(reachtest.NewTCP(client+":40001", mmr+":8801"), 15*time.Second)
			},
			keys:   []string{"syn_attempts", "verdict"},
			want:   []string{"blocked_connection/generic_timeout_error media_router tcp:8801 syn_attempts=5 verdict=dropped"},
			port:   reach.StatusDropped,
			metric: `zoomprobe_blocked_connections_total{port="8801",reason="generic_timeout_error",service="media_router",transport="tcp",where="beyond_probe"} 1`,
		},
		{
			name: "capture ends before syn_timeout: no verdict",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				return []decode.Packet{c.SYN(at(0)), c.SYN(at(time.Second)), c.SYN(at(3 * time.Second))}
			},
			port: reach.StatusNotSeen,
		},
		{
			name: "single SYN abandoned: no verdict",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				other := reachtest.NewTCP(client+":40002", "198.51.100.9:80")
				return []decode.Packet{c.SYN(at(0)), other.SYN(at(20 * time.Second))}
			},
			port: reach.StatusNotSeen,
		},
		{
			name: "Happy Eyeballs: the client connected to another address",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				c2 := reachtest.NewTCP(client+":40002", mmr2+":8801")
				ps := []decode.Packet{c.SYN(at(0))}
				ps = append(ps, handshake(c2, 250*time.Millisecond)...)
				return append(ps, c.SYN(at(time.Second)), c.SYN(at(3*time.Second)), c2.Data(at(20*time.Second), true, appData))
			},
			port: reach.StatusOpen,
		},
		{
			name: "capture drop: SYN-ACK missed but the client ACKs and sends",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				return []decode.Packet{c.SYN(at(0)), c.SYN(at(time.Second)), c.ACK(at(1100*time.Millisecond), true), c.Data(at(1200*time.Millisecond), true, hello)}
			},
			flush: 40 * time.Second,
			port:  reach.StatusNotSeen,
		},
		{
			name: "SYN answered by RST: refused",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8802")
				return []decode.Packet{c.SYN(at(0)), c.RST(at(25*time.Millisecond), false)}
			},
			keys:   []string{"phase", "origin"},
			want:   []string{"blocked_connection/connection_refused media_router tcp:8802 origin=unknown phase=syn"},
			metric: `zoomprobe_connection_resets_total{origin="unknown",phase="syn",service="media_router"} 1`,
		},
		{
			name: "firewall REJECT with tcp-reset: RST TTL unlike the server's known TTL",
			build: func(e *env) []decode.Packet {
				ok := reachtest.NewTCP(client+":40009", mmr+":443") // an earlier flow teaches the server's TTL
				c := reachtest.NewTCP(client+":40001", mmr+":8802")
				ps := handshake(ok, 0)
				return append(ps, c.SYN(at(time.Second)), c.Forged(at(time.Second+time.Millisecond), false, 64, 0, nil))
			},
			keys:   []string{"origin", "ttl_mismatch", "server_ttl"},
			want:   []string{"blocked_connection/connection_refused media_router tcp:8802 origin=middlebox server_ttl=52 ttl_mismatch=true"},
			metric: `zoomprobe_connection_resets_total{origin="middlebox",phase="syn",service="media_router"} 1`,
		},
		{
			name: "RST ignored when it does not acknowledge the SYN",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8802")
				p := c.RST(at(25*time.Millisecond), false)
				p.Ack += 1000
				return []decode.Packet{c.SYN(at(0)), p}
			},
		},
		{
			name: "ICMP admin prohibited from the firewall",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				syn := c.SYN(at(0))
				return []decode.Packet{syn, reachtest.Unreachable(at(time.Millisecond), router, 64, 13, syn)}
			},
			keys: []string{"icmp_sender", "icmp_type", "icmp_code", "ttl"},
			want: []string{"blocked_connection/icmp_admin_prohibited media_router tcp:8801 icmp_code=13 icmp_sender=192.168.10.1 icmp_type=3 ttl=64"},
			port: reach.StatusICMPProhibited,
		},
		{
			name: "ICMP port unreachable from the server itself",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				syn := c.SYN(at(0))
				return []decode.Packet{syn, reachtest.Unreachable(at(30*time.Millisecond), mmr, 52, 3, syn)}
			},
			keys: []string{"icmp_sender"},
			want: []string{"blocked_connection/icmp_port_unreachable media_router tcp:8801 icmp_sender=170.114.52.10"},
			port: reach.StatusRefused,
		},
		{
			name: "ICMPv6 administratively prohibited",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP("["+client6+"]:40001", "["+mmr6+"]:8801")
				syn := c.SYN(at(0))
				return []decode.Packet{syn, reachtest.Unreachable(at(time.Millisecond), "2001:db8:10::1", 64, 1, syn)}
			},
			keys: []string{"icmp_sender", "icmp_type", "icmp_code"},
			want: []string{"blocked_connection/icmp_admin_prohibited media_router tcp:8801 icmp_code=1 icmp_sender=2001:db8:10::1 icmp_type=1"},
		},
		{
			name: "ICMP quoting a sequence number never sent is ignored; the drop is judged",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := synRetries(c, 15*time.Second)
				q := ps[0]
				q.Seq += 1 << 20
				return append(ps, reachtest.Unreachable(at(16*time.Second), router, 64, 13, q))
			},
			flush: 40 * time.Second,
			want:  []string{"blocked_connection/generic_timeout_error media_router tcp:8801"},
		},
		{
			name: "ICMP fragmentation needed is path MTU discovery, not a block",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := handshake(c, 0)
				d := c.Data(at(100*time.Millisecond), true, hello)
				return append(ps, d, reachtest.Unreachable(at(101*time.Millisecond), router, 64, 4, d), c.Data(at(150*time.Millisecond), false, serverHello))
			},
			port: reach.StatusOpen,
		},
		{
			name: "ICMP then an answer anyway: not blocked",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				syn := c.SYN(at(0))
				return []decode.Packet{syn, reachtest.Unreachable(at(time.Millisecond), router, 64, 1, syn), c.SYNACK(at(30 * time.Millisecond))}
			},
			port: reach.StatusOpen,
		},
		{
			// The hello's second segment happens to start with 0x17: a
			// continuation, not application data (it failed one run in a
			// few dozen on the test bed, with random key shares).
			name: "SNI filtering: ClientHello in two segments, the second starting with 0x17",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				h := append([]byte(nil), hello...)
				cut := len(h) - 8
				h[cut] = 0x17
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, h[:cut]), c.Data(at(30100*time.Microsecond), true, h[cut:]),
					c.Forged(at(31*time.Millisecond), false, 64, 0, nil))
			},
			keys: []string{"phase", "origin"},
			want: []string{"connection_reset/sni_filtering media_router tcp:443 origin=middlebox phase=after_client_hello"},
		},
		{
			// The server's flight continues in a segment that starts with
			// 0x17: still the handshake, not an established connection.
			name: "reset during a server flight whose continuation starts with 0x17: handshake phase",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				flight := append([]byte{0x16, 0x03, 0x03, 0x01, 0x00}, make([]byte, 0x100)...)
				flight[5+0x80] = 0x17
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(31*time.Millisecond), false, flight[:5+0x80]),
					c.Data(at(32*time.Millisecond), false, flight[5+0x80:]), c.Forged(at(40*time.Millisecond), false, 61, 0x0101, nil))
			},
			keys: []string{"phase"},
			want: []string{"connection_reset/connection_reset media_router tcp:443 phase=handshake"},
		},
		{
			name: "SNI filtering: reset right after a Zoom ClientHello, TTL unlike the server's",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Forged(at(31*time.Millisecond), false, 64, 0, nil))
			},
			keys:   []string{"phase", "origin", "ttl_mismatch"},
			want:   []string{"connection_reset/sni_filtering media_router tcp:443 origin=middlebox phase=after_client_hello ttl_mismatch=true"},
			metric: `zoomprobe_connection_resets_total{origin="middlebox",phase="after_client_hello",service="media_router"} 1`,
		},
		{
			// The injector's RSTs answer the ClientHello, but the server's
			// flight passes the probe first: the reset carries the sequence
			// number from before the ServerHello, then a burst follows.
			name: "SNI filtering: injector lost the race to the ServerHello",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				ch := c.Data(at(30*time.Millisecond), true, hello)
				ps = append(ps, ch, c.Data(at(31*time.Millisecond), false, serverHello))
				first := c.Forged(at(32*time.Millisecond), false, 64, 0, nil)
				first.Seq = ch.Ack
				return append(ps, first, c.Forged(at(32100*time.Microsecond), true, 64, 0, nil),
					c.Forged(at(33*time.Millisecond), false, 64, 0, nil))
			},
			keys:   []string{"phase", "origin", "rst_seq_before_server_answer"},
			want:   []string{"connection_reset/sni_filtering media_router tcp:443 origin=middlebox phase=after_client_hello rst_seq_before_server_answer=true"},
			metric: `zoomprobe_connection_resets_total{origin="middlebox",phase="after_client_hello",service="media_router"} 1`,
		},
		{
			// A server that answered and then reset uses its new sequence
			// number: still the handshake phase, not an answer to the hello.
			name: "reset at the server's sequence after its answer: handshake phase",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(31*time.Millisecond), false, serverHello),
					c.RST(at(40*time.Millisecond), false))
			},
			keys:   []string{"phase", "origin"},
			want:   []string{"connection_reset/connection_reset media_router tcp:443 origin=server phase=handshake"},
			metric: `zoomprobe_connection_resets_total{origin="server",phase="handshake",service="media_router"} 1`,
		},
		{
			name: "SNI filtering for a web front end known only by its SNI",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", webFront+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, reachtest.ClientHello("www.zoom.us")), c.Forged(at(31*time.Millisecond), false, 64, 0, nil))
			},
			keys: []string{"phase", "origin"},
			want: []string{"connection_reset/sni_filtering web tcp:443 origin=middlebox phase=after_client_hello"},
		},
		{
			// Until the SNI names it, the flow's SYN and SYN-ACK are only held:
			// the reset is judged on the SYN's IP ID and the SYN-ACK's TTL all
			// the same.
			name: "held SYN and SYN-ACK replayed once the SNI names the flow",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", webFront+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, reachtest.ClientHello("www.zoom.us")),
					c.Forged(at(31*time.Millisecond), false, 64, ps[0].IPID, nil))
			},
			keys: []string{"phase", "ip_id_copied_from_client", "ttl_mismatch", "server_ttl"},
			want: []string{"connection_reset/sni_filtering web tcp:443 ip_id_copied_from_client=true phase=after_client_hello server_ttl=52 ttl_mismatch=true"},
		},
		{
			name: "injected reset racing the genuine ServerHello, IP ID copied from the client",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				ch := c.Data(at(30*time.Millisecond), true, hello)
				ps = append(ps, ch, c.Forged(at(30100*time.Microsecond), false, 57, ch.IPID, []byte("blocked")))
				ps = append(ps, c.Forged(at(30200*time.Microsecond), true, 57, ch.IPID, nil))
				return append(ps, c.Data(at(55*time.Millisecond), false, serverHello))
			},
			keys: []string{"origin", "genuine_packet_after_rst", "ip_id_copied_from_client", "rst_payload_bytes", "reset_to_both_ends", "score"},
			want: []string{"connection_reset/sni_filtering media_router tcp:443 genuine_packet_after_rst=true ip_id_copied_from_client=true origin=middlebox reset_to_both_ends=true rst_payload_bytes=7 score=11"},
		},
		{
			name: "server resets an established connection: counted, no finding",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				ps = append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(55*time.Millisecond), false, serverHello),
					c.Data(at(60*time.Millisecond), true, appData), c.Data(at(90*time.Millisecond), false, appData))
				return append(ps, c.RST(at(10*time.Second), false))
			},
			metric: `zoomprobe_connection_resets_total{origin="server",phase="established",service="media_router"} 1`,
			cell:   443,
			port:   reach.StatusOpen,
		},
		{
			name: "middlebox resets an established connection",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				ps = append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(55*time.Millisecond), false, serverHello),
					c.Data(at(60*time.Millisecond), true, appData), c.Data(at(90*time.Millisecond), false, appData))
				return append(ps, c.Forged(at(10*time.Second), false, 61, 0x0101, nil))
			},
			keys: []string{"phase", "origin", "ip_id_out_of_sequence"},
			want: []string{"connection_reset/connection_reset media_router tcp:443 ip_id_out_of_sequence=true origin=middlebox phase=established"},
			cell: 443,
			port: reach.StatusReset,
		},
		{
			name: "normal FIN close: nothing",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(55*time.Millisecond), false, serverHello),
					c.FIN(at(time.Second), true), c.FIN(at(time.Second+20*time.Millisecond), false), c.ACK(at(time.Second+21*time.Millisecond), true))
			},
			cell: 443,
			port: reach.StatusOpen,
		},
		{
			name: "server RST after the client's FIN: nothing",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := handshake(c, 0)
				return append(ps, c.Data(at(30*time.Millisecond), true, hello), c.Data(at(55*time.Millisecond), false, serverHello),
					c.FIN(at(time.Second), true), c.Forged(at(time.Second+20*time.Millisecond), false, 64, 1, nil))
			},
			cell: 443,
			port: reach.StatusOpen,
		},
		{
			name: "unwatched flow: nothing",
			build: func(e *env) []decode.Packet {
				c := reachtest.NewTCP(client+":40001", "198.51.100.7:8801")
				return synRetries(c, 15*time.Second)
			},
			flush: 40 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.h.Feed(tc.build(e)...)
			if tc.flush != 0 {
				e.h.FlushAt(at(tc.flush))
			} else {
				e.h.Flush()
			}
			equal(t, summary(e.sink.All(), tc.keys...), tc.want)
			if tc.port != "" {
				cell := tc.cell
				if cell == 0 {
					cell = 8801
				}
				if got := e.a.PortStatus(zoom.ServiceMediaRouter, decode.ProtoTCP, cell); got != tc.port {
					t.Errorf("port status media_router/tcp/%d = %s, want %s", cell, got, tc.port)
				}
			}
			if tc.metric != "" {
				name := tc.metric[:strings.IndexByte(tc.metric, '{')]
				if !strings.Contains(gather(t, e.reg, name), tc.metric) {
					t.Errorf("metric %s missing from:\n%s", tc.metric, gather(t, e.reg, name))
				}
			}
			for _, f := range e.sink.All() {
				if f.UserSees == "" || f.Remediation == "" || f.Source != reach.Name || f.Time.IsZero() {
					t.Errorf("incomplete finding %+v", f)
				}
			}
		})
	}
}

func gather(t testing.TB, reg *prometheus.Registry, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			fmt.Fprintf(&b, "%s{%s} %v\n", name, strings.Join(ls, ","), v)
		}
	}
	return b.String()
}

func TestDropJudgedOnIdleExpiry(t *testing.T) {
	e := newEnv(t)
	c := reachtest.NewTCP(client+":40001", mmr+":8801")
	e.h.Feed(synRetries(c, 7*time.Second)...)
	other := reachtest.NewTCP(client+":40002", mmr2+":443")
	e.h.Feed(other.SYN(at(60 * time.Second))) // advances packet time past the embryonic timeout
	equal(t, summary(e.sink.All()), []string{"blocked_connection/generic_timeout_error media_router tcp:8801"})
	if v := testutil.ToFloat64(e.a.Collectors()[0].(*prometheus.CounterVec).WithLabelValues("media_router", "tcp", "8801", "generic_timeout_error", "beyond_probe")); v != 1 {
		t.Fatalf("blocked_connections_total = %v", v)
	}
}

// setupsThenAnswer is n set-ups to the media router's 8801 from client, one
// a second, and an answer 30 ms after the last.
func setupsThenAnswer(client string, n int, setup, answer []byte) []decode.Packet {
	u := reachtest.NewUDP(client, mmr+":8801")
	var ps []decode.Packet
	for i := range n {
		ps = append(ps, u.Data(at(time.Duration(i)*time.Second), true, setup))
	}
	return append(ps, u.Data(at(time.Duration(n-1)*time.Second+30*time.Millisecond), false, answer))
}

func TestUDP(t *testing.T) {
	setup := append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...)
	answer := append([]byte{0x02, 0x00, 0x02}, make([]byte, 16)...)
	media := append([]byte{0x05, 0x00, 0x01, 0, 0, 0, 1, 0}, make([]byte, 100)...)
	tests := []struct {
		name  string
		build func() []decode.Packet
		keys  []string
		want  []string
		fb    float64
	}{
		{
			name: "UDP 8801 unanswered",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				return []decode.Packet{u.Data(at(0), true, setup), u.Data(at(time.Second), true, setup), u.Data(at(6*time.Second), true, setup)}
			},
			keys: []string{"datagrams"},
			want: []string{"blocked_connection/udp_no_answer media udp:8801 datagrams=3"},
		},
		{
			name: "UDP unanswered then TCP 8801 to the same server: fallback",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := []decode.Packet{u.Data(at(0), true, setup), u.Data(at(time.Second), true, setup), u.Data(at(6*time.Second), true, setup)}
				return append(ps, handshake(c, 7*time.Second)...)
			},
			keys: []string{"udp_port", "udp_failure", "same_server"},
			want: []string{
				"blocked_connection/udp_no_answer media udp:8801",
				"udp_fallback/udp_fallback_to_tcp media_router tcp:8801 same_server=true udp_failure=udp_no_answer udp_port=8801",
			},
			fb: 1,
		},
		{
			name: "lossy path: first set-up lost, retry past the window answered: no finding",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50003", mmr+":8801")
				return []decode.Packet{u.Data(at(0), true, setup), u.Data(at(4*time.Second), true, setup), u.Data(at(4*time.Second+30*time.Millisecond), false, answer)}
			},
		},
		{
			// At 5% loss each way, once in a thousand flows: the old early
			// verdict (the fourth datagram past the window) fired here.
			name:  "lossy path: four set-ups past the window, the fifth answered: no finding",
			build: func() []decode.Packet { return setupsThenAnswer(client+":50004", 5, setup, answer) },
		},
		{
			name: "six set-ups past the window: judged before the flow ends",
			// The answer comes too late: the verdict was given at the sixth.
			build: func() []decode.Packet { return setupsThenAnswer(client+":50005", 6, setup, answer) },
			keys:  []string{"datagrams", "waited_seconds"},
			want:  []string{"blocked_connection/udp_no_answer media udp:8801 datagrams=6 waited_seconds=5"},
		},
		{
			name: "STUN answered but UDP 8801 blocked, then TCP 8801: still a fallback",
			build: func() []decode.Packet {
				st := reachtest.NewUDP(client+":50009", mmr+":3478")
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				c := reachtest.NewTCP(client+":40001", mmr+":8801")
				ps := []decode.Packet{st.Data(at(0), true, setup), st.Data(at(10*time.Millisecond), false, answer)}
				ps = append(ps, u.Data(at(time.Second), true, setup), u.Data(at(2*time.Second), true, setup), u.Data(at(7*time.Second), true, setup))
				return append(ps, handshake(c, 8*time.Second)...)
			},
			keys: []string{"udp_port", "udp_failure", "same_server"},
			want: []string{
				"blocked_connection/udp_no_answer media udp:8801",
				"udp_fallback/udp_fallback_to_tcp media_router tcp:8801 same_server=true udp_failure=udp_no_answer udp_port=8801",
			},
			fb: 1,
		},
		{
			name: "TCP 443 to another media router before the UDP verdict: fallback once",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				u2 := reachtest.NewUDP(client+":50002", mmr+":3478")
				c := reachtest.NewTCP(client+":40001", mmr2+":443")
				ps := []decode.Packet{u.Data(at(0), true, setup), u2.Data(at(0), true, setup), u.Data(at(time.Second), true, setup), u2.Data(at(time.Second), true, setup)}
				ps = append(ps, handshake(c, 2*time.Second)...)
				return append(ps, u.Data(at(6*time.Second), true, setup), u2.Data(at(6*time.Second), true, setup))
			},
			keys: []string{"same_server", "failed_udp_servers"},
			want: []string{
				"blocked_connection/udp_no_answer media udp:3478 failed_udp_servers=1",
				"blocked_connection/udp_no_answer media udp:8801 failed_udp_servers=1",
				"udp_fallback/udp_fallback_to_tcp media_router tcp:443 same_server=false",
			},
			fb: 1,
		},
		{
			name: "UDP answered: open, and TCP alongside is no fallback",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				c := reachtest.NewTCP(client+":40001", mmr+":443")
				ps := []decode.Packet{u.Data(at(0), true, setup), u.Data(at(25*time.Millisecond), false, answer), u.Data(at(time.Second), true, media)}
				return append(ps, handshake(c, 2*time.Second)...)
			},
		},
		{
			name: "UDP answers missed by the capture but the client sends media",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":8801")
				return []decode.Packet{u.Data(at(0), true, setup), u.Data(at(time.Second), true, media), u.Data(at(7*time.Second), true, media)}
			},
		},
		{
			name: "UDP ICMP admin prohibited",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":3478")
				d := u.Data(at(0), true, setup)
				return []decode.Packet{d, reachtest.Unreachable(at(time.Millisecond), router, 64, 10, d)}
			},
			keys: []string{"icmp_sender", "icmp_code"},
			want: []string{"blocked_connection/icmp_admin_prohibited media udp:3478 icmp_code=10 icmp_sender=192.168.10.1"},
		},
		{
			name: "UDP to a non-media port is not judged",
			build: func() []decode.Packet {
				u := reachtest.NewUDP(client+":50001", mmr+":443")
				return []decode.Packet{u.Data(at(0), true, setup), u.Data(at(time.Second), true, setup), u.Data(at(6*time.Second), true, setup)}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.h.Feed(tc.build()...)
			e.h.Flush()
			equal(t, summary(e.sink.All(), tc.keys...), tc.want)
			want := fmt.Sprintf(`zoomprobe_udp_fallbacks_total{service="media"} %v`, tc.fb)
			if got := gather(t, e.reg, "zoomprobe_udp_fallbacks_total"); !strings.Contains(got, want) {
				t.Fatalf("want %s in\n%s", want, got)
			}
		})
	}
}

// Workers are sharded by address pair: a fallback to another server lands on
// another worker, joined through the shared state made in Init.
func TestFallbackAcrossWorkers(t *testing.T) {
	cfg := config.Default()
	sink := &reachtest.Sink{}
	p := pluginFor(t)
	ctor, err := p.Init(analyzersEnv(cfg, sink, prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := reachtest.NewHarness(ctor()), reachtest.NewHarness(ctor())
	for _, h := range []*reachtest.Harness{w1, w2} {
		h.Services[netip.MustParseAddr(mmr)] = zoom.ServiceMedia
		h.Services[netip.MustParseAddr(mmr2)] = zoom.ServiceMediaRouter
	}
	setup := append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...)
	u := reachtest.NewUDP(client+":50001", mmr+":8801")
	w1.Feed(u.Data(at(0), true, setup), u.Data(at(time.Second), true, setup), u.Data(at(6*time.Second), true, setup))
	c := reachtest.NewTCP(client+":40001", mmr2+":8802")
	w2.Feed(handshake(c, 8*time.Second)...)
	w1.Flush()
	w2.Flush()
	equal(t, summary(sink.All(), "udp_service"), []string{
		"blocked_connection/udp_no_answer media udp:8801",
		"udp_fallback/udp_fallback_to_tcp media_router tcp:8802 udp_service=media",
	})
}

func TestPortMatrixLatestWins(t *testing.T) {
	e := newEnv(t)
	// A connection opened at 20 s; a drop judged later about a SYN sent at 0 s must not overwrite it.
	ok := reachtest.NewTCP(client+":40002", mmr2+":8801")
	bad := reachtest.NewTCP(client+":40001", mmr+":8801")
	e.h.Feed(bad.SYN(at(0)), bad.SYN(at(time.Second)), bad.SYN(at(3*time.Second)), bad.SYN(at(7*time.Second)))
	e.h.Feed(handshake(ok, 20*time.Second)...)
	e.h.FlushAt(at(40 * time.Second))
	if got := e.a.PortStatus(zoom.ServiceMediaRouter, decode.ProtoTCP, 8801); got != reach.StatusOpen {
		t.Fatalf("status %s, want open", got)
	}
	out := gather(t, e.reg, "zoomprobe_port_status")
	for _, want := range []string{
		`zoomprobe_port_status{port="8801",service="media_router",status="open",transport="tcp"} 1`,
		`zoomprobe_port_status{port="8801",service="media_router",status="dropped",transport="tcp"} 0`,
		`zoomprobe_port_status{port="3478",service="media",status="not_seen",transport="udp"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}

// A reset copying the client's last IP ID is judged the same however many
// packets the client sent first: the record of its IP IDs must not wrap
// (it did at 256 packets, a uint8 count back to 0).
func TestCopiedIPIDAfterManyClientPackets(t *testing.T) {
	hello := reachtest.ClientHello("zoomfrn99mmr.zoom.us")
	for _, n := range []int{10, 255, 256, 257, 259, 300, 512, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnv(t)
			c := reachtest.NewTCP(client+":40001", mmr+":443")
			ps := handshake(c, 0) // two client packets
			for i := 0; i < n-3; i++ {
				ps = append(ps, c.ACK(at(22*time.Millisecond+time.Duration(i)*time.Microsecond), true))
			}
			ch := c.Data(at(30*time.Millisecond), true, hello) // the n-th client packet
			ps = append(ps, ch, c.Forged(at(31*time.Millisecond), false, 52, ch.IPID, nil))
			e.h.Feed(ps...)
			e.h.Flush()
			equal(t, summary(e.sink.All(), "ip_id_copied_from_client", "phase"),
				[]string{"connection_reset/sni_filtering media_router tcp:443 ip_id_copied_from_client=true phase=after_client_hello"})
		})
	}
}
