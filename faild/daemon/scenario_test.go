package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
)

// The findings of a hostile try of the reconciler, each as a scripted
// scenario on the simulated cluster, with the invariants on throughout:
// the in-process twins of the lab's tests of the same.

// scripted is a healthy three-node cluster on two IPv4 LANs, at -t 0.1
// -f 3 -s 3, one second after start.
func scripted(t *testing.T) *sim {
	t.Helper()
	return together(t, 3)
}

// lines returns the node's log lines of one event.
func (n *simNode) lines(msg string) []string {
	var out []string
	for _, l := range strings.Split(n.log.String(), "\n") {
		if strings.Contains(l, " msg="+msg+" ") || strings.HasSuffix(l, " msg="+msg) {
			out = append(out, l)
		}
	}
	return out
}

var (
	node2A = platform.Route{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "e1", Index: 3}
	admin  = platform.KernelRoute{Route: platform.Route{Dst: netip.MustParsePrefix("192.0.2.2/32"),
		Via: netip.MustParseAddr("198.51.100.3"), Dev: "e1", Index: 3}, Proto: 4, Metric: 10}
)

// failOver cuts node2's port on LAN A and waits for node1's route to it.
func failOver(t *testing.T, s *sim) *simNode {
	t.Helper()
	s.net.cutIn[0][2], s.net.cutOut[0][2] = true, true
	s.run(s.now.Add(500 * time.Millisecond))
	n1 := s.node(1)
	if got := n1.kernel.Ours(); !slices.Equal(got, []platform.Route{node2A}) || s.err != nil {
		t.Fatalf("after the cut: routes %v, %v; want %v", got, s.err, node2A)
	}
	return n1
}

// TestAdminRouteWins: a route an administrator adds during a failover to
// the destination of faild's takes over at once (faild withdraws its own
// and says so); when the administrator deletes it, faild's is back at
// once. Status says which, and the hooks run for both.
func TestAdminRouteWins(t *testing.T) {
	s := scripted(t)
	n1 := failOver(t, s)
	n1.kernel.AddForeign(admin)
	s.run(s.now.Add(100 * time.Millisecond))
	if got := n1.kernel.Ours(); len(got) != 0 || s.err != nil {
		t.Fatalf("100ms after the admin's route: faild's %v, %v; want none", got, s.err)
	}
	if l := n1.lines("foreign-route"); len(l) != 1 || !strings.Contains(l[0], "removed") {
		t.Errorf("foreign-route lines %q; want one saying faild removed its own", l)
	}
	if p := pathTo(n1, "192.0.2.2"); p.RouteState != "blocked" || !strings.Contains(p.Route, "198.51.100.3") {
		t.Errorf("status of the path: %q %q; want blocked by the admin's route", p.RouteState, p.Route)
	}
	n1.kernel.DeleteForeign(admin.Dst, admin.Metric)
	s.run(s.now.Add(100 * time.Millisecond))
	if got := n1.kernel.Ours(); !slices.Equal(got, []platform.Route{node2A}) || s.err != nil {
		t.Fatalf("100ms after the admin's route went: %v, %v; want faild's back", got, s.err)
	}
	if l := n1.lines("foreign-route-gone"); len(l) != 1 {
		t.Errorf("foreign-route-gone lines %q; want one", l)
	}
	if p := pathTo(n1, "192.0.2.2"); p.RouteState != "installed" {
		t.Errorf("status of the path: %q %q; want installed", p.RouteState, p.Route)
	}
}

// TestReplacedRouteSwitchback: an administrator's `ip route replace` over
// faild's route makes it someone else's; the switchback then names no
// removed route and runs no hook, and the administrator's route stays.
func TestReplacedRouteSwitchback(t *testing.T) {
	s := scripted(t)
	n1 := failOver(t, s)
	n1.kernel.DeleteForeign(node2A.Dst, 0)
	replaced := admin
	replaced.Metric = 0
	n1.kernel.AddForeign(replaced)
	s.run(s.now.Add(100 * time.Millisecond))
	s.healAll()
	s.run(s.now.Add(time.Second))
	sb := n1.lines("switchback")
	if len(sb) != 1 || !strings.Contains(sb[0], `route="none"`) || s.err != nil {
		t.Errorf("switchback lines %q, %v; want one naming no route", sb, s.err)
	}
	if rs := mustRoutes(n1.kernel); len(rs) != 1 || rs[0].Ours || rs[0].Via != admin.Via {
		t.Errorf("routes %v; want the administrator's alone", rs)
	}
}

