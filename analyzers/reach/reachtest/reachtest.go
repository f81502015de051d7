// Package reachtest drives analyzers with hand-built decode.Packet sequences:
// TCP and UDP conversations with realistic TTLs, IP IDs and sequence numbers,
// ICMP errors quoting them, and a harness that runs them through a
// flow.Table and the identity stage the way the engine does (identity, then
// Packet, ICMP, Expire). Tests of the reach, httpinspect and dnsfilter analyzers use
// it; so can the test bed's assertions.
package reachtest

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/identity"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// Sink collects findings.
type Sink struct {
	mu       sync.Mutex
	Findings []finding.Finding
}

// Emit implements finding.Sink.
func (s *Sink) Emit(f finding.Finding) {
	s.mu.Lock()
	s.Findings = append(s.Findings, f)
	s.mu.Unlock()
}

// All returns a copy of the findings so far.
func (s *Sink) All() []finding.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]finding.Finding(nil), s.Findings...)
}

// Harness is one worker: a flow table, the identity stage and analyzers.
type Harness struct {
	Table     *flow.Table
	Analyzers []analyzers.Analyzer
	// Services are the Zoom ranges the identity stage knows, one address
	// each (ServiceWatched: a watched address); set them before the first
	// Feed. Identity refines them by port as in the engine.
	Services map[netip.Addr]zoom.Service
	// Names are the DNS cache's answers, per server address.
	Names map[netip.Addr]string
	Last  time.Time

	identity *identity.Stage
}

// NewHarness makes a harness with the default flow configuration.
func NewHarness(as ...analyzers.Analyzer) *Harness {
	return NewHarnessConfig(flow.DefaultConfig(), as...)
}

// NewHarnessConfig makes a harness with the given flow configuration.
func NewHarnessConfig(cfg flow.Config, as ...analyzers.Analyzer) *Harness {
	h := &Harness{Analyzers: as, Services: map[netip.Addr]zoom.Service{}, Names: map[netip.Addr]string{}}
	h.Table = flow.NewTable(cfg, func(f *flow.Flow, now time.Time, why flow.ExpireReason) {
		for _, a := range h.Analyzers {
			a.Expire(f, now, why)
		}
		h.identity.Expire(f)
	})
	return h
}

// stage builds the identity stage from Services and Names.
func (h *Harness) stage() *identity.Stage {
	var zoomRanges []zoom.RangeEntry
	var watch config.WatchConfig
	for a, s := range h.Services {
		p := netip.PrefixFrom(a, a.BitLen())
		if s == zoom.ServiceWatched {
			watch.Prefixes = append(watch.Prefixes, p)
			continue
		}
		zoomRanges = append(zoomRanges, zoom.RangeEntry{Prefix: p, Service: s})
	}
	names := zoom.NewNameCache(16 + len(h.Names))
	for a, n := range h.Names {
		names.Put(a, n, time.Time{}, time.Time{})
	}
	return identity.New(identity.Config{Classifier: zoom.NewClassifier(zoom.NewRanges(zoomRanges), watch), Names: names})
}

// Feed runs packets through the table and analyzers, advancing packet time.
func (h *Harness) Feed(ps ...decode.Packet) {
	for i := range ps {
		p := &ps[i]
		if p.Time.After(h.Last) {
			h.Last = p.Time
		}
		if h.identity == nil {
			h.identity = h.stage()
		}
		h.Table.Advance(p.Time)
		switch {
		case p.IsTCP() || p.IsUDP():
			f, d, created := h.Table.Packet(p)
			h.identity.Packet(f, p, d, created)
			for _, a := range h.Analyzers {
				a.Packet(f, p, d)
			}
		case p.IsICMP() && p.ICMP.Quoted:
			q := &p.ICMP
			if f, d := h.Table.Find(q.QProto, q.QSrc, q.QDst, q.QSrcPort, q.QDstPort); f != nil {
				for _, a := range h.Analyzers {
					a.ICMP(f, p, d)
				}
			}
		}
	}
}

