package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// logOutput is the event log's destination. SIGHUP reopens it so that
// logrotate can move the file away: lines written before the reopen land in
// the moved file, lines after it in the new one, none are lost because every
// write and the swap hold the same lock.
//
// A log that fails at run time (a full disk) does not stop faild: each
// line lost is counted (WriteFailures), and standard error says so once,
// and again only after the log has worked and failed anew.
type logOutput struct {
	mu   sync.Mutex
	w    io.Writer // the open file, or standard error
	f    *os.File  // nil when writing to standard error
	path string
	h    slog.Handler // formats into the locked writer

	failures atomic.Uint64 // lines lost to write errors
	failing  bool          // the last write failed
	lost     uint64        // failures when the current failing run began
	warn     io.Writer     // where failing is told: standard error
}

// newLogger opens the event log: one line an event, text (key=value) or
// JSON, to path or, without one, to standard error. Without a path under
// systemd (JOURNAL_STREAM set) it leaves timestamps to journald.
func newLogger(path, format string) (*slog.Logger, *logOutput, error) {
	o := &logOutput{w: os.Stderr, warn: os.Stderr}
	if err := o.reopen(path, format); err != nil {
		return nil, nil, err
	}
	return slog.New(o), o, nil
}

// reopen points the log at path (standard error if empty) in format,
// opening the new file before closing the old one. A file that refuses a
// write of nothing (/dev/full, say) is refused: the log could not be
// written, and faild would run silent.
func (o *logOutput) reopen(path, format string) error {
	var w io.Writer = os.Stderr
	var f *os.File
	if path != "" {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		if _, err := f.Write(nil); err != nil {
			f.Close()
			return fmt.Errorf("%s cannot be written: %w", path, unwrapPath(err))
		}
		w = f
	}
	noTime := path == "" && os.Getenv("JOURNAL_STREAM") != ""
	h := newHandler(lockedWriter{o}, format, noTime)
	o.mu.Lock()
	old := o.f
	o.w, o.f, o.path, o.h = w, f, path, h
	o.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the log file, if any.
func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f, o.w = nil, os.Stderr
	return err
}

func newHandler(w io.Writer, format string, noTime bool) slog.Handler {
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			if noTime {
				return slog.Attr{}
			}
			a.Value = slog.StringValue(a.Value.Time().Format("2006-01-02T15:04:05.000Z07:00"))
		}
		return a
	}}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// lockedWriter writes to the log's current destination; handlers call it
// with o.mu already held by Handle, one line a call.
type lockedWriter struct{ o *logOutput }

func (l lockedWriter) Write(b []byte) (int, error) {
	n, err := l.o.w.Write(b)
	l.o.noteWrite(err)
	return n, err
}

// noteWrite counts a failed write and tells standard error when the log
// starts or stops failing; o.mu is held. A log on standard error that
// fails is only counted: there is nowhere else to tell.
func (o *logOutput) noteWrite(err error) {
	switch {
	case err != nil:
		n := o.failures.Add(1)
		if !o.failing {
			o.failing, o.lost = true, n-1
			if o.f != nil {
				fmt.Fprintf(o.warn, "faild: failed to write the log to %s: %v; counting the lines lost until it works again\n", o.path, unwrapPath(err))
			}
		}
	case o.failing:
		o.failing = false
		if o.f != nil {
			fmt.Fprintf(o.warn, "faild: writing the log to %s again; lines lost: %d\n", o.path, o.failures.Load()-o.lost)
		}
	}
}

// unwrapPath drops the "write PATH: " of an *os.PathError, for messages
// that name the path already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// WriteFailures is how many log lines were lost to write errors since
// start, for faild status.
func (o *logOutput) WriteFailures() uint64 { return o.failures.Load() }

// Enabled implements slog.Handler.
func (o *logOutput) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler: format and write under one lock, so a
// reopen never splits or drops a line.
func (o *logOutput) Handle(ctx context.Context, r slog.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.h.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; faild logs flat lines, so derived
// loggers apply their attributes to each record.
func (o *logOutput) WithAttrs(as []slog.Attr) slog.Handler {
	return &derived{o: o, attrs: as}
}

// WithGroup implements slog.Handler.
func (o *logOutput) WithGroup(name string) slog.Handler {
	return &derived{o: o, group: name}
}

// derived is a logger made with With or WithGroup; it survives reopens
// because it resolves the current handler on every record.
type derived struct {
	o      *logOutput
	parent *derived
	attrs  []slog.Attr
	group  string
}

func (d *derived) Enabled(context.Context, slog.Level) bool { return true }

func (d *derived) Handle(ctx context.Context, r slog.Record) error {
	d.o.mu.Lock()
	defer d.o.mu.Unlock()
	return d.apply(d.o.h).Handle(ctx, r)
}

func (d *derived) apply(h slog.Handler) slog.Handler {
	if d.parent != nil {
		h = d.parent.apply(h)
	}
	if d.group != "" {
		return h.WithGroup(d.group)
	}
	return h.WithAttrs(d.attrs)
}

func (d *derived) WithAttrs(as []slog.Attr) slog.Handler {
	return &derived{o: d.o, parent: d, attrs: as}
}

func (d *derived) WithGroup(name string) slog.Handler {
	return &derived{o: d.o, parent: d, group: name}
}

var _ slog.Handler = (*logOutput)(nil)
