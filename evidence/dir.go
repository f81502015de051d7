package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
)

// FileKey is the finding evidence key naming the file (a base name in the
// evidence directory).
const FileKey = "evidence_file"

// Ext is the evidence files' extension; other files in the directory are
// left alone.
const Ext = ".pcapng"

// DirConfig is where files go and how much of them is kept.
type DirConfig struct {
	Path      string
	MaxBytes  int64         // total size; the oldest files go first
	Retention time.Duration // older files go
	Logger    *slog.Logger  // failed writes of Submit; nil: not logged (still counted)
}

// Dir writes evidence files and keeps the directory within its bounds. It is
// safe for concurrent use: workers write from their own goroutines.
type Dir struct {
	cfg DirConfig
	now func() time.Time
	log *slog.Logger

	mu    sync.Mutex
	files []fileEntry // oldest first
	total int64

	// Files waiting for the writer goroutine (Submit), bounded by
	// maxQueuedBytes; the goroutine runs only while some wait.
	queue       []job
	queuedBytes int
	writing     bool
	pending     sync.WaitGroup

	seq          atomic.Uint64
	written      prometheus.Counter
	removed      *prometheus.CounterVec
	writeErrors  prometheus.Counter
	dirBytesDesc *prometheus.Desc
}

type fileEntry struct {
	name string
	size int64
	mod  time.Time
}

// OpenDir makes the directory when missing and reads what it holds, then
// removes what is beyond the bounds.
func OpenDir(cfg DirConfig) (*Dir, error) {
	if cfg.Path == "" {
		return nil, errors.New("evidence: no directory")
	}
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("evidence.dir: %w", err)
	}
	d := &Dir{cfg: cfg, now: time.Now, log: cfg.Logger,
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "zoomprobe_evidence_files_written_total",
			Help: "Evidence pcapng files written, one per finding with packets."}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zoomprobe_evidence_files_removed_total",
			Help: "Evidence files removed: reason size (evidence.max_dir_bytes) or age (evidence.retention)."}, []string{"reason"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "zoomprobe_evidence_write_errors_total",
			Help: "Evidence files that could not be written, or not queued because too many waited for the disk (the finding is still reported)."}),
		dirBytesDesc: prometheus.NewDesc("zoomprobe_evidence_dir_bytes", "Bytes of evidence files in evidence.dir.", nil, nil),
	}
	d.removed.WithLabelValues("size")
	d.removed.WithLabelValues("age")
	ents, err := os.ReadDir(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("evidence.dir: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), Ext) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		d.files = append(d.files, fileEntry{name: e.Name(), size: info.Size(), mod: info.ModTime()})
		d.total += info.Size()
	}
	sort.Slice(d.files, func(i, j int) bool {
		if !d.files[i].mod.Equal(d.files[j].mod) {
			return d.files[i].mod.Before(d.files[j].mod)
		}
		return d.files[i].name < d.files[j].name
	})
	d.mu.Lock()
	d.pruneLocked()
	d.mu.Unlock()
	return d, nil
}

// Path is the directory.
func (d *Dir) Path() string { return d.cfg.Path }

// Describe implements prometheus.Collector.
func (d *Dir) Describe(ch chan<- *prometheus.Desc) {
	d.written.Describe(ch)
	d.removed.Describe(ch)
	d.writeErrors.Describe(ch)
	ch <- d.dirBytesDesc
}

// Collect implements prometheus.Collector.
func (d *Dir) Collect(ch chan<- prometheus.Metric) {
	d.written.Collect(ch)
	d.removed.Collect(ch)
	d.writeErrors.Collect(ch)
	d.mu.Lock()
	total := d.total
	d.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(d.dirBytesDesc, prometheus.GaugeValue, float64(total))
}

// maxQueuedBytes bounds the packets waiting to be written (Submit): a burst
// of findings beyond it loses files, counted as write errors.
const maxQueuedBytes = 8 << 20

type job struct {
	name string
	x    finding.Finding
	pkts []Packet
	st   Status
}

// Submit hands a file to the directory's writer goroutine and returns at
// once: a worker must not wait for the disk (a sync can take tens of
// milliseconds). False when too much waits already (counted, logged by the
// caller).
func (d *Dir) Submit(name string, x *finding.Finding, pkts []Packet, st Status) bool {
	n := 0
	for _, p := range pkts {
		n += recHeader + len(p.Data)
	}
	d.mu.Lock()
	if d.queuedBytes+n > maxQueuedBytes {
		d.mu.Unlock()
		d.writeErrors.Inc()
		return false
	}
	d.queue = append(d.queue, job{name: name, x: *x, pkts: pkts, st: st})
	d.queuedBytes += n
	d.pending.Add(1)
	start := !d.writing
	d.writing = true
	d.mu.Unlock()
	if start {
		go d.drain()
	}
	return true
}

