//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faild/faild/faild/daemon"
	"github.com/faild/faild/faild/options"
)

// TestBadStatusGroupExits78: an unknown --status-group is a bad command
// line, EX_CONFIG, found before anything is touched (the socket is not
// bound).
func TestBadStatusGroupExits78(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	if got := faild([]string{"--status-socket", sock, "--status-group", "faild-no-such-group"}); got != exitConfig {
		t.Errorf("exit %d, want %d", got, exitConfig)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket touched: %v", err)
	}
	o, _, _ := options.Load([]string{"--status-group", "faild-no-such-group"})
	if _, err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--status-group") || strings.Contains(err.Error(), "\n") {
		t.Errorf("validate = %v; want one line naming --status-group", err)
	}
}

// TestStatusCommand serves canned snapshots on a socket and checks the
// table, the JSON and the exit codes 0, 1 and 2.
func TestStatusCommand(t *testing.T) {
	healthy := &daemon.Status{Version: "test", Node: "192.0.2.1", Requestor: true, IntervalSeconds: 0.1, Misses: 3, Successes: 3,
		LANs:  []daemon.StatusLAN{{Name: "A", Dev: "eth0", Addr: "192.0.2.1/24"}, {Name: "B", Dev: "eth1", Addr: "198.51.100.1/24"}},
		Peers: 1,
		Paths: []daemon.StatusPath{
			{Peer: "192.0.2.2", LAN: "A", Dev: "eth0", Addr: "192.0.2.2", State: "valid", Heard: true, LastEvidenceSeconds: 0.05, Goods: 9, RTTSeconds: 0.000312},
			{Peer: "192.0.2.2", LAN: "B", Dev: "eth1", Addr: "198.51.100.2", State: "valid", Heard: true, LastEvidenceSeconds: 0.05, Goods: 9},
		},
		Drops: map[string]uint64{"ttl": 2},
	}
	down := *healthy
	down.PathsDown = 1
	down.Paths = append([]daemon.StatusPath(nil), healthy.Paths...)
	down.Paths[0].State, down.Paths[0].Misses, down.Paths[0].Failovers = "invalid", 4, 1
	down.Paths[0].Route, down.Paths[0].RouteState = "192.0.2.2/32 via 198.51.100.2 dev eth1", "installed"
	blocked := down
	blocked.Paths = append([]daemon.StatusPath(nil), down.Paths...)
	blocked.Paths[0].Route, blocked.Paths[0].RouteState = "foreign route 192.0.2.2/32 via 198.51.100.3 dev eth1 proto static", "blocked"

	for _, tt := range []struct {
		name  string
		s     *daemon.Status
		args  []string
		code  int
		wants []string
	}{
		{"healthy", healthy, nil, 0, []string{"192.0.2.2  A    eth0  192.0.2.2     valid  50ms", "1 peer, 0 of 2 paths down", "ttl=2", "312µs"}},
		{"blocked", &blocked, nil, 1, []string{"blocked by foreign route 192.0.2.2/32 via 198.51.100.3 dev eth1 proto static"}},
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
					line, _ := bufio.NewReader(c).ReadString('\n')
					if line == "status\n" {
						json.NewEncoder(c).Encode(tt.s)
					}
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

// TestReloadCommand: faild reload asks the daemon and reports its answer;
// a failed reload is exit 1 with the daemon's reason, no daemon exit 2.
func TestReloadCommand(t *testing.T) {
	for _, tt := range []struct {
		answer string
		code   int
		want   string
	}{
		{`{"ok":true}`, 0, ""},
		{`{"ok":false,"error":"invalid config file /etc/faild/faild.conf:3: port: must be 1 to 65535"}`, 1, "faild.conf:3: port"},
	} {
		sock := filepath.Join(t.TempDir(), "s")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				if line, _ := bufio.NewReader(c).ReadString('\n'); line == "reload\n" {
					c.Write([]byte(tt.answer + "\n"))
				}
				c.Close()
			}
		}()
		var out, errOut bytes.Buffer
		if code := reload([]string{"--status-socket", sock}, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("answer %s: exit %d, stderr %q; want %d and %q", tt.answer, code, errOut.String(), tt.code, tt.want)
		}
		ln.Close()
	}
	var out, errOut bytes.Buffer
	if code := reload([]string{"--status-socket", filepath.Join(t.TempDir(), "none")}, &out, &errOut); code != 2 {
		t.Errorf("no daemon: exit %d, want 2", code)
	}
}
