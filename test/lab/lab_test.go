package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	stop := CleanupOnSignal()
	code := m.Run()
	stop()
	os.Exit(code)
}

// reach pings from node from to node to's address on lan.
func reach(l *Lab, from, to int, lan LAN, timeout time.Duration) bool {
	return l.Node(from).Ping(lan.Addr(to), timeout) == nil
}

// TestLab builds a lab, checks both LANs work between every pair, that
// CutPair breaks exactly that pair on exactly that LAN, that Heal mends it,
// and that Close leaves no namespace behind.
func TestLab(t *testing.T) {
	l := ForTest(t, Options{})
	if len(l.Nodes) != 3 {
		t.Fatalf("got %d nodes, want 3", len(l.Nodes))
	}
	for _, n := range l.Nodes {
		out, err := n.IP("-4", "-o", "addr", "show")
		if err != nil {
			t.Fatal(err)
		}
		for _, lan := range LANs {
			want := fmt.Sprintf("%s    inet %s/24 brd %s255", lan.Iface(), n.Addr(lan), lan.net())
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", n, want, out)
			}
		}
		for _, k := range []string{"all", "default", "eth0", "eth1"} {
			out, err := n.Exec("cat", "/proc/sys/net/ipv4/conf/"+k+"/rp_filter")
			if err != nil || strings.TrimSpace(out) != "2" {
				t.Errorf("%s: rp_filter of %s = %q (%v), want 2", n, k, out, err)
			}
		}
	}

	all := func() {
		t.Helper()
		for _, lan := range LANs {
			for from := 1; from <= 3; from++ {
				for to := 1; to <= 3; to++ {
					if from != to && !reach(l, from, to, lan, 2*time.Second) {
						t.Errorf("LAN %v: node%d cannot reach node%d", lan, from, to)
					}
				}
			}
		}
	}
	all()

	if err := l.CutPair(A, 1, 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to int
		lan      LAN
		want     bool
	}{
		{1, 2, A, false}, {2, 1, A, false},
		{1, 3, A, true}, {3, 2, A, true}, {2, 3, A, true},
		{1, 2, B, true}, {2, 1, B, true},
	} {
		timeout := 2 * time.Second
		if !c.want {
			timeout = 500 * time.Millisecond
		}
		if got := reach(l, c.from, c.to, c.lan, timeout); got != c.want {
			t.Errorf("after CutPair(A, 1, 2): node%d reaches node%d on LAN %v: %v, want %v", c.from, c.to, c.lan, got, c.want)
		}
	}

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	all()

	prefix := l.Prefix()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := ListNamespaces(prefix)
	if err != nil || len(left) > 0 {
		t.Fatalf("namespaces left after Close: %v %v", left, err)
	}
}

