package proto

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// node 2's addresses on the test exchange's two LANs.
var two2 = []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("198.51.100.2/24")}

// inq2 is an INQ from node 2 (boot 5) of the given version, with a view
// of the given entries when it is version 2.
func inq2(v uint8, seq uint64, view ...ViewEntry) Packet {
	p := Packet{Version: v, Type: INQ, NodeID: 2, BootID: 5, Seq: seq, Interval: 100 * time.Millisecond, Addrs: two2, V2: v == Version2}
	if v == Version2 {
		p.ViewTotal, p.View = len(view), view
	}
	return p
}

// TestViewEvidence: an INQ of a node that reads version 2 is evidence on
// a LAN only when its view says it hears us there, on that LAN's own
// INQs; a version-1 sender's INQ is evidence unless it lists us.
func TestViewEvidence(t *testing.T) {
	x := testExchange(t) // we are node 1 (0x01? see newTestExchange)
	me := x.cfg.Node
	r, _ := x.NewReceiver()
	now := time.Unix(1e9, 0)
	feed := inqFeed{t: t, r: r}
	recv := func(p Packet, lan int) Heard {
		t.Helper()
		now = now.Add(10 * time.Millisecond)
		return feed.receive(p, lan, now)
	}
	steps := []struct {
		name string
		p    Packet
		lan  int
		deaf bool
	}{
		{"version 1, not listing us", inq2(Version, 0), 0, false},
		{"version 1, listing us", func() Packet { p := inq2(Version, 0); p.Deaf = []uint32{me}; return p }(), 0, true},
		{"version 1 with FlagV2, no view yet", func() Packet { p := inq2(Version, 0); p.V2 = true; return p }(), 0, true},
		{"version 2, we are unknown (restarted)", inq2(Version2, 0), 0, true},
		{"version 2, heard on A and B, on A", inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 3}), 0, false},
		{"then version 1 with FlagV2, on A", func() Packet { p := inq2(Version, 0); p.V2 = true; return p }(), 0, false},
		{"but on B, where no INQ said so yet", func() Packet { p := inq2(Version, 0); p.V2 = true; return p }(), 1, true},
		{"version 2, heard on A only, on B", inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}), 1, true},
		{"on A, a view saying B is not heard leaves A heard", inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}), 0, false},
		{"version 2 on B, heard on B", inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 3}), 1, false},
		{"a forgery on A saying B is not heard", inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}), 0, false},
		{"does not take B's evidence away", func() Packet { p := inq2(Version, 0); p.V2 = true; return p }(), 1, false},
		{"a new boot is not heard until its view says so", func() Packet { p := inq2(Version, 0); p.V2, p.BootID = true, 6; return p }(), 0, true},
		{"version 2 deaf-listing us, view says heard", func() Packet {
			p := inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 3})
			p.Deaf = []uint32{me}
			return p
		}(), 0, true},
	}
	for _, s := range steps {
		if h := recv(s.p, s.lan); h.Deaf != s.deaf {
			t.Errorf("%s: Deaf = %v, want %v", s.name, h.Deaf, s.deaf)
		}
	}
}

// TestViewWindowCovers: a window speaks of the ids from its first entry
// to its last, open-ended at the ends of the view.
func TestViewWindowCovers(t *testing.T) {
	e := func(ids ...uint32) []ViewEntry {
		var out []ViewEntry
		for _, id := range ids {
			out = append(out, ViewEntry{Node: id, Known: 1})
		}
		return out
	}
	tests := []struct {
		v    View
		id   uint32
		want bool
	}{
		{View{Total: 0}, 7, true},
		{View{Total: 5, Offset: 2}, 7, false},
		{View{Total: 3, Entries: e(10, 20, 30)}, 1, true},
		{View{Total: 3, Entries: e(10, 20, 30)}, 99, true},
		{View{Total: 6, Entries: e(10, 20, 30)}, 31, false},
		{View{Total: 6, Entries: e(10, 20, 30)}, 25, true},
		{View{Total: 6, Offset: 3, Entries: e(40, 50, 60)}, 35, false},
		{View{Total: 6, Offset: 3, Entries: e(40, 50, 60)}, 1 << 31, true},
		{View{Total: 9, Offset: 3, Entries: e(40, 50, 60)}, 61, false},
	}
	for _, tt := range tests {
		if got := tt.v.Covers(tt.id); got != tt.want {
			t.Errorf("%+v covers %d = %v, want %v", tt.v, tt.id, got, tt.want)
		}
	}
}

// view is a whole view of n peers, heard on LAN A, not on B.
func view(n int) []ViewEntry {
	v := make([]ViewEntry, n)
	for i := range v {
		v[i] = ViewEntry{Node: 0xc0000300 + uint32(i), Known: 3, Heard: 1}
	}
	return v
}

