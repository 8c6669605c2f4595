//go:build unix

package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/routes"
)

// TestListenStatusPath: listenStatus replaces a stale socket, refuses one a
// daemon serves, and never removes anything at the path that is not a
// socket (a mistyped --status-socket naming the config file, say).
func TestListenStatusPath(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string) // leaves something at path
		root  bool                            // binding needs chown to root
		err   string                          // "" if the bind must work
	}{
		{"nothing there", func(*testing.T, string) {}, true, ""},
		{"stale socket", func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, true, ""},
		{"live socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, false, "another faild is serving it"},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("port = 4117\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a regular file)"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a directory)"},
		{"symlink to a socket", func(t *testing.T, path string) {
			target := path + ".real"
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a symbolic link)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to give the socket to root")
			}
			path := filepath.Join(t.TempDir(), "s")
			tt.setup(t, path)
			before, _ := os.Lstat(path)
			ln, err := listenStatus(path, os.Getegid())
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				fi, err := os.Lstat(path)
				if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
					t.Errorf("socket %v, %v; want a socket of mode 0660", fi, err)
				}
				return
			}
			if err == nil {
				ln.Close()
				t.Fatal("bound; want an error")
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q; want one naming %s and saying %q", err, path, tt.err)
			}
			if after, err := os.Lstat(path); err != nil || !os.SameFile(before, after) {
				t.Errorf("%s at the path was removed or replaced: %v", tt.name, err)
			}
		})
	}
}

// TestSummary: one count for STATUS= and the status report, a dual-stack
// peer once, and "peer" for one.
func TestSummary(t *testing.T) {
	d := &Daemon{}
	cfg := routes.Config{LANs: 2, Interval: time.Second, Misses: 3, Successes: 3}
	d.fams[0] = &family{table: routes.New(cfg)}
	d.fams[1] = &family{v6: true, table: routes.New(cfg)}
	o := func(f int, id routes.PeerID, a ...netip.Addr) {
		d.fams[f].table.Observe(routes.Observation{Peer: id, LAN: 0, Addrs: a, Interval: time.Second, At: t0}, nil)
	}
	o(0, 2, addr("192.0.2.2"), addr("198.51.100.2"))
	o(1, 2, addr("2001:db8:a::2"), addr("2001:db8:b::2")) // dual-stack: one peer
	if got := d.summary().String(); got != "1 peer, 0 of 4 paths down" {
		t.Errorf("summary %q", got)
	}
	o(1, 3, addr("2001:db8:a::3")) // IPv6 only
	d.fams[0].table.Expire(t0.Add(time.Hour), nil)
	if got := d.summary(); got != (Summary{Peers: 2, Paths: 5, Down: 2}) {
		t.Errorf("summary %+v", got)
	}
	d.lans = []platform.LAN{{Name: "eth0", Index: 2, Up: true, Addr: netip.MustParsePrefix("192.0.2.1/24")}, {Name: "eth1"}}
	if got := d.summary().String(); got != "2 peers, 2 of 5 paths down; eth1 gone" {
		t.Errorf("summary with eth1 gone %q", got)
	}
}

// TestServeStatus: the server answers "status" (or nothing) with the
// loop's snapshot, "reload" with the loop's verdict, anything else with an
// error, and a client that says nothing still gets the status.
func TestServeStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := listenStatus(sock, os.Getegid())
	if err != nil {
		t.Skipf("cannot bind a status socket here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requests := make(chan request)
	go serveStatus(ctx, ln, requests, newEventStream(), slog.New(slog.DiscardHandler))
	go func() {
		for r := range requests {
			switch r.verb {
			case "reload":
				r.reply <- []byte(`{"error":"bad file"}` + "\n")
			case "cluster":
				b, _ := json.Marshal(&Cluster{Node: "192.0.2.1", PathsDown: 1, Diagnosis: []Diagnosis{{LAN: "A", Fault: FaultLANDown}}})
				r.reply <- b
			default:
				b, _ := json.Marshal(&Status{Node: "192.0.2.1", PathsDown: 1})
				r.reply <- b
			}
		}
	}()
	s, _, err := FetchStatus(sock)
	if err != nil || s.Node != "192.0.2.1" || s.Healthy() {
		t.Errorf("status: %+v, %v", s, err)
	}
	if c, _, err := FetchCluster(sock); err != nil || c.Node != "192.0.2.1" || c.Healthy() || len(c.Diagnosis) != 1 {
		t.Errorf("cluster: %+v, %v", c, err)
	}
	if err := Reload(sock); err == nil || err.Error() != "bad file" {
		t.Errorf("reload: %v; want the loop's error", err)
	}
	if raw, err := Ask(sock, "frobnicate", time.Second); err != nil || !strings.Contains(string(raw), "unknown request") {
		t.Errorf("unknown verb: %s, %v", raw, err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	var got Status
	if err := json.NewDecoder(c).Decode(&got); err != nil || got.Node != "192.0.2.1" {
		t.Errorf("a client that says nothing: %+v, %v", got, err)
	}
	c.Close()
	if _, err := Ask(filepath.Join(t.TempDir(), "none"), "status", time.Second); err == nil {
		t.Error("no daemon, no error")
	}
}

// TestWatch: a client that asks for "events" gets every line logged at
// info and above, in the text log format, until it hangs up; without
// one, nothing is formatted.
func TestWatch(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := listenStatus(sock, os.Getegid())
	if err != nil {
		t.Skipf("cannot bind a status socket here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := newEventStream()
	go ev.serve(ctx)
	go serveStatus(ctx, ln, make(chan request), ev, slog.New(slog.DiscardHandler))
	var logged bytes.Buffer
	log := slog.New(&teeHandler{next: slog.NewTextHandler(&logged, nil), e: ev})
	if (&teeHandler{next: slog.DiscardHandler, e: ev}).Enabled(ctx, slog.LevelInfo) {
		t.Error("enabled without a client")
	}
	r, w := io.Pipe()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Watch(wctx, sock, w); w.Close() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		log.Debug("hidden")
		log.Warn("failover", "peer", "192.0.2.2", "lan", "A")
		select {
		case l := <-lines:
			if strings.Contains(l, "hidden") || !strings.Contains(l, "level=WARN msg=failover peer=192.0.2.2 lan=A") ||
				!strings.HasPrefix(l, "time=") {
				t.Fatalf("watched %q", l)
			}
			got = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no line watched in 5s")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Watch after its context ended: %v", err)
	}
	for range 100 {
		if ev.watchers.Load() == 0 {
			break
		}
		log.Info("tick") // a write finds the client gone
		time.Sleep(10 * time.Millisecond)
	}
	if n := ev.watchers.Load(); n != 0 {
		t.Errorf("%d watchers left after the client hung up", n)
	}
	if !strings.Contains(logged.String(), "msg=failover") {
		t.Errorf("the log itself lost the line: %q", logged.String())
	}
}