// drain writes queued files until none waits.
func (d *Dir) drain() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.writing = false
			d.queue = nil
			d.mu.Unlock()
			return
		}
		j := d.queue[0]
		d.queue[0] = job{}
		d.queue = d.queue[1:]
		d.mu.Unlock()
		if err := d.WriteNamed(j.name, &j.x, j.pkts, j.st); err != nil && d.log != nil {
			d.log.Warn("cannot write evidence file (counted in zoomprobe_evidence_write_errors_total)", "file", j.name, "err", err)
		}
		n := 0
		for _, p := range j.pkts {
			n += recHeader + len(p.Data)
		}
		d.mu.Lock()
		d.queuedBytes -= n
		d.mu.Unlock()
		d.pending.Done()
	}
}

// Flush waits until every submitted file is written.
func (d *Dir) Flush() { d.pending.Wait() }

// Write writes pkts as one pcapng named after the finding (Name, then
// WriteNamed). It returns the file's base name.
func (d *Dir) Write(x *finding.Finding, pkts []Packet, st Status) (string, error) {
	name := d.Name(x)
	return name, d.WriteNamed(name, x, pkts, st)
}

// WriteNamed writes pkts as the pcapng name (from Name), atomically (a
// temporary file renamed into place), then keeps the directory within its
// bounds.
func (d *Dir) WriteNamed(name string, x *finding.Finding, pkts []Packet, st Status) error {
	return d.WriteFile(name, pkts, Comment(x, st))
}

// WriteFile writes pkts as the pcapng name with comment, like WriteNamed,
// for packets that are not one finding's (the audit's own checks).
func (d *Dir) WriteFile(name string, pkts []Packet, comment string) error {
	if name != filepath.Base(name) || !strings.HasSuffix(name, Ext) {
		return fmt.Errorf("evidence: %q is not a file name from Name", name)
	}
	var buf bytes.Buffer
	if err := WritePcapng(&buf, pkts, comment); err != nil {
		d.writeErrors.Inc()
		return err
	}
	if err := d.writeFile(name, buf.Bytes()); err != nil {
		d.writeErrors.Inc()
		return err
	}
	d.mu.Lock()
	d.files = append(d.files, fileEntry{name: name, size: int64(buf.Len()), mod: d.now()})
	d.total += int64(buf.Len())
	d.pruneLocked()
	d.mu.Unlock()
	// Counted last: a scrape that sees the file written also sees its bytes
	// (the other order let TestDaemonWritesEvidence read dir_bytes 0 under load).
	d.written.Inc()
	return nil
}

func (d *Dir) writeFile(name string, b []byte) error {
	tmp, err := os.CreateTemp(d.cfg.Path, ".tmp-*")
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o640)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.cfg.Path, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("evidence: %w", err)
	}
	return nil
}

// Prune removes files beyond the bounds now (the daemon calls it now and
// then, so files age out while nothing is written).
func (d *Dir) Prune() {
	d.mu.Lock()
	d.pruneLocked()
	d.mu.Unlock()
}

// PruneEvery calls Prune every interval until stop is closed.
func (d *Dir) PruneEvery(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.Prune()
		}
	}
}