// TestSpoofedStranger: one INQ with a fresh node id, from a LAN-A address,
// announcing a LAN-B address nobody was heard from, moves no route, logs
// no failover naming one, and runs no hook.
func TestSpoofedStranger(t *testing.T) {
	s := scripted(t)
	n1 := s.node(1)
	p := proto.Packet{Type: proto.INQ, NodeID: 0xc0000232, BootID: 1, Seq: 1, Interval: 100 * time.Millisecond,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24"), netip.MustParsePrefix("198.51.100.50/24")}}
	b, _ := p.Append(nil)
	n1.receive(&simFrame{lan: 0, src: netip.MustParseAddr("192.0.2.50"), b: b})
	s.run(s.now.Add(2 * time.Second))
	if rs := n1.kernel.Ours(); len(rs) != 0 || s.err != nil {
		t.Errorf("routes %v, %v; want none", rs, s.err)
	}
	for _, l := range n1.lines("failover") {
		if !strings.Contains(l, `route="none"`) {
			t.Errorf("failover line names a route: %s", l)
		}
	}
	if len(n1.lines("discovered")) != 3 {
		t.Errorf("discovered lines %q; want node2, node3 and the stranger", n1.lines("discovered"))
	}
}

// TestRestartKeepsRoute: a crash and restart, or a stop by SIGUSR2 (as
// systemctl restart sends it) and a start, during a failover never take
// the route away; a stop for good does.
func TestRestartKeepsRoute(t *testing.T) {
	for _, how := range []string{"crash", "handover"} {
		t.Run(how, func(t *testing.T) {
			s := scripted(t)
			n1 := failOver(t, s)
			gone := 0
			cancel := n1.kernel.Subscribe(func(c platform.RouteChange) {
				if c.Deleted {
					gone++
				}
			})
			n1.stop(how)
			n1.start()
			s.run(s.now.Add(2 * time.Second))
			cancel()
			if got := n1.kernel.Ours(); gone != 0 || !slices.Equal(got, []platform.Route{node2A}) || s.err != nil {
				t.Errorf("after the restart: %d deletions, routes %v, %v; want none and %v", gone, got, s.err, node2A)
			}
			if l := n1.lines("adopt"); len(l) != 1 {
				t.Errorf("adopt lines %q; want one", l)
			}
			n1.stop("clean")
			if got := n1.kernel.Ours(); len(got) != 0 {
				t.Errorf("after a stop for good: %v", got)
			}
		})
	}
}

func pathTo(n *simNode, addr string) StatusPath {
	for _, p := range n.d.snapshot(n.s.now).Paths {
		if p.Addr == addr {
			return p
		}
	}
	return StatusPath{}
}

// TestAdoptedRouteExpires: a route adopted at a restart whose gateway is
// never heard again (its node died meanwhile) stays for one detection
// time after the start, -f x -t plus an interval, so that a restart opens
// no hole in traffic, and then goes. The start line says there is no key.
func TestAdoptedRouteExpires(t *testing.T) {
	s := scripted(t)
	n1 := failOver(t, s)
	s.node(2).stop("crash")
	s.run(s.now.Add(10 * time.Millisecond)) // its last frames arrive
	n1.stop("crash")
	n1.start()
	start := s.now
	s.run(start.Add(350 * time.Millisecond))
	if got := n1.kernel.Ours(); !slices.Equal(got, []platform.Route{node2A}) || s.err != nil {
		t.Errorf("350 ms after the restart: routes %v, %v; want the adopted %v", got, s.err, node2A)
	}
	s.run(start.Add(450 * time.Millisecond))
	if got := n1.kernel.Ours(); len(got) != 0 || s.err != nil {
		t.Errorf("450 ms after the restart (-f 3 x -t 0.1 + 0.1 s): routes %v, %v; want the adopted route gone", got, s.err)
	}
	if l := n1.lines("start"); len(l) != 2 || !strings.Contains(l[1], ` auth="false" `) || !strings.Contains(l[1], ` adopted="1"`) {
		t.Errorf("start lines %q; want the second with auth=false adopted=1", l)
	}
}

// TestFamilyStartsLate: a node whose IPv6 addresses arrive after it
// started (DAD or SLAAC at boot) runs on IPv4 alone, then opens the IPv6
// family when they appear, finds its peers there and fails over in both
// families.
func TestFamilyStartsLate(t *testing.T) {
	s := &sim{now: simEpoch, lans: 2, v4: true, v6: true}
	s.rng = newSim(1).rng
	cfg := Config{Version: "sim", Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3,
		Port: 4117, MaxPeers: 256, DampMax: 16, HookTimeout: time.Second, OnChange: "sim-hook"}
	for range 3 {
		s.addNode(cfg)
	}
	n1 := s.node(1)
	n1.late6 = true
	for _, n := range s.nodes {
		n.start()
	}
	s.run(s.now.Add(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.report())
		}
	})
	if n1.d.fams[1] != nil || s.err != nil {
		t.Fatalf("IPv6 running without an IPv6 address (%v)", s.err)
	}
	n1.late6 = false
	for lan := range s.lans {
		n1.step(func() {
			n1.d.onLink(platform.LinkChange{Index: simIndex(lan), Name: fmt.Sprintf("e%d", lan)}, s.now)
		})
	}
	s.run(s.now.Add(time.Second))
	if l := n1.lines("family-started"); len(l) != 1 || !strings.Contains(l[0], `family="ipv6"`) {
		t.Errorf("family-started lines %q; want one for ipv6", l)
	}
	for _, a := range []string{"2001:db8:a::2", "2001:db8:b::2", "2001:db8:a::3", "2001:db8:b::3"} {
		if p := pathTo(n1, a); p.State != "valid" {
			t.Errorf("path to %s: %+v; want valid", a, p)
		}
	}
	s.net.cutIn[0][2], s.net.cutOut[0][2] = true, true
	s.run(s.now.Add(500 * time.Millisecond))
	want := []platform.Route{node2A, {Dst: netip.MustParsePrefix("2001:db8:a::2/128"), Via: netip.MustParseAddr("2001:db8:b::2"), Dev: "e1", Index: 3}}
	if got := n1.kernel.Ours(); !slices.EqualFunc(got, want, func(a, b platform.Route) bool { return a == b }) || s.err != nil {
		t.Errorf("after the cut: routes %v, %v; want %v", got, s.err, want)
	}
}
