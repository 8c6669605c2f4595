package test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// TestIPv6Only is the core scenario on IPv6-only LANs: INQs to the
// multicast group, /128 host routes via the peer's LAN-B address.
func TestIPv6Only(t *testing.T) {
	failoverScenario(t, lab.IPv6, nil)
}

// TestDualStack is the core scenario on dual-stack LANs: both families
// fail over, each with its own host route (/32 and /128), and a TCP flow
// of each family survives.
func TestDualStack(t *testing.T) {
	failoverScenario(t, lab.Dual, nil)
}

// TestPeerList is the core scenario with --peer lists on a switch that
// drops broadcasts: nodes 1 and 2 list each other on both LANs and find
// each other by unicast alone; node 3, broadcasting, is never heard, which
// shows the block is in force.
func TestPeerList(t *testing.T) {
	failoverScenario(t, lab.IPv4, func(l *lab.Lab, n *lab.Node) []string {
		if n.ID == 3 {
			return nil
		}
		other := l.Node(3 - n.ID)
		return []string{"--peer", other.Addr(lab.A), "--peer", other.Addr(lab.B)}
	})
}

// failoverScenario runs three nodes on LANs of the given family and cuts
// LAN A between nodes 1 and 2: both must route each other's LAN-A
// addresses (of every family) via their LAN-B addresses within
// failoverLimit, a TCP flow per family to node 2's LAN-A address must
// survive, healing must switch back, and SIGTERM must leave no route. With
// peerArgs, the switch drops broadcast and multicast and each node gets
// the flags peerArgs returns; only nodes 1 and 2 are expected to meet.
func failoverScenario(t *testing.T, fam lab.Family, peerArgs func(*lab.Lab, *lab.Node) []string) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 3, Bin: bin, Family: fam})
	b := newBudget(t, 60*time.Second)
	n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)
	if peerArgs != nil {
		if err := l.BlockBroadcast(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		args := coreArgs
		if peerArgs != nil {
			args = append(slices.Clone(coreArgs), peerArgs(l, n)...)
		}
		if err := n.Start(args...); err != nil {
			t.Fatal(err)
		}
	}

	// What each family must show: the addresses of a node on both LANs.
	type addrs struct{ a, b func(*lab.Node) string }
	var fams []addrs
	if fam.Has4() {
		fams = append(fams, addrs{func(n *lab.Node) string { return lab.A.Addr(n.ID) }, func(n *lab.Node) string { return lab.B.Addr(n.ID) }})
	}
	if fam.Has6() {
		fams = append(fams, addrs{func(n *lab.Node) string { return n.Addr6(lab.A) }, func(n *lab.Node) string { return n.Addr6(lab.B) }})
	}
	meets := func(n, p *lab.Node) bool { return peerArgs == nil || (n.ID != 3 && p.ID != 3) }
	for _, n := range l.Nodes {
		b.wait(n.String()+" discovers its peers in every family", 5*time.Second, func() bool {
			ev := n.Events()
			for _, p := range l.Nodes {
				for _, f := range fams {
					if p != n && meets(n, p) && len(lab.Find(ev, "msg", "discovered", "addr", f.a(p)))+
						len(lab.Find(ev, "msg", "discovered", "addr", f.b(p))) == 0 {
						return false
					}
				}
			}
			return true
		})
	}
	for _, n := range l.Nodes {
		noRoutes(t, n)
	}
	w1, w2 := watchRoutes(t, n1), watchRoutes(t, n2)

	var flows []*lab.Flow
	for _, f := range fams {
		flow, err := l.StartFlow("tcp", 1, f.a(n2))
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, flow)
	}
	for _, flow := range flows {
		b.wait("TCP flow to "+flow.Dst+" echoes before the cut", 5*time.Second, func() bool { return flow.Stats().Echoed > 0 })
		if s := flow.Stats(); s.Err != nil {
			t.Fatalf("TCP flow node1 -> %s before the cut: %v", flow.Dst, s)
		}
	}
	time.Sleep(rand.N(interval)) // a random phase against faild's INQ ticks

	var want1, want2 []lab.Route
	for _, f := range fams {
		want1 = append(want1, lab.Route{Dst: f.a(n2), Via: f.b(n2), Dev: lab.B.Iface()})
		want2 = append(want2, lab.Route{Dst: f.a(n1), Via: f.b(n1), Dev: lab.B.Iface()})
	}
	cut := cutPair(t, l, 1, 2)
	took1, took2 := routedBoth(b, "failover", cut, failoverLimit+2*time.Second, true, w1, w2, want1, want2)
	t.Logf("%v: failover in the kernel: node1 %v, node2 %v after the cut (limit %v); routes %v", fam, ms(took1), ms(took2), failoverLimit, want1)
	if took1 > failoverLimit || took2 > failoverLimit {
		t.Errorf("failover took node1 %v, node2 %v; want at most %v", ms(took1), ms(took2), failoverLimit)
	}
	onlyRoutes(t, n1, want1...)
	onlyRoutes(t, n2, want2...)
	checkRouteEvents(t, n1, cut, "failover", want1)
	checkRouteEvents(t, n2, cut, "failover", want2)
	noRoutes(t, n3)
	for _, flow := range flows {
		echoed := flow.Stats().Echoed
		b.wait("TCP flow to "+flow.Dst+" resumes over LAN B", 3*time.Second, func() bool { return flow.Stats().Echoed > echoed+10 })
		s := flow.Stats()
		t.Logf("%v: TCP flow to %s across the cut: %v", fam, flow.Dst, s)
		if s.MaxGap > 3*time.Second || s.Err != nil {
			t.Errorf("TCP flow to %s across the cut: %v; want it alive with gaps under 3s", flow.Dst, s)
		}
	}

	heal := time.Now()
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	back1, back2 := routedBoth(b, "switchback", heal, 3*time.Second, false, w1, w2, want1, want2)
	t.Logf("%v: switchback in the kernel: node1 %v, node2 %v after the heal", fam, ms(back1), ms(back2))
	noRoutes(t, n1)
	noRoutes(t, n2)
	checkRouteEvents(t, n1, heal, "switchback", want1)
	checkRouteEvents(t, n2, heal, "switchback", want2)
	for _, flow := range flows {
		if s := flow.Stop(); s.Err != nil {
			t.Errorf("TCP flow to %s after the heal: %v", flow.Dst, s)
		}
	}

	// A second cut, then a clean stop must take the routes away.
	cut = cutPair(t, l, 1, 2)
	routedBoth(b, "second failover", cut, failoverLimit+2*time.Second, true, w1, w2, want1, want2)
	onlyRoutes(t, n1, want1...)
	onlyRoutes(t, n2, want2...)
	for _, n := range l.Nodes {
		if err := n.Stop(); err != nil {
			t.Errorf("%v: SIGTERM: %v; want exit 0", n, err)
		}
		noRoutes(t, n)
	}

	if peerArgs != nil {
		for _, n := range []*lab.Node{n1, n2} {
			for _, f := range fams {
				if ev := lab.Find(n.Events(), "msg", "discovered", "addr", f.a(n3)); len(ev) > 0 {
					t.Errorf("%v discovered node3, whose INQs go only by broadcast: %v", n, ev)
				}
			}
		}
		if ev := lab.Find(n3.Events(), "msg", "discovered"); len(ev) > 0 {
			t.Errorf("node3 discovered peers through a switch that drops broadcasts: %v", ev)
		}
		blocked, err := l.BlockedFrames()
		if err != nil || blocked == 0 {
			t.Errorf("the switch dropped %d broadcast frames (%v); want node3's INQs dropped", blocked, err)
		}
		t.Logf("the switch dropped %d broadcast frames, all of them node3's", blocked)
	}
}