// TestLabLANC builds a lab with a third LAN: every node has eth2 on
// 203.0.113.0/24, CutPair works on it, and HealPair undoes one cut and
// leaves the others in force.
func TestLabLANC(t *testing.T) {
	l := ForTest(t, Options{Nodes: 2, LANC: true})
	if got := l.LANs(); len(got) != 3 || got[2] != C {
		t.Fatalf("LANs() = %v, want [A B C]", got)
	}
	for _, lan := range l.LANs() {
		if !reach(l, 1, 2, lan, 2*time.Second) {
			t.Errorf("LAN %v: node1 cannot reach node2 (%s)", lan, lan.Addr(2))
		}
	}
	if err := l.CutPair(C, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := l.CutPair(A, 1, 2); err != nil {
		t.Fatal(err)
	}
	if reach(l, 1, 2, C, 500*time.Millisecond) || reach(l, 1, 2, A, 500*time.Millisecond) {
		t.Errorf("node1 still reaches node2 on LAN A or C after CutPair")
	}
	if err := l.HealPair(C, 1, 2); err != nil {
		t.Fatal(err)
	}
	if !reach(l, 1, 2, C, 2*time.Second) {
		t.Errorf("LAN C: HealPair did not heal node1 to node2")
	}
	if reach(l, 1, 2, A, 500*time.Millisecond) {
		t.Errorf("LAN A: HealPair(C) healed the cut on A too")
	}
	if err := l.HealPair(C, 1, 2); err == nil {
		t.Errorf("HealPair of a cut no longer in force: no error")
	}
	// A lab without LAN C refuses it.
	l2 := ForTest(t, Options{Nodes: 2})
	if err := l2.CutPair(C, 1, 2); err == nil {
		t.Errorf("CutPair(C) in a two-LAN lab: no error")
	}
}

// broadcastReaches tells whether a UDP broadcast from node from on lan
// arrives at node to: a one-way probe, unlike ping, and what faild's INQs
// are. It probes every 50 ms for up to 2 s when it wants one to arrive, so
// a loaded machine does not read as a cut; when it wants none, 300 ms of
// silence, with a probe every 50 ms, is enough.
func broadcastReaches(t *testing.T, l *Lab, lan LAN, from, to int, want bool) bool {
	t.Helper()
	port := int(flowPort.Add(1))
	var rx, tx net.PacketConn
	if err := inNS(l.Node(to).NS, func() (err error) {
		rx, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := inNS(l.Node(from).NS, func() (err error) {
		tx, err = net.ListenPacket("udp4", lan.Addr(from)+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(lan.net() + "255"), Port: port}
	wait := 300 * time.Millisecond
	if want {
		wait = 2 * time.Second
	}
	buf := make([]byte, 16)
	for end := time.Now().Add(wait); time.Now().Before(end); {
		if _, err := tx.WriteTo([]byte("probe"), dst); err != nil {
			t.Fatalf("failed to send broadcast: %v", err)
		}
		_ = rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := rx.ReadFrom(buf); err == nil {
			return true
		}
	}
	return false
}

// TestFaults checks each failure injection against one-way broadcasts and
// pings, and that Heal undoes it.
func TestFaults(t *testing.T) {
	l := ForTest(t, Options{Nodes: 3})
	type probe struct {
		lan      LAN
		from, to int
		want     bool
	}
	cases := []struct {
		name   string
		inject func() error
		probes []probe
	}{
		{"CutPort both", func() error { return l.CutPort(A, 1, Both) },
			[]probe{{A, 1, 2, false}, {A, 2, 1, false}, {A, 2, 3, true}, {B, 1, 2, true}}},
		{"PrepareCutPort both", func() error {
			p, err := l.PrepareCutPort(A, 1, Both)
			if err != nil {
				return err
			}
			// A prepared injection changes nothing until it fires.
			if !broadcastReaches(t, l, A, 2, 1, true) {
				t.Errorf("a prepared cut is in force before Fire")
			}
			return p.Fire()
		}, []probe{{A, 1, 2, false}, {A, 2, 1, false}, {A, 2, 3, true}, {B, 1, 2, true}}},
		{"CutPort to-node", func() error { return l.CutPort(A, 1, ToNode) },
			[]probe{{A, 1, 2, true}, {A, 2, 1, false}, {A, 3, 1, false}, {B, 2, 1, true}}},
		{"CutPort from-node", func() error { return l.CutPort(A, 1, FromNode) },
			[]probe{{A, 1, 2, false}, {A, 2, 1, true}, {B, 1, 2, true}}},
		{"CutPair", func() error { return l.CutPair(B, 2, 3) },
			[]probe{{B, 2, 3, false}, {B, 3, 2, false}, {B, 1, 3, true}, {B, 2, 1, true}, {A, 2, 3, true}}},
		{"Loss 100", func() error { return l.Loss(A, 2, 100) },
			[]probe{{A, 1, 2, false}, {A, 2, 1, false}, {A, 1, 3, true}, {B, 1, 2, true}}},
		{"Loss 0", func() error { return l.Loss(A, 2, 0) },
			[]probe{{A, 1, 2, true}, {A, 2, 1, true}}},
		{"LANDown", func() error { return l.LANDown(B) },
			[]probe{{B, 1, 2, false}, {B, 2, 3, false}, {B, 3, 1, false}, {A, 1, 2, true}}},
		{"LinkDown", func() error { return l.LinkDown(A, 3) },
			[]probe{{A, 1, 3, false}, {A, 1, 2, true}, {B, 1, 3, true}}},
		{"CarrierDown", func() error { return l.CarrierDown(B, 1) },
			[]probe{{B, 2, 1, false}, {B, 2, 3, true}, {A, 2, 1, true}}},
	}
	for _, c := range cases {
		if err := c.inject(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		blocks := false
		for _, p := range c.probes {
			if got := broadcastReaches(t, l, p.lan, p.from, p.to, p.want); got != p.want {
				t.Errorf("%s: broadcast on LAN %v from node%d reaches node%d: %v, want %v", c.name, p.lan, p.from, p.to, got, p.want)
			}
			blocks = blocks || !p.want
		}
		// Only the rules of the switch count their drops; the link
		// injections drop nothing there.
		if byRule := !strings.HasPrefix(c.name, "Link") && !strings.HasPrefix(c.name, "Carrier"); byRule {
			if n, err := l.Dropped(); err != nil || (n > 0) != blocks {
				t.Errorf("%s: the rules dropped %d frames (%v); want some: %v", c.name, n, err, blocks)
			}
		}
		if err := l.Heal(); err != nil {
			t.Fatalf("%s: heal: %v", c.name, err)
		}
		for _, p := range c.probes {
			if !reach(l, p.from, p.to, p.lan, 2*time.Second) {
				t.Errorf("%s: after Heal node%d cannot ping node%d on LAN %v", c.name, p.from, p.to, p.lan)
			}
		}
	}
	if rules, err := l.Rules(); err != nil || strings.Contains(rules, "drop") {
		t.Errorf("rules left after Heal: %v\n%s", err, rules)
	}
	// One-way loss: one rule, on the side asked for.
	for dir, match := range map[Direction]string{ToNode: `oifname "a2"`, FromNode: `iifname "a2"`} {
		if err := l.LossOneWay(A, 2, 30, dir); err != nil {
			t.Fatalf("LossOneWay %v: %v", dir, err)
		}
		rules, err := l.Rules()
		if err != nil || strings.Count(rules, "drop") != 1 || !strings.Contains(rules, match) || !strings.Contains(rules, "numgen random mod 100 < 30") {
			t.Errorf("LossOneWay %v: rules %v\n%s", dir, err, rules)
		}
		if err := l.ClearRules(); err != nil {
			t.Fatal(err)
		}
	}
	// Bad arguments are refused, not half applied.
	for _, err := range []error{l.CutPair(A, 1, 1), l.CutPair(A, 1, 4), l.CutPort(LAN(2), 1, Both), l.Loss(A, 1, 101),
		l.LossOneWay(A, 1, 0, ToNode), l.LossOneWay(A, 1, 100, ToNode), l.LossOneWay(A, 1, 10, Both)} {
		if err == nil {
			t.Errorf("bad injection accepted")
		}
	}
}

// TestFlows checks that flows run, and that their gap shows an outage.
func TestFlows(t *testing.T) {
	l := ForTest(t, Options{Nodes: 2})
	for _, network := range []string{"tcp", "udp"} {
		f, err := l.StartFlow(network, 1, "192.0.2.2")
		if err != nil {
			t.Fatal(err)
		}
		// A flow sends every 10 ms; healthy, no gap comes near the cut's.
		if _, err := WaitFor(3*time.Second, func() bool { return f.Stats().Echoed >= 10 }); err != nil {
			t.Errorf("%s flow, healthy: %v", network, f.Stats())
		}
		if s := f.Stats(); s.MaxGap > 500*time.Millisecond || s.Err != nil {
			t.Errorf("%s flow, healthy: %v", network, s)
		}
		if err := l.CutPair(A, 1, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the outage the flow must show
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
		before := f.Stats().Echoed
		if _, err := WaitFor(3*time.Second, func() bool { return f.Stats().Echoed > before+5 }); err != nil {
			t.Errorf("%s flow did not resume after Heal: %v", network, f.Stats())
		}
		s := f.Stop()
		if s.MaxGap < 950*time.Millisecond || s.Err != nil {
			t.Errorf("%s flow, cut for 1s: %v", network, s)
		}
		t.Logf("%s flow: %v", network, s)
	}
	if _, err := l.StartFlow("tcp", 1, "203.0.113.9"); err == nil {
		t.Error("flow to a non-lab address accepted")
	}
}

// TestBulk checks that a bulk transfer keeps its pace, and that after an
// outage it goes on at that pace rather than sending what it missed at
// once, which would hide the outage in its average.
func TestBulk(t *testing.T) {
	l := ForTest(t, Options{Nodes: 2})
	const mbps = 20
	b, err := l.StartBulk(1, "192.0.2.2", mbps)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	rate := func(d time.Duration) float64 {
		b0, t0 := b.Bytes(), time.Now()
		time.Sleep(d)
		return float64(b.Bytes()-b0) * 8 / 1e6 / time.Since(t0).Seconds()
	}
	time.Sleep(500 * time.Millisecond)
	if r := rate(2 * time.Second); r < 0.6*mbps || r > 1.2*mbps {
		t.Errorf("paced at %d Mbit/s, healthy: %.1f Mbit/s", mbps, r)
	}
	if err := l.CutPair(A, 1, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	// The 40 Mbit the cut held back, sent at once, would more than double
	// the rate of the seconds after it.
	if r := rate(3 * time.Second); r > 1.3*mbps {
		t.Errorf("paced at %d Mbit/s, after a 2 s cut: %.1f Mbit/s", mbps, r)
	}
	if n, err := b.Stop(); err != nil || n == 0 {
		t.Errorf("Stop: %d bytes, %v", n, err)
	}
	if _, err := l.StartBulk(1, "203.0.113.9", mbps); err == nil {
		t.Error("bulk transfer to a non-lab address accepted")
	}
}

// fakeFaild is a stand-in daemon: it logs start, and stop on SIGTERM.
const fakeFaild = `#!/bin/sh
for a; do log=$a; done
echo "time=2026-11-22T10:00:00.123Z level=INFO msg=start args=\"$*\"" > "$log"
trap 'echo "level=INFO msg=stop" >> "$log"; exit 0' TERM
while :; do sleep 0.05; done
`

// TestProcess checks Start, Stop, Kill, Log and Routes with a fake daemon,
// so that the lab is tested even while faild does not build.
func TestProcess(t *testing.T) {
	RequireEnv(t)
	bin := filepath.Join(t.TempDir(), "fake-faild")
	if err := os.WriteFile(bin, []byte(fakeFaild), 0o755); err != nil {
		t.Fatal(err)
	}
	l := ForTest(t, Options{Nodes: 1, Bin: bin})
	n := l.Node(1)
	if err := n.Start("-r", "-t", "0.1"); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err == nil {
		t.Error("second Start while running accepted")
	}
	if _, err := WaitFor(2*time.Second, func() bool { return len(n.Events()) > 0 }); err != nil {
		t.Fatalf("no start event: %q", n.Log())
	}
	e := n.Events()[0]
	if !e.Match("msg", "start", "level", "INFO") || !strings.HasPrefix(e["args"], "--status-socket ") || !strings.Contains(e["args"], " -r -t 0.1 -l ") || e.Time().IsZero() {
		t.Errorf("start event %v", e)
	}
	// The fake runs in the node's namespace.
	if ns, err := exec.Command("ip", "netns", "identify", fmt.Sprint(n.Pid())).Output(); err != nil || strings.TrimSpace(string(ns)) != n.NS {
		t.Errorf("fake runs in namespace %q (%v), want %s", ns, err, n.NS)
	}
	if err := n.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if len(Find(n.Events(), "msg", "stop")) != 1 {
		t.Errorf("no stop event: %q", n.Log())
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Kill(); err != nil || n.Running() {
		t.Errorf("Kill: %v, running %v", err, n.Running())
	}

	if rs, err := n.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("routes of a fresh node: %v %v", rs, err)
	}
	if _, err := n.IP("route", "add", "192.0.2.9/32", "via", "198.51.100.9", "dev", "eth1", "proto", ProtoFaild); err != nil {
		t.Fatal(err)
	}
	want := Route{Dst: "192.0.2.9", Via: "198.51.100.9", Dev: "eth1"}
	if rs, err := n.Routes(); err != nil || len(rs) != 1 || rs[0] != want || !n.RoutesAre(want) {
		t.Errorf("routes: %v %v, want [%v]", rs, err, want)
	}
	// An exact match: a route more, or one missing, is not it.
	if _, err := n.IP("route", "add", "192.0.2.8/32", "via", "198.51.100.8", "dev", "eth1", "proto", ProtoFaild); err != nil {
		t.Fatal(err)
	}
	extra := Route{Dst: "192.0.2.8", Via: "198.51.100.8", Dev: "eth1"}
	if n.RoutesAre(want) || n.RoutesAre(want, want) || n.RoutesAre() || !n.RoutesAre(extra, want) {
		t.Errorf("RoutesAre with routes %v and %v: want only the pair to match", want, extra)
	}
}

// TestRemoveStaleGone: a stale namespace that another test package's lab
// removed first is no error (the parallel packages race for it).
func TestRemoveStaleGone(t *testing.T) {
	RequireEnv(t)
	if err := removeStale(NSPrefix + "flgone-1-sw"); err != nil {
		t.Errorf("removing a namespace already gone: %v", err)
	}
}

// TestRemoveStale checks that New removes namespaces of a dead run and
// leaves those of live ones.
func TestRemoveStale(t *testing.T) {
	RequireEnv(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%sflstal-%d-sw", NSPrefix, dead.Process.Pid)
	mine := fmt.Sprintf("%sflmine-%d-sw", NSPrefix, os.Getpid())
	for _, ns := range []string{stale, mine} {
		if err := run("ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = run("ip", "netns", "del", ns) })
	}
	ForTest(t, Options{Nodes: 1})
	if left, _ := ListNamespaces(stale); len(left) != 0 {
		t.Errorf("stale namespace %s not removed", stale)
	}
	if left, _ := ListNamespaces(mine); len(left) != 1 {
		t.Errorf("live namespace %s removed", mine)
	}
}

func TestParseLog(t *testing.T) {
	text := `time=2026-11-22T10:00:00.123Z level=INFO msg=failover peer=192.0.2.2 lan=A dev=eth0 addr=192.0.2.2 route="192.0.2.2/32 via 198.51.100.2 dev eth1"
not a log line
time=2026-11-22T10:00:01Z level=WARN msg="odd \"thing\"" n=3
`
	ev := ParseLog(text)
	if len(ev) != 2 {
		t.Fatalf("got %d events, want 2: %v", len(ev), ev)
	}
	if !ev[0].Match("msg", "failover", "peer", "192.0.2.2", "lan", "A", "route", "192.0.2.2/32 via 198.51.100.2 dev eth1") {
		t.Errorf("event 0: %v", ev[0])
	}
	if want := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC); !ev[0].Time().Equal(want) {
		t.Errorf("time %v, want %v", ev[0].Time(), want)
	}
	if ev[1].Msg() != `odd "thing"` || ev[1]["n"] != "3" {
		t.Errorf("event 1: %v", ev[1])
	}
	if got := Find(ev, "level", "WARN"); len(got) != 1 {
		t.Errorf("Find: %v", got)
	}
}

// TestRouteWatch: a watch sees faild's routes (proto 157) come and go in
// the node's namespace, named as Routes names them, and nothing else.
func TestRouteWatch(t *testing.T) {
	l := ForTest(t, Options{Nodes: 1, Family: Dual})
	n := l.Node(1)
	w, err := n.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	for _, args := range [][]string{
		{"route", "add", "192.0.2.7/32", "via", "198.51.100.9", "dev", "eth1"}, // not faild's
		{"route", "add", "192.0.2.9/32", "via", "198.51.100.9", "dev", "eth1", "proto", ProtoFaild},
		{"-6", "route", "add", "2001:db8:a::9/128", "via", "2001:db8:b::9", "dev", "eth1", "proto", ProtoFaild},
		{"route", "del", "192.0.2.9/32", "proto", ProtoFaild},
	} {
		if _, err := n.IP(args...); err != nil {
			t.Fatal(err)
		}
	}
	r4 := Route{Dst: "192.0.2.9", Via: "198.51.100.9", Dev: "eth1"}
	r6 := Route{Dst: "2001:db8:a::9", Via: "2001:db8:b::9", Dev: "eth1"}
	if _, err := WaitFor(2*time.Second, func() bool { _, ok := w.Removed(start, r4); return ok }); err != nil {
		t.Fatalf("watch saw %+v (error %v); want the IPv4 route added and removed", w.Changes(start), w.Err())
	}
	got := w.Changes(start)
	want := []RouteChange{{Add: true, Route: r4}, {Add: true, Route: r6}, {Add: false, Route: r4}}
	if len(got) != len(want) {
		t.Fatalf("changes %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].Add != want[i].Add || got[i].Route != want[i].Route || got[i].At.Before(start) {
			t.Errorf("change %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if at, ok := w.Added(start, r4, r6); !ok || !at.Equal(got[1].At) {
		t.Errorf("Added(both) = %v, %v; want the second addition's time %v", at, ok, got[1].At)
	}
}

// fakeTB records what RequireEnv does with a test.
type fakeTB struct {
	TB             // unused methods panic
	skipped, fatal string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skip(args ...any)               { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }

// TestRequireEnv: not root, the lab skips, unless FAILD_LAB=require makes
// that a failure.
func TestRequireEnv(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	for _, tc := range []struct {
		env        string
		skip, fail bool
	}{{"", true, false}, {"1", true, false}, {"require", false, true}} {
		t.Setenv(RequireVar, tc.env)
		var f fakeTB
		RequireEnv(&f)
		if (f.skipped != "") != tc.skip || (f.fatal != "") != tc.fail {
			t.Errorf("%s=%q, not root: skipped %q, failed %q; want skip %v, fail %v", RequireVar, tc.env, f.skipped, f.fatal, tc.skip, tc.fail)
		}
		if tc.fail && !strings.Contains(f.fatal, "need root") {
			t.Errorf("failure %q does not say why", f.fatal)
		}
	}
}

// TestHost checks that a host added on LAN A hears broadcasts there and
// reaches the nodes' LAN-A addresses, that it has no way to LAN B, and that
// Close removes its namespace.
func TestHost(t *testing.T) {
	l := ForTest(t, Options{Nodes: 2})
	if _, err := l.AddHost(A, 2); err == nil {
		t.Error("host with a node's number accepted")
	}
	h, err := l.AddHost(A, 200)
	if err != nil {
		t.Fatal(err)
	}
	if h.Addr != "192.0.2.200" {
		t.Errorf("host address %s, want 192.0.2.200", h.Addr)
	}
	port := int(flowPort.Add(1))
	var rx net.PacketConn
	if err := h.Do(func() (err error) {
		rx, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	heard := func(lan LAN) bool {
		var tx net.PacketConn
		if err := inNS(l.Node(1).NS, func() (err error) {
			tx, err = net.ListenPacket("udp4", lan.Addr(1)+":0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		buf := make([]byte, 16)
		for range 5 {
			if _, err := tx.WriteTo([]byte("probe"), &net.UDPAddr{IP: net.ParseIP(lan.net() + "255"), Port: port}); err != nil {
				t.Fatal(err)
			}
			_ = rx.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
			if _, _, err := rx.ReadFrom(buf); err == nil {
				return true
			}
		}
		return false
	}
	if !heard(A) {
		t.Error("host on LAN A does not hear node1's LAN-A broadcast")
	}
	if heard(B) {
		t.Error("host on LAN A hears node1's LAN-B broadcast")
	}
	// It reaches node2 on LAN A and has no route to LAN B at all.
	if err := h.Do(func() error {
		c, err := net.DialTimeout("tcp", "198.51.100.2:9", time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("host reached LAN B")
		}
		if !strings.Contains(err.Error(), "unreachable") {
			return fmt.Errorf("dial to LAN B: %v, want network unreachable", err)
		}
		c, err = net.DialTimeout("tcp", "192.0.2.2:9", 2*time.Second)
		if err == nil {
			c.Close()
		} else if !strings.Contains(err.Error(), "refused") {
			return fmt.Errorf("dial to node2 on LAN A: %v, want connection refused (reached, nothing listening)", err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	prefix := l.Prefix()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := ListNamespaces(prefix); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}

// TestSplitLAN: with SplitA, LAN A is two switches joined by a trunk; cut,
// the LAN falls into two groups that still hear each other within; a
// one-way cut drops one direction only; Heal joins them again.
func TestSplitLAN(t *testing.T) {
	l := ForTest(t, Options{Nodes: 4, SplitA: 2})
	type probe struct {
		lan      LAN
		from, to int
		want     bool
	}
	for _, c := range []struct {
		name   string
		inject func() error
		probes []probe
	}{
		{"joined", func() error { return nil }, []probe{{A, 1, 3, true}, {A, 4, 2, true}}},
		{"CutTrunk", l.CutTrunk, []probe{{A, 1, 3, false}, {A, 4, 2, false}, {A, 1, 2, true}, {A, 3, 4, true}, {B, 1, 3, true}}},
		{"CutOneWay", func() error { return l.CutOneWay(A, 3, 4) }, []probe{{A, 3, 4, false}, {A, 4, 3, true}, {A, 3, 1, true}}},
		{"CutPort across", func() error { return l.CutPort(A, 4, Both) }, []probe{{A, 1, 4, false}, {A, 1, 3, true}}},
	} {
		if err := c.inject(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, p := range c.probes {
			if got := broadcastReaches(t, l, p.lan, p.from, p.to, p.want); got != p.want {
				t.Errorf("%s: broadcast on LAN %v from node%d reaches node%d: %v, want %v", c.name, p.lan, p.from, p.to, got, p.want)
			}
		}
		if err := l.Heal(); err != nil {
			t.Fatalf("%s: heal: %v", c.name, err)
		}
		for _, p := range c.probes {
			if !reach(l, p.from, p.to, p.lan, 2*time.Second) {
				t.Errorf("%s: after Heal node%d cannot ping node%d on LAN %v", c.name, p.from, p.to, p.lan)
			}
		}
	}
	if err := l.CutOneWay(A, 1, 3); err == nil {
		t.Error("a one-way cut between the two switches accepted")
	}
	if err := ForTest(t, Options{Nodes: 3}).CutTrunk(); err == nil {
		t.Error("CutTrunk on a LAN A of one switch accepted")
	}
	if _, err := New(Options{Nodes: 3, SplitA: 3}); err == nil {
		t.Error("SplitA 3 of 3 nodes accepted")
	}
}
