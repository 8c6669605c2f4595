// Package eventlog is faild's event log: one line an event, text
// (key=value) or JSON, to a file or to standard error; reopened on reload
// without losing a line; with journald's priorities and without timestamps
// when standard error is the journal; and never silent about lines lost.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/journal"
)

// Output is the event log's destination. SIGHUP reopens it so that
// logrotate can move the file away: lines written before the reopen land in
// the moved file, lines after it in the new one, none are lost because every
// write and the swap hold the same lock.
//
// A log that fails at run time (a full disk) does not stop faild: each
// line lost is counted (WriteFailures), and standard error says so once,
// and again only after the log has worked and failed anew.
type Output struct {
	mu   sync.Mutex
	w    io.Writer // the open file, or standard error
	f    *os.File  // nil when writing to standard error
	path string
	h    slog.Handler // formats into the locked writer

	failures atomic.Uint64 // lines lost to write errors
	failing  bool          // the last write failed
	lost     uint64        // failures when the current failing run began
	stderr   io.Writer     // standard error: the log without a path, and where failing is told

	// journal: standard error is journald's stream, so each line starts
	// with its syslog priority (prio, set per record under mu).
	journal bool
	prio    []byte
}

// Open opens the event log: one line an event, text (key=value) or JSON,
// to path or, without one, to standard error. When standard error is
// journald's stream (JOURNAL_STREAM names it), each line goes with its
// priority (so journalctl -p warning finds the failovers) and without a
// timestamp of faild's: journald adds its own.
func Open(path, format string) (*slog.Logger, *Output, error) {
	return open(path, format, os.Stderr)
}

func open(path, format string, stderr io.Writer) (*slog.Logger, *Output, error) {
	o := &Output{w: stderr, stderr: stderr}
	if err := o.Reopen(path, format); err != nil {
		return nil, nil, err
	}
	return slog.New(o), o, nil
}

// Reopen points the log at path (standard error if empty) in format,
// opening the new file before closing the old one. A file that refuses a
// write of nothing (/dev/full, say) is refused: the log could not be
// written, and faild would run silent.
func (o *Output) Reopen(path, format string) error {
	w := o.stderr
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
	journal := path == "" && stderrIsJournal()
	h := newHandler(lockedWriter{o}, format, journal)
	o.mu.Lock()
	old := o.f
	o.w, o.f, o.path, o.h, o.journal = w, f, path, h, journal
	o.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the log file, if any.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f, o.w = nil, o.stderr
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
type lockedWriter struct{ o *Output }

func (l lockedWriter) Write(b []byte) (int, error) {
	if l.o.journal {
		// One write a line, priority first, so that the journal's stream
		// reader takes them together.
		b = append(l.o.prio, b...)
		l.o.prio = b[:len(l.o.prio)]
	}
	n, err := l.o.w.Write(b)
	l.o.noteWrite(err)
	return n, err
}

// noteWrite counts a failed write and tells standard error when the log
// starts or stops failing; o.mu is held. A log on standard error that
// fails is only counted: there is nowhere else to tell.
func (o *Output) noteWrite(err error) {
	switch {
	case err != nil:
		n := o.failures.Add(1)
		if !o.failing {
			o.failing, o.lost = true, n-1
			if o.f != nil {
				fmt.Fprintf(o.stderr, "faild: failed to write the log to %s: %v; counting the lines lost until it works again\n", o.path, unwrapPath(err))
			}
		}
	case o.failing:
		o.failing = false
		if o.f != nil {
			fmt.Fprintf(o.stderr, "faild: writing the log to %s again; lines lost: %d\n", o.path, o.failures.Load()-o.lost)
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
// start, for the status report.
func (o *Output) WriteFailures() uint64 { return o.failures.Load() }

// Enabled implements slog.Handler.
func (o *Output) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler: format and write under one lock, so a
// reopen never splits or drops a line.
func (o *Output) Handle(ctx context.Context, r slog.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.setPriority(r.Level)
	return o.h.Handle(ctx, r)
}

// setPriority prepares the journal's "<N>" prefix for a record of level;
// o.mu is held.
func (o *Output) setPriority(level slog.Level) {
	if !o.journal {
		return
	}
	// syslog(3) priorities, as sd-daemon(3) reads them.
	p := byte('6') // info
	switch {
	case level >= slog.LevelError:
		p = '3'
	case level >= slog.LevelWarn:
		p = '4'
	case level < slog.LevelInfo:
		p = '7'
	}
	o.prio = append(o.prio[:0], '<', p, '>')
}

// stderrIsJournal reports whether standard error is journald's stream.
func stderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return ok && err == nil
}

// WithAttrs implements slog.Handler; faild logs flat lines, so derived
// loggers apply their attributes to each record.
func (o *Output) WithAttrs(as []slog.Attr) slog.Handler {
	return &derived{o: o, attrs: as}
}

// WithGroup implements slog.Handler.
func (o *Output) WithGroup(name string) slog.Handler {
	return &derived{o: o, group: name}
}

// derived is a logger made with With or WithGroup; it survives reopens
// because it resolves the current handler on every record.
type derived struct {
	o      *Output
	parent *derived
	attrs  []slog.Attr
	group  string
}

func (d *derived) Enabled(context.Context, slog.Level) bool { return true }

func (d *derived) Handle(ctx context.Context, r slog.Record) error {
	d.o.mu.Lock()
	defer d.o.mu.Unlock()
	d.o.setPriority(r.Level)
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

var _ slog.Handler = (*Output)(nil)
