package daemon

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestEventStreamWatchers: maxWatchers clients follow at once and each
// gets every line; one more is told why it is refused.
func TestEventStreamWatchers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEventStream()
	go e.serve(ctx)
	var readers []*bufio.Reader
	for range maxWatchers {
		server, client := net.Pipe()
		t.Cleanup(func() { client.Close() })
		go e.follow(ctx, server)
		readers = append(readers, bufio.NewReader(client))
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.watchers.Load() < maxWatchers {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients follow after 5 s, want %d", e.watchers.Load(), maxWatchers)
		}
		time.Sleep(time.Millisecond)
	}
	server, client := net.Pipe()
	defer client.Close()
	go e.follow(ctx, server)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(client).ReadString('\n'); err != nil || !strings.Contains(l, "too many clients") {
		t.Errorf("client %d got %q (%v), want a refusal", maxWatchers+1, l, err)
	}
	// Every one that follows has joined the stream once its line comes:
	// send until the first reads one, then each must read it.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case e.lines <- []byte("msg=hello\n"):
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	defer close(done)
	for i, r := range readers {
		for range 2 { // a line, and the next: a client keeps following
			got := make(chan string, 1)
			go func() { l, _ := r.ReadString('\n'); got <- l }()
			select {
			case l := <-got:
				if l != "msg=hello\n" {
					t.Errorf("client %d read %q", i, l)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("client %d read nothing in 5 s", i)
			}
		}
	}
}

// TestTeeHandler: while a client follows, records at info and above go
// to the stream as text lines with the handler's group and attributes,
// whatever the log's own level; below info, or with no one following,
// nothing is formatted for it.
func TestTeeHandler(t *testing.T) {
	var logged strings.Builder
	e := newEventStream()
	h := slog.Handler(&teeHandler{next: slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}), e: e})
	h = h.WithGroup("g").WithAttrs([]slog.Attr{slog.String("node", "n1")})
	ctx := context.Background()
	line := func() string {
		select {
		case b := <-e.lines:
			return string(b)
		default:
			return ""
		}
	}
	rec := func(l slog.Level) slog.Record { return slog.NewRecord(time.Now(), l, "hello", 0) }
	if h.Enabled(ctx, slog.LevelInfo) {
		t.Error("info enabled with no one following and the log at warn")
	}
	h.Handle(ctx, rec(slog.LevelInfo))
	if l := line(); l != "" {
		t.Errorf("a line for the stream with no one following: %q", l)
	}
	e.watchers.Store(1)
	if !h.Enabled(ctx, slog.LevelInfo) || h.Enabled(ctx, slog.LevelDebug) {
		t.Error("while a client follows: want info enabled, debug not")
	}
	h.Handle(ctx, rec(slog.LevelDebug))
	if l := line(); l != "" {
		t.Errorf("a debug line for the stream: %q", l)
	}
	h.Handle(ctx, rec(slog.LevelInfo))
	if l := line(); !strings.Contains(l, "msg=hello") || !strings.Contains(l, "g.node=n1") {
		t.Errorf("stream line %q, want msg=hello with g.node=n1", l)
	}
	if logged.Len() != 0 {
		t.Errorf("the log at warn got %q", logged.String())
	}
}
