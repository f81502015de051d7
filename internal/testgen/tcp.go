package testgen

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCPOptions shapes one TCP connection. Zero values take the defaults.
type TCPOptions struct {
	RTT       time.Duration // default DefaultRTT
	ClientTTL uint8         // TTL/hop limit of the client's packets as captured; default 64
	ServerTTL uint8         // of the server's packets; default 52
	ClientMSS uint16        // announced MSS; default 1460 (IPv4) / 1440 (IPv6)
	ServerMSS uint16        // default like ClientMSS
	// ThinkTime is how long the client takes to answer the server; default 300µs.
	ThinkTime time.Duration
	// ClientISN and ServerISN fix the initial sequence numbers; 0 picks random ones.
	ClientISN, ServerISN uint32
}

// TCPConn is a simulated TCP connection between a client and a server.
// Methods emit the packets both ends would send, in order, as seen by a
// capture point next to the client.
type TCPConn struct {
	g              *Generator
	Client, Server netip.AddrPort
	opts           TCPOptions

	isn      [2]uint32
	next     [2]uint32 // next sequence number each side sends
	window   [2]uint16
	unacked  [2]int // segments sent by side d that the other side has not acked
	lastSeg  [2]segment
	lastIPID [2]uint16
	lastDir  Dir
	started  bool
	finSent  [2]bool
	flowLbl  [2]uint32
	// segSize, when set, replaces the MSS for Send (TLSCut.Segment).
	segSize int
	// badChecksum spoils the next segment's TCP checksum (Inject).
	badChecksum bool
}

type segment struct {
	seq, ack uint32
	flags    uint8
	payload  []byte
	valid    bool
}

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

// NewTCP prepares a connection without emitting anything; drive the handshake
// yourself with SYN, SYNACK and ACK (for dropped or refused SYNs).
func (g *Generator) NewTCP(client, server netip.AddrPort, opts TCPOptions) *TCPConn {
	if opts.RTT <= 0 {
		opts.RTT = DefaultRTT
	}
	if opts.ClientTTL == 0 {
		opts.ClientTTL = DefaultClientTTL
	}
	if opts.ServerTTL == 0 {
		opts.ServerTTL = DefaultServerTTL
	}
	mss := uint16(1460)
	if !client.Addr().Unmap().Is4() {
		mss = 1440
	}
	if opts.ClientMSS == 0 {
		opts.ClientMSS = mss
	}
	if opts.ServerMSS == 0 {
		opts.ServerMSS = mss
	}
	if opts.ThinkTime <= 0 {
		opts.ThinkTime = 300 * time.Microsecond
	}
	if opts.ClientISN == 0 {
		opts.ClientISN = g.rng.Uint32()
	}
	if opts.ServerISN == 0 {
		opts.ServerISN = g.rng.Uint32()
	}
	c := &TCPConn{g: g, Client: client, Server: server, opts: opts}
	c.isn = [2]uint32{opts.ClientISN, opts.ServerISN}
	c.next = c.isn
	c.window = [2]uint16{502, 509} // scaled by 2^7: ~64 KB
	c.flowLbl = [2]uint32{g.rng.Uint32(), g.rng.Uint32()}
	return c
}

// TCPConn opens a connection with a full three-way handshake.
func (g *Generator) TCPConn(client, server netip.AddrPort, opts TCPOptions) *TCPConn {
	c := g.NewTCP(client, server, opts)
	c.Handshake()
	return c
}

// Handshake emits SYN, SYN-ACK and ACK.
func (c *TCPConn) Handshake() {
	c.SYN()
	c.SYNACK()
	c.ACK(ClientToServer)
}

// MSS is the segment size both sides use (the smaller announced MSS).
func (c *TCPConn) MSS() int { return int(min(c.opts.ClientMSS, c.opts.ServerMSS)) }

// NextSeq is the next sequence number side d would send.
func (c *TCPConn) NextSeq(d Dir) uint32 { return c.next[d] }

// ISN is side d's initial sequence number.
func (c *TCPConn) ISN(d Dir) uint32 { return c.isn[d] }

// LastIPID is the IPv4 ID of side d's last packet.
func (c *TCPConn) LastIPID(d Dir) uint16 { return c.lastIPID[d] }

