package tls

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pdecode "github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// identity is what a passive observer learns of a handshake: the functions
// the identity and TLS analyzers call, on the messages the Decoder joined.
type identity struct {
	sni, ja3, ja4, serverFP, chain string
	serverHellos, retries          int
	errs                           []string
}

func (id *identity) String() string {
	return fmt.Sprintf("sni=%s ja3=%s ja4=%s zs1=%s chain=%s server_hellos=%d retries=%d errs=%v",
		id.sni, id.ja3, id.ja4, id.serverFP, id.chain, id.serverHellos, id.retries, id.errs)
}

type identityHandler struct {
	id  *identity
	dir testgen.Dir
	dec *Decoder
}

func (h *identityHandler) Handshake(typ uint8, body []byte) {
	switch {
	case h.dir == testgen.ClientToServer && typ == HandshakeClientHello && h.id.sni == "":
		var ch ClientHello
		if err := ParseClientHello(body, &ch); err != nil {
			h.id.errs = append(h.id.errs, err.Error())
			return
		}
		ja3, ja4 := JA3Hash(&ch), JA4(&ch)
		h.id.sni, h.id.ja3, h.id.ja4 = string(ch.SNI), hex.EncodeToString(ja3[:]), string(ja4[:])
	case h.dir == testgen.ServerToClient && typ == HandshakeServerHello:
		var sh ServerHello
		if err := ParseServerHello(body, &sh); err != nil {
			h.id.errs = append(h.id.errs, err.Error())
			return
		}
		h.id.serverHellos++
		if sh.HelloRetryRequest {
			h.id.retries++
			h.dec.AllowCompatCCS()
			return
		}
		fp := ServerFingerprint(&sh)
		h.id.serverFP = string(fp[:])
		if sh.Version() == VersionTLS13 {
			h.dec.Stop()
		}
	case h.dir == testgen.ServerToClient && typ == HandshakeCertificate:
		sum := sha256.Sum256(body)
		h.id.chain = hex.EncodeToString(sum[:8])
	}
}
func (h *identityHandler) Alert(uint8, uint8) {}
func (h *identityHandler) ChangeCipherSpec()  {}

// observe decodes the frames and runs both directions through Decoders.
func observe(t testing.TB, pkts []testgen.Packet, max int) *identity {
	t.Helper()
	id := &identity{}
	var decs [2]Decoder
	var hs [2]identityHandler
	for d := range decs {
		decs[d].Reset(max)
		hs[d] = identityHandler{id: id, dir: testgen.Dir(d), dec: &decs[d]}
	}
	dec := pdecode.NewDecoder(pdecode.Options{})
	var p pdecode.Packet
	for _, pk := range pkts {
		if err := dec.Decode(pk.Data, pdecode.LinkEthernet, pk.Time, len(pk.Data), &p); err != nil {
			t.Fatal(err)
		}
		d := testgen.ClientToServer
		if p.SrcPort == 443 {
			d = testgen.ServerToClient
		}
		if p.TCPFlags&pdecode.TCPSyn != 0 {
			decs[d].Stream.SYN(p.Seq)
		}
		decs[d].Segment(p.Seq, p.Payload, &hs[d])
		if held := decs[d].Stream.Held() + len(decs[d].hs); held > max {
			t.Fatalf("a direction holds %d bytes, cap %d", held, max)
		}
	}
	for d := range decs {
		if err := decs[d].Err(); err != nil {
			id.errs = append(id.errs, fmt.Sprintf("%s: %v", testgen.Dir(d), err))
		}
		if decs[d].Stream.Conflicts != 0 || decs[d].Stream.Refused != 0 {
			id.errs = append(id.errs, fmt.Sprintf("%s: %d conflicts, %d bytes refused", testgen.Dir(d), decs[d].Stream.Conflicts, decs[d].Stream.Refused))
		}
	}
	return id
}

// Every cut of the real handshakes gives the same SNI, JA3, JA4, server
// fingerprint and certificate message, within the default cap.
func TestCutsSameIdentity(t *testing.T) {
	for _, spec := range testgen.CutSpecs() {
		tr, err := testgen.RecordTLS(spec)
		if err != nil {
			t.Fatal(err)
		}
		var ref string
		for _, cut := range testgen.TLSCuts() {
			g := testgen.New(testgen.DefaultSeed, testgen.DefaultStart)
			c := g.TCPConn(netip.MustParseAddrPort("10.20.30.40:40000"), netip.MustParseAddrPort("170.114.10.85:443"), testgen.TCPOptions{})
			if err := c.PlayCut(tr, cut); err != nil {
				t.Fatal(err)
			}
			id := observe(t, g.Packets(), 64*1024)
			if ref == "" {
				ref = id.String()
				if id.sni != spec.ServerName || id.ja4 == "" || id.serverFP == "" || len(id.errs) > 0 ||
					(spec.Version == 0x0303) != (id.chain != "") || (spec.ServerCurves != nil) != (id.retries == 1) {
					t.Fatalf("%s as recorded: %s", spec.ServerName, ref)
				}
				continue
			}
			if got := id.String(); got != ref {
				t.Errorf("%s %s:\n got %s\nwant %s", spec.ServerName, cut.Name, got, ref)
			}
		}
	}
}

// reassembly is what a Decoder handed out for one way of delivering a stream.
type reassembly struct {
	events []string
	clean  bool // stopped or waiting without refusing, conflicting or failing
}

type eventHandler struct{ r *reassembly }

