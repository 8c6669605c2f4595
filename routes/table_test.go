package routes

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const peerID = PeerID(0xc0000202) // 192.0.2.2

// peerAddrs is the peer's address on LANs A, B and C.
var peerAddrs = []netip.Addr{
	netip.MustParseAddr("192.0.2.2"),
	netip.MustParseAddr("198.51.100.2"),
	netip.MustParseAddr("203.0.113.2"),
}

// run drives a table through a timeline: at every interval k (k = 0..steps-1)
// the peer is heard on each LAN for which heard(lan, k) is true, 1 ms after
// the interval starts (a round trip). Expire is called every millisecond. It
// returns the events in a compact form: "k:Kind/LAN".
func run(t *testing.T, cfg Config, peerInterval time.Duration, steps int, heard func(lan, k int) bool) (*Table, []string) {
	t.Helper()
	tab := New(cfg)
	iv := cfg.Interval
	if iv == 0 {
		iv = peerInterval
	}
	var out []string
	var evs []Event
	record := func(now time.Time) {
		for _, e := range evs {
			k := int(now.Sub(t0) / iv)
			out = append(out, fmt.Sprintf("%d:%v/%d", k, e.Kind, e.LAN))
		}
		evs = evs[:0]
	}
	addrs := peerAddrs[:cfg.LANs]
	for ms := 0; ms < steps*int(iv/time.Millisecond); ms++ {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		evs = tab.Expire(now, evs)
		record(now)
		if ms%int(iv/time.Millisecond) == 1 {
			k := ms / int(iv/time.Millisecond)
			for lan := 0; lan < cfg.LANs; lan++ {
				if heard(lan, k) {
					evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: addrs, Interval: peerInterval, At: now}, evs)
				}
			}
			record(now)
		}
	}
	return tab, out
}

func cut(lan, from, to int) func(l, k int) bool {
	return func(l, k int) bool { return l != lan || k < from || k >= to }
}

