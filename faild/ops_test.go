//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadOptions checks that a config file sets options by their long
// names, that the command line wins, and that a bad file is one error
// naming file, line and key.
func TestLoadOptions(t *testing.T) {
	good := "# a comment\nrequestor = true\ninterval = 0.25\nport = 5000\ninterface = eth1\ninterface = eth2\non-change = /bin/true\nlog-format = json\n"
	tests := []struct {
		name    string
		file    string
		args    []string
		check   func(o *options) string
		wantErr string
	}{
		{name: "file sets", file: good, check: func(o *options) string {
			if !o.Requestor || o.Interval != seconds(250*time.Millisecond) || o.Port != 5000 ||
				!reflect.DeepEqual(o.Interfaces, []string{"eth1", "eth2"}) || o.Ops.OnChange != "/bin/true" || o.Ops.LogFormat != "json" {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "flags win", file: good, args: []string{"-p", "6000", "-i", "eth7", "--log-format", "text"}, check: func(o *options) string {
			if o.Port != 6000 || !reflect.DeepEqual(o.Interfaces, []string{"eth7"}) || o.Ops.LogFormat != "text" || o.Interval != seconds(250*time.Millisecond) {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "defaults stay", file: "port = 5000\n", check: func(o *options) string {
			if o.Misses != 3 || o.Ops.HookTimeout != 10*time.Second || o.Ops.StatusSocket != defaultStatusSocket {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "unknown key", file: "port = 5000\nbogus = 1\n", wantErr: ":2: unknown option: bogus"},
		{name: "bad value", file: "\nport = abc\n", wantErr: ":2: port: "},
		{name: "bad choice", file: "log-format = xml\n", wantErr: ":1: Invalid value `xml' for option `--log-format'"},
		{name: "missing file", wantErr: "failed to read config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.conf")
			if tt.file != "" {
				path = writeFile(t, "faild.conf", tt.file)
			}
			o, _, err := loadOptions(append([]string{"-c", path}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err %v; want one naming %s and %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(o); msg != "" {
				t.Errorf("options %s", msg)
			}
			if err := o.validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestValidateOps(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"hook timeout", []string{"--hook-timeout", "250ms"}, true},
		{"zero hook timeout", []string{"--hook-timeout", "0s"}, false},
		{"empty socket", []string{"--status-socket", ""}, false},
		{"unknown status group", []string{"--status-group", "faild-no-such-group"}, false},
	}
	if g, err := user.LookupGroupId("0"); err == nil {
		tests = append(tests, struct {
			name string
			args []string
			ok   bool
		}{"gid 0 by name", []string{"--status-group", g.Name}, true})
	}
	for _, tt := range tests {
		o, _, err := loadOptions(tt.args)
		if err == nil {
			err = o.validate()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v: err %v, want ok=%v", tt.name, tt.args, err, tt.ok)
		}
	}
}

func TestRestartOnly(t *testing.T) {
	a, _, _ := loadOptions([]string{"-p", "4117", "-l", "/a"})
	b, _, _ := loadOptions([]string{"-p", "5000", "-l", "/b", "--on-change", "/x", "--status-group", "adm"})
	got := restartOnly(a, b)
	if want := []string{"port", "status-group"}; !reflect.DeepEqual(got, want) {
		t.Errorf("restartOnly = %v, want %v", got, want)
	}
}

// TestRestartOnlyKeys: a reload does not apply new keys, so a key file
// whose keys changed is reported under needs_restart, also when its path
// did not change; the same keys are not.
func TestRestartOnlyKeys(t *testing.T) {
	const k1, k2 = "0123456789abcdef", "fedcba9876543210"
	path := keyFile(t, k1+"\n", 0o600)
	load := func(args ...string) *options {
		t.Helper()
		o, _, err := loadOptions(args)
		if err == nil {
			err = o.validate()
		}
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	running := load("--key-file", path)
	if got := restartOnly(running, load("--key-file", path)); len(got) != 0 {
		t.Errorf("same keys: restartOnly = %v, want none", got)
	}
	if err := os.WriteFile(path, []byte(k1+"\n"+k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := restartOnly(running, load("--key-file", path)); !reflect.DeepEqual(got, []string{"key-file"}) {
		t.Errorf("next key added: restartOnly = %v, want [key-file]", got)
	}
	if got := restartOnly(running, load()); !reflect.DeepEqual(got, []string{"key-file"}) {
		t.Errorf("key file dropped: restartOnly = %v, want [key-file]", got)
	}
}

func TestLogFormats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log, out, err := newLogger(path, "json")
	if err != nil {
		t.Fatal(err)
	}
	log.With("k", "v").Info("failover", "peer", "192.0.2.2")
	if err := out.reopen(path, "text"); err != nil {
		t.Fatal(err)
	}
	log.Info("switchback", "peer", "192.0.2.2")
	out.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var m map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["msg"] != "failover" || m["k"] != "v" ||
		!strings.Contains(lines[1], "msg=switchback peer=192.0.2.2") {
		t.Errorf("log:\n%s", b)
	}

	t.Setenv("JOURNAL_STREAM", "8:1234")
	var buf bytes.Buffer
	slog.New(newHandler(&buf, "text", true)).Info("start")
	if got := buf.String(); strings.Contains(got, "time=") || !strings.Contains(got, "msg=start") {
		t.Errorf("under journald: %q; want no timestamp", got)
	}
}

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
// it started, and the next hook run; enqueue must never block.
func TestHooksTimeout(t *testing.T) {
	script, dir := hookScript(t, `[ "$FAILD_EVENT" = hang ] && { sleep 100 & echo $! > "$DIR/child"; wait; }; echo "$FAILD_EVENT" >> "$DIR/out"`+"\n")
	t.Setenv("DIR", dir)
	var logBuf safeBuffer
	h := newHooks(slog.New(slog.NewTextHandler(&logBuf, nil)), script, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.serve(ctx)
	start := time.Now()
	h.enqueue(hookEvent{kind: "hang", env: []string{"FAILD_EVENT=hang"}})
	for range hookQueue + 10 {
		h.enqueue(hookEvent{kind: "next", env: []string{"FAILD_EVENT=next"}})
	}
	if took := time.Since(start); took > 50*time.Millisecond {
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

// TestStatusCommand serves canned snapshots on a socket and checks the
// table, the JSON and the exit codes 0, 1 and 2.
func TestStatusCommand(t *testing.T) {
	healthy := &Status{Version: "test", Node: "192.0.2.1", Requestor: true, IntervalSeconds: 0.1, Misses: 3, Successes: 3,
		LANs:  []StatusLAN{{Name: "A", Dev: "eth0", Addr: "192.0.2.1/24"}, {Name: "B", Dev: "eth1", Addr: "198.51.100.1/24"}},
		Peers: 1,
		Paths: []StatusPath{
			{Peer: "192.0.2.2", LAN: "A", Dev: "eth0", Addr: "192.0.2.2", State: "valid", LastEvidenceSeconds: 0.05, Goods: 9, RTTSeconds: 0.000312},
			{Peer: "192.0.2.2", LAN: "B", Dev: "eth1", Addr: "198.51.100.2", State: "valid", LastEvidenceSeconds: 0.05, Goods: 9},
		},
		Drops: map[string]uint64{"ttl": 2},
	}
	down := *healthy
	down.PathsDown = 1
	down.Paths = append([]StatusPath(nil), healthy.Paths...)
	down.Paths[0].State, down.Paths[0].Misses, down.Paths[0].Failovers = "invalid", 4, 1
	down.Paths[0].Route = "192.0.2.2/32 via 198.51.100.2 dev eth1"

	for _, tt := range []struct {
		name  string
		s     *Status
		args  []string
		code  int
		wants []string
	}{
		{"healthy", healthy, nil, 0, []string{"192.0.2.2  A    eth0  192.0.2.2     valid  50ms", "1 peers, 0 of 2 paths down", "ttl=2", "312µs"}},
		{"down", &down, nil, 1, []string{"invalid", "192.0.2.2/32 via 198.51.100.2 dev eth1", "1 of 2 paths down"}},
		{"down json", &down, []string{"--json"}, 1, []string{`"state":"invalid"`, `"route":"192.0.2.2/32 via 198.51.100.2 dev eth1"`, `"paths_down":1`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					json.NewEncoder(c).Encode(tt.s)
					c.Close()
				}
			}()
			var out, errOut bytes.Buffer
			code := status(append([]string{"--status-socket", sock}, tt.args...), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, errOut.String())
			}
			for _, w := range tt.wants {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := status([]string{"--status-socket", filepath.Join(t.TempDir(), "none")}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "failed to reach the daemon") {
		t.Errorf("no daemon: exit %d, stderr %q; want 2 and a reason", code, errOut.String())
	}
}

func TestNotifier(t *testing.T) {
	var sent []string
	n := &notifier{log: slog.New(slog.NewTextHandler(io.Discard, nil)), warned: every(time.Minute),
		send: func(s string) (bool, error) { sent = append(sent, s); return true, nil }}
	n.ready("0 peers, 0 of 0 paths down")
	n.setStatus("0 peers, 0 of 0 paths down") // unchanged: not sent again
	n.setStatus("1 peers, 0 of 2 paths down")
	n.petWatchdog()
	n.stopping()
	want := []string{"READY=1\nSTATUS=0 peers, 0 of 0 paths down", "STATUS=1 peers, 0 of 2 paths down", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
	if c, _ := n.ticker(); c != nil {
		t.Errorf("watchdog ticker without WATCHDOG_USEC")
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

// safeBuffer is a bytes.Buffer for a logger and a reader on two goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
