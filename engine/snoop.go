package engine

import (
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/proto/dns"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// snooper records which addresses DNS answered for the names the classifier
// cares about, so flows to them count as Zoom (or watched). It runs in the
// reader, in packet order and before sharding: a flow that starts right after
// the answer, on any worker, already finds the name.
//
// Any host can send a UDP datagram from port 53, so an answer is trusted only
// when it matches a query seen on the wire (queries): same client address
// and port, same server, transaction ID, question name and type, within
// zoom.dns_answer_window. Unmatched answers are counted and ignored.
type snooper struct {
	classifier *zoom.Classifier
	names      *zoom.NameCache
	queries    *queryTable
	msg        dns.Message
}

func (s *snooper) observe(p *decode.Packet) {
	if p.Proto != decode.ProtoUDP || p.Fragment || (p.SrcPort != 53 && p.DstPort != 53) {
		return
	}
	m := &s.msg
	if err := dns.Parse(p.Payload, m); (err != nil && !m.Incomplete) || m.OpCode != 0 || m.Questions != 1 {
		return
	}
	q := m.QName.Bytes()
	if len(q) == 0 {
		return
	}
	// A view of the parsed name, valid until the next Parse: the classifier
	// does not keep it, so the common case (not a Zoom name) allocates nothing.
	view := unsafe.String(&q[0], len(q))
	if s.classifier.Classify(decode.ProtoTCP, netip.Addr{}, 0, view) == zoom.ServiceNone {
		return
	}
	switch {
	case !m.Response && p.DstPort == 53:
		s.queries.query(netip.AddrPortFrom(p.Src, p.SrcPort), p.Dst, m.ID, uint16(m.QType), q, p.Time)
		return
	case !m.Response || p.SrcPort != 53:
		return
	}
	if !s.queries.answer(netip.AddrPortFrom(p.Dst, p.DstPort), p.Src, m.ID, uint16(m.QType), q, p.Time) || m.RCode != dnsmessage.RCodeSuccess {
		return
	}
	for _, a := range m.AnswerList() {
		if a.Addr.IsValid() {
			s.names.PutBytes(a.Addr, q, p.Time, p.Time.Add(time.Duration(max(a.TTL, 60))*time.Second))
		}
	}
}