func TestTransitions(t *testing.T) {
	iv := 100 * time.Millisecond
	two := Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3}
	tests := []struct {
		name   string
		cfg    Config
		peerIv time.Duration
		steps  int
		heard  func(lan, k int) bool
		want   []string
	}{
		{"healthy", two, iv, 20, func(int, int) bool { return true },
			[]string{"0:Discovered/0"}},
		{"two misses are not enough", two, iv, 20, cut(0, 5, 7),
			[]string{"0:Discovered/0"}},
		{"third miss invalidates, third good revalidates", two, iv, 20, cut(0, 5, 10),
			// last evidence at k=4 (+1 ms): deadline 4+3 intervals (+grace).
			[]string{"0:Discovered/0", "7:Failover/0", "12:Switchback/0"}},
		{"-f 1 -s 1", Config{LANs: 2, Interval: iv, Misses: 1, Successes: 1}, iv, 20, cut(0, 5, 10),
			[]string{"0:Discovered/0", "5:Failover/0", "10:Switchback/0"}},
		{"single good packet does not revalidate with -s 3", two, iv, 30,
			func(l, k int) bool { return l != 0 || k < 5 || k == 12 || k == 20 },
			[]string{"0:Discovered/0", "7:Failover/0"}},
		{"alternating good and bad never revalidates", two, iv, 40,
			func(l, k int) bool { return l != 0 || k < 5 || (k >= 10 && k%2 == 0) },
			[]string{"0:Discovered/0", "7:Failover/0"}},
		{"two goods then a miss starts over", two, iv, 30,
			func(l, k int) bool { return l != 0 || k < 5 || k == 10 || k == 11 || k >= 13 },
			[]string{"0:Discovered/0", "7:Failover/0", "15:Switchback/0"}},
		{"every LAN down: unreachable, then back", two, iv, 30,
			func(l, k int) bool { return k < 5 || k >= 15 },
			// A's route via B is withdrawn as B fails too; B's via A appears
			// as A returns, and goes as B does.
			[]string{"0:Discovered/0", "7:Failover/0", "7:Failover/1", "7:Unreachable/-1", "7:Rerouted/0",
				"17:Switchback/0", "17:Reachable/-1", "17:Rerouted/1", "17:Switchback/1"}},
		{"A down, then B: A's route goes with B, and comes back with it", two, iv, 40,
			func(l, k int) bool { return (l == 0 && k < 5) || (l == 1 && (k < 10 || k >= 20)) },
			[]string{"0:Discovered/0", "7:Failover/0", "12:Failover/1", "12:Unreachable/-1", "12:Rerouted/0",
				"22:Switchback/1", "22:Reachable/-1", "22:Rerouted/0"}},
		{"three LANs, B then A fail", Config{LANs: 3, Interval: iv, Misses: 3, Successes: 3}, iv, 30,
			func(l, k int) bool { return l == 2 || (l == 1 && k < 5) || (l == 0 && k < 10) },
			// B's route moves from via A to via C when A fails.
			[]string{"0:Discovered/0", "7:Failover/1", "12:Failover/0", "12:Rerouted/1"}},
		{"responder only judges at the announced interval", Config{LANs: 2, Misses: 3, Successes: 3}, 50 * time.Millisecond, 40, cut(0, 10, 20),
			[]string{"0:Discovered/0", "12:Failover/0", "22:Switchback/0"}},
		{"LAN broken from the start fails over after one detection time", two, iv, 10, cut(0, 0, 100),
			[]string{"0:Discovered/1", "3:Failover/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := run(t, tt.cfg, tt.peerIv, tt.steps, tt.heard)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events (-want +got):\n- %s\n+ %s", strings.Join(tt.want, " "), strings.Join(got, " "))
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	iv := 100 * time.Millisecond
	r := func(dst, via string, lan int) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), LAN: lan}
	}
	tests := []struct {
		name  string
		lans  int
		heard func(lan, k int) bool
		want  []Route
	}{
		{"healthy", 2, func(int, int) bool { return true }, nil},
		{"A down: A via B", 2, cut(0, 5, 100), []Route{r("192.0.2.2/32", "198.51.100.2", 1)}},
		{"B down: B via A", 2, cut(1, 5, 100), []Route{r("198.51.100.2/32", "192.0.2.2", 0)}},
		{"both down: nothing", 2, func(l, k int) bool { return k < 5 }, nil},
		{"three LANs, A down: via B first", 3, cut(0, 5, 100), []Route{r("192.0.2.2/32", "198.51.100.2", 1)}},
		{"three LANs, A and B down: both via C", 3, func(l, k int) bool { return l == 2 || k < 5 },
			[]Route{r("192.0.2.2/32", "203.0.113.2", 2), r("198.51.100.2/32", "203.0.113.2", 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := run(t, Config{LANs: tt.lans, Interval: iv, Misses: 3, Successes: 3}, iv, 20, tt.heard)
			got := tab.Routes(nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Routes (-want +got):\n- %v\n+ %v", tt.want, got)
			}
		})
	}
}

