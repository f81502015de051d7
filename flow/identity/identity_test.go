package identity_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/flow/identity"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
	"github.com/zoomprobe/zoomprobe/zoom"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	client = "10.1.1.2"
	cloud  = "52.1.2.3"     // outside Zoom's ranges: only a name can say Zoom
	meet   = "170.114.10.9" // in the test's Meetings range
	zcName = "zoomam104zc.zoom.us"
)

// rig is a flow table with the identity stage in front, as in a worker.
type rig struct {
	tab   *flow.Table
	stage *identity.Stage
	names *zoom.NameCache
	m     *identity.Metrics
	last  *flow.Flow
}

func newRig(watch config.WatchConfig, maxHello int) *rig {
	r := &rig{names: zoom.NewNameCache(64), m: identity.NewMetrics()}
	ranges := zoom.NewRanges([]zoom.RangeEntry{{Prefix: netip.MustParsePrefix("170.114.0.0/16"), Service: zoom.ServiceMedia}})
	r.stage = identity.New(identity.Config{Classifier: zoom.NewClassifier(ranges, watch), Names: r.names, MaxHelloBytes: maxHello, Metrics: r.m})
	r.tab = flow.NewTable(flow.DefaultConfig(), func(f *flow.Flow, _ time.Time, _ flow.ExpireReason) { r.stage.Expire(f) })
	return r
}

func (r *rig) feed(ps ...decode.Packet) *flow.Flow {
	for i := range ps {
		f, d, created := r.tab.Packet(&ps[i])
		r.stage.Packet(f, &ps[i], d, created)
		r.last = f
	}
	return r.last
}

// goHello is the ClientHello Go's crypto/tls sends for sni. With pq, Go's
// default key shares include X25519MLKEM768 and the hello is about 1.5 KB:
// more than one segment, as Chrome's post-quantum hello.
func goHello(t testing.TB, sni string, pq bool) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	defer srv.Close()
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: sni == ""}
	if !pq {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	go func() {
		c := tls.Client(cli, cfg)
		_ = c.Handshake()
		c.Close()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(srv, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(srv, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// craftHello is a minimal ClientHello whose server_name comes after pad
// bytes of the padding extension.
func craftHello(sni string, pad int) []byte {
	var ext []byte
	if pad > 0 {
		ext = binary.BigEndian.AppendUint16(ext, 21)
		ext = binary.BigEndian.AppendUint16(ext, uint16(pad))
		ext = append(ext, make([]byte, pad)...)
	}
	if sni != "" {
		ext = binary.BigEndian.AppendUint16(ext, 0)
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+5))
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+3))
		ext = append(ext, 0)
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)))
		ext = append(ext, sni...)
	}
	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // null compression
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	rec := []byte{0x16, 0x03, 0x01, byte(len(hs) >> 8), byte(len(hs))}
	return append(rec, hs...)
}

// inRecords re-frames a one-record handshake into records of at most n
// bytes of payload each (what some clients and evasion tools send).
func inRecords(hello []byte, n int) []byte {
	hs := hello[5:]
	var out []byte
	for len(hs) > 0 {
		k := min(n, len(hs))
		out = append(out, 0x16, 0x03, 0x01, byte(k>>8), byte(k))
		out = append(out, hs[:k]...)
		hs = hs[k:]
	}
	return out
}

// segments cuts b at the given offsets into client data packets of c.
func segments(c *reachtest.Conn, b []byte, cuts ...int) []decode.Packet {
	var out []decode.Packet
	prev := 0
	for i, cut := range append(cuts, len(b)) {
		out = append(out, c.Data(t0.Add(time.Duration(10+i)*time.Millisecond), true, b[prev:cut]))
		prev = cut
	}
	return out
}

func newConn(server string) *reachtest.Conn { return reachtest.NewTCP(client+":40001", server) }

func open(c *reachtest.Conn) []decode.Packet {
	return []decode.Packet{c.SYN(t0), c.SYNACK(t0.Add(time.Millisecond)), c.ACK(t0.Add(2*time.Millisecond), true)}
}

func wantIdentity(t *testing.T, f *flow.Flow, want flow.Identity) {
	t.Helper()
	if got := f.Identity(); got != want {
		t.Errorf("identity %+v\n          want %+v", got, want)
	}
}

var zcBySNI = flow.Identity{Service: zoom.ServiceZoneController, Source: flow.SourceSNI, NameSource: flow.SourceSNI, Final: true, Name: zcName}

