// Package evidencetest reads an evidence pcapng back with gopacket and checks
// that it holds the packets that prove its finding. The offline and test-bed
// tests share it.
package evidencetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
)

// File is what an evidence file holds, read back.
type File struct {
	Comment string
	Packets []Packet
}

// Packet is one packet of the file, decoded by zoomprobe's decoder; Layer is
// the innermost of ICMP, transport or network layer gopacket found.
type Packet struct {
	decode.Packet
	Layer    gopacket.LayerType
	Comments []string
	ToServer bool // sent by the finding's client (ICMP: quotes a client packet)
}

// Read reads path with pcapgo.NgReader and relates each packet to x's flow.
func Read(path string, x *finding.Finding) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r, err := pcapgo.NewNgReader(fh, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: not pcapng: %w", path, err)
	}
	out := &File{Comment: r.SectionInfo().Comment}
	// As the daemon decodes by default: tunnels peeled on their IANA ports.
	dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}, GenevePorts: []uint16{6081}, GTPUPorts: []uint16{2152}})
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			return nil, err
		}
		data = append([]byte(nil), data...)
		var p Packet
		if err := dec.Decode(data, decode.LinkType(intf.LinkType), ci.Timestamp, ci.Length, &p.Packet); err != nil {
			return nil, fmt.Errorf("%s: packet %d does not decode: %w", path, len(out.Packets)+1, err)
		}
		gp := gopacket.NewPacket(data, intf.LinkType, gopacket.Default)
		switch {
		case gp.Layer(layers.LayerTypeICMPv4) != nil:
			p.Layer = layers.LayerTypeICMPv4
		case gp.Layer(layers.LayerTypeICMPv6) != nil:
			p.Layer = layers.LayerTypeICMPv6
		case gp.TransportLayer() != nil:
			p.Layer = gp.TransportLayer().LayerType()
		case gp.NetworkLayer() != nil:
			p.Layer = gp.NetworkLayer().LayerType() // a tunnel gopacket does not peel (ERSPAN III)
		}
		p.Comments = opts.Comments
		if x.Flow != nil {
			if p.IsICMP() {
				p.ToServer = p.ICMP.QSrc == x.Flow.Client
			} else {
				p.ToServer = p.Src == x.Flow.Client && p.SrcPort == x.Flow.ClientPort
			}
		}
		out.Packets = append(out.Packets, p)
	}
	return out, nil
}

// Check reads path and checks it proves x: the comment names the finding,
// every packet belongs to the finding's flow (or is an ICMP error quoting
// it) and gopacket decodes its transport, no TLS application data is kept,
// and the packets the finding's kind rests on are there.
func Check(path string, x *finding.Finding) (*File, error) {
	f, err := Read(path, x)
	if err != nil {
		return nil, err
	}
	if want := fmt.Sprintf("kind=%s reason=%s", x.Kind, x.Reason); !strings.Contains(f.Comment, want) {
		return f, fmt.Errorf("%s: section comment %q does not name %s", path, f.Comment, want)
	}
	if len(f.Packets) == 0 {
		return f, fmt.Errorf("%s: no packets (%s)", path, f.Comment)
	}
	if len(f.Packets[0].Comments) == 0 {
		return f, fmt.Errorf("%s: first packet has no comment", path)
	}
	for i, p := range f.Packets {
		if p.Layer == gopacket.LayerTypeZero {
			return f, fmt.Errorf("%s: gopacket finds no IP layer in packet %d", path, i+1)
		}
		if x.Flow != nil && !belongs(&p, x.Flow) && !(x.Kind == finding.KindUDPFallback && failedUDP(&p, x)) {
			return f, fmt.Errorf("%s: packet %d (%s:%d > %s:%d) is not of the finding's flow", path, i+1, p.Src, p.SrcPort, p.Dst, p.DstPort)
		}
		if p.IsTCP() && len(p.Payload) >= 3 && p.Payload[0] == 0x17 && p.Payload[1] == 3 {
			return f, fmt.Errorf("%s: packet %d keeps TLS application data", path, i+1)
		}
	}
	return f, f.proves(x)
}