func TestEventRoutes(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	var evs []Event
	obs := func(lan int, at time.Time) {
		evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, RTT: time.Millisecond, At: at}, evs)
	}
	obs(0, t0)
	obs(1, t0)
	for k := 1; k <= 5; k++ {
		obs(1, t0.Add(time.Duration(k)*iv))
	}
	evs = tab.Expire(t0.Add(600*time.Millisecond), evs[:0]) // A expired at 305 ms, B not until 805 ms
	want := Route{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: peerAddrs[1], LAN: 1}
	if len(evs) != 1 || evs[0].Kind != Failover || evs[0].Route != want || evs[0].Addr != peerAddrs[0] {
		t.Fatalf("failover events = %+v, want one with route %v", evs, want)
	}
	if at := t0.Add(3*iv + grace(iv)); !evs[0].At.Equal(at) {
		t.Errorf("failover at %v, want the deadline %v", evs[0].At, at)
	}
	evs = evs[:0]
	for k := 0; k < 3; k++ {
		obs(0, t0.Add(2*time.Second+time.Duration(k)*iv))
	}
	if len(evs) != 1 || evs[0].Kind != Switchback || evs[0].Route != want {
		t.Fatalf("switchback events = %+v, want one with the removed route %v", evs, want)
	}
	var n int
	tab.Paths(t0.Add(3*time.Second), func(id PeerID, lan int, p Path, route Route) {
		n++
		if p.State != Valid || p.RTT != time.Millisecond || !route.IsZero() {
			t.Errorf("path %v/%d = %+v route %v, want valid, RTT 1ms, no route", id, lan, p, route)
		}
		if lan == 0 && (p.Failovers != 1 || p.Switchbacks != 1) {
			t.Errorf("path A counts %d failovers %d switchbacks, want 1 and 1", p.Failovers, p.Switchbacks)
		}
	})
	if n != 2 {
		t.Errorf("Paths visited %d paths, want 2", n)
	}
}

func TestObserveIgnoresUnknownLAN(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: time.Second, Misses: 3, Successes: 3})
	if evs := tab.Observe(Observation{Peer: 1, LAN: 2, At: t0}, nil); len(evs) != 0 {
		t.Errorf("events for LAN 2 of 2: %v", evs)
	}
}

func TestPeerIDString(t *testing.T) {
	if s := peerID.String(); s != "192.0.2.2" {
		t.Errorf("String = %q", s)
	}
}

func BenchmarkObserve(b *testing.B) {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})
	evs := make([]Event, 0, 8)
	o := Observation{Peer: peerID, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond, At: t0}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o.At = o.At.Add(time.Millisecond)
		evs = tab.Observe(o, evs[:0])
	}
}

func TestLANDown(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	var evs []Event
	for i, id := range []PeerID{2, 3} {
		addrs := []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(2 + i)}), netip.AddrFrom4([4]byte{198, 51, 100, byte(2 + i)})}
		for lan := range 2 {
			evs = tab.Observe(Observation{Peer: id, LAN: lan, Addrs: addrs, Interval: iv, At: t0}, evs)
		}
	}
	evs = tab.LANDown(0, t0.Add(time.Millisecond), evs[:0])
	if len(evs) != 2 || evs[0].Kind != Failover || evs[1].Kind != Failover || evs[0].LAN != 0 {
		t.Fatalf("LANDown events = %+v, want a failover on LAN 0 for each peer", evs)
	}
	if rs := tab.Routes(nil); len(rs) != 2 {
		t.Errorf("routes after carrier loss: %v, want one per peer", rs)
	}
	// The paths' old deadlines are stale: expiring them changes nothing.
	for _, e := range tab.Expire(t0.Add(time.Second), evs[:0]) {
		if e.LAN == 0 && e.Kind == Failover {
			t.Errorf("expiry after LANDown failed LAN 0 over again: %+v", e)
		}
	}
	if evs = tab.LANDown(0, t0.Add(time.Second), evs[:0]); len(evs) != 0 {
		t.Errorf("second LANDown = %+v, want nothing", evs)
	}
	// A LAN the table does not have is ignored, never a panic.
	for _, lan := range []int{-1, 2} {
		if evs = tab.LANDown(lan, t0.Add(time.Second), evs[:0]); len(evs) != 0 {
			t.Errorf("LANDown(%d) of 2 LANs = %+v, want nothing", lan, evs)
		}
	}
}