// A ClientHello over two or more segments, in order or not, retransmitted or
// not, names the flow. Go's and Chrome's post-quantum hellos take two.
func TestSNIAcrossSegments(t *testing.T) {
	pq := goHello(t, zcName, true)
	if len(pq) <= 1460 {
		t.Fatalf("the post-quantum hello is %d bytes: no longer a two-segment test", len(pq))
	}
	sniAt := bytes.Index(pq, []byte(zcName))
	for _, tc := range []struct {
		name  string
		order func(seg []decode.Packet) []decode.Packet
		cuts  []int
	}{
		{"two segments at the MSS", nil, []int{1460}},
		{"cut in the record header", nil, []int{3}},
		{"cut in the name", nil, []int{sniAt + 4}},
		{"three segments", nil, []int{200, 900}},
		{"second segment first", func(s []decode.Packet) []decode.Packet { return []decode.Packet{s[1], s[0]} }, []int{sniAt - 10}},
		{"last, first, middle", func(s []decode.Packet) []decode.Packet { return []decode.Packet{s[2], s[0], s[1]} }, []int{100, 700}},
		{"first segment retransmitted", func(s []decode.Packet) []decode.Packet { return []decode.Packet{s[0], s[0], s[1]} }, []int{sniAt - 10}},
		{"second segment retransmitted, first lost once", func(s []decode.Packet) []decode.Packet { return []decode.Packet{s[1], s[1], s[0]} }, []int{sniAt - 10}},
		{"overlapping retransmission", func(s []decode.Packet) []decode.Packet {
			both := s[0]
			both.Payload = pq[:sniAt+len(zcName)+5]
			return []decode.Packet{s[0], both, s[1]}
		}, []int{sniAt - 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(config.WatchConfig{}, 0)
			c := reachtest.NewTCP(client+":40001", cloud+":443")
			r.feed(open(c)...)
			segs := segments(c, pq, tc.cuts...)
			if tc.order != nil {
				segs = tc.order(segs)
			}
			f := r.feed(segs...)
			wantIdentity(t, f, zcBySNI)
		})
	}
}

// The name is known as soon as its segment arrives: an SNI filter that
// resets after the first segment still leaves it. Before that, the flow
// waits (not final, not watched).
func TestSNIBeforeTheHelloEnds(t *testing.T) {
	pq := goHello(t, zcName, true)
	end := bytes.Index(pq, []byte(zcName)) + len(zcName)
	r := newRig(config.WatchConfig{}, 0)
	c := reachtest.NewTCP(client+":40001", cloud+":443")
	r.feed(open(c)...)
	segs := segments(c, pq, end-1, end)
	f := r.feed(segs[0])
	if f.IdentityFinal() || f.Watched() {
		t.Fatalf("decided before the name arrived: %+v", f.Identity())
	}
	r.feed(segs[1])
	wantIdentity(t, f, zcBySNI)
}

// A ClientHello fragmented over several TLS records is joined.
func TestSNIAcrossRecords(t *testing.T) {
	for _, n := range []int{1, 7, 64, 512} {
		r := newRig(config.WatchConfig{}, 0)
		c := reachtest.NewTCP(client+":40001", cloud+":443")
		r.feed(open(c)...)
		recs := inRecords(goHello(t, zcName, false), n)
		f := r.feed(segments(c, recs, len(recs)/2)...)
		wantIdentity(t, f, zcBySNI)
	}
}

// TCP Fast Open: the ClientHello starts in the SYN, whose data begins one
// after its sequence number.
func TestSNIInSYN(t *testing.T) {
	r := newRig(config.WatchConfig{}, 0)
	c := newConn(cloud + ":443")
	pq := goHello(t, zcName, true)
	syn := c.SYN(t0)
	syn.Payload = pq[:100]
	rest := c.Data(t0.Add(time.Millisecond), true, pq[100:])
	rest.Seq = syn.Seq + 1 + 100
	wantIdentity(t, r.feed(syn, rest), zcBySNI)
}

// Picked up mid-stream (no SYN seen): the first client bytes fix the start.
func TestSNIWithoutSYN(t *testing.T) {
	r := newRig(config.WatchConfig{}, 0)
	c := reachtest.NewTCP(client+":40001", cloud+":443")
	pq := goHello(t, zcName, true)
	f := r.feed(segments(c, pq, 1000)...)
	wantIdentity(t, f, zcBySNI)
}

// A ClientHello whose name lies beyond zoom.max_client_hello_bytes is refused
// and counted; the flow keeps what its address says.
func TestHelloBound(t *testing.T) {
	r := newRig(config.WatchConfig{}, 1024)
	c := reachtest.NewTCP(client+":40001", meet+":443")
	r.feed(open(c)...)
	h := craftHello(zcName, 2000)
	f := r.feed(segments(c, h, 1000, 2000)...)
	wantIdentity(t, f, flow.Identity{Service: zoom.ServiceMediaRouter, Source: flow.SourceRange, Final: true})
	if r.m.Refused("max_bytes") != 1 {
		t.Errorf("refused max_bytes %d", r.m.Refused("max_bytes"))
	}
}