// Flush ends the capture at the last packet time (as the engine does).
func (h *Harness) Flush() { h.Table.Flush(h.Last) }

// FlushAt ends the capture at t.
func (h *Harness) FlushAt(t time.Time) { h.Table.Flush(t) }

// Conn builds the packets of one TCP or UDP conversation as seen at a capture
// point: TTLs as they arrive there, per-host incrementing IP IDs, sequence
// numbers that advance with payload.
type Conn struct {
	Proto                uint8
	Client, Server       netip.AddrPort
	ClientTTL, ServerTTL uint8
	ClientIPID           uint16
	ServerIPID           uint16
	cSeq, sSeq           uint32
	cISN, sISN           uint32
}

// NewTCP starts a TCP conversation; TTLs 64 (client next to the capture)
// and 52 (server a dozen hops away) unless changed.
func NewTCP(client, server string) *Conn {
	return &Conn{
		Proto: decode.ProtoTCP, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server),
		ClientTTL: 64, ServerTTL: 52, ClientIPID: 0x3a10, ServerIPID: 0x9c40,
		cISN: 0x1e2d3c4b, sISN: 0x7a6b5c4d, cSeq: 0x1e2d3c4b, sSeq: 0x7a6b5c4d,
	}
}

// NewUDP starts a UDP conversation.
func NewUDP(client, server string) *Conn {
	c := NewTCP(client, server)
	c.Proto = decode.ProtoUDP
	return c
}

// ISN returns the client's initial sequence number.
func (c *Conn) ISN() uint32 { return c.cISN }

// ServerNext returns the server's next sequence number.
func (c *Conn) ServerNext() uint32 { return c.sSeq }

// ClientNext returns the client's next sequence number.
func (c *Conn) ClientNext() uint32 { return c.cSeq }

func (c *Conn) base(t time.Time, toServer bool) decode.Packet {
	p := decode.Packet{Time: t, Proto: c.Proto}
	if toServer {
		p.Src, p.Dst, p.SrcPort, p.DstPort, p.TTL = c.Client.Addr(), c.Server.Addr(), c.Client.Port(), c.Server.Port(), c.ClientTTL
		if p.Src.Is4() {
			c.ClientIPID++
			p.IPID = c.ClientIPID
		}
	} else {
		p.Src, p.Dst, p.SrcPort, p.DstPort, p.TTL = c.Server.Addr(), c.Client.Addr(), c.Server.Port(), c.Client.Port(), c.ServerTTL
		if p.Src.Is4() {
			c.ServerIPID++
			p.IPID = c.ServerIPID
		}
	}
	p.IPVersion = 6
	if p.Src.Is4() {
		p.IPVersion = 4
	}
	p.WireLen = 54
	return p
}

// SYN is the client's SYN (or its retransmission).
func (c *Conn) SYN(t time.Time) decode.Packet {
	p := c.base(t, true)
	p.TCPFlags, p.Seq, p.Window = decode.TCPSyn, c.cISN, 64240
	c.cSeq = c.cISN + 1
	return p
}

// SYNACK is the server's answer.
func (c *Conn) SYNACK(t time.Time) decode.Packet {
	p := c.base(t, false)
	p.TCPFlags, p.Seq, p.Ack, p.Window = decode.TCPSyn|decode.TCPAck, c.sISN, c.cISN+1, 65160
	c.sSeq = c.sISN + 1
	return p
}

// ACK is a bare ACK from the client (toServer) or the server.
func (c *Conn) ACK(t time.Time, toServer bool) decode.Packet {
	p := c.base(t, toServer)
	p.TCPFlags, p.Seq, p.Ack = decode.TCPAck, c.cSeq, c.sSeq
	if !toServer {
		p.Seq, p.Ack = c.sSeq, c.cSeq
	}
	return p
}

