package evidence

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

func testFinding(reason finding.Reason) *finding.Finding {
	return &finding.Finding{Time: t0, Kind: finding.KindBlockedConnection, Reason: reason, Service: "zone_controller",
		SNI: "zoomfr85zc.zoom.us\"/../x", Flow: &finding.Flow{Transport: "tcp", Client: client.Addr(), ClientPort: client.Port(),
			Server: server.Addr(), ServerPort: server.Port()}}
}

// A written file reads back with gopacket: the comment names the finding,
// the packets are the ones kept, with their wire lengths.
func TestWriteReadsBack(t *testing.T) {
	r := testRecorder(64 << 10)
	c := newConn(t, decode.ProtoTCP, client, server)
	c.send(r, flow.ToServer, decode.TCPSyn, nil)
	c.send(r, flow.ToClient, decode.TCPRst|decode.TCPAck, nil)
	pkts, st := r.Packets(&c.f)
	d, err := OpenDir(DirConfig{Path: filepath.Join(t.TempDir(), "ev"), MaxBytes: 1 << 20, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	x := testFinding(finding.ReasonConnectionRefused)
	name, err := d.Write(x, pkts, st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(name, "/\" ") || !strings.HasPrefix(name, "20260302T090000.000Z-blocked_connection-connection_refused-") || !strings.HasSuffix(name, Ext) {
		t.Errorf("name %q", name)
	}
	fh, err := os.Open(filepath.Join(d.Path(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ng, err := pcapgo.NewNgReader(fh, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if c := ng.SectionInfo().Comment; !strings.Contains(c, "kind=blocked_connection reason=connection_refused") || !strings.Contains(c, `sni="zoomfr85zc.zoom.us\"/../x"`) {
		t.Errorf("comment %q", c)
	}
	for i := 0; ; i++ {
		data, ci, opts, err := ng.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			if i != 2 {
				t.Errorf("%d packets read back", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, pkts[i].Data) || ci.Length != len(c.frames[i]) || !ci.Timestamp.Equal(pkts[i].Time) {
			t.Errorf("packet %d differs", i)
		}
		if (i == 0) != (len(opts.Comments) == 1) {
			t.Errorf("packet %d comments %q", i, opts.Comments)
		}
	}
	if n := testutil.ToFloat64(d.written); n != 1 {
		t.Errorf("files_written_total %v", n)
	}
	ents, _ := os.ReadDir(d.Path())
	if len(ents) != 1 {
		t.Errorf("%d entries: a temporary file was left", len(ents))
	}
}

// Over the size cap the oldest files go; past retention too; both counted.
// Files that are not evidence are left alone.
func TestDirSizeCapAndRetention(t *testing.T) {
	path := t.TempDir()
	other := filepath.Join(path, "notes.txt")
	if err := os.WriteFile(other, bytes.Repeat([]byte("x"), 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	pkts := []Packet{{Time: t0, WireLen: 1400, Link: decode.LinkEthernet, Data: bytes.Repeat([]byte{1}, 1400)}}
	now := t0
	const capBytes = 128 << 10
	d, err := OpenDir(DirConfig{Path: path, MaxBytes: capBytes, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return now }
	var names []string
	for i := range 200 {
		x := testFinding(finding.ReasonTimeout)
		x.Time = t0.Add(time.Duration(i) * time.Second)
		now = x.Time
		name, err := d.Write(x, pkts, Status{})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	size := dirSize(t, path, other)
	if size > capBytes || size < capBytes*3/4 {
		t.Errorf("directory holds %d bytes, cap %d", size, capBytes)
	}
	if _, err := os.Stat(filepath.Join(path, names[0])); !errors.Is(err, os.ErrNotExist) {
		t.Error("the oldest file is still there")
	}
	if _, err := os.Stat(filepath.Join(path, names[len(names)-1])); err != nil {
		t.Error("the newest file is gone")
	}
	removed := testutil.ToFloat64(d.removed.WithLabelValues("size"))
	kept := len(entries(t, path, other))
	if int(removed)+kept != len(names) {
		t.Errorf("removed %v + kept %d != written %d", removed, kept, len(names))
	}
	if got := testutil.ToFloat64(&dirBytes{d}); int64(got) != size {
		t.Errorf("dir_bytes %v, directory %d", got, size)
	}

	// A day later every file is past retention: a restart (OpenDir reads the
	// files' times) or Prune removes them.
	old := t0.Add(-48 * time.Hour)
	for _, e := range entries(t, path, other) {
		if err := os.Chtimes(filepath.Join(path, e), old, old); err != nil {
			t.Fatal(err)
		}
	}
	d2, err := OpenDir(DirConfig{Path: path, MaxBytes: capBytes, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entries(t, path, other)); n != 0 {
		t.Errorf("%d files past retention kept", n)
	}
	if got := testutil.ToFloat64(d2.removed.WithLabelValues("age")); int(got) != kept {
		t.Errorf("removed{age} %v, want %d", got, kept)
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("a file that is not evidence was removed")
	}
}

func entries(t *testing.T, path, skip string) []string {
	t.Helper()
	ents, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if filepath.Join(path, e.Name()) != skip {
			out = append(out, e.Name())
		}
	}
	return out
}

func dirSize(t *testing.T, path, skip string) int64 {
	var n int64
	for _, e := range entries(t, path, skip) {
		st, err := os.Stat(filepath.Join(path, e))
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// dirBytes collects zoomprobe_evidence_dir_bytes alone.
type dirBytes struct{ d *Dir }

func (g *dirBytes) Describe(ch chan<- *prometheus.Desc) { ch <- g.d.dirBytesDesc }
func (g *dirBytes) Collect(ch chan<- prometheus.Metric) {
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(g.d.dirBytesDesc, prometheus.GaugeValue, float64(g.d.total))
}

// A write that fails (the directory gone) is counted and leaves no file.
func TestDirWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ev")
	d, err := OpenDir(DirConfig{Path: path, MaxBytes: 1 << 20, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(path)
	if _, err := d.Write(testFinding(finding.ReasonTimeout), nil, Status{}); err == nil {
		t.Fatal("no error")
	}
	if n := testutil.ToFloat64(d.writeErrors); n != 1 {
		t.Errorf("write_errors_total %v", n)
	}
	if err := d.WriteNamed("../escape.pcapng", testFinding(finding.ReasonTimeout), nil, Status{}); err == nil {
		t.Error("a name with a path was accepted")
	}
}

// Submit returns at once; Flush waits for the files. Beyond maxQueuedBytes
// waiting, a file is refused and counted, never blocking the worker.
func TestDirSubmit(t *testing.T) {
	d, err := OpenDir(DirConfig{Path: t.TempDir(), MaxBytes: 1 << 30, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pkts := []Packet{{Time: t0, WireLen: 100, Link: decode.LinkEthernet, Data: bytes.Repeat([]byte{1}, 100)}}
	for range 20 {
		if !d.Submit(d.Name(testFinding(finding.ReasonTimeout)), testFinding(finding.ReasonTimeout), pkts, Status{}) {
			t.Fatal("refused")
		}
	}
	d.Flush()
	if n := len(entries(t, d.Path(), "")); n != 20 || testutil.ToFloat64(d.written) != 20 {
		t.Fatalf("%d files, %v written", n, testutil.ToFloat64(d.written))
	}
	big := []Packet{{Time: t0, WireLen: 1, Link: decode.LinkEthernet, Data: make([]byte, maxQueuedBytes)}}
	if d.Submit(d.Name(testFinding(finding.ReasonTimeout)), testFinding(finding.ReasonTimeout), big, Status{}) {
		t.Error("more than maxQueuedBytes accepted")
	}
	if testutil.ToFloat64(d.writeErrors) != 1 {
		t.Error("refusal not counted")
	}
	d.Flush()
}

func TestValidName(t *testing.T) {
	d, err := OpenDir(DirConfig{Path: t.TempDir(), MaxBytes: 1 << 20, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.NameFor(time.Time{}, "blocked_connection", "connection_refused", "x"); !ValidName(n) {
		t.Errorf("a name Name gives is refused: %s", n)
	}
	for _, bad := range []string{"", ".pcapng", ".hidden.pcapng", "../x.pcapng", "a/b.pcapng", `a\b.pcapng`, "x.pcapng.tmp", "x.pcap", "x y.pcapng", "x%2f.pcapng", strings.Repeat("a", 200) + ".pcapng"} {
		if ValidName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
