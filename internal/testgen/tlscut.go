package testgen

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// RecordLayout says how a cut lays handshake messages into TLS records.
type RecordLayout uint8

const (
	// RecordsAsRecorded keeps crypto/tls's records (with Fragment 0: the
	// bytes are untouched).
	RecordsAsRecorded RecordLayout = iota
	// RecordPerMessage puts each handshake message in a record of its own.
	RecordPerMessage
	// RecordsCoalesced puts every consecutive handshake message of a flight
	// into one record (up to the 16 KiB record limit).
	RecordsCoalesced
)

// TLSCut is one way to write the same TLS transcript: how the plaintext
// handshake messages are laid into records, and the records into TCP
// segments. Every cut is legal TLS and TCP, and carries exactly the same
// messages, so a passive observer must reach the same verdict on each.
type TLSCut struct {
	Name    string
	Records RecordLayout
	// Fragment > 0 splits each handshake message over records of at most
	// this many bytes (RFC 8446 5.1 allows any split).
	Fragment int
	// AcrossMessages makes Fragment cut the flight's message bytes as one
	// stream: a record may end one message and begin the next.
	AcrossMessages bool
	// Segment > 0 is the TCP payload per segment instead of the MSS.
	Segment int
	// Shuffle delivers each flight's packets in a random order (the
	// capture's timestamps stay in order: the contents are permuted).
	Shuffle bool
	// AnswerFirst delivers the last packet of each flight after the answer
	// to it, as a mirror merging one input per direction can.
	AnswerFirst bool
}

// TLSCuts is the standard set: the recorded bytes, one message per record,
// all messages in one record, every message split over records of 1, 2, 3,
// 4, 5, 7, 16, 100 and 1000 bytes, records cut across message boundaries,
// records split over small segments, and shuffled one-byte segments.
func TLSCuts() []TLSCut {
	cuts := []TLSCut{
		{Name: "as-recorded"},
		{Name: "record-per-message", Records: RecordPerMessage},
		{Name: "records-coalesced", Records: RecordsCoalesced},
	}
	for _, n := range []int{1, 2, 3, 4, 5, 7, 16, 100, 1000} {
		cuts = append(cuts, TLSCut{Name: fmt.Sprintf("fragment-%d", n), Fragment: n})
	}
	cuts = append(cuts,
		TLSCut{Name: "fragment-7-across-messages", Fragment: 7, AcrossMessages: true},
		TLSCut{Name: "fragment-300-across-messages", Fragment: 300, AcrossMessages: true},
		TLSCut{Name: "segment-1", Segment: 1},
		TLSCut{Name: "segment-7", Segment: 7},
		TLSCut{Name: "segment-100", Segment: 100},
		TLSCut{Name: "segment-536", Segment: 536},
		TLSCut{Name: "coalesced-segment-3", Records: RecordsCoalesced, Segment: 3},
		TLSCut{Name: "fragment-1-segment-7", Fragment: 1, Segment: 7},
		TLSCut{Name: "fragment-5-segment-2-shuffled", Fragment: 5, Segment: 2, Shuffle: true},
		TLSCut{Name: "segment-1-shuffled", Segment: 1, Shuffle: true},
		TLSCut{Name: "segment-50-shuffled", Segment: 50, Shuffle: true},
		TLSCut{Name: "answer-first", AnswerFirst: true},
		TLSCut{Name: "fragment-2-segment-100-answer-first", Fragment: 2, Segment: 100, AnswerFirst: true},
	)
	return cuts
}

// CutSpecs are the handshakes the cut tests write every way (recorded in
// tlscache/, so their bytes are the same in every run): TLS 1.2 through a
// FortiGate, the same with a 12 KB certificate (one-byte records make its
// flight 70 KB), TLS 1.2 with Zoom's chain expired, TLS 1.3 with Zoom's
// chain, and TLS 1.3 with a HelloRetryRequest. Go's client offers a
// post-quantum key share, so each ClientHello is larger than 1.2 KB.
func CutSpecs() []TLSSpec {
	many := append([]string(nil), zoomNames...)
	for i := range 600 {
		many = append(many, fmt.Sprintf("zoomfr%03dmmr.zoom.us", i))
	}
	return []TLSSpec{
		{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainFortiGate, Names: zoomNames},
		{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainFortiGate, Names: many},
		{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames, NotBefore: ExpiredNotBefore, NotAfter: ExpiredNotAfter},
		{ServerName: NameWeb, Chain: ChainZoom},
		{ServerName: NameWeb, Chain: ChainZoom, ServerCurves: []tls.CurveID{tls.CurveP256}},
	}
}

