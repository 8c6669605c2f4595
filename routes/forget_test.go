package routes

import (
	"net/netip"
	"testing"
	"time"
)

// TestForget: a peer heard on LAN B only has a failover route for its LAN-A
// address; once silent on every LAN for its forget time it is forgotten and
// the route goes with it.
func TestForget(t *testing.T) {
	cfg := Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Forget: 10 * time.Second}
	tab := New(cfg)
	obs := func(lan int, at time.Time) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: cfg.Interval, At: at}, nil)
	}
	obs(0, t0)
	var last time.Time
	for k := range 20 {
		last = t0.Add(time.Duration(k) * cfg.Interval)
		obs(1, last)
		tab.Expire(last, nil)
	}
	if rs := tab.Routes(nil); len(rs) != 1 {
		t.Fatalf("routes %v, want the failover route for LAN A", rs)
	}
	// LAN B fails over meanwhile; the peer is still remembered.
	tab.Expire(last.Add(cfg.Forget-time.Millisecond), nil)
	if peersIn(tab) != 1 {
		t.Fatalf("peer forgotten before its forget time")
	}
	evs := tab.Expire(last.Add(cfg.Forget), nil)
	if len(evs) != 1 || evs[0].Kind != Forgotten || evs[0].Peer != peerID || evs[0].LAN != -1 {
		t.Fatalf("events %+v, want one Forgotten, peer-wide (LAN -1)", evs)
	}
	if peersIn(tab) != 0 || len(tab.Routes(nil)) != 0 {
		t.Errorf("after forgetting: %d peers, routes %v; want none", peersIn(tab), tab.Routes(nil))
	}
	if _, ok := tab.NextDeadline(); ok {
		// Stale path entries may remain; they must expire without events.
		if evs := tab.Expire(last.Add(time.Hour), nil); len(evs) != 0 {
			t.Errorf("events after forgetting: %v", evs)
		}
	}
	// Heard again: discovered anew.
	if evs := obs(0, last.Add(time.Hour)); len(evs) != 1 || evs[0].Kind != Discovered {
		t.Errorf("events of a forgotten peer heard again %v, want Discovered", evs)
	}
}

// TestForgetSlowPeer: a peer whose detection time is long is kept for ten
// of them, whatever Config.Forget says.
func TestForgetSlowPeer(t *testing.T) {
	tab := New(Config{LANs: 2, Misses: 3, Successes: 3, Forget: time.Second})
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: 10 * time.Second, At: t0}, nil)
	for _, e := range tab.Expire(t0.Add(299*time.Second), nil) {
		if e.Kind == Forgotten {
			t.Fatalf("forgotten after 299 s; want 10 x 30 s")
		}
	}
	if evs := tab.Expire(t0.Add(301*time.Second), nil); len(evs) == 0 || evs[len(evs)-1].Kind != Forgotten {
		t.Errorf("events at 301 s: %v, want Forgotten", evs)
	}
}

func TestMaxPeers(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: time.Second, Misses: 3, Successes: 3, MaxPeers: 2})
	for i := range 5 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})
		tab.Observe(Observation{Peer: PeerID(100 + i), LAN: 0, Addrs: []netip.Addr{a}, At: t0}, nil)
	}
	if peersIn(tab) != 2 {
		t.Errorf("%d peers, want the limit of 2", peersIn(tab))
	}
}

// TestForgetReleasesClaims: a forgotten peer gives up its addresses, so
// when it is heard again (a new table entry) it gets its paths back, and
// so would another peer announcing them.
func TestForgetReleasesClaims(t *testing.T) {
	cfg := Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Forget: 10 * time.Second}
	tab := New(cfg)
	obs := func(lan int, at time.Time) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: cfg.Interval, At: at}, nil)
	}
	obs(0, t0)
	obs(1, t0)
	if evs := tab.Expire(t0.Add(time.Minute), nil); len(evs) == 0 || evs[len(evs)-1].Kind != Forgotten {
		t.Fatalf("events %+v, want the peer forgotten", evs)
	}
	back := t0.Add(2 * time.Minute)
	obs(1, back) // heard on LAN B, announcing its LAN-A address
	paths := 0
	tab.Paths(back, func(_ PeerID, lan int, p Path, _ Route) {
		paths++
		if p.Addr != peerAddrs[lan] {
			t.Errorf("LAN %d path address %v, want %v", lan, p.Addr, peerAddrs[lan])
		}
	})
	if paths != 2 || tab.Refused != 0 {
		t.Errorf("peer heard again after forgetting: %d paths, %d refused; want 2 and 0", paths, tab.Refused)
	}
}

// TestForgetOff: with Forget 0 a silent peer is kept for good, its routes
// too.
func TestForgetOff(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond, At: t0}, nil)
	for _, e := range tab.Expire(t0.Add(24*time.Hour), nil) {
		if e.Kind == Forgotten {
			t.Fatalf("forgotten with Forget 0: %+v", e)
		}
	}
	if peersIn(tab) != 1 {
		t.Errorf("%d peers after a day of silence with Forget 0, want 1", peersIn(tab))
	}
}

func peersIn(t *Table) int {
	n, _, _ := t.Counts()
	return n
}
