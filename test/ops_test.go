package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// statusJSON is the part of "faild status --json" the tests read.
type statusJSON struct {
	Peers     int `json:"peers"`
	PathsDown int `json:"paths_down"`
	Paths     []struct {
		Peer, LAN, State, Route string
		Goods                   int
	} `json:"paths"`
}

// runStatus runs "faild status" against a node's socket and returns its
// output and exit status.
func runStatus(t *testing.T, bin string, n *lab.Node, extra ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"status", "--status-socket", n.StatusSocket()}, extra...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("faild status: %v", err)
	return "", -1
}

// alive reports whether pid is a process that has not exited: running, or
// stopped, but not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitDiscovered waits until n has logged the discovery of peer.
func waitDiscovered(b *budget, n, peer *lab.Node) {
	b.t.Helper()
	b.wait(n.String()+" discovers "+peer.String(), 5*time.Second, func() bool { return discovered(n.Events(), peer) })
}

// discovered reports whether events hold the discovery of peer, by any of
// its addresses: an IPv6-only peer's id is a hash, and a peer may first be
// heard on any LAN (B, or C in a lab with three).
func discovered(events []lab.Event, peer *lab.Node) bool {
	for _, e := range lab.Find(events, "msg", "discovered") {
		for _, lan := range []lab.LAN{lab.A, lab.B, lab.C} {
			if e["addr"] == peer.Addr(lan) || e["addr"] == peer.Addr6(lan) {
				return true
			}
		}
	}
	return false
}

