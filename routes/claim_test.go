package routes

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestClaims: two peers never share an address. An address announced by
// one peer is refused to a second that only announces it; the peer heard
// from the address itself takes it, and the announcer's route for it goes.
func TestClaims(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	const p2, p3, p9 = PeerID(2), PeerID(3), PeerID(9)
	// Peer 9, heard on LAN B only, announces 192.0.2.3 (peer 3's LAN-A
	// address) as its own LAN-A address.
	tab.Observe(Observation{Peer: p9, LAN: 1, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.9")}, Interval: iv, At: t0}, nil)
	// Peer 2 announces it too: refused.
	tab.Observe(Observation{Peer: p2, LAN: 1, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.2")}, Interval: iv, At: t0}, nil)
	if tab.Refused != 1 {
		t.Errorf("Refused = %d after a second announcer, want 1", tab.Refused)
	}
	// Peer 9's invented LAN-A path expires: a route to 192.0.2.3 via peer 9.
	for k := 1; k <= 5; k++ {
		tab.Observe(Observation{Peer: p9, LAN: 1, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.9")}, Interval: iv, At: t0.Add(time.Duration(k) * iv)}, nil)
	}
	tab.Expire(t0.Add(5*iv), nil)
	if rs := tab.Routes(nil); len(rs) != 1 || rs[0].Via != a("198.51.100.9") {
		t.Fatalf("routes %v; want 192.0.2.3 via peer 9", rs)
	}
	// The real peer 3 speaks from 192.0.2.3 on LAN A: it takes the
	// address, and the route via peer 9 is withdrawn.
	evs := tab.Observe(Observation{Peer: p3, LAN: 0, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.3")}, Interval: iv, At: t0.Add(6 * iv)}, nil)
	want := []Event{
		{Kind: Discovered, Peer: p3, LAN: 0, Addr: a("192.0.2.3"), At: t0.Add(6 * iv)},
		{Kind: Rerouted, Peer: p9, LAN: 0, At: t0.Add(6 * iv)}, // the path lost its address: no route
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events when the owner speaks (-want +got):\n- %+v\n+ %+v", want, evs)
	}
	if rs := tab.Routes(nil); len(rs) != 0 {
		t.Errorf("routes %v after the owner spoke; want none", rs)
	}
}

// TestReaddressReleasesClaim: a peer that moves to a new address on a LAN
// gives up the old one, so another peer can take it.
func TestReaddressReleasesClaim(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	obs := func(id PeerID, lan int, at time.Time, addrs ...string) []Event {
		o := Observation{Peer: id, LAN: lan, Interval: iv, At: at}
		for _, s := range addrs {
			o.Addrs = append(o.Addrs, a(s))
		}
		return tab.Observe(o, nil)
	}
	// Peer 2, heard on both LANs, then renumbered on LAN B.
	obs(2, 0, t0, "192.0.2.2", "198.51.100.2")
	obs(2, 1, t0, "192.0.2.2", "198.51.100.2")
	obs(2, 1, t0.Add(iv), "192.0.2.2", "198.51.100.20")
	// Peer 3 now only announces the old address: it is free, so it is
	// accepted, and peer 3 gets a path on LAN B.
	obs(3, 0, t0.Add(2*iv), "192.0.2.3", "198.51.100.2")
	if tab.Refused != 0 {
		t.Errorf("Refused = %d; want 198.51.100.2 free once peer 2 moved off it", tab.Refused)
	}
	got := map[PeerID]netip.Addr{}
	tab.Paths(t0.Add(2*iv), func(id PeerID, lan int, p Path, _ Route) {
		if lan == 1 {
			got[id] = p.Addr
		}
	})
	if want := map[PeerID]netip.Addr{2: a("198.51.100.20"), 3: a("198.51.100.2")}; !reflect.DeepEqual(got, want) {
		t.Errorf("LAN-B path addresses %v, want %v", got, want)
	}
}

// TestClaimsOnLANB: the same as TestClaims with the LANs swapped, so the
// announcer's path that loses the address is on LAN B: its Rerouted event
// must come for that LAN too.
func TestClaimsOnLANB(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	const p3, p9 = PeerID(3), PeerID(9)
	// Peer 9, heard on LAN A only, announces peer 3's LAN-B address; its
	// LAN-B path expires, routed via its LAN-A address.
	for k := 0; k <= 5; k++ {
		tab.Observe(Observation{Peer: p9, LAN: 0, Addrs: []netip.Addr{a("192.0.2.9"), a("198.51.100.3")}, Interval: iv, At: t0.Add(time.Duration(k) * iv)}, nil)
	}
	tab.Expire(t0.Add(5*iv), nil)
	if rs := tab.Routes(nil); len(rs) != 1 || rs[0].Dst != netip.MustParsePrefix("198.51.100.3/32") {
		t.Fatalf("routes %v; want 198.51.100.3 via peer 9", rs)
	}
	evs := tab.Observe(Observation{Peer: p3, LAN: 1, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.3")}, Interval: iv, At: t0.Add(6 * iv)}, nil)
	want := []Event{
		{Kind: Discovered, Peer: p3, LAN: 1, Addr: a("198.51.100.3"), At: t0.Add(6 * iv)},
		{Kind: Rerouted, Peer: p9, LAN: 1, At: t0.Add(6 * iv)},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events when the owner speaks (-want +got):\n- %+v\n+ %+v", want, evs)
	}
}

// TestAnnouncedReaddressReroutes: a peer heard on LAN A only, whose LAN-B
// path never proved itself, is routed on LAN B via its LAN-A address; when
// it announces a new LAN-B address, the route follows it to the new
// destination and says so (Rerouted, LAN B).
func TestAnnouncedReaddressReroutes(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	obs := func(k int, lanB string) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: []netip.Addr{a("192.0.2.2"), a(lanB)}, Interval: iv, At: t0.Add(time.Duration(k) * iv)}, nil)
	}
	for k := 0; k <= 5; k++ {
		obs(k, "198.51.100.2")
	}
	tab.Expire(t0.Add(5*iv), nil)
	old := Route{Dst: netip.MustParsePrefix("198.51.100.2/32"), Via: a("192.0.2.2"), LAN: 0}
	if rs := tab.Routes(nil); len(rs) != 1 || rs[0] != old {
		t.Fatalf("routes %v; want %v", rs, old)
	}
	evs := obs(6, "198.51.100.20")
	moved := Route{Dst: netip.MustParsePrefix("198.51.100.20/32"), Via: a("192.0.2.2"), LAN: 0}
	want := []Event{{Kind: Rerouted, Peer: peerID, LAN: 1, Addr: a("198.51.100.20"), Route: moved, At: t0.Add(6 * iv)}}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events when the LAN-B address moves (-want +got):\n- %+v\n+ %+v", want, evs)
	}
	if rs := tab.Routes(nil); len(rs) != 1 || rs[0] != moved {
		t.Errorf("routes %v; want %v", rs, moved)
	}
}
