package capture

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/decode"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type rec struct {
	at    time.Duration // after t0
	port  layers.UDPPort
	iface int // pcapng interface index
}

// frameFor builds a frame for the link type carrying UDP to port.
func frameFor(t testing.TB, link layers.LinkType, port layers.UDPPort) []byte {
	full := udpFrame(t, port, false)
	switch link {
	case layers.LinkTypeEthernet:
		return full
	case layers.LinkTypeRaw:
		return full[14:]
	}
	t.Fatalf("no frame for %v", link)
	return nil
}

func writePcap(t testing.TB, path string, link layers.LinkType, recs []rec) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		data := frameFor(t, link, r.port)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(r.at), CaptureLength: len(data), Length: len(data) + 10}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
}

// writePcapngTB writes a small two-interface pcapng seed.
func writePcapngTB(t testing.TB, path string) {
	writePcapng(t, path, []rec{{at: 1, port: 8801}, {at: 2, port: 443, iface: 1}})
}

// writePcapng writes interface 0 as Ethernet and interface 1 as raw IP.
func writePcapng(t testing.TB, path string, recs []rec) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535}); err != nil {
		t.Fatal(err)
	}
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw}
	for _, r := range recs {
		data := frameFor(t, links[r.iface], r.port)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(r.at), CaptureLength: len(data), Length: len(data) + 10, InterfaceIndex: r.iface}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

type got struct {
	port uint16
	at   time.Duration
	link decode.LinkType
}

// readAll decodes every packet of src until an error.
func readAll(t *testing.T, src Source) ([]got, error) {
	d := decode.NewDecoder(decode.Options{})
	var out []got
	for {
		data, ts, wireLen, link, err := src.ReadPacket()
		if err != nil {
			return out, err
		}
		var p decode.Packet
		if err := d.Decode(data, link, ts, wireLen, &p); err != nil {
			t.Fatalf("packet %d does not decode as %v: %v", len(out)+1, link, err)
		}
		if wireLen != len(data)+10 {
			t.Errorf("wire length %d, want %d", wireLen, len(data)+10)
		}
		out = append(out, got{p.DstPort, ts.Sub(t0), link})
	}
}

func TestOpenFilesMerge(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "c.pcap")
	writePcap(t, a, layers.LinkTypeEthernet, []rec{{at: 1 * time.Millisecond, port: 1}, {at: 4 * time.Millisecond, port: 4}, {at: 6 * time.Millisecond, port: 6}})
	writePcapng(t, b, []rec{{at: 2 * time.Millisecond, port: 2}, {at: 3 * time.Millisecond, port: 3, iface: 1}, {at: 6 * time.Millisecond, port: 7, iface: 1}})
	writePcap(t, c, layers.LinkTypeRaw, []rec{{at: 0, port: 100}, {at: 5 * time.Millisecond, port: 5}})

	src, err := OpenFiles([]string{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.LinkType() != decode.LinkEthernet || src.Name() != a+","+b+","+c {
		t.Errorf("link %v name %q", src.LinkType(), src.Name())
	}
	pkts, err := readAll(t, src)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v, want io.EOF", err)
	}
	E, R := decode.LinkEthernet, decode.LinkRaw
	want := []got{{100, 0, R}, {1, time.Millisecond, E}, {2, 2 * time.Millisecond, E}, {3, 3 * time.Millisecond, R},
		{4, 4 * time.Millisecond, E}, {5, 5 * time.Millisecond, R}, {6, 6 * time.Millisecond, E}, {7, 6 * time.Millisecond, R}}
	if fmt.Sprint(pkts) != fmt.Sprint(want) {
		t.Errorf("merged\n got %v\nwant %v", pkts, want)
	}
	if st, _ := src.Stats(); st.Received != uint64(len(want)) || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, io.EOF) {
		t.Errorf("read after the end: %v", err)
	}
}