// maxFragment is the largest plaintext record body TLS allows.
const maxFragment = 1 << 14

// CutFlights rewrites the transcript's plaintext handshake records as cut
// says. ChangeCipherSpec (in TLS 1.2) and encrypted records end the
// plaintext of their direction; what follows is copied as it was. Alerts
// stay where they were.
func CutFlights(t *TLSTranscript, cut TLSCut) ([]Flight, error) {
	var encrypted [2]bool
	out := make([]Flight, 0, len(t.Flights))
	for _, f := range t.Flights {
		data, err := cutFlight(f.Data, cut, &encrypted[f.Dir&1], t.Version == tls.VersionTLS13)
		if err != nil {
			return nil, fmt.Errorf("testgen: cut %s: %s flight: %w", cut.Name, f.Dir, err)
		}
		out = append(out, Flight{Dir: f.Dir, Data: data})
	}
	return out, nil
}

func cutFlight(b []byte, cut TLSCut, encrypted *bool, tls13 bool) ([]byte, error) {
	if cut.Records == RecordsAsRecorded && cut.Fragment <= 0 {
		return append([]byte(nil), b...), nil
	}
	var out, run []byte
	var version [2]byte
	flush := func() {
		out = appendCut(out, run, version, cut)
		run = run[:0]
	}
	for len(b) > 0 {
		if *encrypted {
			out = append(out, b...)
			break
		}
		if len(b) < 5 {
			return nil, errors.New("a record header spans flights")
		}
		typ, n := b[0], int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			return nil, errors.New("a record spans flights")
		}
		if typ == 22 {
			if len(run) == 0 {
				version = [2]byte{b[1], b[2]}
			}
			run = append(run, b[5:5+n]...)
		} else {
			flush()
			out = append(out, b[:5+n]...)
			// TLS 1.3's ChangeCipherSpec is a dummy (middlebox
			// compatibility): its plaintext goes on until application
			// data records, which carry everything encrypted.
			if typ == 23 || typ == 20 && !tls13 {
				*encrypted = true
			}
		}
		b = b[5+n:]
	}
	flush()
	return out, nil
}

// appendCut writes the handshake message bytes run as records.
func appendCut(out, run []byte, version [2]byte, cut TLSCut) []byte {
	if len(run) == 0 {
		return out
	}
	size := maxFragment
	if cut.Fragment > 0 {
		size = min(cut.Fragment, maxFragment)
	}
	if cut.Records == RecordsCoalesced || cut.Fragment > 0 && cut.AcrossMessages {
		return appendRecords(out, run, version, size)
	}
	// Message by message (a partial message at the end goes as it is).
	for len(run) > 0 {
		n := len(run)
		if len(run) >= 4 {
			n = min(4+(int(run[1])<<16|int(run[2])<<8|int(run[3])), len(run))
		}
		out = appendRecords(out, run[:n], version, size)
		run = run[n:]
	}
	return out
}

func appendRecords(out, b []byte, version [2]byte, size int) []byte {
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, 22, version[0], version[1], byte(n>>8), byte(n))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

// PlayCut sends the transcript over c written the way cut says.
func (c *TCPConn) PlayCut(t *TLSTranscript, cut TLSCut) error {
	flights, err := CutFlights(t, cut)
	if err != nil {
		return err
	}
	c.segSize = cut.Segment
	defer func() { c.segSize = 0 }()
	g := c.g
	lastData := -1 // index in g.out of the previous flight's last data packet
	for _, f := range flights {
		g.flushHeld()
		first := len(g.out)
		c.Send(f.Dir, f.Data)
		if g.sink != nil {
			continue
		}
		pk := g.out[first:]
		if cut.Shuffle {
			g.rng.Shuffle(len(pk), func(i, j int) { pk[i].Data, pk[j].Data = pk[j].Data, pk[i].Data })
		}
		if cut.AnswerFirst && lastData >= 0 {
			// Rotate the contents (timestamps stay in order) so that the
			// question's last packet comes after the answer.
			moved := g.out[lastData].Data
			for i := lastData; i < len(g.out)-1; i++ {
				g.out[i].Data = g.out[i+1].Data
			}
			g.out[len(g.out)-1].Data = moved
			lastData = len(g.out) - 2 // the answer's last packet, the next question's
			continue
		}
		lastData = len(g.out) - 1
	}
	return nil
}