// checkRouteEvents wants, since since, one msg event in n's log for each
// route in want, on LAN A, naming the route.
func checkRouteEvents(t *testing.T, n *lab.Node, since time.Time, msg string, want []lab.Route) {
	t.Helper()
	for _, r := range want {
		var found []lab.Event
		for _, e := range lab.Find(n.Events(), "msg", msg, "addr", r.Dst) {
			if !e.Time().Before(since.Truncate(time.Millisecond)) {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Errorf("%v: %d %s events for %s since %v, want 1:\n%s", n, len(found), msg, r.Dst, since.Format(time.StampMilli), n.Log())
			continue
		}
		e := found[0]
		if !e.Match("lan", "A", "dev", lab.A.Iface()) || !strings.Contains(e["route"], r.Dst+"/") ||
			!strings.Contains(e["route"], "via "+r.Via) || !strings.Contains(e["route"], "dev "+r.Dev) {
			t.Errorf("%v: %s event %v; want lan=A dev=%s and route naming %v", n, msg, e, lab.A.Iface(), r)
		}
		t.Logf("%v: %s logged %v after the injection: %v", n, msg, ms(e.Time().Sub(since)), e["route"])
	}
}

// TestIPv6Late: a node whose IPv6 addresses arrive only after faild has
// started (DAD or SLAAC at boot) runs on IPv4 at first, then opens IPv6
// when they come, finds its peers there, and fails over in both families.
func TestIPv6Late(t *testing.T) {
	t.Parallel()
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: sharedBin(t), Family: lab.Dual})
	b := newBudget(t, 30*time.Second)
	n1, n2 := l.Node(1), l.Node(2)
	for _, lan := range lab.LANs {
		_, err := n1.IP("-6", "addr", "del", n1.Addr6(lan)+"/64", "dev", lan.Iface())
		must(t, err)
	}
	startAll(t, b, l, requestor(fast...))
	if ev := lab.Find(n1.Events(), "msg", "family-started"); len(ev) > 0 {
		t.Fatalf("%v: %v before it had an IPv6 address", n1, ev)
	}
	added := time.Now()
	for _, lan := range lab.LANs {
		_, err := n1.IP("-6", "addr", "add", n1.Addr6(lan)+"/64", "dev", lan.Iface(), "nodad")
		must(t, err)
	}
	waitEvent(b, n1, added, 2*time.Second, "msg", "family-started", "family", "ipv6")
	b.wait("node1 hears node2 over IPv6", 2*time.Second, func() bool {
		return len(lab.Find(n1.Events(), "msg", "discovered", "addr", n2.Addr6(lab.A)))+
			len(lab.Find(n1.Events(), "msg", "discovered", "addr", n2.Addr6(lab.B))) > 0
	})
	time.Sleep(500 * time.Millisecond) // -s good intervals on the new paths
	w := watchRoutes(t, n1)
	cut := time.Now()
	must(t, l.CutPort(lab.A, 2, lab.Both))
	want := []lab.Route{overB(n2), {Dst: n2.Addr6(lab.A), Via: n2.Addr6(lab.B), Dev: lab.B.Iface()}}
	b.wait("failover in both families", fastLimit, func() bool { _, ok := w.Added(cut, want...); return ok })
	stopAll(t, l)
}
