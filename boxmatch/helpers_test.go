package boxmatch

import (
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/decode"
)

// import analyzers, which imports this package).
type conn struct {
	proto          uint8
	client, server netip.AddrPort
	ipid           uint16
	cSeq, sSeq     uint32
}

func newTCP(client, server string) *conn {
	return &conn{proto: decode.ProtoTCP, client: netip.MustParseAddrPort(client), server: netip.MustParseAddrPort(server),
		ipid: 0x3a10, cSeq: 0x1e2d3c4b, sSeq: 0x7a6b5c4d}
}

func newUDP(client, server string) *conn {
	c := newTCP(client, server)
	c.proto = decode.ProtoUDP
	return c
}

func (c *conn) base(t time.Time, toServer bool) decode.Packet {
	c.ipid++
	p := decode.Packet{Time: t, Proto: c.proto, IPVersion: 4, IPID: c.ipid, TTL: 64}
	if toServer {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.client.Addr(), c.server.Addr(), c.client.Port(), c.server.Port()
		p.Seq, p.Ack = c.cSeq, c.sSeq
	} else {
		p.Src, p.Dst, p.SrcPort, p.DstPort = c.server.Addr(), c.client.Addr(), c.server.Port(), c.client.Port()
		p.Seq, p.Ack = c.sSeq, c.cSeq
	}
	return p
}

func (c *conn) SYN(t time.Time) decode.Packet {
	p := c.base(t, true)
	p.TCPFlags = decode.TCPSyn
	return p
}

func (c *conn) SYNACK(t time.Time) decode.Packet {
	p := c.base(t, false)
	p.TCPFlags = decode.TCPSyn | decode.TCPAck
	return p
}

func (c *conn) ACK(t time.Time, toServer bool) decode.Packet {
	p := c.base(t, toServer)
	p.TCPFlags = decode.TCPAck
	return p
}

func (c *conn) Data(t time.Time, toServer bool, payload []byte) decode.Packet {
	p := c.base(t, toServer)
	p.Payload = payload
	if c.proto == decode.ProtoTCP {
		p.TCPFlags = decode.TCPPsh | decode.TCPAck
		if toServer {
			c.cSeq += uint32(len(payload))
		} else {
			c.sSeq += uint32(len(payload))
		}
	}
	return p
}

func (c *conn) RST(t time.Time, toServer bool) decode.Packet {
	p := c.base(t, toServer)
	p.TCPFlags = decode.TCPRst | decode.TCPAck
	return p
}

// unreachable is an ICMP destination unreachable from sender about q.
func unreachable(t time.Time, sender string, code uint8, q decode.Packet) decode.Packet {
	p := decode.Packet{Time: t, Src: netip.MustParseAddr(sender), Dst: q.Src, TTL: 64, IPVersion: 4, Proto: decode.ProtoICMP, IPID: 0x1111}
	p.ICMP = decode.ICMP{Type: 3, Code: code, Quoted: true, QProto: q.Proto, QSrc: q.Src, QDst: q.Dst,
		QSrcPort: q.SrcPort, QDstPort: q.DstPort, QSeq: q.Seq, QIPID: q.IPID}
	return p
}