// InjectOptions shape a data segment sent outside the connection's own
// flow of data: a forged or corrupted copy.
type InjectOptions struct {
	BadChecksum bool  // the TCP checksum is wrong: the receiver drops it
	TTL         uint8 // 0: the side's usual TTL
}

// Inject emits one data segment from side d at sequence number seq without
// moving the connection on: a copy of bytes the side sends (or sent) that
// disagrees with them, as an injector racing the real sender, or a segment
// corrupted on the way.
func (c *TCPConn) Inject(d Dir, seq uint32, payload []byte, o InjectOptions) Packet {
	c.badChecksum = o.BadChecksum
	return c.raw(d, seq, c.next[d.other()], flagACK|flagPSH, append([]byte(nil), payload...), nil, o.TTL, nil)
}

// SendWith emits data from side d as the next bytes of its stream (the
// connection moves on), with a TTL of its own: a middlebox answering in the
// server's place.
func (c *TCPConn) SendWith(d Dir, data []byte, o InjectOptions) Packet {
	c.badChecksum = o.BadChecksum
	p := c.raw(d, c.next[d], c.next[d.other()], flagACK|flagPSH, append([]byte(nil), data...), nil, o.TTL, nil)
	c.next[d] += uint32(len(data))
	return p
}

// FINWith emits a FIN-ACK from side d with a TTL of its own.
func (c *TCPConn) FINWith(d Dir, o InjectOptions) Packet {
	c.unacked[d.other()] = 0
	p := c.raw(d, c.next[d], c.next[d.other()], flagFIN|flagACK, nil, nil, o.TTL, nil)
	c.next[d]++
	c.finSent[d] = true
	return p
}

// TLSCutsScenario writes every CutSpecs handshake in every TLSCuts cut, each
// on its own connection to its own server address (outside Zoom's ranges:
// the SNI names the service), with the findings each should give. It is not
// a registered scenario (a large capture, not committed); zoomprobe-gen
// writes it with -tls-cuts.
func TLSCutsScenario(p Params) (*Scenario, error) {
	b := newBuilder("tls-cuts", "every cut handshake (testgen.CutSpecs x testgen.TLSCuts), one connection each", p)
	cuts := TLSCuts()
	for si, spec := range CutSpecs() {
		tr, err := RecordTLS(spec)
		if err != nil {
			return nil, err
		}
		b.noteTLS(tr)
		svc := serviceOfName(spec.ServerName)
		for ci, cut := range cuts {
			n := si*len(cuts) + ci + 1
			server := netip.AddrFrom4([4]byte{198, 51, 100, byte(n)})
			if p.IPv6 {
				server = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x51, 0, 14: byte(n >> 8), 15: byte(n)})
			}
			c := b.g.TCPConn(b.ephemeral(b.a.Client), netip.AddrPortFrom(server, 443), TCPOptions{})
			if err := c.PlayCut(tr, cut); err != nil {
				return nil, err
			}
			c.Close()
			b.s.Flows = append(b.s.Flows, ExpectedFlow{Transport: "tcp", Client: c.Client, Server: c.Server, Service: svc,
				Name: spec.ServerName, SNI: spec.ServerName, TLSVersion: tr.Version, Chain: tr.Chain})
			want := ExpectedFinding{Transport: "tcp", Client: b.a.Client, Server: server, ServerPort: 443, Service: svc, SNI: spec.ServerName}
			switch {
			case spec.Chain == ChainFortiGate:
				want.Kind, want.Reason, want.Product, want.ZoomRoomsCode = finding.KindTLSInterception, finding.ReasonUnknownAuthority, "FortiGate", 6
			case spec.NotAfter.Equal(ExpiredNotAfter):
				want.Kind, want.Reason, want.ZoomRoomsCode = finding.KindCertificateProblem, finding.ReasonExpired, 5
			default:
				continue // TLS 1.3: nothing to judge passively
			}
			b.expect(want)
			b.g.Advance(5 * time.Millisecond)
		}
	}
	return b.done()
}
