package test

// Scenarios of issue 6 beyond security: a flapping link under damping,
// interfaces recreated and readdressed under a running faild, and a flood.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// flapLAN cuts node2's LAN-A port for down, heals it for up, over and over
// for d, and returns the number of cuts and the time of the last heal (just
// after it was in force: nothing heard later can predate it). Each nft
// process starts during the phase before the one it ends, so that a loaded
// machine's process start does not stretch the phases.
func flapLAN(t *testing.T, l *lab.Lab, down, up, d time.Duration) (n int, healed time.Time) {
	t.Helper()
	cut, err := l.PrepareCutPort(lab.A, 2, lab.Both)
	must(t, err)
	t.Cleanup(cut.Close)
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		c := time.Now()
		must(t, cut.Fire())
		heal, err := l.PrepareClearRules()
		must(t, err)
		t.Cleanup(heal.Close)
		time.Sleep(time.Until(c.Add(down)))
		must(t, heal.Fire())
		healed = time.Now()
		cut, err = l.PrepareCutPort(lab.A, 2, lab.Both)
		must(t, err)
		t.Cleanup(cut.Close)
		time.Sleep(time.Until(healed.Add(up)))
	}
	return n, healed
}

// TestDampedFlapping: LAN A between nodes 1 and 2 goes down for 5
// intervals and up for 5, over and over for 20 s. Undamped (--damp-window
// 0), each cycle is a failover and a switchback; damped (the default), the
// second failover within the window doubles -s 3 to 6 good intervals, more
// than a cycle's 5, so the route stays put until the link is stable.
func TestDampedFlapping(t *testing.T) {
	t.Parallel()
	const (
		down, up = 500 * time.Millisecond, 500 * time.Millisecond
		flapFor  = 20 * time.Second
	)
	for _, tc := range []struct {
		name  string
		extra []string
	}{{"damped", nil}, {"undamped", []string{"--damp-window", "0"}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, b := newLab(t, 2, flapFor+30*time.Second)
			startAll(t, b, l, requestor(append(append([]string{}, fast...), tc.extra...)...))
			n1, n2 := l.Node(1), l.Node(2)
			start := time.Now()
			flaps, end := flapLAN(t, l, down, up, flapFor)
			failovers := 0
			var damped []lab.Event
			for _, n := range []*lab.Node{n1, n2} {
				for _, e := range since(n, start, "msg", "failover", "lan", "A") {
					if e.Time().Before(end) {
						failovers++
						if e["damping"] != "" {
							damped = append(damped, e)
						}
					}
				}
			}
			record(t, "flaps", flaps)
			record(t, "failovers_both_nodes", failovers)
			want := map[*lab.Node][]*lab.Node{n1: {n2}, n2: {n1}}
			if tc.name == "undamped" {
				// The control: without damping the route follows the link.
				if failovers < flaps {
					t.Errorf("undamped: %d failovers on two nodes in %d flaps; want about one per flap per node", failovers, flaps)
				}
				switchedBackWithin(t, b, end, want)
				stopAll(t, l)
				return
			}
			// A failover and a switchback before damping sets in, then
			// one more failover per node. Slack for one more: goods count
			// at three quarters of an interval apart at the least, so an
			// up phase can, by its phase, show the 6 good intervals once;
			// the failover after that needs 12, which no up phase has.
			// (The old bound of a quarter of the flaps, 5 for 20, was
			// tighter than this one and failed on exactly that.)
			if failovers > 6 {
				t.Errorf("damped: %d failovers on two nodes in %d flaps; want at most 6 (3 a node)", failovers, flaps)
			}
			if len(damped) == 0 || !strings.Contains(damped[0]["damping"], "needs 6 good intervals") {
				t.Errorf("damped: failover lines with damping=%v; want one saying it needs 6 good intervals", damped)
			}
			// Once the link is stable the route goes after 6 good
			// intervals, not the 3 of an undamped path: timed by faild's
			// own switchback lines from the last heal (flapLAN returns
			// only after the up phase that follows it).
			switchedBackWithin(t, b, end, want)
			for _, pair := range [][2]*lab.Node{{n1, n2}, {n2, n1}} {
				n, peer := pair[0], pair[1]
				es := since(n, end, "msg", "switchback", "peer", peer.Addr(lab.A), "lan", "A")
				if len(es) != 1 {
					t.Errorf("damped: %v: %d switchbacks of LAN A after the last heal, want 1", n, len(es))
					continue
				}
				back := es[0].Time().Sub(end)
				record(t, n.String()+"_switchback_after_last_heal", ms(back))
				if back < 4*interval {
					t.Errorf("damped: %v switched back %v after the last heal; damping needs 6 intervals, -s 3 alone 3", n, ms(back))
				}
			}
			stopAll(t, l)
		})
	}
}