// Options returns the connection's effective options.
func (c *TCPConn) Options() TCPOptions { return c.opts }

// turn advances the clock for a packet in direction d: a full round trip when
// the server answers the client, the client's think time the other way.
func (c *TCPConn) turn(d Dir) {
	if c.started && d != c.lastDir {
		if d == ServerToClient {
			c.g.Advance(c.g.jitter(c.opts.RTT))
		} else {
			c.g.Advance(c.g.jitter(c.opts.ThinkTime))
		}
	}
	c.started = true
	c.lastDir = d
}

func (c *TCPConn) ends(d Dir) (src, dst netip.AddrPort, ttl uint8) {
	if d == ClientToServer {
		return c.Client, c.Server, c.opts.ClientTTL
	}
	return c.Server, c.Client, c.opts.ServerTTL
}

// raw emits one segment from side d with explicit fields.
func (c *TCPConn) raw(d Dir, seq, ack uint32, flags uint8, payload []byte, opts []layers.TCPOption, ttl uint8, ipid *uint16) Packet {
	c.turn(d)
	src, dst, defTTL := c.ends(d)
	if ttl == 0 {
		ttl = defTTL
	}
	t := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, Window: c.window[d], Options: opts,
		FIN: flags&flagFIN != 0, SYN: flags&flagSYN != 0, RST: flags&flagRST != 0,
		PSH: flags&flagPSH != 0, ACK: flags&flagACK != 0,
	}
	if flags&flagSYN != 0 {
		t.Window = 64240
		if d == ServerToClient {
			t.Window = 65160
		}
	}
	if flags&flagRST != 0 && flags&flagACK == 0 {
		t.Window = 0
	}
	ls := []gopacket.SerializableLayer{t}
	if len(payload) > 0 {
		ls = append(ls, gopacket.Payload(payload))
	}
	if ipid == nil && src.Addr().Is4() {
		ipid = U16(c.g.nextIPID(src.Addr()))
	}
	if ipid != nil {
		c.lastIPID[d] = *ipid
	}
	bad := c.badChecksum
	c.badChecksum = false
	return c.g.emitIP(ipParams{src: src.Addr(), dst: dst.Addr(), ttl: ttl, ipid: ipid, df: true, flowLabel: c.flowLbl[d], badChecksum: bad}, layers.IPProtocolTCP, ls...)
}

// synOptions are a common SYN option layout (12 bytes, no timestamps):
// MSS, NOP, NOP, SACK permitted, NOP, window scale 7.
func synOptions(mss uint16) []layers.TCPOption {
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}},
		nop, nop,
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		nop,
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
}

// SYN emits the client's SYN; calling it again is a retransmission (same ISN).
func (c *TCPConn) SYN() Packet {
	c.next[ClientToServer] = c.isn[ClientToServer] + 1
	return c.raw(ClientToServer, c.isn[ClientToServer], 0, flagSYN, nil, synOptions(c.opts.ClientMSS), 0, nil)
}

// SYNACK emits the server's SYN-ACK.
func (c *TCPConn) SYNACK() Packet {
	c.next[ServerToClient] = c.isn[ServerToClient] + 1
	return c.raw(ServerToClient, c.isn[ServerToClient], c.next[ClientToServer], flagSYN|flagACK, nil, synOptions(c.opts.ServerMSS), 0, nil)
}

// ACK emits a pure ACK from side d acknowledging everything received.
func (c *TCPConn) ACK(d Dir) Packet {
	c.unacked[d.other()] = 0
	return c.raw(d, c.next[d], c.next[d.other()], flagACK, nil, nil, 0, nil)
}

