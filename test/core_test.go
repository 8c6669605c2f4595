package test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

const (
	interval = 100 * time.Millisecond // -t 0.1
	misses   = 3                      // -f 3
	// failoverLimit bounds a failover, cut to route in the kernel: -f
	// intervals without evidence, and room for a loaded 2-core machine
	// running the race detector. It guards correctness; the benchmarks
	// own the figures (a median near -f x -t).
	failoverLimit = misses*interval + 700*time.Millisecond
)

// coreArgs are the flags of the core scenario; no -i, so faild finds eth0
// and eth1 by itself.
var coreArgs = []string{"-r", "-t", "0.1", "-f", "3", "-s", "3", "-p", "4117"}

// TestCore is the core acceptance test: three nodes, LAN A cut between
// nodes 1 and 2 only. Both ends must route each other's LAN-A address over
// LAN B within failoverLimit, a TCP flow across the cut must survive, the
// third node must not react, healing must switch back, and SIGTERM must
// leave no route behind.
func TestCore(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 3, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)

	for _, n := range l.Nodes {
		if err := n.Start(coreArgs...); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		b.wait(n.String()+" discovers both peers", 5*time.Second, func() bool {
			ev := n.Events()
			for _, p := range l.Nodes {
				if p != n && !discovered(ev, p) {
					return false
				}
			}
			return true
		})
	}

	for _, n := range l.Nodes {
		noRoutes(t, n)
	}
	w1, w2 := watchRoutes(t, n1), watchRoutes(t, n2)

	flow, err := l.StartFlow("tcp", 1, n2.Addr(lab.A))
	if err != nil {
		t.Fatal(err)
	}
	b.wait("TCP flow echoes before the cut", 5*time.Second, func() bool { return flow.Stats().Echoed > 0 })
	if s := flow.Stats(); s.Err != nil {
		t.Fatalf("TCP flow node1 -> %s before the cut: %v", n2.Addr(lab.A), s)
	}
	// A random phase against faild's INQ ticks, so that runs sample the
	// whole range of detection times rather than one.
	time.Sleep(rand.N(interval))

	// Each end routes the other's LAN-A address via its LAN-B address.
	want1 := lab.Route{Dst: n2.Addr(lab.A), Via: n2.Addr(lab.B), Dev: lab.B.Iface()}
	want2 := lab.Route{Dst: n1.Addr(lab.A), Via: n1.Addr(lab.B), Dev: lab.B.Iface()}

	// First cut: measure, check the flow, the bystander and the log.
	cut := cutPair(t, l, 1, 2)
	took1, took2 := routedBoth(b, "failover", cut, failoverLimit+2*time.Second, true, w1, w2, []lab.Route{want1}, []lab.Route{want2})
	t.Logf("failover in the kernel: node1 %v, node2 %v after the cut (limit %v)", ms(took1), ms(took2), failoverLimit)
	if took1 > failoverLimit || took2 > failoverLimit {
		t.Errorf("failover took node1 %v, node2 %v; want at most %v", ms(took1), ms(took2), failoverLimit)
	}
	onlyRoutes(t, n1, want1)
	onlyRoutes(t, n2, want2)
	checkEvent(t, n1, cut, "failover", n2, want1)
	checkEvent(t, n2, cut, "failover", n1, want2)
	noRoutes(t, n3)

	// The flow keeps going over LAN B: new echoes after the failover, and
	// no gap long enough to matter to TCP.
	echoed := flow.Stats().Echoed
	b.wait("TCP flow resumes over LAN B", 3*time.Second, func() bool { return flow.Stats().Echoed > echoed+10 })
	s := flow.Stats()
	t.Logf("TCP flow across the cut: %v", s)
	if s.MaxGap > 3*time.Second || s.Err != nil {
		t.Errorf("TCP flow across the cut: %v; want it alive with gaps under 3s", s)
	}
	noRoutes(t, n3)

	heal := time.Now()
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	back1, back2 := routedBoth(b, "switchback", heal, 3*time.Second, false, w1, w2, []lab.Route{want1}, []lab.Route{want2})
	t.Logf("switchback in the kernel: node1 %v, node2 %v after the heal", ms(back1), ms(back2))
	noRoutes(t, n1)
	noRoutes(t, n2)
	checkEvent(t, n1, heal, "switchback", n2, want1)
	checkEvent(t, n2, heal, "switchback", n1, want2)
	if s := flow.Stop(); s.Err != nil {
		t.Errorf("TCP flow after the heal: %v", s)
	}

	// Second cut, then a clean stop must take the routes away.
	time.Sleep(rand.N(interval))
	cut = cutPair(t, l, 1, 2)
	took1, took2 = routedBoth(b, "second failover", cut, failoverLimit+2*time.Second, true, w1, w2, []lab.Route{want1}, []lab.Route{want2})
	t.Logf("second failover in the kernel: node1 %v, node2 %v after the cut", ms(took1), ms(took2))
	if took1 > failoverLimit || took2 > failoverLimit {
		t.Errorf("second failover took node1 %v, node2 %v; want at most %v", ms(took1), ms(took2), failoverLimit)
	}
	onlyRoutes(t, n1, want1)
	onlyRoutes(t, n2, want2)
	for _, n := range l.Nodes {
		if err := n.Stop(); err != nil {
			t.Errorf("%v: SIGTERM: %v; want exit 0", n, err)
		}
		noRoutes(t, n)
		if stops := lab.Find(n.Events(), "msg", "stop"); len(stops) != 1 {
			t.Errorf("%v: %d stop events in the log, want 1", n, len(stops))
		} else {
			t.Logf("%v: %v", n, stops[0])
		}
	}
	noRoutes(t, n3)
}