// TestCounts: peers, paths and invalid paths, as the status line shows them.
func TestCounts(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 3, Interval: iv, Misses: 3, Successes: 3})
	if p, n, bad := tab.Counts(); p != 0 || n != 0 || bad != 0 {
		t.Errorf("empty table: Counts = %d, %d, %d; want 0, 0, 0", p, n, bad)
	}
	a := netip.MustParseAddr
	// Peer 2 on all three LANs, peer 3 on two (no address on LAN C).
	tab.Observe(Observation{Peer: 2, LAN: 0, Addrs: peerAddrs, Interval: iv, At: t0}, nil)
	tab.Observe(Observation{Peer: 3, LAN: 0, Addrs: []netip.Addr{a("192.0.2.3"), a("198.51.100.3")}, Interval: iv, At: t0}, nil)
	tab.LANDown(1, t0, nil)
	if p, n, bad := tab.Counts(); p != 2 || n != 5 || bad != 2 {
		t.Errorf("LAN B down: Counts = %d peers, %d paths, %d invalid; want 2, 5, 2", p, n, bad)
	}
	tab.LANDown(0, t0, nil)
	if p, n, bad := tab.Counts(); p != 2 || n != 5 || bad != 4 {
		t.Errorf("LANs A and B down: Counts = %d peers, %d paths, %d invalid; want 2, 5, 4", p, n, bad)
	}
}

// TestRouteFamily: a broken path is routed only over a LAN where the peer
// has an address of the same family; an IPv4 address is never sent via an
// IPv6 next hop.
func TestRouteFamily(t *testing.T) {
	iv := 100 * time.Millisecond
	a := netip.MustParseAddr
	tests := []struct {
		name  string
		addrs []netip.Addr
		want  []Route
	}{
		{"B has IPv6 only: nowhere to go", []netip.Addr{a("192.0.2.2"), a("2001:db8:b::2")}, nil},
		{"B IPv6, C IPv4: via C", []netip.Addr{a("192.0.2.2"), a("2001:db8:b::2"), a("203.0.113.2")},
			[]Route{{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: a("203.0.113.2"), LAN: 2}}},
		{"IPv6 on A, IPv4 on B: nowhere to go", []netip.Addr{a("2001:db8:a::2"), a("198.51.100.2")}, nil},
		{"IPv6 via IPv6", []netip.Addr{a("2001:db8:a::2"), a("2001:db8:b::2")},
			[]Route{{Dst: netip.MustParsePrefix("2001:db8:a::2/128"), Via: a("2001:db8:b::2"), LAN: 1}}},
	}
	for _, tt := range tests {
		tab := New(Config{LANs: len(tt.addrs), Interval: iv, Misses: 3, Successes: 3})
		for lan := range tt.addrs {
			tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: tt.addrs, Interval: iv, At: t0}, nil)
		}
		evs := tab.LANDown(0, t0, nil)
		if got := tab.Routes(nil); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Routes (-want +got):\n- %v\n+ %v", tt.name, tt.want, got)
		}
		var want Route
		if len(tt.want) > 0 {
			want = tt.want[0]
		}
		if len(evs) == 0 || evs[0].Kind != Failover || evs[0].Route != want {
			t.Errorf("%s: events %+v, want a failover with route %v", tt.name, evs, want)
		}
	}
}

// TestDeaf: a peer is listed as one this node cannot hear on a LAN while
// its path there is invalid, and while it has carried no evidence yet.
func TestDeaf(t *testing.T) {
	tab, evs := run(t, Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3}, 100*time.Millisecond, 10, cut(0, 5, 100))
	if got := tab.Deaf(0, t0, nil); len(got) != 1 || got[0] != uint32(peerID) {
		t.Errorf("Deaf(A) = %v after %v, want the peer", got, evs)
	}
	if got := tab.Deaf(1, t0, nil); len(got) != 0 {
		t.Errorf("Deaf(B) = %v, want none", got)
	}
	fresh := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})
	fresh.Observe(Observation{Peer: peerID, LAN: 1, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond, At: t0}, nil)
	if got := fresh.Deaf(0, t0, nil); len(got) != 1 {
		t.Errorf("Deaf(A) = %v with the peer heard on LAN B only, want it listed", got)
	}
	if got := fresh.Deaf(1, t0, nil); len(got) != 0 {
		t.Errorf("Deaf(B) = %v with the peer heard there, want none", got)
	}
}

