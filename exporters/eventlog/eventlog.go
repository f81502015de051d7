// Package eventlog writes findings as JSON lines, one object a line, rotated
// by size. Each line goes to the file with one write as it arrives (no
// user-space buffer), so a crash or shutdown loses nothing already emitted.
package eventlog

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
)

// Log is a finding.Sink. Safe for concurrent use.
//
// When the file cannot be (re)opened, say because a rotation found the
// directory unwritable or moved away, the findings are dropped and counted,
// and every later Emit tries to open the path again: writing resumes as soon
// as the path is writable.
type Log struct {
	mu         sync.Mutex
	path       string
	maxSize    int64
	maxBackups int
	w          io.Writer // nil while the file is not open
	f          *os.File  // nil when writing to stdout, or while not open
	size       int64
	logger     *slog.Logger
	errors     int
	dropped    int  // findings lost because the file could not be opened
	broken     bool // the last (re)open failed; logged once per outage
	closed     bool
}

// Open opens the log the config names; path "-" writes to standard output.
// It returns nil, nil when the config disables the log (empty path).
func Open(cfg config.EventLogConfig, logger *slog.Logger) (*Log, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{path: cfg.Path, maxSize: int64(cfg.MaxSizeMB) << 20, maxBackups: cfg.MaxBackups, logger: logger}
	if cfg.Path == "-" {
		l.w = os.Stdout
		return l, nil
	}
	if err := l.open(); err != nil {
		return nil, fmt.Errorf("event_log.path: %w", err)
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.w, l.size = f, f, st.Size()
	return nil
}

// ensureOpen reopens the file after a failed reopen; false: still not writable.
func (l *Log) ensureOpen() bool {
	if l.w != nil {
		return true
	}
	if err := l.open(); err != nil {
		if !l.broken {
			l.broken = true
			l.logger.Error("event log: cannot open; findings are dropped until it can be opened again", "path", l.path, "err", err)
		}
		return false
	}
	if l.broken {
		l.broken = false
		l.logger.Warn("event log: writing again", "path", l.path, "dropped", l.dropped)
	}
	return true
}

// Emit writes one finding as a line.
func (l *Log) Emit(x finding.Finding) {
	b, err := json.Marshal(x)
	if err != nil {
		l.logger.Error("event log: cannot encode finding", "kind", x.Kind, "err", err)
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if !l.ensureOpen() {
		l.dropped++
		return
	}
	if l.f != nil && l.size+int64(len(b)) > l.maxSize && l.size > 0 {
		if err := l.rotate(); err != nil {
			l.logger.Error("event log: rotation failed", "path", l.path, "err", err)
		}
		if !l.ensureOpen() {
			l.dropped++
			return
		}
	}
	n, err := l.w.Write(b)
	l.size += int64(n)
	if err != nil {
		l.errors++
		l.logger.Error("event log: write failed", "path", l.path, "err", err)
	}
}

// Dropped reports how many findings were lost while the file could not be opened.
func (l *Log) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// rotate renames path to path.1 (path.1 to path.2...), drops the oldest, and
// reopens path. Whatever fails, the current file is closed and a reopen is
// tried (here, else on the next Emit): a failed rotation never leaves the
// log writing to a closed file.
func (l *Log) rotate() error {
	err := l.f.Close()
	l.f, l.w = nil, nil
	if l.maxBackups == 0 {
		if terr := os.Truncate(l.path, 0); err == nil {
			err = terr
		}
	} else {
		os.Remove(fmt.Sprintf("%s.%d", l.path, l.maxBackups))
		for i := l.maxBackups - 1; i >= 1; i-- {
			os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
		}
		if rerr := os.Rename(l.path, l.path+".1"); err == nil {
			err = rerr
		}
	}
	if oerr := l.open(); err == nil {
		err = oerr
	}
	return err
}

// Close syncs and closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	l.w = io.Discard
	return err
}
