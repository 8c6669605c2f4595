//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faild/faild/faild/eventlog"
	"github.com/faild/faild/faild/options"
)

// TestCatchSignalsOutsideTask sends SIGHUP, SIGUSR1 and SIGUSR2 to the test
// process while no loop runs, as during start-up and at stop: with the
// default action any of them would kill it. They must be queued instead.
func TestCatchSignalsOutsideTask(t *testing.T) {
	c := catchSignals()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
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

// TestReloader: a reload re-reads the command line and config file, moves
// the log to its new file, and names the options that take a restart; a
// bad file keeps the running log, reopened.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "faild.conf")
	old, moved := filepath.Join(dir, "old.log"), filepath.Join(dir, "new.log")
	os.WriteFile(conf, []byte("log-file = "+old+"\nport = 4117\n"), 0o644)
	args := []string{"-c", conf}
	opts, _, err := options.Load(args)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := opts.Validate()
	if err != nil {
		t.Fatal(err)
	}
	log, out, err := eventlog.Open(opts.LogFile, opts.Ops.LogFormat)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	reload := reloader(args, out, opts, cfg.Keys)

	os.WriteFile(conf, []byte("log-file = "+moved+"\nport = 5000\non-change = /bin/true\n"), 0o644)
	r, err := reload()
	if err != nil || r.LogFile != moved || r.OnChange != "/bin/true" || strings.Join(r.NeedsRestart, ",") != "port" {
		t.Fatalf("reload = %+v, %v; want the new log and hook, port needing a restart", r, err)
	}
	log.Info("after")
	if b, _ := os.ReadFile(moved); !strings.Contains(string(b), "msg=after") {
		t.Errorf("new log %q; want the line written after the reload", b)
	}

	os.WriteFile(conf, []byte("port = 70000\n"), 0o644)
	if _, err := reload(); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("bad file: %v; want an error naming port", err)
	}
	log.Info("still")
	if b, _ := os.ReadFile(moved); !strings.Contains(string(b), "msg=still") {
		t.Errorf("log after a bad reload %q; want it still written", b)
	}
}
