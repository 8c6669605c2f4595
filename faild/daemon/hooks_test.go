//go:build unix

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func hookScript(t *testing.T, body string) (script, dir string) {
	t.Helper()
	dir = t.TempDir()
	script = filepath.Join(dir, "hook")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, dir
}

// TestHooksOrder runs events through the queue and wants them run one at a
// time, in order, with their environment.
func TestHooksOrder(t *testing.T) {
	script, dir := hookScript(t, `echo "$FAILD_EVENT $FAILD_PEER" >> "$OUT"; sleep 0.01`+"\n")
	t.Setenv("OUT", filepath.Join(dir, "out"))
	h := newHooks(slog.New(slog.NewTextHandler(io.Discard, nil)), script, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.serve(ctx) }()
	var want []string
	for i := range 10 {
		kind := []string{"failover", "switchback"}[i%2]
		h.enqueue(hookEvent{kind: kind, env: []string{"FAILD_EVENT=" + kind, fmt.Sprintf("FAILD_PEER=192.0.2.%d", i)}})
		want = append(want, fmt.Sprintf("%s 192.0.2.%d", kind, i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.counts().Run < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	b, _ := os.ReadFile(filepath.Join(dir, "out"))
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("hooks ran\n%q\nwant\n%q", got, want)
	}
	if c := h.counts(); c != (StatusHooks{Run: 10}) {
		t.Errorf("counts %+v", c)
	}
}

// TestHooksTimeout wants a hanging hook killed after the timeout, with what
// it started, and the next hook run; enqueue must never block. The hang
// runs under a short timeout and the hooks after it under a long one (a
// hook takes its timeout when it starts), so that a loaded machine, slow
// to start a shell, cannot time out a hook that does not hang.
func TestHooksTimeout(t *testing.T) {
	script, dir := hookScript(t, `[ "$FAILD_EVENT" = hang ] && { sleep 100 & echo $! > "$DIR/child"; wait; }; echo "$FAILD_EVENT" >> "$DIR/out"`+"\n")
	t.Setenv("DIR", dir)
	var logBuf safeBuffer
	h := newHooks(slog.New(slog.NewTextHandler(&logBuf, nil)), script, 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.serve(ctx)
	h.enqueue(hookEvent{kind: "hang", env: []string{"FAILD_EVENT=hang"}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "child")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hanging hook did not start its child in 10 s; counts %+v", h.counts())
		}
	}
	h.configure(script, time.Minute)
	start := time.Now()
	for range hookQueue + 10 {
		h.enqueue(hookEvent{kind: "next", env: []string{"FAILD_EVENT=next"}})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("enqueue blocked for %v", took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.counts().Run < hookQueue && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c := h.counts()
	if c.Failed != 1 || c.Dropped == 0 {
		t.Errorf("counts %+v; want 1 failed (the hang) and some dropped", c)
	}
	if !strings.Contains(logBuf.String(), "msg=hook-timeout") {
		t.Errorf("log:\n%s", logBuf.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out"))
	if !strings.HasPrefix(string(b), "next\n") || strings.Contains(string(b), "hang") {
		t.Errorf("out %q; want the hang killed before it wrote, then the next ones", b)
	}
	var pid int
	if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil {
		fmt.Sscan(string(b), &pid)
	}
	if pid == 0 || processAlive(pid) {
		t.Errorf("the hook's child %d survived the timeout", pid)
	}
}

// processAlive reports whether pid is still running one second on; a
// zombie waiting for init to reap it counts as gone.
func processAlive(pid int) bool {
	for range 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return syscall.Kill(pid, 0) == nil
}