// TestDeafIsNoEvidence: an INQ whose sender lists us as deaf makes the
// peer and its addresses known, but keeps no path valid and makes none
// valid again: a path broken towards us fails over here too, and stays
// failed over while the sender still cannot hear us.
func TestDeafIsNoEvidence(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	var got []string
	obs := func(k, lan int, deaf bool) {
		at := t0.Add(time.Duration(k) * iv)
		for _, e := range tab.Expire(at, nil) {
			got = append(got, fmt.Sprintf("%d:%v/%d", k, e.Kind, e.LAN))
		}
		for _, e := range tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, Deaf: deaf, At: at}, nil) {
			got = append(got, fmt.Sprintf("%d:%v/%d", k, e.Kind, e.LAN))
		}
	}
	for k := range 20 {
		obs(k, 0, k > 0) // LAN A: deaf from interval 1 on
		obs(k, 1, false)
	}
	if want := []string{"0:Discovered/0", "4:Failover/0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events (-want +got):\n- %v\n+ %v", want, got)
	}

	fresh := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	evs := fresh.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, Deaf: true, At: t0}, nil)
	var heard bool
	fresh.Paths(t0, func(_ PeerID, lan int, p Path, _ Route) { heard = heard || p.Heard })
	if len(evs) != 1 || evs[0].Kind != Discovered || heard {
		t.Errorf("a deaf INQ from a new peer: %+v, a path heard %v; want it discovered, no path heard", evs, heard)
	}
}

// TestTwoSourcesCountOnce checks that ACKs and the peer's INQs, half an
// interval apart, do not meet -s in half the time.
func TestTwoSourcesCountOnce(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	obs := func(lan int, at time.Time) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: at}, nil)
	}
	obs(0, t0)
	obs(1, t0)
	for k := 1; k <= 10; k++ {
		obs(1, t0.Add(time.Duration(k)*iv))
	}
	if evs := tab.Expire(t0.Add(time.Second), nil); len(evs) != 1 {
		t.Fatalf("setup: %+v, want LAN A failed over", evs)
	}
	heal := t0.Add(2 * time.Second)
	for half := 0; half <= 4; half++ {
		at := heal.Add(time.Duration(half) * iv / 2)
		evs := obs(0, at)
		switched := len(evs) > 0 && evs[0].Kind == Switchback
		if want := half == 4; switched != want {
			t.Fatalf("evidence %d half-intervals after the heal: switchback %v, want %v", half, switched, want)
		}
	}
}

// TestCarrierFlapsDoNotGrowTheQueue: a path failed over by LANDown and
// switched back must leave one live queue entry, not one per flap.
func TestCarrierFlapsDoNotGrowTheQueue(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 1})
	now := t0
	obs := func(lan int) []Event {
		return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: now}, nil)
	}
	obs(0)
	obs(1)
	base := len(tab.queue)
	for i := range 1000 {
		now = now.Add(iv)
		if evs := tab.LANDown(0, now, nil); len(evs) != 1 || evs[0].Kind != Failover || evs[0].LAN != 0 {
			t.Fatalf("flap %d: LANDown events %+v, want one failover of LAN A", i, evs)
		}
		if evs := obs(0); len(evs) != 1 || evs[0].Kind != Switchback || evs[0].LAN != 0 { // -s 1: valid again at once
			t.Fatalf("flap %d: evidence on LAN A: events %+v, want its switchback", i, evs)
		}
		if evs := obs(1); len(evs) != 0 {
			t.Fatalf("flap %d: evidence on LAN B: events %+v, want none", i, evs)
		}
		if evs := tab.Expire(now, nil); len(evs) != 0 {
			t.Fatalf("flap %d: Expire events %+v, want none", i, evs)
		}
	}
	// Let every left-over entry come up once.
	for range 10 {
		now = now.Add(iv)
		obs(0)
		obs(1)
		tab.Expire(now, nil)
	}
	if n := len(tab.queue); n > base+2 {
		t.Errorf("queue holds %d entries after 1000 carrier flaps, want about %d", n, base)
	}
}