func belongs(p *Packet, fl *finding.Flow) bool {
	a, b := p.Src, p.Dst
	ap, bp := p.SrcPort, p.DstPort
	if p.IsICMP() {
		a, b, ap, bp = p.ICMP.QSrc, p.ICMP.QDst, p.ICMP.QSrcPort, p.ICMP.QDstPort
	}
	return a == fl.Client && ap == fl.ClientPort && b == fl.Server && bp == fl.ServerPort ||
		b == fl.Client && bp == fl.ClientPort && a == fl.Server && ap == fl.ServerPort
}

// failedUDP reports a datagram of the UDP flow a fallback replaced (between
// the same hosts, to the port the finding names), or an ICMP error quoting one.
func failedUDP(p *Packet, x *finding.Finding) bool {
	port, _ := x.Evidence["udp_port"].(float64) // as read back from JSON
	if n, ok := x.Evidence["udp_port"].(int); ok {
		port = float64(n)
	}
	if p.IsICMP() && p.ICMP.Quoted { // an ICMP error quoting the failed flow
		return p.ICMP.QProto == decode.ProtoUDP && p.ICMP.QSrc == x.Flow.Client && p.ICMP.QDst == x.Flow.Server && float64(p.ICMP.QDstPort) == port
	}
	if !p.IsUDP() {
		return false
	}
	return p.Src == x.Flow.Client && p.Dst == x.Flow.Server && float64(p.DstPort) == port ||
		p.Dst == x.Flow.Client && p.Src == x.Flow.Server && float64(p.SrcPort) == port
}