func (d *Dir) pruneLocked() {
	cutoff := d.now().Add(-d.cfg.Retention)
	i := 0
	for ; i < len(d.files); i++ {
		f := d.files[i]
		reason := ""
		switch {
		case d.cfg.Retention > 0 && f.mod.Before(cutoff):
			reason = "age"
		case d.cfg.MaxBytes > 0 && d.total > d.cfg.MaxBytes:
			reason = "size"
		}
		if reason == "" {
			break
		}
		if err := os.Remove(filepath.Join(d.cfg.Path, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			break // try again on the next write
		}
		d.total -= f.size
		d.removed.WithLabelValues(reason).Inc()
	}
	d.files = d.files[i:]
}

// Name is the file name for a finding: time, kind, reason and a short hash;
// unique, and nothing a packet said goes into it (kind and reason come from
// closed lists, and are filtered anyway).
func (d *Dir) Name(x *finding.Finding) string {
	var flow string
	if x.Flow != nil {
		flow = fmt.Sprintf("%s|%s|%d|%s|%d", x.Flow.Transport, x.Flow.Client, x.Flow.ClientPort, x.Flow.Server, x.Flow.ServerPort)
	}
	return d.NameFor(x.Time, string(x.Kind), string(x.Reason), flow)
}

// NameFor is Name from its parts: time (zero: now), two words and anything
// that tells this file from another (hashed, never shown).
func (d *Dir) NameFor(t time.Time, kind, reason, salt string) string {
	if t.IsZero() {
		t = d.now()
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d|%s|%s|%d|%s|%d", t.UnixNano(), kind, reason, d.seq.Add(1), salt, time.Now().UnixNano())
	sum := hex.EncodeToString(h.Sum(nil))[:12]
	return t.UTC().Format("20060102T150405.000Z") + "-" + safeWord(kind) + "-" + safeWord(reason) + "-" + sum + Ext
}

// safeWord keeps [a-z0-9_], at most 40 of them.
func safeWord(s string) string {
	b := make([]byte, 0, min(len(s), 40))
	for i := 0; i < len(s) && len(b) < 40; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// Comment names the finding, for the pcapng section and its packets.
func Comment(x *finding.Finding, st Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "zoomprobe finding: kind=%s reason=%s", x.Kind, x.Reason)
	if x.Flow != nil {
		fmt.Fprintf(&b, " %s client=%s server=%s", x.Flow.Transport,
			addrPort(x.Flow.Client.String(), x.Flow.ClientPort), addrPort(x.Flow.Server.String(), x.Flow.ServerPort))
	}
	if x.Service != "" {
		fmt.Fprintf(&b, " service=%s", x.Service)
	}
	if x.SNI != "" {
		fmt.Fprintf(&b, " sni=%q", x.SNI)
	}
	if x.Product != "" {
		fmt.Fprintf(&b, " product=%q", x.Product)
	}
	fmt.Fprintf(&b, " time=%s", x.Time.UTC().Format(time.RFC3339Nano))
	b.WriteString(". Headers and handshake bytes only; application data is not kept.")
	if st.PoolExhausted {
		b.WriteString(" Incomplete: the evidence buffer was full (evidence.max_buffer_bytes).")
	}
	if st.Capped {
		b.WriteString(" Incomplete: the flow reached evidence.max_packets_per_flow or max_bytes_per_flow.")
	}
	if st.Gone {
		b.WriteString(" No packets: the flow had left the table when its finding came.")
	}
	if st.Settled {
		b.WriteString(" The handshake's packets were let go when the flow carried data both ways.")
	}
	return b.String()
}

func addrPort(a string, p uint16) string {
	if strings.Contains(a, ":") {
		return fmt.Sprintf("[%s]:%d", a, p)
	}
	return fmt.Sprintf("%s:%d", a, p)
}

// WritePcapng writes pkts as pcapng: one interface per link type, the
// comment on the section and on the first packet.
func WritePcapng(w io.Writer, pkts []Packet, comment string) error {
	link := decode.LinkEthernet
	if len(pkts) > 0 {
		link = pkts[0].Link
	}
	nw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{Name: "zoomprobe", LinkType: layers.LinkType(link), SnapLength: 0},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "zoomprobe", Comment: comment}})
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	ifaces := map[decode.LinkType]int{link: 0}
	for i, p := range pkts {
		id, ok := ifaces[p.Link]
		if !ok {
			if id, err = nw.AddInterface(pcapgo.NgInterface{Name: "zoomprobe", LinkType: layers.LinkType(p.Link)}); err != nil {
				return fmt.Errorf("evidence: %w", err)
			}
			ifaces[p.Link] = id
		}
		ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: max(p.WireLen, len(p.Data)), InterfaceIndex: id}
		var opts pcapgo.NgPacketOptions
		if i == 0 {
			opts.Comments = []string{comment}
		}
		if err := nw.WritePacketWithOptions(ci, p.Data, opts); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
	}
	return nw.Flush()
}

// ValidName reports whether name could be a file Name gave: the daemon
// serves evidence files by name, and nothing else under the directory (no
// path, no dot file, no temporary file) may be asked for.
func ValidName(name string) bool {
	base, ok := strings.CutSuffix(name, Ext)
	if !ok || base == "" || len(name) > 160 {
		return false
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0) {
			return false
		}
	}
	return true
}
