package testgen

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/zoomprobe/zoomprobe/zoom"
)

// Two capture points around one box (a firewall doing NAT with sequence
// randomisation): the inside capture is what the clients' side sees, the
// outside one what leaves toward Zoom, translated. analyze --box matches
// them (package boxmatch).

// BoxNAT is the box's outside address in the generated captures.
var BoxNAT = netip.MustParseAddr("203.0.113.40")

// boxSeqShift is the box's sequence-number randomisation (one offset for
// every connection, which is all a matcher that ignores sequence numbers
// needs to be shown).
const boxSeqShift = 0x3c5a0000

// BoxVerdict is what zoomprobe should say a box did.
type BoxVerdict struct {
	Verdict    string // boxmatch verdict: dropped_outbound, dropped_inbound, reset_by_box, icmp_by_box
	Transport  string
	Client     netip.Addr // as seen on the side the packets were seen on
	Server     netip.Addr
	ServerPort uint16
	Service    zoom.Service
}

// BoxScenario is a box's two captures and what zoomprobe should say.
type BoxScenario struct {
	Name, Description string
	Inside, Outside   []Packet
	Verdicts          []BoxVerdict // the box's; empty: nothing
	// Beyond are blocks past the box, said by the outside capture's flow
	// (where beyond_probe, the client as the NAT address); Verdict is the
	// reason.
	Beyond []BoxVerdict
	// NotZoom counts the packets of each side that are not Zoom's (the
	// matcher only keeps time with them).
	NotZoom int
}

// BoxScenarios lists the two-sided scenarios.
func BoxScenarios() []string { return []string{"box-drops", "box-clean", "box-beyond"} }

// BuildBox builds a two-sided scenario: "box-drops" (the box drops Zoom's
// UDP 8801 and resets TCP 8802, while 443 passes) or "box-clean" (all
// passes through the NAT).
func BuildBox(name string, p Params) (*BoxScenario, error) {
	p = p.withDefaults()
	g := New(p.Seed, p.Start)
	a := PlanV4
	s := &BoxScenario{Name: name}
	blocked := map[string]bool{} // frames that never reach the outside
	block := func(ps ...Packet) {
		for _, x := range ps {
			blocked[string(x.Data)] = true
		}
	}
	eph := func() netip.AddrPort { return netip.AddrPortFrom(a.Client, g.EphemeralPort()) }

	// What passes in both scenarios: a second client's TCP connection to
	// the zone controller on 443 with data both ways (the first client's
	// would join its UDP failure as a fallback to TCP, another finding).
	zc := g.TCPConn(netip.AddrPortFrom(a.Client2, g.EphemeralPort()), netip.AddrPortFrom(a.ZC, 443), TCPOptions{})
	zc.Send(ClientToServer, []byte("\x16\x03\x01\x00\x40client-hello-bytes-of-a-zoom-client-0123456789abcdef0123456789"))
	zc.Send(ServerToClient, []byte("\x16\x03\x03\x00\x30server-hello-and-the-rest-0123456789abcdef"))
	zc.Close()
	g.Advance(100 * time.Millisecond)

	switch name {
	case "box-clean":
		s.Description = "A NAT with sequence randomisation passes everything: TCP 443 to the zone controller, TCP 8802 and answered UDP 8801 media to the media router; each packet is on both sides, translated; no finding"
		mmr := g.TCPConn(eph(), netip.AddrPortFrom(a.MMR, 8802), TCPOptions{})
		mmr.Send(ClientToServer, []byte("zoom-8802-hello"))
		mmr.Send(ServerToClient, []byte("zoom-8802-answer"))
		mmr.Close()
		u := g.UDP(eph(), netip.AddrPortFrom(a.MMR, 8801), UDPOptions{})
		for i := range 6 {
			u.Send(ClientToServer, zoomMediaPayload(i))
			u.Send(ServerToClient, zoomMediaPayload(100+i))
			g.Advance(20 * time.Millisecond)
		}
	case "box-drops":
		s.Description = "The box drops the client's UDP 8801 to the media router (set-up sent at 0, 0.5, 1.5 and 3.5 s, seen inside only) and refuses TCP 8802 with its own reset (SYN at 0, 1 and 3 s, each reset from the box, seen inside only); TCP 443 passes; findings name the box"
		u := g.UDP(eph(), netip.AddrPortFrom(a.MMR, 8801), UDPOptions{})
		for i, wait := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 0} {
			setup := zoomMediaPayload(i)
			setup[0] = 0x01 // a set-up request, not media (media would mean the set-up was answered)
			block(u.Send(ClientToServer, setup))
			g.Advance(wait)
		}
		c := g.NewTCP(eph(), netip.AddrPortFrom(a.MMR, 8802), TCPOptions{})
		ttl := uint8(64) // the box is the client's first hop
		for i, wait := range []time.Duration{time.Second, 2 * time.Second, 0} {
			block(c.SYN())
			g.Advance(300 * time.Microsecond)
			block(c.Reset(ServerToClient, ResetOptions{TTL: ttl, IPID: U16(uint16(0x100 + i))}))
			g.Advance(wait)
		}
		s.Verdicts = []BoxVerdict{
			{Verdict: "dropped_outbound", Transport: "udp", Client: u.Client.Addr(), Server: a.MMR, ServerPort: 8801, Service: zoom.ServiceMedia},
			{Verdict: "reset_by_box", Transport: "tcp", Client: c.Client.Addr(), Server: a.MMR, ServerPort: 8802, Service: zoom.ServiceMediaRouter},
		}
	case "box-beyond":
		s.Description = "The box passes everything; beyond it TCP 8801 to the media router is dropped: the SYNs at 0, 1, 3 and 7 s are on both sides and never answered; one finding, beyond the probe, from the outside capture, none from the box"
		c := g.NewTCP(eph(), netip.AddrPortFrom(a.MMR, 8801), TCPOptions{})
		// The last SYN comes after reachability.syn_timeout, in the flow
		// itself: the capture's end judges it whatever worker holds it.
		for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 0} {
			c.SYN()
			g.Advance(wait)
		}
		s.Beyond = []BoxVerdict{{Verdict: "generic_timeout_error", Transport: "tcp", Client: BoxNAT, Server: a.MMR, ServerPort: 8801, Service: zoom.ServiceMediaRouter}}
	default:
		return nil, fmt.Errorf("testgen: unknown box scenario %q (%v)", name, BoxScenarios())
	}
	if err := g.Flush(); err != nil {
		return nil, err
	}
	for _, x := range g.Packets() {
		s.Inside = append(s.Inside, x)
		if blocked[string(x.Data)] {
			continue
		}
		o, err := boxNAT(x, a.Client, a.Client2)
		if err != nil {
			return nil, err
		}
		s.Outside = append(s.Outside, o)
	}
	sort.SliceStable(s.Outside, func(i, j int) bool { return s.Outside[i].Time.Before(s.Outside[j].Time) })
	return s, nil
}

