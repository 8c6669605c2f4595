package daemon

import (
	"strings"
	"testing"
	"time"
)

// together starts n requestors at the same instant on two IPv4 LANs, at
// -t 0.1 -f 3 -s 3 without damping, and runs them for a second: their
// first INQs go out together, in phase.
func together(t *testing.T, n int) *sim {
	t.Helper()
	s := &sim{now: simEpoch, lans: 2, v4: true}
	s.rng = newSim(1).rng
	cfg := Config{Version: "sim", Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3,
		Port: 4117, MaxPeers: 256, HookTimeout: time.Second, OnChange: "sim-hook"}
	for range n {
		s.addNode(cfg).start()
	}
	s.run(s.now.Add(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.report())
		}
	})
	return s
}

// phase is where in the interval node n sent its newest INQ on LAN A.
func (n *simNode) phase() time.Duration {
	_, at := n.d.fams[0].tx.Sent(0)
	return at.Sub(simEpoch) % n.cfg.Interval
}

// TestINQsSpread: requestors started together spread their INQs evenly
// over the interval in the order of their ids, the highest keeping its
// time: node 3's INQs, then node 2's a third of an interval later, then
// node 1's.
func TestINQsSpread(t *testing.T) {
	s := together(t, 3)
	iv := s.cfg().Interval
	anchor := s.node(3).phase()
	for id, want := range map[int]time.Duration{1: 2 * iv / 3, 2: iv / 3} {
		got := (s.node(id).phase() - anchor + iv) % iv
		if d := got - want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("node%d sends %v after node3, want %v", id, got, want)
		}
	}
}

// TestPlacedINQsDetectSooner: a pair started together places its INQs
// half an interval apart, and a cut of one node's port on LAN A is then
// detected at both ends 2.25 intervals after it on average, plus the
// grace: 230 ms. In phase, as they started, it would be 2.5 (255 ms).
// The cuts are spread over an interval, 5 ms apart.
func TestPlacedINQsDetectSooner(t *testing.T) {
	s := together(t, 2)
	iv := s.cfg().Interval
	var sum time.Duration
	const cuts = 20
	for i := range cuts {
		s.run(s.now.Truncate(iv).Add(iv + time.Duration(i)*5*time.Millisecond))
		cut := s.now
		s.net.cutIn[0][2], s.net.cutOut[0][2] = true, true
		s.run(cut.Add(500 * time.Millisecond))
		for _, id := range []int{1, 2} {
			at, ok := failoverAfter(s.node(id), cut)
			if !ok {
				t.Fatalf("cut %d at %v: no failover at node%d", i, cut.Sub(simEpoch), id)
			}
			sum += at.Sub(cut)
		}
		s.net.cutIn[0][2], s.net.cutOut[0][2] = false, false
		s.run(s.now.Add(time.Second))
	}
	mean := sum / (2 * cuts)
	t.Logf("mean detection %v", mean)
	if mean > 235*time.Millisecond {
		t.Errorf("mean detection %v over %d cuts at both ends, want about 230ms", mean, cuts)
	}
}

// failoverAfter is when the node logged its first failover of a LAN-A
// path after from.
func failoverAfter(n *simNode, from time.Time) (time.Time, bool) {
	for _, l := range n.lines("failover") {
		if !strings.Contains(l, ` lan="A"`) {
			continue
		}
		d, err := time.ParseDuration(strings.Fields(l)[0])
		if at := simEpoch.Add(d); err == nil && at.After(from) {
			return at, true
		}
	}
	return time.Time{}, false
}
