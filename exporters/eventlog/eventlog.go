// Package eventlog writes findings as JSON lines, one object a line, rotated
// by size. Each line goes to the file with one write of the whole line as it
// arrives (no user-space buffer), so a crash or shutdown loses nothing
// already emitted.
//
// Guarantees, whatever the disk does:
//   - every line in the file is a whole finding: after a failed or short write
//     (a full disk) the file is cut back to the end of the last whole line, and
//     when even that fails nothing more is written until it succeeds;
//   - the file never grows past event_log.max_size_mb: a finding that would
//     cross it and cannot be rotated away is dropped;
//   - the path is a regular file: a FIFO or device is refused when opened (it
//     would block reload and shutdown).
//
// What is lost is counted: zoomprobe_event_log_dropped_total (findings not
// written) and zoomprobe_event_log_write_errors_total (failed opens,
// rotations, writes and truncations).
package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
)

// Log is a finding.Sink and a prometheus.Collector (its drop and error
// counters). Safe for concurrent use. Reconfigure swaps its settings live.
//
// When the file cannot be (re)opened, rotated or written, the finding is
// dropped and counted, and every later Emit tries again: writing resumes as
// soon as the path is writable and has room.
type Log struct {
	mu         sync.Mutex
	path       string // "" disabled, "-" standard output
	maxSize    int64
	maxBackups int
	stdout     io.Writer // standard output when path is "-"
	f          *os.File  // the open file; nil while not open
	size       int64     // bytes of whole lines in f
	// cutTo >= 0: a failed write may have left a partial line past this
	// offset and cutting it off failed; nothing is written until it succeeds.
	cutTo int64
	// streamCut: a write to standard output failed part way; the next line
	// starts with a newline so that it is not glued to the partial one.
	streamCut bool
	broken    bool // in an outage (open, rotate or write failing); logged once
	closed    bool
	logger    *slog.Logger

	dropped     prometheus.Counter
	writeErrors prometheus.Counter
}

// Open opens the log the config names; path "-" writes to standard output,
// an empty path gives a log that writes nothing (until Reconfigure names one).
// Errors name the field.
func Open(cfg config.EventLogConfig, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		logger: logger, cutTo: -1, stdout: os.Stdout,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_event_log_dropped_total",
			Help: "Findings not written to the event log (file not writable, disk full, rotation failed at the size limit).",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoomprobe_event_log_write_errors_total",
			Help: "Failed event log operations: open, rotation, write, cutting back a partial line.",
		}),
	}
	if err := l.Reconfigure(cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// Reconfigure applies cfg to the running log without losing a finding:
// size and backup limits apply from the next finding (a smaller limit
// rotates then); a new path is opened before the old file is closed, and if
// it cannot be opened the log keeps writing where it did and the error (naming
// the field) is returned. An empty path stops writing.
func (l *Log) Reconfigure(cfg config.EventLogConfig) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("event_log: log is closed")
	}
	if cfg.Path != l.path {
		var f *os.File
		var size int64
		if cfg.Path != "" && cfg.Path != "-" {
			var err error
			if f, size, err = openFile(cfg.Path); err != nil {
				return fmt.Errorf("event_log.path: %w", err)
			}
		}
		l.closeFile()
		l.path, l.f, l.size, l.cutTo, l.streamCut, l.broken = cfg.Path, f, size, -1, false, false
	}
	l.maxSize, l.maxBackups = int64(cfg.MaxSizeMB)<<20, cfg.MaxBackups
	return nil
}

// openFile opens path for appending without blocking (a FIFO with no reader
// would block the open, and with a reader every write) and refuses anything
// but a regular file.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0o640)
	if errors.Is(err, syscall.ENXIO) {
		return nil, 0, fmt.Errorf("%s is a named pipe (FIFO), not a regular file", path)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %s, not a regular file (name a file; \"-\" is standard output)", path, FileKind(st.Mode()))
	}
	return f, st.Size(), nil
}

// FileKind names a file type for error messages: "a named pipe (FIFO)".
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// Emit writes one finding as a line, or counts it as dropped.
func (l *Log) Emit(x finding.Finding) {
	b, err := json.Marshal(x)
	if err != nil {
		l.logger.Error("event log: cannot encode finding", "kind", x.Kind, "err", err)
		l.dropped.Inc()
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed || l.path == "":
		return
	case l.path == "-":
		l.writeStream(b)
		return
	}
	if err := l.writeFile(b); err != nil {
		l.dropped.Inc()
		if !l.broken {
			l.broken = true
			l.logger.Error("event log: findings are dropped until it can be written again", "path", l.path, "err", err)
		}
		return
	}
	if l.broken {
		l.broken = false
		l.logger.Warn("event log: writing again", "path", l.path)
	}
}

