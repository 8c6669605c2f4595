package daemon

import (
	"bufio"
	"context"
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