// TestDetectionTime: a path fails over -f intervals after its last
// evidence, plus a grace of a quarter interval, at most 5 ms; the interval
// is the faster of ours and the peer's, where a responder peer (interval
// 0) leaves ours.
func TestDetectionTime(t *testing.T) {
	tests := []struct {
		name       string
		ours, peer time.Duration
		want       time.Duration // from the last evidence
	}{
		{"both 100 ms", 100 * time.Millisecond, 100 * time.Millisecond, 305 * time.Millisecond},
		{"a responder peer: ours", 100 * time.Millisecond, 0, 305 * time.Millisecond},
		{"a faster peer sets the pace", 100 * time.Millisecond, 50 * time.Millisecond, 155 * time.Millisecond},
		{"we only respond: the peer's", 0, 200 * time.Millisecond, 605 * time.Millisecond},
		{"a peer below the minimum is held to it", 0, time.Millisecond, 32500 * time.Microsecond},
		{"10 ms: a grace of 2.5 ms", 10 * time.Millisecond, 10 * time.Millisecond, 32500 * time.Microsecond},
	}
	for _, tt := range tests {
		tab := New(Config{LANs: 2, Interval: tt.ours, Misses: 3, Successes: 3})
		for lan := range 2 {
			tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: tt.peer, At: t0}, nil)
		}
		if at, ok := tab.NextDeadline(); !ok || !at.Equal(t0.Add(tt.want)) {
			t.Errorf("%s: next deadline %v after the evidence, want %v", tt.name, at.Sub(t0), tt.want)
		}
		if evs := tab.Expire(t0.Add(tt.want-time.Microsecond), nil); len(evs) != 0 {
			t.Errorf("%s: events %+v before the deadline", tt.name, evs)
		}
		failovers := 0
		for _, e := range tab.Expire(t0.Add(tt.want), nil) {
			if e.Kind == Failover && e.At.Equal(t0.Add(tt.want)) {
				failovers++
			}
		}
		if failovers != 2 {
			t.Errorf("%s: %d failovers at the deadline, want both paths", tt.name, failovers)
		}
	}
}

// TestRTTKeptAcrossINQs: an INQ (RTT 0) does not wipe the round trip the
// last ACK measured.
func TestRTTKeptAcrossINQs(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, RTT: 3 * time.Millisecond, At: t0}, nil)
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, At: t0.Add(iv / 2)}, nil)
	tab.Paths(t0.Add(iv), func(_ PeerID, lan int, p Path, _ Route) {
		if lan == 0 && p.RTT != 3*time.Millisecond {
			t.Errorf("RTT %v after an INQ, want the ACK's 3ms", p.RTT)
		}
	})
}

// TestDeafWhileCounting: a path invalid for missed packets whose peer is
// heard again, its good intervals counting, does not list the peer (a
// responder would otherwise start its count only after ours); once the
// evidence stops for more than an interval and a half it lists it again.
// A path invalid for loss lists it however well its packets come.
func TestDeafWhileCounting(t *testing.T) {
	iv := 100 * time.Millisecond
	// Cut from interval 5 to 10, heard again from 10: 20 intervals are
	// not enough at -s 30.
	tab, evs := run(t, Config{LANs: 2, Interval: iv, Misses: 3, Successes: 30}, iv, 20, cut(0, 5, 10))
	last := t0.Add(19*iv + time.Millisecond)
	p := tab.peers[peerID]
	if pa := p.paths[0]; pa.State != Invalid || pa.Goods == 0 || !pa.LastEvidence.Equal(last) {
		t.Fatalf("path A %+v after %v, want invalid, counting, last evidence at %v", pa.Path, evs, last.Sub(t0))
	}
	if got := tab.Deaf(0, last.Add(iv+iv/2), nil); len(got) != 0 {
		t.Errorf("Deaf(A) = %v while the path counts good intervals, want none", got)
	}
	if got := tab.Deaf(0, last.Add(iv+iv/2+time.Nanosecond), nil); len(got) != 1 {
		t.Errorf("Deaf(A) = %v an interval and a half after the last evidence, want the peer", got)
	}
	p.paths[0].Reason = ReasonLoss
	if got := tab.Deaf(0, last, nil); len(got) != 1 {
		t.Errorf("Deaf(A) = %v held for loss, want the peer", got)
	}
}

