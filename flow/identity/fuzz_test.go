package identity

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// seedHello is a small well-formed ClientHello naming a zone controller.
var seedHello = []byte{
	0x16, 0x03, 0x01, 0x00, 0x3f, // record
	0x01, 0x00, 0x00, 0x3b, // ClientHello
	0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0x00,                   // session id
	0x00, 0x02, 0x13, 0x01, // cipher suites
	0x01, 0x00, // compression
	0x00, 0x10, // extensions
	0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x00, 0x07, 'z', 'c', '.', 'z', 'o', 'o', 'm',
}

// FuzzScanHello: the scanner never panics, and a name it returns is a valid
// name no longer than a DNS name, found in the input.
func FuzzScanHello(f *testing.F) {
	f.Add(seedHello)
	f.Add(seedHello[:20])
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01, 0x16, 0x03, 0x01, 0x00, 0x01, 0x00})
	scratch := make([]byte, 0, 4096)
	f.Fuzz(func(t *testing.T, b []byte) {
		name, res := scanHello(b, scratch)
		if res == scanFound {
			if !validName(name) || len(name) > maxNameLen || !bytes.Contains(b, name) {
				t.Fatalf("name %q", name)
			}
		} else if name != nil {
			t.Fatalf("result %d with name %q", res, name)
		}
	})
}

// FuzzStage feeds hostile client segments, at hostile sequence numbers, to
// the stage: it never panics, never holds more than its bound, and a flow's
// identity ends final or waiting, never watched without a reason.
func FuzzStage(f *testing.F) {
	f.Add(seedHello, uint16(10), uint32(0), uint8(0))
	f.Add(seedHello, uint16(1), uint32(5), uint8(3))
	cl := zoom.NewClassifier(zoom.NewRanges(nil), config.WatchConfig{})
	f.Fuzz(func(t *testing.T, b []byte, mss uint16, skew uint32, shuffle uint8) {
		s := New(Config{Classifier: cl, MaxHelloBytes: 1024})
		tab := flow.NewTable(flow.Config{MaxFlows: 16, EmbryonicTimeout: time.Minute, TCPTimeout: time.Minute, UDPTimeout: time.Minute, ClosedTimeout: time.Minute}, func(f *flow.Flow, _ time.Time, _ flow.ExpireReason) { s.Expire(f) })
		seg := int(mss%1500) + 1
		b = b[:min(len(b), 8192)]
		p := decode.Packet{Proto: decode.ProtoTCP, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("52.1.2.3"),
			SrcPort: 40000, DstPort: 443, TCPFlags: decode.TCPSyn, Seq: 1000, Time: time.Unix(1e9, 0)}
		fl, d, created := tab.Packet(&p)
		s.Packet(fl, &p, d, created)
		for i := 0; i*seg < len(b); i++ {
			j := i
			if shuffle&1 != 0 && i%2 == 0 && (i+1)*seg < len(b) {
				j = i + 1 // swap pairs
			} else if shuffle&1 != 0 && i%2 == 1 {
				j = i - 1
			}
			start := j * seg
			p.TCPFlags, p.Seq, p.Payload = decode.TCPAck|decode.TCPPsh, 1001+uint32(start), b[start:min(start+seg, len(b))]
			if shuffle&2 != 0 && i%3 == 2 {
				p.Seq += skew
			}
			fl, d, created = tab.Packet(&p)
			s.Packet(fl, &p, d, created)
			if h := (*hello)(fl.IdentityCell(key).Stage); h != nil && len(h.stream.Bytes()) > 1024 {
				t.Fatalf("holds %d bytes", len(h.stream.Bytes()))
			}
		}
		if id := fl.Identity(); id.Service != zoom.ServiceNone && id.Source != flow.SourceSNI {
			t.Fatalf("identity %+v", id)
		}
		tab.Flush(p.Time.Add(time.Hour))
	})
}