func (h eventHandler) Handshake(typ uint8, body []byte) {
	sum := sha256.Sum256(body)
	h.r.events = append(h.r.events, fmt.Sprintf("hs %d %d %x", typ, len(body), sum[:6]))
}
func (h eventHandler) Alert(level, desc uint8) {
	h.r.events = append(h.r.events, fmt.Sprintf("alert %d %d", level, desc))
}
func (h eventHandler) ChangeCipherSpec() { h.r.events = append(h.r.events, "ccs") }

func reassemble(t *testing.T, segs []seg, max int) *reassembly {
	r := &reassembly{}
	var d Decoder
	d.Reset(max)
	d.Stream.SYN(0xffffff00) // the stream wraps the sequence space
	for _, s := range segs {
		d.Segment(s.seq, s.data, eventHandler{r})
		if held := d.Stream.Held() + len(d.hs); held > max {
			t.Fatalf("holds %d bytes, cap %d", held, max)
		}
	}
	r.clean = d.Err() == nil && !d.Stream.Overflow && d.Stream.Conflicts == 0
	return r
}

func isPrefix(a, b []string) bool {
	return len(a) <= len(b) && strings.Join(a, "\n") == strings.Join(b[:len(a)], "\n")
}

// FuzzReassembly delivers a direction's bytes in segments of 1..1500 bytes,
// shuffled, some twice, and checks that the messages come out as they do
// from the whole stream at once: the same when both finish cleanly, one a
// prefix of the other when the cap stopped either. The committed corpus
// (testdata/fuzz/FuzzReassembly) holds real handshakes cut every way
// (testgen.TLSCuts); TestReassemblySeeds keeps it in step.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 1, 1, 22, 3, 1, 0, 3, 0, 0, 0, 21, 3, 3, 0, 2, 2, 40}, uint16(1), uint64(1), uint16(100))
	f.Fuzz(func(t *testing.T, stream []byte, segSize uint16, seed uint64, capacity uint16) {
		max := int(capacity) + 64
		whole := reassemble(t, []seg{{0xffffff01, stream}}, max)
		segs := segments(0xffffff00, stream, int(segSize)%1500+1)
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		for i := range len(segs) / 8 {
			segs = append(segs, segs[(i*7)%len(segs)]) // retransmissions
		}
		rng.Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
		cut := reassemble(t, segs, max)
		if whole.clean && cut.clean {
			if strings.Join(whole.events, "\n") != strings.Join(cut.events, "\n") {
				t.Fatalf("events differ:\n%v\n%v", whole.events, cut.events)
			}
			return
		}
		if !isPrefix(whole.events, cut.events) && !isPrefix(cut.events, whole.events) {
			t.Fatalf("events diverge:\n%v\n%v", whole.events, cut.events)
		}
	})
}

// seedCuts pair the record layouts with ways of delivering them; their
// streams make the committed fuzz corpus.
var seedCuts = []struct {
	cut     string
	segSize int
	shuffle bool
}{
	{"as-recorded", 1460, false}, {"record-per-message", 7, false}, {"records-coalesced", 1, true},
	{"fragment-1", 100, true}, {"fragment-3", 536, false}, {"fragment-7-across-messages", 3, true},
}

// plaintextPart cuts a direction's stream after the record that follows
// its first ChangeCipherSpec or encrypted record: the decoder stops there.
func plaintextPart(b []byte) []byte {
	end, after := 0, -1
	for end+5 <= len(b) && after != 0 {
		typ, n := b[end], int(b[end+3])<<8|int(b[end+4])
		end = min(end+5+n, len(b))
		if after > 0 {
			after--
		} else if typ == RecordChangeCipherSpec || typ == RecordApplicationData {
			after = 1
		}
	}
	return b[:end]
}

// reassemblySeeds builds the corpus: for three handshakes (TLS 1.2, TLS 1.3,
// HelloRetryRequest) and each seed cut, both directions' streams.
func reassemblySeeds(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	specs := testgen.CutSpecs()
	cuts := map[string]testgen.TLSCut{}
	for _, c := range testgen.TLSCuts() {
		cuts[c.Name] = c
	}
	for si, spec := range []testgen.TLSSpec{specs[0], specs[3], specs[4]} {
		tr, err := testgen.RecordTLS(spec)
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Cached {
			t.Fatalf("%s: not in testgen's TLS cache: run go generate ./testgen", spec.ServerName)
		}
		for ci, sc := range seedCuts {
			flights, err := testgen.CutFlights(tr, cuts[sc.cut])
			if err != nil {
				t.Fatal(err)
			}
			for d := testgen.ClientToServer; d <= testgen.ServerToClient; d++ {
				var stream []byte
				for _, fl := range flights {
					if fl.Dir == d {
						stream = append(stream, fl.Data...)
					}
				}
				var seed uint64 // 0 and 0: the shuffle leaves a fixed order
				if sc.shuffle {
					seed = uint64(si*100 + ci + 1)
				}
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\nuint64(%d)\nuint16(%d)\n",
					plaintextPart(stream), sc.segSize-1, seed, 65535-64)
				out[fmt.Sprintf("cut-%d-%s-%d", si, sc.cut, d)] = []byte(body)
			}
		}
	}
	return out
}

// The committed corpus is what the cuts make (ZOOMPROBE_WRITE_SEEDS=1 rewrites it).
func TestReassemblySeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReassembly")
	seeds := reassemblySeeds(t)
	if os.Getenv("ZOOMPROBE_WRITE_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, body := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s missing or stale (%v): ZOOMPROBE_WRITE_SEEDS=1 go test ./proto/tls -run TestReassemblySeeds", name, err)
		}
	}
}