// proves checks the packets the finding rests on.
func (f *File) proves(x *finding.Finding) error {
	need := func(what string, ok func(p *Packet) bool) error {
		for i := range f.Packets {
			if ok(&f.Packets[i]) {
				return nil
			}
		}
		return fmt.Errorf("%s/%s: no %s among %d packets", x.Kind, x.Reason, what, len(f.Packets))
	}
	syn := func(p *Packet) bool { return p.IsTCP() && p.ToServer && p.TCPFlags&decode.TCPSyn != 0 }
	rstToClient := func(p *Packet) bool { return p.IsTCP() && !p.ToServer && p.TCPFlags&decode.TCPRst != 0 }
	clientUDP := func(p *Packet) bool { return p.IsUDP() && p.ToServer }
	icmpErr := func(p *Packet) bool { return p.IsICMP() && p.ICMP.Quoted && p.ToServer }
	clientHello := func(p *Packet) bool { return p.ToServer && hasHandshake(p.Payload, 1) }
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch x.Reason {
	case finding.ReasonTimeout:
		add(need("client SYN", syn))
	case finding.ReasonConnectionRefused:
		add(need("client SYN", syn))
		add(need("RST to the client", rstToClient))
	case finding.ReasonICMPAdminProhibited, finding.ReasonICMPHostUnreachable, finding.ReasonICMPNetUnreachable,
		finding.ReasonICMPPortUnreachable, finding.ReasonICMPUnreachable:
		add(need("ICMP error quoting the client's packet", icmpErr))
		add(need("client packet", func(p *Packet) bool { return syn(p) || clientUDP(p) }))
	case finding.ReasonUDPNoAnswer:
		add(need("client datagram", clientUDP))
	case finding.ReasonConnectionReset, finding.ReasonSNIFiltering:
		add(need("RST or TLS alert to the client", func(p *Packet) bool {
			return rstToClient(p) || p.IsTCP() && !p.ToServer && len(p.Payload) >= 5 && p.Payload[0] == 0x15
		}))
		if x.Reason == finding.ReasonSNIFiltering {
			add(need("ClientHello", clientHello))
		}
	case finding.ReasonProxyDenied, finding.ReasonProxyAuthRequired, finding.ReasonProxyBadGateway:
		code := map[finding.Reason]string{finding.ReasonProxyDenied: " 403", finding.ReasonProxyAuthRequired: " 407", finding.ReasonProxyBadGateway: " 50"}[x.Reason]
		add(need("CONNECT", func(p *Packet) bool { return p.ToServer && strings.HasPrefix(string(p.Payload), "CONNECT ") }))
		add(need("proxy answer"+code, func(p *Packet) bool {
			return !p.ToServer && strings.HasPrefix(string(p.Payload), "HTTP/1.") && strings.Contains(firstLine(p.Payload), code)
		}))
	case finding.ReasonCaptivePortal, finding.ReasonBlockPage:
		add(need("HTTP request", func(p *Packet) bool { return p.ToServer && len(p.Payload) > 0 }))
		add(need("HTTP answer", func(p *Packet) bool { return !p.ToServer && strings.HasPrefix(string(p.Payload), "HTTP/1.") }))
	}
	switch x.Kind {
	case finding.KindUDPFallback:
		add(need("client SYN of the TCP fallback", syn))
		if same, _ := x.Evidence["same_server"].(bool); same {
			add(need("client datagram of the failed UDP flow", func(p *Packet) bool { return p.IsUDP() && failedUDP(p, x) && p.Src == x.Flow.Client }))
		}
	case finding.KindTLSInterception, finding.KindCertificateProblem, finding.KindCertRejected, finding.KindTLSSuspected:
		add(need("ClientHello", clientHello))
		if x.Reason != finding.ReasonCertNotObservable && x.Reason != finding.ReasonFingerprintDrift {
			types := f.serverHandshakeTypes()
			if !types[2] || !types[11] {
				add(fmt.Errorf("%s/%s: the server's flight lacks ServerHello or Certificate (handshake types %v)", x.Kind, x.Reason, types))
			}
		}
		if x.Kind == finding.KindCertRejected {
			add(need("client alert", func(p *Packet) bool { return p.ToServer && len(p.Payload) >= 5 && p.Payload[0] == 0x15 }))
		}
	case finding.KindDNSFiltered:
		add(need("DNS query", func(p *Packet) bool { return p.IsUDP() && p.ToServer && isDNS(p.Payload, false) }))
		if x.Reason != finding.ReasonDNSTimeout {
			add(need("DNS answer", func(p *Packet) bool { return p.IsUDP() && !p.ToServer && isDNS(p.Payload, true) }))
		}
	}
	return errors.Join(errs...)
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// hasHandshake reports a TLS handshake record starting the payload whose
// first message is of type typ.
func hasHandshake(b []byte, typ byte) bool {
	return len(b) >= 6 && b[0] == 0x16 && b[1] == 3 && b[5] == typ
}

// serverHandshakeTypes walks the server's TLS records in file order (the
// flight as sent) and lists the handshake message types found.
func (f *File) serverHandshakeTypes() map[byte]bool {
	var stream []byte
	for _, p := range f.Packets {
		if p.IsTCP() && !p.ToServer {
			stream = append(stream, p.Payload...)
		}
	}
	var hs []byte
	for len(stream) >= 5 {
		n := int(binary.BigEndian.Uint16(stream[3:]))
		if len(stream) < 5+n {
			n = len(stream) - 5
		}
		if stream[0] == 0x16 {
			hs = append(hs, stream[5:5+n]...)
		}
		stream = stream[5+n:]
	}
	types := map[byte]bool{}
	for len(hs) >= 4 {
		types[hs[0]] = true
		n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if len(hs) < 4+n {
			break
		}
		hs = hs[4+n:]
	}
	return types
}

// isDNS reports a DNS header with the QR bit as wanted and one question.
func isDNS(b []byte, response bool) bool {
	if len(b) < 12 {
		return false
	}
	return (b[2]&0x80 != 0) == response && binary.BigEndian.Uint16(b[4:]) >= 1
}
