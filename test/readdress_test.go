package test

import (
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// TestReaddressDuringCut is the outage of issue 15 finding 5: LAN A is cut
// between nodes 1 and 2, so node 1 reaches node 2's LAN-A address over LAN
// B only; then node 2's LAN-B address changes within its subnet
// (198.51.100.2 becomes .22). Node 1 must move its route to the new
// address, with a key and without, and a UDP flow from node 1 to node 2's
// LAN-A address measures how long the two could not talk at all. Node 1
// holds node 2's id to the old address for the 5 s hold-down (id-moved),
// so the path fails and comes back on the new address, which is what
// moves the route; the outage is about that long.
func TestReaddressDuringCut(t *testing.T) {
	t.Parallel()
	for _, keyed := range []bool{false, true} {
		name := "no key"
		if keyed {
			name = "key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, b := newLab(t, 2, 60*time.Second)
			args := append([]string{"-r"}, fast...)
			if keyed {
				args = append(args, "--key-file", writeKey(t, labKey))
			}
			startAll(t, b, l, func(*lab.Node) []string { return args })
			n1, n2 := l.Node(1), l.Node(2)
			must(t, l.CutPair(lab.A, 1, 2))
			b.wait("failover over LAN B at both ends", 3*time.Second, func() bool {
				return n1.RoutesAre(overB(n2)) && n2.RoutesAre(overB(n1))
			})
			flow, err := l.StartFlow("udp", 1, n2.Addr(lab.A))
			must(t, err)
			b.wait("flow over LAN B", 3*time.Second, func() bool { return flow.Stats().Echoed > 20 })
			if s := flow.Stats(); s.MaxGap > time.Second {
				t.Fatalf("flow before the readdress: %v", s)
			}

			at := time.Now()
			must(t, l.Readdress(lab.B, 2, 22))
			moved := lab.Route{Dst: n2.Addr(lab.A), Via: lab.B.Addr(22), Dev: lab.B.Iface()}
			var echoed int
			took := b.wait("node1 routes node2's LAN-A address to its new LAN-B address, and the flow is back", 20*time.Second, func() bool {
				if !n1.RoutesAre(moved) {
					return false
				}
				if echoed == 0 {
					echoed = flow.Stats().Echoed
				}
				return flow.Stats().Echoed > echoed+20
			})
			s := flow.Stop()
			record(t, "route_moved_and_flowing", ms(took))
			record(t, "outage", ms(s.MaxGap))
			t.Logf("flow across the readdress: %v", s)
			if s.MaxGap > 10*time.Second {
				t.Errorf("the readdress cost %v of total outage; want about the 5 s hold-down", ms(s.MaxGap))
			}
			if len(since(n1, at, "msg", "id-moved", "node", n2.Addr(lab.A), "lan", "B", "from", lab.B.Addr(22))) != 1 {
				t.Errorf("node1 did not log node 2's id moving on LAN B:\n%s", n1.Log())
			}
			stopAll(t, l)
		})
	}
}
