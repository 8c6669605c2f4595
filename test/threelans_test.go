package test

import (
	"slices"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// TestThreeLANs runs faild on LANs A, B and C (in that priority order)
// and cuts them between nodes 1 and 2 one after another: with A cut, each
// routes the other's LAN-A address over B; with A and B cut, both the A
// and the B address go over C; healing, in either order, moves every
// route back to the best LAN still valid, and then away. Node 3 sees
// nothing of it.
func TestThreeLANs(t *testing.T) {
	t.Parallel()
	l := lab.ForTest(t, lab.Options{Nodes: 3, Bin: sharedBin(t), LANC: true})
	b := newBudget(t, 60*time.Second)
	startAll(t, b, l, requestor(slices.Concat(fast, []string{"-i", "eth0", "-i", "eth1", "-i", "eth2"})...))
	n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)

	// via is the route to peer's address on LAN dst over LAN over.
	via := func(peer *lab.Node, dst, over lab.LAN) lab.Route {
		return lab.Route{Dst: peer.Addr(dst), Via: peer.Addr(over), Dev: over.Iface()}
	}
	// expect waits until node 1 and node 2 each have exactly the routes
	// to the other that routes(peer) gives, and node 3 none.
	expect := func(what string, routes func(peer *lab.Node) []lab.Route) {
		t.Helper()
		took := b.wait(what, 3*time.Second, func() bool {
			return n1.RoutesAre(routes(n2)...) && n2.RoutesAre(routes(n1)...) && n3.RoutesAre()
		})
		t.Logf("%s: %v", what, ms(took))
	}
	viaB := func(p *lab.Node) []lab.Route { return []lab.Route{via(p, lab.A, lab.B)} }
	viaC := func(p *lab.Node) []lab.Route { return []lab.Route{via(p, lab.A, lab.C), via(p, lab.B, lab.C)} }
	bViaA := func(p *lab.Node) []lab.Route { return []lab.Route{via(p, lab.B, lab.A)} }
	none := func(*lab.Node) []lab.Route { return nil }

	for _, order := range []struct {
		name         string
		first, then  lab.LAN
		afterFirst   func(*lab.Node) []lab.Route
		firstHealsTo string
	}{
		{"A healed first", lab.A, lab.B, bViaA, "B's address over A"},
		{"B healed first", lab.B, lab.A, viaB, "A's address over B"},
	} {
		must(t, l.CutPair(lab.A, 1, 2))
		expect(order.name+": A cut: A's address over B", viaB)
		must(t, l.CutPair(lab.B, 1, 2))
		expect(order.name+": A and B cut: both addresses over C", viaC)
		must(t, l.HealPair(order.first, 1, 2))
		expect(order.name+": "+order.firstHealsTo, order.afterFirst)
		must(t, l.HealPair(order.then, 1, 2))
		expect(order.name+": all healed: no routes", none)
	}
	stopAll(t, l)
}
