package testgen_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// Live recordings have the shape of the stored ones: same flights in the
// same directions, same certificates. (Sizes may move with the Go version.)
func TestTLSLiveMatchesCache(t *testing.T) {
	for _, spec := range []testgen.TLSSpec{
		{ServerName: testgen.NameZC, Version: tls.VersionTLS12, Chain: testgen.ChainZoom, Names: []string{"*.zoom.us", "zoom.us"}},
		{ServerName: testgen.NameZC, Version: tls.VersionTLS12, Chain: testgen.ChainUnknown, Names: []string{"*.zoom.us", "zoom.us"}, ClientAlert: testgen.AlertUnknownCA},
		{ServerName: testgen.NameWeb, Version: tls.VersionTLS13, Chain: testgen.ChainZoom, Names: []string{"*.zoom.us", "zoom.us"}, NoClose: true},
	} {
		t.Run(spec.ServerName+"/"+spec.Chain.String(), func(t *testing.T) {
			cached, err := testgen.RecordTLS(spec)
			if err != nil {
				t.Fatal(err)
			}
			if !cached.Cached {
				t.Fatalf("spec not in tlscache/: run go generate ./testgen")
			}
			live, err := testgen.RecordTLSLive(spec)
			if err != nil {
				t.Fatal(err)
			}
			if live.Cached || live.Version != cached.Version || len(live.Flights) != len(cached.Flights) {
				t.Fatalf("live: version %x, %d flights; cached: version %x, %d flights", live.Version, len(live.Flights), cached.Version, len(cached.Flights))
			}
			for i := range live.Flights {
				if live.Flights[i].Dir != cached.Flights[i].Dir {
					t.Fatalf("flight %d direction differs", i)
				}
			}
			if !bytes.Equal(live.Chain[0].Raw, cached.Chain[0].Raw) {
				t.Fatalf("leaf differs")
			}
			// The server's certificate bytes are on the wire in both (TLS 1.2).
			if spec.Version == tls.VersionTLS12 {
				for _, tr := range []*testgen.TLSTranscript{live, cached} {
					if !bytes.Contains(tr.Flights[1].Data, tr.Chain[0].Raw) {
						t.Fatalf("server flight lacks the leaf (cached=%v)", tr.Cached)
					}
				}
			}
		})
	}
}

func readBack(t *testing.T, data []byte, format testgen.Format) []testgen.Packet {
	t.Helper()
	var out []testgen.Packet
	switch format {
	case testgen.FormatPCAP:
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("link type %v", r.LinkType())
		}
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, testgen.Packet{Time: ci.Timestamp, Data: d})
		}
	default:
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("link type %v", r.LinkType())
		}
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, testgen.Packet{Time: ci.Timestamp, Data: d})
		}
	}
}

func TestWriters(t *testing.T) {
	s, err := testgen.ZoomClean(testgen.Params{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []testgen.Format{testgen.FormatPCAP, testgen.FormatPCAPNG} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			if err := testgen.WritePackets(&buf, f, s.Packets); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "x."+string(f))
			if err := s.WriteFile(path, f, testgen.WrapNone); err != nil {
				t.Fatal(err)
			}
			if onDisk, err := os.ReadFile(path); err != nil || !bytes.Equal(onDisk, buf.Bytes()) {
				t.Fatalf("WriteFile differs from WritePackets: %v", err)
			}
			got := readBack(t, buf.Bytes(), f)
			if len(got) != len(s.Packets) {
				t.Fatalf("read %d packets, wrote %d", len(got), len(s.Packets))
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, s.Packets[i].Data) || !got[i].Time.Equal(s.Packets[i].Time) {
					t.Fatalf("packet %d differs after the round trip (%v vs %v)", i, got[i].Time, s.Packets[i].Time)
				}
			}
		})
	}
}

// The committed captures are what the generator writes today.
func TestCommittedCaptures(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/*.pcap*")
	if len(files) == 0 {
		t.Skip("no committed captures")
	}
	for _, c := range testgen.CommittedCaptures() {
		t.Run(c.File, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", c.File))
			if err != nil {
				t.Fatalf("%v (regenerate with go generate ./testgen)", err)
			}
			var buf bytes.Buffer
			if err := c.Write(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("testdata/%s is stale: regenerate with go generate ./testgen", c.File)
			}
			if len(want) > 200<<10 {
				t.Fatalf("testdata/%s is %d bytes, over the 200 KB budget", c.File, len(want))
			}
		})
	}
}

// The committed CA files are the generator's CAs.
func TestCommittedCAs(t *testing.T) {
	pki, err := testgen.TestPKI()
	if err != nil {
		t.Fatal(err)
	}
	for name, ca := range pki.CAFiles() {
		got, err := os.ReadFile(filepath.Join("..", "..", "testdata", "ca", name))
		if err != nil {
			t.Fatalf("%v (regenerate with go generate ./testgen)", err)
		}
		if !bytes.Equal(got, ca.PEM()) {
			t.Fatalf("testdata/ca/%s is stale", name)
		}
	}
}

func TestLarge(t *testing.T) {
	const n = 30000
	var buf bytes.Buffer
	pw, err := testgen.NewPacketWriter(&buf, testgen.FormatPCAP)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	udp, tcp, flows := 0, 0, map[string]bool{}
	count, err := testgen.Large(n, testgen.LargeOptions{}, func(p testgen.Packet) error {
		if p.Time.Before(last) {
			t.Fatalf("Large goes back in time at %v", p.Time)
		}
		last = p.Time
		d := decode(t, p.Data, true)
		if tl := d.TransportLayer(); tl != nil {
			flows[d.NetworkLayer().NetworkFlow().String()+" "+tl.TransportFlow().String()] = true
			if tl.LayerType() == layers.LayerTypeUDP {
				udp++
			} else {
				tcp++
			}
		}
		return pw.WritePacket(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("wrote %d packets, want %d", count, n)
	}
	t.Logf("mix: %d UDP, %d TCP packets, %d flow directions", udp, tcp, len(flows))
	if udp < n/2 || tcp < n/20 || len(flows) < 500 {
		t.Fatalf("mix: %d UDP, %d TCP packets, %d flow directions", udp, tcp, len(flows))
	}
	if got := readBack(t, buf.Bytes(), testgen.FormatPCAP); len(got) != n {
		t.Fatalf("file holds %d packets", len(got))
	}
	// Same options, same bytes.
	var again bytes.Buffer
	pw2, _ := testgen.NewPacketWriter(&again, testgen.FormatPCAP)
	if _, err := testgen.Large(n, testgen.LargeOptions{}, pw2.WritePacket); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatalf("Large is not deterministic")
	}
}

func BenchmarkLarge(b *testing.B) {
	const n = 100000
	b.ReportAllocs()
	for b.Loop() {
		pw, _ := testgen.NewPacketWriter(io.Discard, testgen.FormatPCAP)
		if _, err := testgen.Large(n, testgen.LargeOptions{}, pw.WritePacket); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
}