// errSizeLimit: the line would take the file past max_size_mb and rotation
// could not make room.
var errSizeLimit = errors.New("event_log.max_size_mb reached and the log cannot be rotated")

func (l *Log) writeFile(b []byte) error {
	line := int64(len(b))
	if line > l.maxSize {
		return fmt.Errorf("a finding of %d bytes is larger than event_log.max_size_mb", line)
	}
	if l.f == nil {
		f, size, err := openFile(l.path)
		if err != nil {
			l.writeErrors.Inc()
			return err
		}
		l.f, l.size, l.cutTo = f, size, -1
	}
	if l.cutTo >= 0 {
		if err := l.f.Truncate(l.cutTo); err != nil {
			l.writeErrors.Inc()
			return fmt.Errorf("cutting a partial line: %w", err)
		}
		l.cutTo = -1
	}
	// The real end, not a count kept here: the file may have been cut by
	// someone else (copytruncate), and a failed write is cut back to it.
	end, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		l.writeErrors.Inc()
		return err
	}
	l.size = end
	if l.size+line > l.maxSize && l.size > 0 {
		if err := l.rotate(); err != nil {
			l.writeErrors.Inc()
			return fmt.Errorf("%w: %v", errSizeLimit, err)
		}
		if l.size+line > l.maxSize {
			return fmt.Errorf("%w (file is %d bytes)", errSizeLimit, l.size)
		}
	}
	n, err := l.f.Write(b)
	if err == nil {
		l.size += int64(n)
		return nil
	}
	l.writeErrors.Inc()
	if n > 0 {
		// What reached the file is cut off; if that fails, before the next
		// write.
		if terr := l.f.Truncate(l.size); terr != nil {
			l.cutTo = l.size
		}
	}
	return err
}

// writeStream writes to standard output: it cannot be cut back, so after a
// partial line the next line starts on a line of its own.
func (l *Log) writeStream(b []byte) {
	if l.streamCut {
		b = append([]byte{'\n'}, b...)
	}
	n, err := l.stdout.Write(b)
	if err == nil {
		l.streamCut = false
		return
	}
	l.writeErrors.Inc()
	l.dropped.Inc()
	l.streamCut = l.streamCut && n == 0 || n > 0
	if !l.broken {
		l.broken = true
		l.logger.Error("event log: cannot write to standard output; findings are dropped", "err", err)
	}
}

// rotate renames path to path.1 (path.1 to path.2...), drops the oldest, and
// opens a new path; with no backups it empties the file. When the current
// file cannot be moved aside it stays open (and the caller drops what does
// not fit); when the new one cannot be opened l.f is nil and the next Emit
// tries again. Not lumberjack: it names backups by time, keeps every backup
// when max_backups is 0, and cannot cut back a partial line.
func (l *Log) rotate() error {
	if l.maxBackups == 0 {
		if err := l.f.Truncate(0); err != nil {
			return err
		}
		l.size = 0
		return nil
	}
	if err := os.Remove(fmt.Sprintf("%s.%d", l.path, l.maxBackups)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := l.maxBackups - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", l.path, i)
		if err := os.Rename(from, fmt.Sprintf("%s.%d", l.path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return err
	}
	l.closeFile()
	f, size, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.f, l.size = f, size
	return nil
}

func (l *Log) closeFile() error {
	if l.f == nil {
		return nil
	}
	if l.cutTo >= 0 { // last chance to leave no partial line
		if l.f.Truncate(l.cutTo) == nil {
			l.cutTo = -1
		}
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// Describe and Collect make the log a prometheus.Collector of its counters.
func (l *Log) Describe(ch chan<- *prometheus.Desc) {
	l.dropped.Describe(ch)
	l.writeErrors.Describe(ch)
}

func (l *Log) Collect(ch chan<- prometheus.Metric) {
	l.dropped.Collect(ch)
	l.writeErrors.Collect(ch)
}

// Close syncs and closes the file; later findings are discarded.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.closeFile()
}
