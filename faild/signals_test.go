//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCatchSignalsOutsideTask sends SIGHUP and SIGUSR1 to the test process
// while no signals task runs, as during start-up and at stop: with the
// default action either would kill it. They must be queued instead.
func TestCatchSignalsOutsideTask(t *testing.T) {
	c := catchSignals()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-c:
			if got != sig {
				t.Errorf("got %v, want %v", got, sig)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v was not delivered to the channel", sig)
		}
	}
}

// TestSignalQueuedBeforeTask wants a SIGHUP that came before the signals
// task started (during start-up) to be handled once it runs: the log is
// reopened and the reload logged.
func TestSignalQueuedBeforeTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log, out, err := newLogger(path, "text")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	args := []string{"-l", path}
	opts, _, err := loadOptions(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 4)
	sigs <- syscall.SIGHUP // queued before the task runs
	opts.session = &session{args: args, log: out, signals: sigs}
	d := &daemon{opts: opts, log: log, hooks: newHooks(log, "", time.Second)}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.signals(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "msg=reload") {
			if !strings.Contains(string(b), "needs_restart=none") {
				t.Errorf("reload line: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged; log:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("signals = %v", err)
	}
}