// zoomMediaPayload is a datagram of Zoom's media framing (type 5), distinct
// per i.
func zoomMediaPayload(i int) []byte {
	b := make([]byte, 48)
	b[0] = 5
	b[1], b[2] = byte(i>>8), byte(i)
	for j := 3; j < len(b); j++ {
		b[j] = byte(i*31 + j)
	}
	return b
}

// boxNAT is a packet as the outside capture sees it: the client's address
// and port translated, sequence (outbound) or acknowledgement (inbound)
// numbers shifted, TTL one less after the box, 150 µs after the inside
// copy (outbound) or before it (inbound); IP ID, TCP options and payload
// kept, as Linux NAT keeps them.
func boxNAT(x Packet, clients ...netip.Addr) (Packet, error) {
	pk := gopacket.NewPacket(x.Data, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		return Packet{}, fmt.Errorf("testgen: box scenarios are IPv4 over Ethernet")
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	out := false
	for _, c := range clients {
		out = out || src.Unmap() == c
	}
	const delay = 150 * time.Microsecond
	t := x.Time.Add(delay)
	if out {
		ip.SrcIP = BoxNAT.AsSlice()
		ip.TTL--
	} else {
		ip.DstIP = BoxNAT.AsSlice()
		ip.TTL++ // the inside copy is the one after the box
		t = x.Time.Add(-delay)
	}
	ls := []gopacket.SerializableLayer{eth, ip}
	switch l4 := pk.TransportLayer().(type) {
	case *layers.TCP:
		if out {
			l4.SrcPort = natPort(l4.SrcPort)
			l4.Seq += boxSeqShift
		} else {
			l4.DstPort = natPort(l4.DstPort)
			if l4.ACK {
				l4.Ack += boxSeqShift
			}
		}
		l4.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l4, gopacket.Payload(l4.Payload))
	case *layers.UDP:
		if out {
			l4.SrcPort = natPort(l4.SrcPort)
		} else {
			l4.DstPort = natPort(l4.DstPort)
		}
		l4.SetNetworkLayerForChecksum(ip)
		ls = append(ls, l4, gopacket.Payload(l4.Payload))
	default:
		return Packet{}, fmt.Errorf("testgen: box scenarios carry TCP and UDP only")
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return Packet{}, err
	}
	return Packet{Time: t, Data: buf.Bytes()}, nil
}

// natPort is the box's port for a client port (--random: not the same).
func natPort[P ~uint16](p P) P { return P(40000 + (uint16(p)*7919)%20000) }

// WriteFiles writes the scenario's two sides as pcap files in dir and
// returns their paths (inside, outside), for analyze --box.
func (sc *BoxScenario) WriteFiles(dir string) (inside, outside string, err error) {
	inside, outside = filepath.Join(dir, "inside.pcap"), filepath.Join(dir, "outside.pcap")
	for path, pkts := range map[string][]Packet{inside: sc.Inside, outside: sc.Outside} {
		f, err := os.Create(path)
		if err != nil {
			return "", "", err
		}
		err = WritePackets(f, FormatPCAP, pkts)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", "", err
		}
	}
	return inside, outside, nil
}
