package proto

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestRequestorRecordsSent: each INQ the Requestor builds is recorded as
// sent, so that its ACK is matched with its number and round trip, and
// Sent gives the newest on each LAN; LANs out of range have none.
func TestRequestorRecordsSent(t *testing.T) {
	x := testExchange(t)
	q, _ := x.NewRequestor()
	t0 := time.Unix(1e9, 0)
	var ms []Message
	for i := range 3 {
		ms, _ = q.INQs(t0.Add(time.Duration(i)*time.Second), Round{}, ms[:0])
	}
	for lan := range 2 {
		if n, at := q.Sent(lan); n != 3 || !at.Equal(t0.Add(2*time.Second)) {
			t.Errorf("LAN %d: Sent = %d at %v, want 3 at 2s", lan, n, at.Sub(t0))
		}
	}
	for _, m := range ms {
		var p Packet
		if err := p.Decode(m.Buf); err != nil {
			t.Fatal(err)
		}
		lan := x.LANOf(m.IfIndex)
		if n, rtt, ok := q.Answered(lan, p.Seq, t0.Add(2*time.Second+time.Millisecond)); !ok || n != 3 || rtt != time.Millisecond {
			t.Errorf("ACK to the version-%d INQ on LAN %d: number %d, round trip %v, %v; want 3, 1ms", p.Version, lan, n, rtt, ok)
		}
	}
	for _, lan := range []int{-1, 2, MaxLANs} {
		if n, at := q.Sent(lan); n != 0 || !at.IsZero() {
			t.Errorf("LAN %d: Sent = %d at %v, want none", lan, n, at)
		}
	}
}

// TestViewWindowFills: the window of a large view is as large as the
// INQ's budget allows, whatever takes room before it (the address
// entries of either family, a deaf list, a tag): within INQBudget, and
// without room for one more entry.
func TestViewWindowFills(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, ndeaf := range []int{0, 50} {
			for _, keyed := range []bool{false, true} {
				name := fmt.Sprintf("v6 %v, %d deaf, keyed %v", v6, ndeaf, keyed)
				x := testExchange(t)
				if v6 {
					x = testExchange6(t)
				}
				if keyed {
					x.cfg.Keys = [][]byte{testKey}
				}
				q, _ := x.NewRequestor()
				deaf := make([]uint32, ndeaf)
				for i := range deaf {
					deaf[i] = uint32(1000 + i)
				}
				ms, err := q.INQs(time.Now(), Round{View: view(1000), Deaf: func(int, time.Time) []uint32 { return deaf }}, nil)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, m := range ms {
					var p Packet
					if err := p.Decode(m.Buf); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if p.Version != Version2 {
						continue
					}
					entry := 4 + ViewStateLen(len(p.Addrs))
					if len(m.Buf) > INQBudget || len(m.Buf)+entry <= INQBudget {
						t.Errorf("%s: INQ of %d bytes with %d entries, want within %d and no room for another of %d",
							name, len(m.Buf), len(p.View), INQBudget, entry)
					}
				}
			}
		}
	}
}

// TestViewEightLANs: a node on MaxViewLANs LANs sends its view; the
// masks of LANs without an address in the family are left out, the
// others moved to their address entries.
func TestViewEightLANs(t *testing.T) {
	var lans []LAN
	for i := range MaxViewLANs {
		base := byte(32 * i)
		lans = append(lans, LAN{Name: fmt.Sprintf("eth%d", i), Index: 2 + i,
			Addr:      netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, base + 1}), 27),
			Broadcast: netip.AddrFrom4([4]byte{198, 51, 100, base + 31})})
	}
	x := newTestExchange(t, false, lans...)
	q, _ := x.NewRequestor()
	ms, err := q.INQs(time.Now(), Round{View: []ViewEntry{{Node: 5, Known: 0xff, Heard: 0x0f, Lossy: 0x01}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2 := 0
	for _, m := range ms {
		var p Packet
		if err := p.Decode(m.Buf); err != nil {
			t.Fatal(err)
		}
		if p.Version == Version2 {
			v2++
			if len(p.View) != 1 || p.View[0] != (ViewEntry{Node: 5, Known: 0xff, Heard: 0x0f, Lossy: 0x01}) {
				t.Errorf("INQ out of %d: view %+v, want the one entry", m.IfIndex, p.View)
			}
		}
	}
	if v2 != MaxViewLANs {
		t.Errorf("%d version-2 INQs, want %d", v2, MaxViewLANs)
	}

	// IPv6 on LANs A and B; C has none: its masks drop out.
	x6 := testExchange6(t)
	q6, _ := x6.NewRequestor()
	ms, _ = q6.INQs(time.Now(), Round{View: []ViewEntry{{Node: 5, Known: 0b101, Heard: 0b100, Lossy: 0b100}, {Node: 6, Known: 0b011, Heard: 0b010}}}, nil)
	want := fmt.Sprint([]ViewEntry{{Node: 5, Known: 0b01}, {Node: 6, Known: 0b11, Heard: 0b10}})
	for _, m := range ms {
		var p Packet
		if err := p.Decode(m.Buf); err != nil {
			t.Fatal(err)
		}
		if p.Version == Version2 && fmt.Sprint(p.View) != want {
			t.Errorf("IPv6 INQ out of %d: view %v, want %s", m.IfIndex, p.View, want)
		}
	}
}

// TestViewStartsOver: after the window that ends the view the next round
// starts it over at offset 0; a view that fits one INQ goes whole in every
// round.
func TestViewStartsOver(t *testing.T) {
	for _, n := range []int{10, 1000} {
		x := testExchange(t)
		q, _ := x.NewRequestor()
		whole := view(n)
		var offsets []int
		for range 12 {
			ms, err := q.INQs(time.Now(), Round{View: whole}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			if err := p.Decode(ms[0].Buf); err != nil || p.Version != Version2 {
				t.Fatalf("%d peers: first INQ %+v, %v; want version 2", n, p, err)
			}
			if len(p.View) == 0 {
				t.Fatalf("%d peers: an empty window at %d", n, p.ViewOffset)
			}
			offsets = append(offsets, p.ViewOffset)
		}
		starts := 0
		for _, o := range offsets {
			if o == 0 {
				starts++
			}
		}
		if n == 10 && starts != 12 || n == 1000 && starts < 2 {
			t.Errorf("%d peers: window offsets %v, want the view started over after its last window", n, offsets)
		}
	}
}
