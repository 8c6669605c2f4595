package routes

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDamping: with 3-interval failovers and switchbacks, a path that is
// down for 4 intervals and up for 5, over and over, fails over and switches
// back every cycle without damping; with it, the second failover within the
// window doubles the 3 good intervals needed to 6, more than the 5 good
// intervals a cycle offers, so it stays failed over until the flapping ends.
func TestDamping(t *testing.T) {
	iv := 100 * time.Millisecond
	plain := Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3}
	damped := plain
	damped.DampWindow, damped.DampMax = 3*time.Second, 16
	bad := func(lan, k int) bool {
		// 8 cycles from interval 10: 4 silent intervals, then 5 heard.
		if lan != 0 || k < 10 || k >= 10+8*9 {
			return true
		}
		return (k-10)%9 >= 4
	}
	_, got := run(t, plain, iv, 100, bad)
	f := 0
	for _, e := range got {
		if strings.HasSuffix(e, ":Failover/0") {
			f++
		}
	}
	if f != 8 {
		t.Errorf("undamped: %d failovers, want one per cycle (8): %v", f, got)
	}
	_, got = run(t, damped, iv, 100, bad)
	want := []string{"0:Discovered/0",
		"12:Failover/0", "16:Switchback/0", // the first: -s 3 as usual
		"21:Failover/0",   // within the window: now needs 6, a cycle has 5
		"82:Switchback/0"} // the 6th good interval after the last silence
	if !reflect.DeepEqual(got, want) {
		t.Errorf("damped events (-want +got):\n-%v\n+%v", want, got)
	}
}

// TestDampingGrowsAndDecays drives one path's failovers by hand: each
// failover within the window doubles what a switchback needs, up to the
// cap; a quiet window undoes one doubling; damping off never doubles.
func TestDampingGrowsAndDecays(t *testing.T) {
	const w = 10 * time.Second
	iv := 100 * time.Millisecond
	cfg := Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, DampWindow: w, DampMax: 8}
	tab := New(cfg)
	obs := func(lan int, at time.Time) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: at}, nil)
	}
	obs(0, t0)
	obs(1, t0)
	// down fails LAN A over at `at` (as a lost carrier does) and returns
	// what the switchback then needs.
	down := func(at time.Time) int {
		obs(1, at)
		evs := tab.LANDown(0, at, nil)
		if len(evs) == 0 || evs[0].Kind != Failover {
			t.Fatalf("LANDown at %v: %+v, want a failover", at.Sub(t0), evs)
		}
		return evs[0].Needs
	}
	// up hears LAN A every interval until it switches back and returns how
	// many intervals that took, and the time after.
	up := func(at time.Time) (int, time.Time) {
		for k := 1; k <= 100; k++ {
			at = at.Add(iv)
			obs(1, at)
			for _, e := range obs(0, at) {
				if e.Kind == Switchback {
					return k, at
				}
			}
		}
		t.Fatalf("no switchback within 100 intervals")
		return 0, at
	}
	at := t0.Add(time.Second)
	var needs, took []int
	for range 5 { // five quick flaps: 3, 6, 12, 24, then the cap 24
		needs = append(needs, down(at))
		var k int
		k, at = up(at)
		took = append(took, k)
		at = at.Add(iv)
	}
	if want := []int{3, 6, 12, 24, 24}; !reflect.DeepEqual(needs, want) || !reflect.DeepEqual(took, want) {
		t.Errorf("needs %v, switchbacks took %v intervals; want both %v", needs, took, want)
	}
	// Two quiet windows undo two doublings: the next failover, not within
	// the window of the last, needs 24/4.
	at = at.Add(2*w + time.Second)
	if n := down(at); n != 6 {
		t.Errorf("after two quiet windows: needs %d, want 6", n)
	}
	var n int
	tab.Paths(at, func(_ PeerID, lan int, p Path, _ Route) {
		if lan == 0 {
			n = p.Needs
		}
	})
	if n != 6 {
		t.Errorf("status shows needs %d, want 6", n)
	}

	off := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	off.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, At: t0}, nil)
	for i := range 3 {
		evs := off.LANDown(0, t0.Add(time.Duration(i)*time.Second), nil)
		if len(evs) == 0 || evs[0].Needs != 3 {
			t.Fatalf("damping off, failover %d: %+v, want needs 3", i, evs)
		}
		for k := 1; k <= 3; k++ {
			off.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv,
				At: t0.Add(time.Duration(i)*time.Second + time.Duration(k)*iv)}, nil)
		}
	}
}

// TestDampWindowEdge: a failover a whole window after the previous one is
// not within it, and does not double; a moment earlier it does.
func TestDampWindowEdge(t *testing.T) {
	const w = 3 * time.Second
	iv := 100 * time.Millisecond
	for _, tc := range []struct {
		gap  time.Duration
		want int
	}{{w - time.Millisecond, 2}, {w, 1}} {
		tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 1, DampWindow: w, DampMax: 16})
		obs := func(lan int, at time.Time) []Event {
			return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: at}, nil)
		}
		obs(0, t0)
		obs(1, t0)
		first := t0.Add(iv)
		tab.LANDown(0, first, nil)
		if evs := obs(0, first.Add(iv)); len(evs) == 0 || evs[0].Kind != Switchback {
			t.Fatalf("gap %v: %+v after the first failover, want a switchback (-s 1)", tc.gap, evs)
		}
		evs := tab.LANDown(0, first.Add(tc.gap), nil)
		if len(evs) == 0 || evs[0].Kind != Failover || evs[0].Needs != tc.want {
			t.Errorf("second failover %v after the first: %+v, want it to need %d", tc.gap, evs, tc.want)
		}
	}
}

// TestMaxPenalty: the penalty's cap is the fewest doublings that reach
// --damp-max, and never more than 20, however large the factor: a
// shift further would overflow and the loop would not end.
func TestMaxPenalty(t *testing.T) {
	for dampMax, want := range map[int]int{0: 0, 1: 0, 2: 1, 3: 2, 16: 4, 1024: 10, 1 << 20: 20, 1<<20 + 1: 20, math.MaxInt: 20} {
		if got := maxPenalty(dampMax); got != want {
			t.Errorf("maxPenalty(%d) = %d, want %d", dampMax, got, want)
		}
	}
}