// cutPair cuts LAN A between two nodes and returns when the cut is in force.
func cutPair(t *testing.T, l *lab.Lab, a, b int) time.Time {
	t.Helper()
	if err := l.CutPair(lab.A, a, b); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// watchRoutes follows n's faild routes through netlink until the test
// ends.
func watchRoutes(t *testing.T, n *lab.Node) *lab.RouteWatch {
	t.Helper()
	w, err := n.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// routedBoth waits until the kernels of two nodes have added (add) or
// removed every route of want1 and want2 since since, as their route
// watches saw it, and returns how long after since each was done. The
// watches are in memory: waiting on them runs no subprocess.
func routedBoth(b *budget, what string, since time.Time, d time.Duration, add bool, w1, w2 *lab.RouteWatch, want1, want2 []lab.Route) (time.Duration, time.Duration) {
	b.t.Helper()
	done := func(w *lab.RouteWatch, want []lab.Route) (time.Time, bool) {
		if add {
			return w.Added(since, want...)
		}
		return w.Removed(since, want...)
	}
	var at1, at2 time.Time
	var ok1, ok2 bool
	took, err := lab.WaitFor(min(d, time.Until(b.deadline)), func() bool {
		at1, ok1 = done(w1, want1)
		at2, ok2 = done(w2, want2)
		return ok1 && ok2
	})
	if err != nil {
		b.t.Fatalf("%s on both nodes: %v (after %v: node1 done %v, node2 done %v; watch errors %v, %v)",
			what, err, ms(took), ok1, ok2, w1.Err(), w2.Err())
	}
	return at1.Sub(since), at2.Sub(since)
}

// onlyRoutes wants n's faild routes to be exactly want, in any order.
func onlyRoutes(t *testing.T, n *lab.Node, want ...lab.Route) {
	t.Helper()
	if !n.RoutesAre(want...) {
		rs, err := n.Routes()
		t.Errorf("%v: faild routes %v %v; want exactly %v", n, rs, err, want)
	}
}

// checkEvent wants exactly one msg event since since in n's log, naming
// the peer, LAN A, its address there and the route.
func checkEvent(t *testing.T, n *lab.Node, since time.Time, msg string, peer *lab.Node, route lab.Route) {
	t.Helper()
	var found []lab.Event
	for _, e := range lab.Find(n.Events(), "msg", msg) {
		if !e.Time().Before(since.Truncate(time.Millisecond)) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Errorf("%v: %d %s events since %v, want 1:\n%s", n, len(found), msg, since.Format(time.StampMilli), n.Log())
		return
	}
	e := found[0]
	if !e.Match("peer", peer.Addr(lab.A), "lan", "A", "dev", lab.A.Iface(), "addr", peer.Addr(lab.A)) {
		t.Errorf("%v: %s event %v; want peer=%s lan=A dev=%s addr=%s", n, msg, e, peer.Addr(lab.A), lab.A.Iface(), peer.Addr(lab.A))
	}
	if r := e["route"]; !strings.Contains(r, route.Dst) || !strings.Contains(r, "via "+route.Via) || !strings.Contains(r, "dev "+route.Dev) {
		t.Errorf("%v: %s event route=%q; want it to name %v", n, msg, r, route)
	}
	t.Logf("%v: %s logged %v after the injection: %v", n, msg, ms(e.Time().Sub(since)), e["route"])
}

func noRoutes(t *testing.T, n *lab.Node) {
	t.Helper()
	if rs, err := n.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("%v: faild routes %v %v; want none", n, rs, err)
	}
}

func ms(d time.Duration) string { return fmt.Sprint(d.Round(time.Millisecond)) }
