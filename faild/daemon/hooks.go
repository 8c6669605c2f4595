package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// hookQueue bounds the events waiting for --on-change; past it, events are
// dropped and counted rather than let a slow hook hold up the loop.
const hookQueue = 64

// hookEvent is one route change for --on-change, as environment variables.
type hookEvent struct {
	kind string
	env  []string
}

// hooks runs --on-change scripts one at a time, in event order, on a task
// of their own: enqueue never blocks, and a hook that fails or hangs is
// logged and killed (with its process group) after --hook-timeout.
type hooks struct {
	log   *slog.Logger
	queue chan hookEvent

	// script and timeout are set by the loop (a reload) and read by the
	// runner: an atomic pointer to a value never changed after it is
	// stored.
	conf atomic.Pointer[hookConf]

	run, failed, dropped atomic.Uint64
}

type hookConf struct {
	script  string
	timeout time.Duration
}

func newHooks(log *slog.Logger, script string, timeout time.Duration) *hooks {
	h := &hooks{log: log, queue: make(chan hookEvent, hookQueue)}
	h.configure(script, timeout)
	return h
}

// configure sets the script and timeout for the hooks that run next.
func (h *hooks) configure(script string, timeout time.Duration) {
	h.conf.Store(&hookConf{script: script, timeout: timeout})
}

// enqueue queues an event without blocking.
func (h *hooks) enqueue(ev hookEvent) {
	if h.conf.Load().script == "" {
		return
	}
	select {
	case h.queue <- ev:
	default:
		h.dropped.Add(1)
		h.log.Warn("hook-dropped", "event", ev.kind, "detail", "hook queue full; the hook is slower than the events")
	}
}

// serve runs queued hooks until ctx ends; a running hook is killed then.
func (h *hooks) serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-h.queue:
			if ctx.Err() != nil {
				return nil // stopping: the rest of the queue is dropped
			}
			h.exec(ctx, ev)
		}
	}
}

// exec runs one hook to the end or the timeout.
func (h *hooks) exec(ctx context.Context, ev hookEvent) {
	conf := h.conf.Load()
	if conf.script == "" {
		return // removed by a reload since the event was queued
	}
	ctx, cancel := context.WithTimeout(ctx, conf.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, conf.script)
	cmd.Env = append(os.Environ(), ev.env...)
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ownProcessGroup(cmd)
	// A grandchild that left the group could hold the output pipe open.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond).String()
	h.run.Add(1)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		h.failed.Add(1)
		h.log.Warn("hook-killed", "event", ev.kind, "script", conf.script, "took", took, "detail", "faild is stopping; killed its process group")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		h.failed.Add(1)
		h.log.Error("hook-timeout", "event", ev.kind, "script", conf.script, "timeout", conf.timeout.String(), "action", "killed its process group", "output", out.String())
	case err != nil:
		h.failed.Add(1)
		h.log.Error("hook-failed", "event", ev.kind, "script", conf.script, "took", took, "err", err, "output", out.String())
	default:
		h.log.Info("hook", "event", ev.kind, "script", conf.script, "took", took)
	}
}

func (h *hooks) counts() StatusHooks {
	return StatusHooks{Run: h.run.Load(), Failed: h.failed.Load(), Dropped: h.dropped.Load()}
}

// limitedBuffer keeps the first 4 KiB of a hook's output for the log.
type limitedBuffer struct {
	mu sync.Mutex // the hook's stdout and stderr copiers write at once
	b  bytes.Buffer
}

const hookOutputMax = 4096

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := hookOutputMax - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.TrimSpace(l.b.Bytes()))
}