// However finely the hello is cut (one-byte segments, one-byte records in
// seven-byte segments, as evasion tools send it), the name is found, and
// each byte is joined once.
func TestSNIFinelyCut(t *testing.T) {
	hello := goHello(t, zcName, true)
	for _, tc := range []struct {
		name  string
		bytes []byte
		seg   int
	}{
		{"one-byte segments", hello, 1},
		{"one-byte records, seven-byte segments", inRecords(hello, 1), 7},
		{"three-byte records, one-byte segments, shuffled pairs", inRecords(hello, 3), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(config.WatchConfig{}, 16384)
			c := newConn(cloud + ":443")
			r.feed(open(c)...)
			var cuts []int
			for i := tc.seg; i < len(tc.bytes); i += tc.seg {
				cuts = append(cuts, i)
			}
			segs := segments(c, tc.bytes, cuts...)
			if strings.Contains(tc.name, "shuffled") {
				for i := 0; i+1 < len(segs); i += 2 {
					segs[i], segs[i+1] = segs[i+1], segs[i]
				}
			}
			wantIdentity(t, r.feed(segs...), zcBySNI)
		})
	}
}

// The precedence: an explicit SNI beats a DNS-learnt name, Zoom beats
// watched, a Zoom name refines a range.
func TestPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		watch  config.WatchConfig
		server string
		dns    string // the DNS cache's name for the server
		hello  []byte // first client bytes; nil: none sent
		want   flow.Identity
	}{
		{"SNI example.com to an address DNS mapped to zoom.us is not Zoom", config.WatchConfig{}, cloud, "zoom.us", craftHello("example.com", 0),
			flow.Identity{Final: true}},
		{"the DNS name stands when the hello has no SNI", config.WatchConfig{}, cloud, "zoom.us", craftHello("", 0),
			flow.Identity{Service: zoom.ServiceWeb, Source: flow.SourceDNS, NameSource: flow.SourceDNS, Final: true, Name: "zoom.us"}},
		{"the DNS name stands for plain HTTP", config.WatchConfig{}, cloud, "zoom.us", []byte("GET / HTTP/1.1\r\n\r\n"),
			flow.Identity{Service: zoom.ServiceWeb, Source: flow.SourceDNS, NameSource: flow.SourceDNS, Final: true, Name: "zoom.us"}},
		{"a Zoom SNI beats another DNS name", config.WatchConfig{}, cloud, "example.com", craftHello(zcName, 0), zcBySNI},
		{"the DNS name, until the ClientHello", config.WatchConfig{}, cloud, "zoom.us", nil,
			flow.Identity{Service: zoom.ServiceWeb, Source: flow.SourceDNS, NameSource: flow.SourceDNS, Name: "zoom.us"}},
		{"a Zoom SNI refines the range", config.WatchConfig{}, meet, "", craftHello(zcName, 0), zcBySNI},
		{"a non-Zoom SNI leaves the range", config.WatchConfig{}, meet, "", craftHello("example.com", 0),
			flow.Identity{Service: zoom.ServiceMediaRouter, Source: flow.SourceRange, NameSource: flow.SourceSNI, Final: true, Name: "example.com"}},
		{"watch.all keeps a Zoom SNI Zoom", config.WatchConfig{All: true}, cloud, "", craftHello(zcName, 0), zcBySNI},
		{"watch.all: watched until the hello", config.WatchConfig{All: true}, cloud, "", nil,
			flow.Identity{Service: zoom.ServiceWatched, Source: flow.SourceWatch}},
		{"watch.all watches the rest", config.WatchConfig{All: true}, cloud, "", craftHello("example.com", 0),
			flow.Identity{Service: zoom.ServiceWatched, Source: flow.SourceWatch, NameSource: flow.SourceSNI, Final: true, Name: "example.com"}},
		{"a watched SNI beats a Zoom DNS name", config.WatchConfig{Names: []string{"example.com"}}, cloud, "zoom.us", craftHello("www.example.com", 0),
			flow.Identity{Service: zoom.ServiceWatched, Source: flow.SourceWatch, NameSource: flow.SourceSNI, Final: true, Name: "www.example.com"}},
		{"watch.all keeps the range's class", config.WatchConfig{All: true}, meet, "", nil,
			flow.Identity{Service: zoom.ServiceMediaRouter, Source: flow.SourceRange}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(tc.watch, 0)
			if tc.dns != "" {
				r.names.Put(netip.MustParseAddr(tc.server), tc.dns, t0.Add(-time.Second), time.Time{})
			}
			c := reachtest.NewTCP(client+":40001", tc.server+":443")
			f := r.feed(open(c)...)
			if tc.hello != nil {
				f = r.feed(c.Data(t0.Add(10*time.Millisecond), true, tc.hello))
			}
			wantIdentity(t, f, tc.want)
		})
	}
}