// switchedBackWithin waits for every node in want to have no faild route
// and returns how long after at that was.
func switchedBackWithin(t *testing.T, b *budget, at time.Time, want map[*lab.Node][]*lab.Node) time.Duration {
	t.Helper()
	b.wait(fmt.Sprintf("switchback of %d nodes", len(want)), 5*time.Second, func() bool {
		for n := range want {
			if !n.RoutesAre() {
				return false
			}
		}
		return true
	})
	return time.Since(at)
}

// TestLiveInterfaces: under a running faild, node1's LAN-B interface is
// deleted and recreated (a new veth in the same bridge, same name and
// address, a new index), and later renumbered. Each time faild logs
// lan-changed and takes the interface into use without a restart: a cut
// of LAN A between nodes 1 and 2 then fails over via LAN B at both ends,
// with routes on the new interface and to the new address.
func TestLiveInterfaces(t *testing.T) {
	t.Parallel()
	l, b := newLab(t, 2, 60*time.Second)
	startAll(t, b, l, requestor(fast...))
	n1, n2 := l.Node(1), l.Node(2)

	// cutAndBack cuts LAN A between the nodes, wants each to route the
	// other's LAN-A address over LAN B to its address there, and heals.
	cutAndBack := func(what, n1B string) {
		t.Helper()
		via1 := lab.Route{Dst: n1.Addr(lab.A), Via: n1B, Dev: lab.B.Iface()}
		cut := time.Now()
		must(t, l.CutPair(lab.A, 1, 2))
		took := b.wait(what+": failover over LAN B at both ends", 3*time.Second, func() bool {
			return n1.RoutesAre(overB(n2)) && n2.RoutesAre(via1)
		})
		record(t, what+"_failover", ms(took))
		for _, end := range []struct {
			n    *lab.Node
			peer *lab.Node
			r    lab.Route
		}{{n1, n2, overB(n2)}, {n2, n1, via1}} {
			es := since(end.n, cut, "msg", "failover", "peer", end.peer.Addr(lab.A), "lan", "A")
			if len(es) != 1 {
				t.Errorf("%s: %v logged %d failovers of LAN A, want 1", what, end.n, len(es))
				continue
			}
			wantRoute(t, end.n, es[0], end.r)
		}
		must(t, l.Heal())
		b.wait(what+": switchback", 5*time.Second, func() bool { return n1.RoutesAre() && n2.RoutesAre() })
	}
	index := func() string {
		out, err := n1.IP("-o", "link", "show", "dev", lab.B.Iface())
		must(t, err)
		idx, _, _ := strings.Cut(out, ":")
		return idx
	}

	// Recreated: gone (LAN B fails over at once), back with a new index.
	old := index()
	at := time.Now()
	must(t, l.Recreate(lab.B, 1))
	idx := index()
	if idx == old {
		t.Fatalf("recreated eth1 kept index %s", idx)
	}
	waitEvent(b, n1, at, 2*time.Second, "msg", "carrier-lost", "lan", "B", "reason", "interface gone")
	e := waitEvent(b, n1, at, 2*time.Second, "msg", "lan-changed", "lan", "B",
		"new", "index "+idx+" 198.51.100.1/24 brd 198.51.100.255")
	t.Logf("node1: %v", e)
	waitEvent(b, n1, at, 5*time.Second, "msg", "switchback", "peer", n2.Addr(lab.A), "lan", "B")
	cutAndBack("recreated", n1.Addr(lab.B))

	// Renumbered: 198.51.100.1 becomes .11. Node 2 holds node 1's id to
	// the old address for 5 s (the id-moved rule), then follows.
	at = time.Now()
	must(t, l.Readdress(lab.B, 1, 11))
	waitEvent(b, n1, at, 2*time.Second, "msg", "lan-changed", "lan", "B", "new", "index "+idx+" 198.51.100.11/24 brd 198.51.100.255")
	b.wait("node2 takes node1's new LAN-B address, every path valid", 15*time.Second, func() bool {
		if len(since(n2, at, "msg", "switchback", "peer", n1.Addr(lab.A), "lan", "B", "addr", lab.B.Addr(11))) == 0 {
			return false
		}
		_, c1 := runStatus(t, l.Bin, n1)
		_, c2 := runStatus(t, l.Bin, n2)
		return c1 == 0 && c2 == 0
	})
	cutAndBack("readdressed", lab.B.Addr(11))
	stopAll(t, l)
}
