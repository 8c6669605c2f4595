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
// for d, and returns the number of cuts and the time of the last heal.
func flapLAN(t *testing.T, l *lab.Lab, down, up, d time.Duration) (n int, healed time.Time) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		c := time.Now()
		must(t, l.CutPort(lab.A, 2, lab.Both))
		time.Sleep(time.Until(c.Add(down)))
		healed = time.Now()
		must(t, l.Heal())
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
			// one more failover per node: allow a little slack for a cut
			// that lands mid-interval.
			if failovers > 6 || failovers*4 > flaps {
				t.Errorf("damped: %d failovers on two nodes in %d flaps; want at most 6", failovers, flaps)
			}
			if len(damped) == 0 || !strings.Contains(damped[0]["damping"], "needs 6 good intervals") {
				t.Errorf("damped: failover lines with damping=%v; want one saying it needs 6 good intervals", damped)
			}
			// Once the link is stable the route goes after 6 intervals.
			back := switchedBackWithin(t, b, end, want)
			record(t, "switchback_after_last_heal", ms(back))
			if back < 4*interval {
				t.Errorf("switched back %v after the flapping ended; damping needs about 6 intervals", ms(back))
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
			if !routesAre(n) {
				return false
			}
		}
		return true
	})
	return time.Since(at)
}
