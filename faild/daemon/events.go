package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// The event stream of "faild status --watch": every log line at info and
// above, as the text log writes it, to each client that follows. Any
// goroutine may log, so lines reach the clients through the stream's own
// goroutine (serve), which owns the set of clients; a client that cannot
// keep up loses lines rather than holding anyone up.

// maxWatchers bounds the clients that follow at once.
const maxWatchers = 8

type eventStream struct {
	lines    chan []byte
	join     chan chan []byte
	leave    chan chan []byte
	watchers atomic.Int32 // clients following: without one, nothing is formatted
}

func newEventStream() *eventStream {
	return &eventStream{lines: make(chan []byte, 256), join: make(chan chan []byte), leave: make(chan chan []byte)}
}

// serve hands every line to every client until ctx ends.
func (e *eventStream) serve(ctx context.Context) error {
	clients := map[chan []byte]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-e.join:
			clients[c] = true
		case c := <-e.leave:
			delete(clients, c)
			close(c)
		case l := <-e.lines:
			for c := range clients {
				select {
				case c <- l:
				default: // a slow client loses the line
				}
			}
		}
	}
}

// follow streams the lines to conn until the client hangs up or ctx ends.
func (e *eventStream) follow(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	if e.watchers.Add(1) > maxWatchers {
		e.watchers.Add(-1)
		conn.Write([]byte("faild: too many clients follow the events already\n"))
		return
	}
	defer e.watchers.Add(-1)
	c := make(chan []byte, 64)
	if !post(ctx, e.join, c) {
		return
	}
	defer post(ctx, e.leave, c)
	gone := make(chan struct{})
	go func() {
		// The client sends nothing more; a read returns when it hangs up.
		conn.SetReadDeadline(time.Time{})
		var b [1]byte
		conn.Read(b[:])
		close(gone)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case l := <-c:
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(l); err != nil {
				return
			}
		}
	}
}

// teeHandler logs to next, and formats each record at info and above as
// a text line for the event stream while a client follows it.
type teeHandler struct {
	next  slog.Handler
	e     *eventStream
	attrs []slog.Attr
	group string
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || l >= slog.LevelInfo && h.e.watchers.Load() > 0
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r)
	}
	if r.Level < slog.LevelInfo || h.e.watchers.Load() == 0 {
		return err
	}
	var b bytes.Buffer
	var t slog.Handler = slog.NewTextHandler(&b, nil)
	if h.group != "" {
		t = t.WithGroup(h.group)
	}
	if len(h.attrs) > 0 {
		t = t.WithAttrs(h.attrs)
	}
	if t.Handle(ctx, r) == nil {
		select {
		case h.e.lines <- b.Bytes():
		default: // the stream is behind: the line is lost to the clients, not to the log
		}
	}
	return err
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{next: h.next.WithAttrs(as), e: h.e, attrs: append(append([]slog.Attr(nil), h.attrs...), as...), group: h.group}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	// faild logs no groups with attributes before them; one level does.
	return &teeHandler{next: h.next.WithGroup(name), e: h.e, attrs: h.attrs, group: name}
}

// Watch follows the events of the daemon serving the socket at path,
// copying each line to w, until the daemon closes the stream or ctx ends.
func Watch(ctx context.Context, path string, w io.Writer) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoDaemon, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := io.WriteString(c, "events\n"); err != nil {
		return fmt.Errorf("failed to ask %s: %w", path, err)
	}
	if _, err := io.Copy(w, c); err != nil && ctx.Err() == nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	return nil
}