// TestViewRotates: a view larger than an INQ holds goes out in windows,
// the same on every LAN, each INQ within INQBudget, the whole view in
// ceil(n / window) rounds; a version-1 INQ goes beside them in the first
// v1Every rounds and every v1Every rounds after, and every round with
// Round.V1. It logs the bytes per
// INQ (the wire overhead of the view) at 10, 100 and 1,000 peers.
func TestViewRotates(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		for _, n := range []int{0, 10, 100, 1000} {
			t.Run(fmt.Sprintf("%d peers keyed %v", n, keyed), func(t *testing.T) {
				x := testExchange(t)
				if keyed {
					x.cfg.Keys = [][]byte{testKey}
				}
				q, _ := x.NewRequestor()
				whole := view(n)
				seen := map[uint32]bool{}
				rounds, size := 0, 0
				for len(seen) < n || rounds == 0 {
					rounds++
					if rounds > 2*v1Every {
						t.Fatalf("the whole view not sent in %d rounds: %d of %d", rounds-1, len(seen), n)
					}
					ms, err := q.INQs(time.Now(), Round{View: whole}, nil)
					if err != nil {
						t.Fatal(err)
					}
					var first []ViewEntry
					for i, m := range ms {
						var p Packet
						if err := p.Decode(m.Buf); err != nil {
							t.Fatal(err)
						}
						if len(m.Buf) > INQBudget {
							t.Errorf("INQ of %d bytes, budget %d", len(m.Buf), INQBudget)
						}
						if p.Version == Version {
							continue
						}
						size = max(size, len(m.Buf))
						if p.ViewTotal != n {
							t.Errorf("view total %d, want %d", p.ViewTotal, n)
						}
						if i == 0 {
							first = append([]ViewEntry(nil), p.View...)
						} else if fmt.Sprint(first) != fmt.Sprint(p.View) {
							t.Errorf("LAN %d carries another window than LAN A", i)
						}
						for j, e := range p.View {
							if e != whole[p.ViewOffset+j] {
								t.Fatalf("entry %d of the window at %d is %+v, want %+v", j, p.ViewOffset, e, whole[p.ViewOffset+j])
							}
							seen[e.Node] = true
						}
					}
				}
				t.Logf("%d peers: %d bytes per INQ, the whole view in %d INQs", n, size, rounds)
			})
		}
	}
	x := testExchange(t)
	q, _ := x.NewRequestor()
	count := func(r Round) (v1, v2 int) {
		ms, _ := q.INQs(time.Now(), r, nil)
		for _, m := range ms {
			if m.Buf[4] == Version {
				v1++
			} else {
				v2++
			}
		}
		return v1, v2
	}
	for i := range 3 * v1Every {
		v1, v2 := count(Round{View: view(3)})
		want := 0
		if i < v1Every || i%v1Every == v1Every-1 {
			want = 2
		}
		if v1 != want || v2 != 2 {
			t.Errorf("round %d: %d version-1 and %d version-2 INQs, want %d and 2", i, v1, v2, want)
		}
	}
	if v1, v2 := count(Round{V1: true}); v1 != 2 || v2 != 2 {
		t.Errorf("with version-1 peers: %d version-1 and %d version-2 INQs, want 2 and 2", v1, v2)
	}
}

// TestViewKept: the Receiver turns a sender's window to our LANs once and
// hands the same View on while the window, the sender's address entries
// and our LANs stay as they were; any change among them gives a new View,
// turned anew, and leaves the one handed on before as it was (the loop
// keeps it). The peer's addresses are placed anew as well.
func TestViewKept(t *testing.T) {
	x := testExchange(t)
	me := x.cfg.Node
	r, _ := x.NewReceiver()
	now := time.Unix(1e9, 0)
	feed := inqFeed{t: t, r: r}
	recv := func(p Packet, lan int) Heard {
		t.Helper()
		now = now.Add(time.Second) // past half the sender's interval: every window is handed on
		h := feed.receive(p, lan, now)
		if h.View == nil {
			t.Fatalf("INQ %+v: no view handed on", p)
		}
		return h
	}
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
	other := ViewEntry{Node: 0xc0000203, Known: 3, Heard: 3, Lossy: 2}
	entries := func(h Heard) string { return fmt.Sprint(h.View.Entries) }

	first := recv(inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}, other), 0)
	want := fmt.Sprint([]ViewEntry{{Node: me, Known: 3, Heard: 1}, other})
	if got := entries(first); got != want {
		t.Fatalf("first window turned to %s, want %s", got, want)
	}
	if again := recv(inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}, other), 1); again.View != first.View {
		t.Errorf("the same window on LAN B: a new View, want the one handed on")
	}
	if first.Deaf || !recv(inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 1}, other), 1).Deaf {
		t.Errorf("the view says it hears us on A only: want evidence on A, none on B")
	}

	changed := recv(inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 3}, other), 1)
	if changed.View == first.View || changed.Deaf {
		t.Errorf("a changed window: same View %v, deaf %v; want a new View, and evidence on B", changed.View == first.View, changed.Deaf)
	}
	if got := entries(first); got != want {
		t.Errorf("the View handed on first became %s, want it kept as %s", got, want)
	}

	// The same window from a sender that lists its LAN-B address first:
	// its masks' bits name LANs the other way round.
	swapped := inq2(Version2, 0, ViewEntry{Node: me, Known: 3, Heard: 3}, other)
	swapped.Addrs = []netip.Prefix{two2[1], two2[0]}
	h := recv(swapped, 0)
	if h.View == changed.View {
		t.Errorf("the address entries swapped: the View turned for the old ones")
	}
	if got, want := entries(h), fmt.Sprint([]ViewEntry{{Node: me, Known: 3, Heard: 3}, {Node: other.Node, Known: 3, Heard: 3, Lossy: 1}}); got != want {
		t.Errorf("address entries swapped: turned to %s, want %s", got, want)
	}
	if h.Addrs[0] != a || h.Addrs[1] != b {
		t.Errorf("address entries swapped: placed %v", h.Addrs[:2])
	}

	// LAN B readdressed: the sender's LAN-B entry falls on none of ours.
	lans := x.LANs()
	lans = []LAN{lans[0], lans[1]}
	lans[1].Addr = netip.MustParsePrefix("203.0.113.1/24")
	if err := x.SetLANs(lans); err != nil {
		t.Fatal(err)
	}
	h = recv(swapped, 0)
	if got, want := entries(h), fmt.Sprint([]ViewEntry{{Node: me, Known: 1, Heard: 1}, {Node: other.Node, Known: 1, Heard: 1, Lossy: 1}}); got != want {
		t.Errorf("LAN B readdressed: turned to %s, want %s", got, want)
	}
	if h.Addrs[0] != a || h.Addrs[1].IsValid() {
		t.Errorf("LAN B readdressed: placed %v, want %v and none", h.Addrs[:2], a)
	}
}