// Send emits data from side d, cut into MSS-sized segments (PSH on the last),
// with the receiver acknowledging every second segment as delayed ACK does.
// An acknowledgement still owed by side d goes out piggybacked on its data.
func (c *TCPConn) Send(d Dir, data []byte) []Packet {
	var out []Packet
	if c.unacked[d] > 0 {
		// The other side owes an ACK for data d sent earlier: it goes out now,
		// before d sends more (after the usual delayed-ACK wait).
		out = append(out, c.ACK(d.other()))
	}
	mss := c.MSS()
	if c.segSize > 0 {
		mss = c.segSize
	}
	for len(data) > 0 {
		n := min(len(data), mss)
		flags := uint8(flagACK)
		if n == len(data) {
			flags |= flagPSH
		}
		seg := append([]byte(nil), data[:n]...)
		c.lastSeg[d] = segment{seq: c.next[d], ack: c.next[d.other()], flags: flags, payload: seg, valid: true}
		c.unacked[d.other()] = 0 // our segments carry the ACK for what we received
		out = append(out, c.raw(d, c.next[d], c.next[d.other()], flags, seg, nil, 0, nil))
		c.next[d] += uint32(n)
		c.unacked[d]++
		data = data[n:]
		if c.unacked[d] >= 2 && len(data) > 0 {
			// Delayed ACK for every second segment; the sender's window keeps
			// it sending, so no round trip passes here.
			c.unacked[d] = 0
			c.lastDir = d.other()
			out = append(out, c.raw(d.other(), c.next[d.other()], c.next[d], flagACK, nil, nil, 0, nil))
			c.lastDir = d
		}
	}
	return out
}

// Retransmit re-sends side d's last data segment after a retransmission
// timeout (200 ms or twice the RTT, whichever is larger).
func (c *TCPConn) Retransmit(d Dir) Packet {
	s := c.lastSeg[d]
	if !s.valid {
		return Packet{}
	}
	c.g.Advance(max(200*time.Millisecond, 2*c.opts.RTT))
	return c.raw(d, s.seq, c.next[d.other()], s.flags, s.payload, nil, 0, nil)
}

// RetransmitUnanswered re-sends side d's last data segment after a
// retransmission timeout with the acknowledgement it first carried: side d
// never received what the other side sent since (lost on its way to d after
// the capture point saw it).
func (c *TCPConn) RetransmitUnanswered(d Dir, rto time.Duration) Packet {
	s := c.lastSeg[d]
	if !s.valid {
		return Packet{}
	}
	c.g.Advance(rto)
	return c.raw(d, s.seq, s.ack, s.flags, s.payload, nil, 0, nil)
}

// FIN emits a FIN-ACK from side d.
func (c *TCPConn) FIN(d Dir) Packet {
	c.unacked[d.other()] = 0
	p := c.raw(d, c.next[d], c.next[d.other()], flagFIN|flagACK, nil, nil, 0, nil)
	c.next[d]++
	c.finSent[d] = true
	return p
}

// Close emits the usual teardown started by the client: FIN-ACK, FIN-ACK, ACK.
func (c *TCPConn) Close() []Packet { return c.CloseFrom(ClientToServer) }

// CloseFrom emits a teardown started by side d.
func (c *TCPConn) CloseFrom(d Dir) []Packet {
	return []Packet{c.FIN(d), c.FIN(d.other()), c.ACK(d)}
}

// ResetOptions shape an RST, typically one a middlebox injects.
type ResetOptions struct {
	TTL     uint8   // 0: the sender's usual TTL
	IPID    *uint16 // nil: the sender's next IP ID (IPv4)
	Payload []byte  // some injectors put data in their RSTs
	Seq     *uint32 // nil: the sender's next sequence number
	NoACK   bool    // plain RST without the ACK flag
	// Ack overrides the acknowledgement number (ignored with NoACK).
	Ack *uint32
}

// Reset emits an RST (with ACK unless NoACK) from side d. An RST answering a
// SYN acknowledges the SYN and carries sequence number 0, as stacks do.
func (c *TCPConn) Reset(d Dir, o ResetOptions) Packet {
	seq := c.next[d]
	if d == ServerToClient && c.next[ServerToClient] == c.isn[ServerToClient] {
		seq = 0 // server never sent a SYN-ACK: RST in answer to the SYN
	}
	if o.Seq != nil {
		seq = *o.Seq
	}
	flags := uint8(flagRST | flagACK)
	ack := c.next[d.other()]
	if o.Ack != nil {
		ack = *o.Ack
	}
	if o.NoACK {
		flags, ack = flagRST, 0
	}
	return c.raw(d, seq, ack, flags, o.Payload, nil, o.TTL, o.IPID)
}