// TestDeafAfterCarrier: a path that went invalid with its LAN's carrier
// and hears its peer again, its good intervals running, does not list the
// peer as deaf, as one invalid for missed packets does not: listed, the
// far end (which kept its carrier, and judges by missed packets) could
// start counting only once this end had switched back, an interval or
// two after it (550 ms against 250 ms at 100 ms × 3 in the bench).
func TestDeafAfterCarrier(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	heard := func(at time.Duration) {
		for lan := range 2 {
			tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: t0.Add(at)}, nil)
		}
	}
	heard(0)
	tab.LANDown(0, t0.Add(iv/2), nil)
	if got := tab.Deaf(0, t0.Add(iv), nil); len(got) != 1 {
		t.Fatalf("Deaf(A) = %v with the carrier gone, want the peer", got)
	}
	heard(5 * iv) // the carrier is back and the peer heard
	if pa := tab.peers[peerID].paths[0]; pa.State != Invalid || pa.Reason != ReasonCarrier || pa.Goods == 0 {
		t.Fatalf("path A %+v, want invalid for the carrier, counting", pa.Path)
	}
	if got := tab.Deaf(0, t0.Add(5*iv+iv/2), nil); len(got) != 0 {
		t.Errorf("Deaf(A) = %v while the path counts good intervals, want none", got)
	}
}

// TestDeafUnknownLAN: asking for a LAN the table does not have is no
// panic and no peers.
func TestDeafUnknownLAN(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond, At: t0}, nil)
	tab.LANDown(0, t0, nil)
	tab.LANDown(1, t0, nil)
	if got := tab.Deaf(2, t0, nil); len(got) != 0 {
		t.Errorf("Deaf(2) of 2 LANs = %v, want none", got)
	}
}

// TestHearing: a peer's packets on a LAN, evidence or not (Deaf), make
// it heard there for the path's detection time; a LAN without its path
// is not known; no packet at all, not heard.
func TestHearing(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 3, Interval: iv, Misses: 3, Successes: 3})
	two := []netip.Addr{peerAddrs[0], peerAddrs[1], {}}
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: two, Interval: iv, At: t0}, nil)
	tab.Observe(Observation{Peer: peerID, LAN: 1, Addrs: two, Interval: iv, Deaf: true, At: t0.Add(50 * time.Millisecond)}, nil)
	for _, c := range []struct {
		at               time.Duration
		known, wantHeard uint8
	}{
		{10 * time.Millisecond, 0b011, 0b011},
		{300 * time.Millisecond, 0b011, 0b011}, // within -f x -t (and its grace) of both
		{305 * time.Millisecond, 0b011, 0b011}, // A's packet exactly that old: still within
		{340 * time.Millisecond, 0b011, 0b010}, // A's packet is older than that now
		{400 * time.Millisecond, 0b011, 0b000},
	} {
		hs := tab.Hearing(t0.Add(c.at), nil)
		if len(hs) != 1 || hs[0].Peer != peerID || hs[0].Known != c.known || hs[0].Heard != c.wantHeard {
			t.Errorf("at %v: %+v, want known %03b heard %03b", c.at, hs, c.known, c.wantHeard)
		}
	}
	if p, _ := tab.Path(peerAddrs[1]); p.Heard {
		t.Error("a packet that is no evidence made the path heard")
	}
}