// TestViewHandedOn: a window of a peer's view reaches the loop with its
// masks turned from the packet's address entries to our LANs (an entry on
// a LAN we do not have drops out), once a round: the same window on
// another LAN within half the sender's interval is not handed on again;
// half an interval later, or another window, is.
func TestViewHandedOn(t *testing.T) {
	x := testExchange(t)
	r, _ := x.NewReceiver()
	t0 := time.Unix(1e9, 0)
	feed := inqFeed{t: t, r: r}
	recv := func(p Packet, lan int, at time.Duration) *View {
		t.Helper()
		return feed.receive(p, lan, t0.Add(at)).View
	}
	// Node 2's second address entry is on a LAN we do not have.
	three := []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("203.0.113.2/24"), netip.MustParsePrefix("198.51.100.2/24")}
	p := inq2(Version2, 0, ViewEntry{Node: 9, Known: 0b111, Heard: 0b111, Lossy: 0b001}, ViewEntry{Node: 10, Known: 0b010, Heard: 0b010})
	p.Addrs = three
	v := recv(p, 0, 0)
	want := []ViewEntry{{Node: 9, Known: 0b11, Heard: 0b11, Lossy: 0b01}, {Node: 10}}
	if v == nil || fmt.Sprint(v.Entries) != fmt.Sprint(want) || v.Total != 2 || v.Offset != 0 {
		t.Fatalf("view %+v, want %+v of 2 at 0", v, want)
	}

	window := func(offset int) Packet {
		p := inq2(Version2, 0)
		p.ViewTotal, p.ViewOffset = 6, offset
		p.View = []ViewEntry{{Node: uint32(20 + offset), Known: 1, Heard: 1}}
		return p
	}
	ms := time.Millisecond
	for _, s := range []struct {
		name   string
		offset int
		lan    int
		at     time.Duration
		handed bool
	}{
		{"the first", 0, 0, 100 * ms, true},
		{"the same on LAN B", 0, 1, 101 * ms, false},
		{"half an interval later", 0, 0, 150 * ms, true},
		{"the same on LAN B, 30 ms on", 0, 1, 180 * ms, false},
		{"60 ms on", 0, 0, 210 * ms, true},
		{"another window at once", 3, 0, 211 * ms, true},
	} {
		if got := recv(window(s.offset), s.lan, s.at) != nil; got != s.handed {
			t.Errorf("%s (window at %d, LAN %d, %v): handed on %v, want %v", s.name, s.offset, s.lan, s.at, got, s.handed)
		}
	}
}

// inqFeed hands a Receiver node 2's packets, numbered in order, each from
// node 2's address on the LAN it arrives on.
type inqFeed struct {
	t   *testing.T
	r   *Receiver
	seq uint64
}

// receive hands p over on lan at now; it must be heard.
func (f *inqFeed) receive(p Packet, lan int, now time.Time) Heard {
	f.t.Helper()
	f.seq++
	p.Seq = f.seq
	src := []string{"192.0.2.2", "198.51.100.2"}[lan]
	m := arrived(encoded(f.t, p), src, 2+lan, 255)
	var h Heard
	reply := Message{Buf: make([]byte, 0, MaxLen)}
	if heard, _ := f.r.Receive(&m, now, &h, &reply); !heard {
		f.t.Fatalf("INQ %+v not heard", p)
	}
	return h
}