// Data sends payload (TCP PSH|ACK, or a UDP datagram).
func (c *Conn) Data(t time.Time, toServer bool, payload []byte) decode.Packet {
	p := c.base(t, toServer)
	p.Payload = payload
	if c.Proto == decode.ProtoUDP {
		return p
	}
	p.TCPFlags = decode.TCPPsh | decode.TCPAck
	if toServer {
		p.Seq, p.Ack = c.cSeq, c.sSeq
		c.cSeq += uint32(len(payload))
	} else {
		p.Seq, p.Ack = c.sSeq, c.cSeq
		c.sSeq += uint32(len(payload))
	}
	return p
}

// FIN closes one direction.
func (c *Conn) FIN(t time.Time, toServer bool) decode.Packet {
	p := c.base(t, toServer)
	p.TCPFlags = decode.TCPFin | decode.TCPAck
	if toServer {
		p.Seq, p.Ack = c.cSeq, c.sSeq
		c.cSeq++
	} else {
		p.Seq, p.Ack = c.sSeq, c.cSeq
		c.sSeq++
	}
	return p
}

// RST is a genuine reset from one end at its current sequence number
// (RST|ACK acknowledging the SYN when the connection was never answered).
func (c *Conn) RST(t time.Time, toServer bool) decode.Packet {
	p := c.base(t, toServer)
	p.TCPFlags = decode.TCPRst | decode.TCPAck
	if toServer {
		p.Seq, p.Ack = c.cSeq, c.sSeq
	} else {
		p.Seq, p.Ack = c.sSeq, c.cSeq
		if c.sSeq == 0 || c.sSeq == c.sISN {
			p.Seq = 0
		}
	}
	return p
}

// Forged is a reset injected toward the client (or the server) by a
// middlebox: in window, with the TTL and IP ID it chooses; the ends' IP ID
// counters are not advanced.
func (c *Conn) Forged(t time.Time, toServer bool, ttl uint8, ipid uint16, payload []byte) decode.Packet {
	p := c.RST(t, toServer)
	if toServer {
		c.ClientIPID--
	} else {
		c.ServerIPID--
	}
	p.TTL, p.IPID, p.Payload = ttl, ipid, payload
	return p
}

// Unreachable is an ICMP (v4 type 3) or ICMPv6 (type 1) destination
// unreachable from sender about the packet q.
func Unreachable(t time.Time, sender string, ttl uint8, code uint8, q decode.Packet) decode.Packet {
	src := netip.MustParseAddr(sender)
	p := decode.Packet{Time: t, Src: src, Dst: q.Src, TTL: ttl, WireLen: 70}
	if src.Is4() {
		p.IPVersion, p.Proto, p.IPID = 4, decode.ProtoICMP, 0x1111
		p.ICMP.Type = 3
	} else {
		p.IPVersion, p.Proto = 6, decode.ProtoICMPv6
		p.ICMP.Type = 1
	}
	p.ICMP.Code = code
	p.ICMP.Quoted = true
	p.ICMP.QProto, p.ICMP.QSrc, p.ICMP.QDst = q.Proto, q.Src, q.Dst
	p.ICMP.QSrcPort, p.ICMP.QDstPort, p.ICMP.QSeq, p.ICMP.QIPID = q.SrcPort, q.DstPort, q.Seq, q.IPID
	return p
}

// ClientHello returns the first TLS record a real crypto/tls client sends
// for sni (trimmed to its record, so it fits one segment in tests).
func ClientHello(sni string) []byte {
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		c := tls.Client(cli, &tls.Config{ServerName: sni, MinVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.X25519}})
		_ = c.Handshake()
		c.Close()
	}()
	buf := make([]byte, 1<<14)
	n, _ := io.ReadAtLeast(srv, buf, 5)
	for n >= 5 && n < 5+(int(buf[3])<<8|int(buf[4])) {
		m, err := srv.Read(buf[n:])
		if err != nil {
			break
		}
		n += m
	}
	if n < 5 {
		return nil
	}
	return buf[:min(n, 5+(int(buf[3])<<8|int(buf[4])))]
}