// TestStatusAndHooks checks "faild status" and its exit codes before,
// during and after a failover and with the daemon gone, and the
// --on-change hooks: node1's records failover then switchback in order;
// node2's hangs, and must delay neither its failover nor its switchback.
func TestStatusAndHooks(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2 := l.Node(1), l.Node(2)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	record := writeScript(t, dir, "record", fmt.Sprintf(
		`echo "$FAILD_EVENT $FAILD_PEER $FAILD_LAN $FAILD_DEV $FAILD_ADDR $FAILD_ROUTE" >> %s`+"\n", events))
	hungPid := filepath.Join(dir, "hung.pid")
	// The hook's child is what hangs: a stop must kill the hook's whole
	// process group, not only the hook.
	hang := writeScript(t, dir, "hang", fmt.Sprintf("sleep 1000 &\necho $! > %s\nwait\n", hungPid))

	if err := n1.Start(append(coreArgs, "--on-change", record)...); err != nil {
		t.Fatal(err)
	}
	if err := n2.Start(append(coreArgs, "--on-change", hang, "--hook-timeout", "60s")...); err != nil {
		t.Fatal(err)
	}
	waitDiscovered(b, n1, n2)
	waitDiscovered(b, n2, n1)

	w1, w2 := watchRoutes(t, n1), watchRoutes(t, n2)

	out, code := runStatus(t, bin, n1)
	if code != 0 || !strings.Contains(out, n2.Addr(lab.A)) || strings.Contains(out, "invalid") {
		t.Errorf("faild status before the cut: exit %d, want 0 and every path valid:\n%s", code, out)
	}

	want1 := lab.Route{Dst: n2.Addr(lab.A), Via: n2.Addr(lab.B), Dev: lab.B.Iface()}
	want2 := lab.Route{Dst: n1.Addr(lab.A), Via: n1.Addr(lab.B), Dev: lab.B.Iface()}
	cut := cutPair(t, l, 1, 2)
	took1, took2 := routedBoth(b, "failover", cut, failoverLimit+2*time.Second, true, w1, w2, []lab.Route{want1}, []lab.Route{want2})
	t.Logf("failover in the kernel: node1 %v, node2 (hanging hook) %v", ms(took1), ms(took2))
	if took2 > failoverLimit {
		t.Errorf("node2 with a hanging hook failed over after %v; want at most %v", ms(took2), failoverLimit)
	}
	onlyRoutes(t, n1, want1)
	onlyRoutes(t, n2, want2)

	out, code = runStatus(t, bin, n1)
	t.Logf("faild status during the failover:\n%s", out)
	route := "192.0.2.2/32 via 198.51.100.2 dev eth1" // as faild names it
	if code != 1 || !strings.Contains(out, "invalid") || !strings.Contains(out, route) {
		t.Errorf("faild status during the failover: exit %d, want 1, an invalid path and route %q", code, route)
	}
	out, code = runStatus(t, bin, n1, "--json")
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("faild status --json: %v:\n%s", err, out)
	}
	found := false
	for _, p := range s.Paths {
		if p.Peer == n2.Addr(lab.A) && p.LAN == "A" {
			found = p.State == "invalid" && p.Route == route
		}
	}
	if code != 1 || s.Peers != 1 || s.PathsDown != 1 || !found {
		t.Errorf("faild status --json during the failover: exit %d, %+v; want exit 1, 1 peer, path A invalid with route %q", code, s, route)
	}

	heal := time.Now()
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	back1, back2 := routedBoth(b, "switchback", heal, 3*time.Second, false, w1, w2, []lab.Route{want1}, []lab.Route{want2})
	t.Logf("switchback in the kernel: node1 %v, node2 (hook still hanging) %v", ms(back1), ms(back2))
	noRoutes(t, n1)
	noRoutes(t, n2)
	b.wait("status exit 0 after the heal", 2*time.Second, func() bool { _, c := runStatus(t, bin, n1); return c == 0 })

	b.wait("node1's hook records both events", 5*time.Second, func() bool {
		got, _ := os.ReadFile(events)
		return strings.Count(string(got), "\n") >= 2
	})
	got, _ := os.ReadFile(events)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	wantLines := []string{
		fmt.Sprintf("failover %s A eth0 %s %s", n2.Addr(lab.A), n2.Addr(lab.A), "192.0.2.2/32 via 198.51.100.2 dev eth1"),
		fmt.Sprintf("switchback %s A eth0 %s %s", n2.Addr(lab.A), n2.Addr(lab.A), "192.0.2.2/32 via 198.51.100.2 dev eth1"),
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("hook records:\n%s\nwant:\n%s", got, strings.Join(wantLines, "\n"))
	}

	// The hanging hook is still running; a stop must kill it.
	pidText, err := os.ReadFile(hungPid)
	if err != nil {
		t.Fatalf("node2's hook never ran: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || pid <= 0 {
		t.Fatalf("node2's hook wrote pid %q: %v", pidText, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // should it outlive faild
	if !alive(pid) {
		t.Fatalf("node2's hanging hook's child (pid %d) is gone before the stop", pid)
	}
	for _, n := range l.Nodes {
		if err := n.Stop(); err != nil {
			t.Errorf("%v: SIGTERM: %v; want exit 0", n, err)
		}
	}
	// Killed with faild, it may linger a moment as a zombie until reaped.
	if _, err := lab.WaitFor(2*time.Second, func() bool { return !alive(pid) }); err != nil {
		t.Errorf("node2's hanging hook's child (pid %d) outlived faild", pid)
	}
	if out, code := runStatus(t, bin, n1); code != 2 {
		t.Errorf("faild status with the daemon stopped: exit %d, want 2:\n%s", code, out)
	}
}

// TestLogReopen moves the log file away as logrotate does, sends SIGHUP
// while SIGUSR1 keeps faild writing, and wants every status line in one of
// the two files and the next event in the new one.
func TestLogReopen(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2 := l.Node(1), l.Node(2)
	for _, n := range l.Nodes {
		if err := n.Start(coreArgs...); err != nil {
			t.Fatal(err)
		}
	}
	waitDiscovered(b, n1, n2)

	// Standard signals that arrive while one is pending merge into one, so
	// each SIGUSR1 waits for its line before the next goes out. The SIGHUP
	// is sent right behind a SIGUSR1 (different signals never merge), so
	// the reopen races that status line's write.
	const signals = 60
	rotated := n1.LogPath() + ".1"
	proc, err := os.FindProcess(n1.Pid())
	if err != nil {
		t.Fatal(err)
	}
	count := func() (old, cur int) {
		b, _ := os.ReadFile(rotated)
		return len(lab.Find(lab.ParseLog(string(b)), "msg", "status")), len(lab.Find(n1.Events(), "msg", "status"))
	}
	for i := range signals {
		if err := proc.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if i == signals/2 {
			if err := os.Rename(n1.LogPath(), rotated); err != nil {
				t.Fatal(err)
			}
			if err := proc.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		b.wait(fmt.Sprintf("status line %d logged", i+1), 3*time.Second, func() bool { o, c := count(); return o+c >= i+1 })
	}
	old, cur := count()
	t.Logf("status lines: %d in the rotated file, %d in the new one, %d signals", old, cur, signals)
	if old+cur != signals || old == 0 || cur == 0 {
		t.Errorf("status lines: %d rotated + %d new, want %d in all, some in each", old, cur, signals)
	}
	if len(lab.Find(n1.Events(), "msg", "reload")) != 1 {
		t.Errorf("no reload event in the new log:\n%s", n1.Log())
	}

	cut := cutPair(t, l, 1, 2)
	b.wait("failover logged in the new file", failoverLimit+2*time.Second, func() bool {
		return len(lab.Find(n1.Events(), "msg", "failover")) == 1
	})
	t.Logf("failover in the new log %v after the cut", ms(time.Since(cut)))
	if b, _ := os.ReadFile(rotated); strings.Contains(string(b), "msg=failover") {
		t.Errorf("failover written to the rotated file")
	}
	for _, n := range l.Nodes {
		if err := n.Stop(); err != nil {
			t.Errorf("%v: SIGTERM: %v", n, err)
		}
	}
}

// watchdog is the WATCHDOG_USEC TestNotify gives faild.
const watchdog = time.Second

// TestNotify runs faild with a notify socket of our own, as systemd would
// give it, and wants READY=1, a STATUS= that counts the peer, WATCHDOG=1 at
// half WATCHDOG_USEC and STOPPING=1.
func TestNotify(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin})
	n1, n2 := l.Node(1), l.Node(2)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	var at []time.Time
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				got = append(got, line)
				at = append(at, time.Now())
			}
			mu.Unlock()
		}
	}()
	seen := func(prefix string) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range got {
			if strings.HasPrefix(s, prefix) {
				n++
			}
		}
		return n
	}

	if err := n2.Start(coreArgs...); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n1.NS, bin}, append(coreArgs,
		"-l", filepath.Join(dir, "node1.log"), "--status-socket", filepath.Join(dir, "node1.sock"))...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC="+strconv.Itoa(int(watchdog/time.Microsecond)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // an error once it has exited
		<-done
	})

	b := newBudget(t, 30*time.Second)
	start := time.Now()
	b.wait("READY=1", 5*time.Second, func() bool { return seen("READY=1") == 1 })
	t.Logf("READY=1 %v after start", ms(time.Since(start)))
	b.wait("STATUS= with the peer", 5*time.Second, func() bool { return seen("STATUS=1 peer, 0 of 2 paths down") > 0 })
	b.wait("WATCHDOG=1 pings", 5*watchdog, func() bool { return seen("WATCHDOG=1") >= 5 })
	cut := cutPair(t, l, 1, 2)
	b.wait("STATUS= after the failover", failoverLimit+2*time.Second, func() bool {
		return seen("STATUS=1 peer, 1 of 2 paths down") > 0
	})
	t.Logf("STATUS= updated %v after the cut", ms(time.Since(cut)))

	mu.Lock()
	var last time.Time
	var gaps []time.Duration
	for i, s := range got {
		if s == "WATCHDOG=1" {
			if !last.IsZero() {
				gaps = append(gaps, at[i].Sub(last).Round(time.Millisecond))
			}
			last = at[i]
		}
	}
	mu.Unlock()
	// faild pings at half WATCHDOG_USEC; systemd kills it after a whole
	// one without a ping. The gaps are timed here, on a loaded machine
	// maybe late: the typical gap must be about half, and none may come
	// near the whole.
	t.Logf("watchdog gaps (want about %v): %v", watchdog/2, gaps)
	if len(gaps) < 4 {
		t.Fatalf("%d watchdog gaps, want at least 4", len(gaps))
	}
	sorted := slices.Sorted(slices.Values(gaps))
	if med := sorted[len(sorted)/2]; med > watchdog*3/4 || med < watchdog/4 {
		t.Errorf("median watchdog gap %v; want about half of WATCHDOG_USEC (%v)", med, watchdog)
	}
	if g := sorted[len(sorted)-1]; g >= watchdog {
		t.Errorf("watchdog gap %v, WATCHDOG_USEC or more: systemd would kill faild", g)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("faild exit: %v", waitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("faild did not stop within 5s of SIGTERM")
	}
	if seen("STOPPING=1") != 1 {
		mu.Lock()
		t.Errorf("no STOPPING=1; got %q", got)
		mu.Unlock()
	}
	if err := n2.Stop(); err != nil {
		t.Errorf("node2: %v", err)
	}
}