// UDP: Zoom's media set-up or a Zoom STUN request in the first client
// datagram to a Zoom port proves Zoom, watched or not.
func TestUDP(t *testing.T) {
	setup := append([]byte{0x01, 0x00, 0x02}, make([]byte, 16)...)
	stun := zoom.BuildZoomSTUNRequest([16]byte{1, 2, 3})
	for _, tc := range []struct {
		name    string
		watch   config.WatchConfig
		server  string
		payload []byte
		want    flow.Identity
	}{
		{"media set-up", config.WatchConfig{}, cloud + ":8801", setup, flow.Identity{Service: zoom.ServiceMedia, Source: flow.SourceZoomUDP, Final: true}},
		{"STUN", config.WatchConfig{}, cloud + ":3478", stun, flow.Identity{Service: zoom.ServiceMedia, Source: flow.SourceSTUN, Final: true}},
		{"watch.all: media set-up is still Zoom", config.WatchConfig{All: true}, cloud + ":8801", setup, flow.Identity{Service: zoom.ServiceMedia, Source: flow.SourceZoomUDP, Final: true}},
		{"watch.all: other bytes stay watched", config.WatchConfig{All: true}, cloud + ":8801", []byte("hello"), flow.Identity{Service: zoom.ServiceWatched, Source: flow.SourceWatch, Final: true}},
		{"other bytes to a Zoom port", config.WatchConfig{}, cloud + ":8801", []byte("hello"), flow.Identity{Final: true}},
		{"a range", config.WatchConfig{}, meet + ":8801", []byte("hello"), flow.Identity{Service: zoom.ServiceMedia, Source: flow.SourceRange, Final: true}},
		{"not a Zoom port: final at once", config.WatchConfig{}, cloud + ":9999", setup, flow.Identity{Final: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(tc.watch, 0)
			u := reachtest.NewUDP(client+":50001", tc.server)
			f := r.feed(u.Data(t0, true, tc.payload), u.Data(t0.Add(time.Millisecond), true, setup))
			wantIdentity(t, f, tc.want)
		})
	}
}

// Buffers go back to the pool when a flow ends mid-hello: a recycled flow
// starts clean.
func TestExpireMidHello(t *testing.T) {
	r := newRig(config.WatchConfig{}, 0)
	pq := goHello(t, zcName, true)
	for i := range 3 {
		c := reachtest.NewTCP(client+":40001", cloud+":443")
		r.feed(open(c)...)
		f := r.feed(segments(c, pq, 20)[0])
		if f.IdentityFinal() {
			t.Fatalf("round %d: final after 20 bytes", i)
		}
		r.tab.Flush(t0.Add(time.Minute))
	}
	c := reachtest.NewTCP(client+":40001", cloud+":443")
	r.feed(open(c)...)
	wantIdentity(t, r.feed(segments(c, pq, 700)...), zcBySNI)
}

// A DNS answer read after the first SYN (by another reader of a fanout group)
// still names the flow when the client repeats its SYN: a firewall dropping
// SYNs to a server known only by name is still told as a Zoom block. A SYN
// repeated before any answer stays unnamed, and a name for another service
// is not taken.
func TestNameLearntBeforeARepeatedSYN(t *testing.T) {
	r := newRig(config.WatchConfig{}, 0)
	c := reachtest.NewTCP(client+":40001", cloud+":443")
	f := r.feed(c.SYN(t0))
	wantIdentity(t, f, flow.Identity{})
	f = r.feed(c.SYN(t0.Add(time.Second)))
	wantIdentity(t, f, flow.Identity{})
	// The answer came a few µs before the first SYN on the wire.
	r.names.Put(netip.MustParseAddr(cloud), "zoom.us", t0.Add(-time.Millisecond), time.Time{})
	f = r.feed(c.SYN(t0.Add(3 * time.Second)))
	wantIdentity(t, f, flow.Identity{Service: zoom.ServiceWeb, Source: flow.SourceDNS, NameSource: flow.SourceDNS, Name: "zoom.us"})

	other := reachtest.NewTCP(client+":40002", "52.9.9.9:443")
	r.names.Put(netip.MustParseAddr("52.9.9.9"), "example.com", t0.Add(-time.Millisecond), time.Time{})
	r.feed(other.SYN(t0))
	wantIdentity(t, r.feed(other.SYN(t0.Add(time.Second))), flow.Identity{})
}
