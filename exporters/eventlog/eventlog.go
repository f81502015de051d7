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
type Log struct {
	mu         sync.Mutex
	path       string
	maxSize    int64
	maxBackups int
	w          io.Writer
	f          *os.File // nil when writing to stdout
	size       int64
	logger     *slog.Logger
	errors     int
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
	if l.f != nil && l.size+int64(len(b)) > l.maxSize && l.size > 0 {
		if err := l.rotate(); err != nil {
			l.logger.Error("event log: rotation failed; still writing to the current file", "path", l.path, "err", err)
		}
	}
	n, err := l.w.Write(b)
	l.size += int64(n)
	if err != nil {
		l.errors++
		l.logger.Error("event log: write failed", "path", l.path, "err", err)
	}
}

// rotate renames path to path.1 (path.1 to path.2...), drops the oldest, and
// reopens path.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	if l.maxBackups == 0 {
		if err := os.Truncate(l.path, 0); err != nil {
			return err
		}
		return l.open()
	}
	os.Remove(fmt.Sprintf("%s.%d", l.path, l.maxBackups))
	for i := l.maxBackups - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.open()
		return err
	}
	return l.open()
}

// Close syncs and closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
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