func TestOpenFilesTruncated(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			bad, good := filepath.Join(dir, "bad."+format), filepath.Join(dir, "good.pcap")
			recs := []rec{{at: 1 * time.Millisecond, port: 1}, {at: 3 * time.Millisecond, port: 3}, {at: 5 * time.Millisecond, port: 5}}
			if format == "pcap" {
				writePcap(t, bad, layers.LinkTypeEthernet, recs)
			} else {
				writePcapng(t, bad, recs)
			}
			writePcap(t, good, layers.LinkTypeEthernet, []rec{{at: 2 * time.Millisecond, port: 2}, {at: 4 * time.Millisecond, port: 4}, {at: 9 * time.Millisecond, port: 9}})
			st, _ := os.Stat(bad)
			if err := os.Truncate(bad, st.Size()-20); err != nil { // inside the third packet
				t.Fatal(err)
			}
			src, err := OpenFiles([]string{bad, good})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			pkts, err := readAll(t, src)
			if err == nil || !strings.Contains(err.Error(), bad+": packet 3: file truncated") {
				t.Fatalf("error %v, want one naming %s and packet 3", err, bad)
			}
			// In time order: packets before the break (from both files) first.
			if fmt.Sprint(pkts) != fmt.Sprint([]got{{1, time.Millisecond, 1}, {2, 2 * time.Millisecond, 1}, {3, 3 * time.Millisecond, 1}}) {
				t.Errorf("before the error: %v", pkts)
			}
			// Reading on finishes the good file.
			rest, err := readAll(t, src)
			if !errors.Is(err, io.EOF) || fmt.Sprint(rest) != fmt.Sprint([]got{{4, 4 * time.Millisecond, 1}, {9, 9 * time.Millisecond, 1}}) {
				t.Errorf("after the error: %v, %v", rest, err)
			}
		})
	}
}

func TestOpenFilesFormats(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.pcap")
	writePcap(t, plain, layers.LinkTypeEthernet, []rec{{at: 0, port: 8801}})
	raw, _ := os.ReadFile(plain)
	gz := filepath.Join(dir, "zipped.pcap.gz")
	f, _ := os.Create(gz)
	zw := gzip.NewWriter(f)
	zw.Write(raw)
	zw.Close()
	f.Close()
	src, err := OpenFiles([]string{gz})
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(t, src)
	src.Close()
	if !errors.Is(err, io.EOF) || len(pkts) != 1 || pkts[0].port != 8801 {
		t.Errorf("gzip pcap: %v %v", pkts, err)
	}

	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a capture"), 0o644)
	short := filepath.Join(dir, "short.pcap")
	os.WriteFile(short, []byte{0xd4}, 0o644)
	badHeader := filepath.Join(dir, "badheader.pcap")
	os.WriteFile(badHeader, raw[:10], 0o644)
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{nil, "no capture files"},
		{[]string{filepath.Join(dir, "missing.pcap")}, "missing.pcap: no such file"},
		{[]string{plain, text}, text + ": not a pcap or pcapng file"},
		{[]string{short}, short + ": too short"},
		{[]string{badHeader}, badHeader + ": bad pcap header"},
	} {
		if _, err := OpenFiles(tc.paths); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenFiles(%v) = %v, want error containing %q", tc.paths, err, tc.want)
		}
	}
}

func BenchmarkFileRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.pcap")
	recs := make([]rec, 10000)
	for i := range recs {
		recs[i] = rec{at: time.Duration(i) * time.Microsecond, port: 8801}
	}
	writePcap(b, path, layers.LinkTypeEthernet, recs)
	b.ReportAllocs()
	var src Source
	for b.Loop() {
		if src == nil {
			var err error
			if src, err = OpenFiles([]string{path}); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, _, _, err := src.ReadPacket(); err != nil {
			src.Close()
			src = nil
		}
	}
	if src != nil {
		src.Close()
	}
}

// TestOpenFilesConcurrentClose closes the source while another goroutine
// reads, as the engine does on shutdown (run with -race).
func TestOpenFilesConcurrentClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.pcap")
	recs := make([]rec, 5000)
	for i := range recs {
		recs[i] = rec{at: time.Duration(i), port: 8801}
	}
	writePcap(t, path, layers.LinkTypeEthernet, recs)
	src, err := OpenFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for {
			if _, _, _, _, err := src.ReadPacket(); err != nil {
				done <- err
				return
			}
		}
	}()
	src.Close()
	if err := <-done; err == nil {
		t.Fatal("reader did not stop")
	}
	if _, _, _, _, err := src.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
