package routes

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestRTTMedianBounds: the median round trip is over --max-rtt when more
// than half of the window is, so exactly half over is no failover; after
// one, the path is clean when at least half of the window is below half
// of --max-rtt, so exactly half below switches back.
func TestRTTMedianBounds(t *testing.T) {
	p := newPair(t, Config{MaxRTT: 10 * time.Millisecond, LossWindow: 20}, 50*time.Millisecond)
	var a, b time.Duration // LAN A's round trips, alternating
	come := func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 {
			c.rtt = a
			if k%2 == 1 {
				c.rtt = b
			}
		}
		return c
	}
	a, b = 20*time.Millisecond, 5*time.Millisecond // half over the maximum
	p.run(60, come)
	if len(p.evs) > 0 {
		t.Fatalf("half the round trips over --max-rtt: events %v, want none", p.evs)
	}
	a, b = 20*time.Millisecond, 20*time.Millisecond
	p.run(30, come)
	if got := strings.Join(p.evs, " "); !strings.Contains(got, "Failover/0/rtt") {
		t.Fatalf("all over: events %s, want a failover for the round trip", got)
	}
	p.evs = nil
	a, b = 3*time.Millisecond, 7*time.Millisecond // half below half the maximum
	p.run(60, come)
	if got := strings.Join(p.evs, " "); strings.Count(got, "Switchback/0") != 1 {
		t.Errorf("half below half of --max-rtt: events %s, want a switchback", got)
	}
}

// TestNoLossHoldWithoutMaxLoss: without --max-loss a path back from a cut
// switches back after -s good intervals, whatever its window holds; it
// is never held for loss.
func TestNoLossHoldWithoutMaxLoss(t *testing.T) {
	p := newPair(t, Config{LossWindow: 20}, 50*time.Millisecond)
	p.run(30, all)
	p.run(10, cutA)
	p.run(20, all)
	if got, want := strings.Join(p.evs, " "), "3.205s:Failover/0/missed 4.201s:Switchback/0"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

// TestEventMeasures: a Failover carries the path's loss over the window
// when --max-loss judges it, and its median round trip when --max-rtt
// does; each stays 0 otherwise, whatever the path measures.
func TestEventMeasures(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       Config
		rtt       time.Duration // LAN A's round trips; a quarter of its packets are lost
		reason    Reason
		loss, med bool // want the loss, the round trip
	}{
		{"--max-loss", Config{MaxLoss: 0.1, LossWindow: 20}, time.Millisecond, ReasonLoss, true, false},
		{"--max-rtt", Config{MaxRTT: 10 * time.Millisecond, LossWindow: 20}, 20 * time.Millisecond, ReasonRTT, false, true},
	} {
		p := newPair(t, tt.cfg, 50*time.Millisecond)
		p.run(40, func(lan, k int) packet {
			c := all(lan, k)
			if lan == 0 {
				c.rtt = tt.rtt
				if k%4 == 0 {
					c.ack, c.inq = false, false
				}
			}
			return c
		})
		var f *Event
		for i := range p.raw {
			if p.raw[i].Kind == Failover {
				f = &p.raw[i]
				break
			}
		}
		if f == nil || f.Reason != tt.reason {
			t.Errorf("%s: events %v, want a failover for %v", tt.name, p.evs, tt.reason)
			continue
		}
		if tt.loss != (f.Loss > 0.1) || !tt.loss && f.Loss != 0 {
			t.Errorf("%s: failover's loss %v, want it %v", tt.name, f.Loss, tt.loss)
		}
		if tt.med != near(f.RTT, tt.rtt) || !tt.med && f.RTT != 0 {
			t.Errorf("%s: failover's round trip %v, want it %v", tt.name, f.RTT, tt.med)
		}
	}
}

// TestACKStreamNeedsAnAnswer: our INQs are a stream of the path only once
// the peer has answered one: a peer whose INQs come but whose ACKs never
// did keeps the path by its INQs, and fails it f of its intervals after
// the last one, as a single stream.
func TestACKStreamNeedsAnAnswer(t *testing.T) {
	p := newPair(t, Config{}, 50*time.Millisecond)
	p.run(30, func(lan, k int) packet { return packet{inq: true} })
	if len(p.evs) > 0 {
		t.Fatalf("the peer's INQs, no ACK: events %v, want none", p.evs)
	}
	p.run(10, func(lan, k int) packet { return packet{inq: lan == 1} })
	// The last INQ on LAN A came at 2.95 s.
	if got := strings.Join(p.evs, " "); !strings.HasPrefix(got, "3.255s:Failover/0/missed") {
		t.Errorf("events %s, want LAN A failed over at 3.255s", got)
	}
	if q := p.path(0).Quality; q.RoundTripSlots != 0 || q.LossRoundTrip != 0 {
		t.Errorf("quality %+v, want no round trips measured", q)
	}
}

// TestUnnumberedINQsLeaveLossToRoundTrips: a peer that does not number
// its INQs (an older sender) has its path's loss judged by the round
// trips alone: a third of them lost is 18 % each way, over --max-loss 10.
func TestUnnumberedINQsLeaveLossToRoundTrips(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, MaxLoss: 0.1, LossWindow: 20})
	var evs []Event
	for k := 1; k <= 40; k++ {
		at := t0.Add(time.Duration(k) * iv)
		evs = tab.Expire(at, evs)
		for lan := range 2 {
			tab.Sent(lan, uint64(k), at)
			if lan == 1 || k%3 != 0 {
				evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, RTT: time.Millisecond, INQ: uint64(k), At: at.Add(time.Millisecond)}, evs)
			}
			evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, At: at.Add(50 * time.Millisecond)}, evs)
		}
	}
	failed := false
	for _, e := range evs {
		failed = failed || e.Kind == Failover && e.LAN == 0 && e.Reason == ReasonLoss
	}
	if !failed {
		t.Errorf("events %+v, want LAN A failed over for loss", evs)
	}
	if q := pathAt(tab, 0, t0.Add(4*time.Second)).Quality; q.InSlots != 0 || q.LossIn != 0 || q.RoundTripSlots != 20 {
		t.Errorf("quality %+v, want the round trips' window alone", q)
	}
}

// TestUnnumberedACKIsNoSlot: an ACK that answers no numbered INQ (INQ 0)
// gives a round trip but no slot: it neither restarts the round trips'
// numbering nor hides the INQs lost around it.
func TestUnnumberedACKIsNoSlot(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, LossWindow: 40})
	ack := func(n uint64, at time.Time) {
		tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, RTT: time.Millisecond, INQ: n, At: at}, nil)
	}
	for k := uint64(1); k <= 23; k++ {
		at := t0.Add(time.Duration(k) * iv)
		tab.Sent(0, k, at)
		switch k {
		case 21:
			ack(0, at.Add(time.Millisecond))
		case 22:
		default:
			ack(k, at.Add(time.Millisecond))
		}
	}
	q := pathAt(tab, 0, t0.Add(3*time.Second)).Quality
	if q.RoundTripSlots != 23 || q.LossRoundTrip != 2.0/23 || q.RTTSamples != 22 {
		t.Errorf("quality %+v, want 2 of 23 round trips lost, 22 samples", q)
	}
}

// pathAt is the path on lan of the table's one peer, as Paths reports it
// at now.
func pathAt(tab *Table, lan int, now time.Time) (v Path) {
	tab.Paths(now, func(_ PeerID, l int, pa Path, _ Route) {
		if l == lan {
			v = pa
		}
	})
	return v
}

// TestResponderHasNoACKStream: a table that only responds (no interval of
// its own) has no stream of round trips, even when told of an INQ sent and
// given its ACK: the path is judged by the peer's INQs alone, f of its
// intervals after the last, and nothing divides by our interval of 0.
func TestResponderHasNoACKStream(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Misses: 3, Successes: 3})
	var evs []Event
	tab.Sent(0, 1, t0)
	evs = tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, RTT: time.Millisecond, INQ: 1, At: t0.Add(time.Millisecond)}, evs)
	for k := 1; k <= 5; k++ {
		evs = tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: iv, INQ: uint64(k), At: t0.Add(time.Duration(k) * iv)}, evs)
	}
	evs = tab.Expire(t0.Add(2*time.Second), evs)
	var got []string
	for _, e := range evs {
		if e.Kind == Failover && e.LAN == 0 {
			got = append(got, e.At.Sub(t0).String())
		}
	}
	if want := "805ms"; strings.Join(got, " ") != want {
		t.Errorf("LAN A failovers at %v, want %s", got, want)
	}
	if q := pathAt(tab, 0, t0.Add(2*time.Second)).Quality; q.RoundTripSlots != 0 {
		t.Errorf("quality %+v, want no round trips measured", q)
	}
}

// TestReaddressedPathMeasuredAnew: a path held for loss whose peer moves
// to another address is another path, measured anew: it switches back
// once a full window at the new address is clean, not on the first packet
// from there, before anything is measured (a peer that does not number
// its INQs gives no stream until an ACK comes).
func TestReaddressedPathMeasuredAnew(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 1, MaxLoss: 0.1, LossWindow: 20})
	addrs := peerAddrs[:2]
	moved := []netip.Addr{netip.MustParseAddr("192.0.2.9"), peerAddrs[1]}
	var got []string
	record := func(evs []Event) {
		for _, e := range evs {
			if e.LAN == 0 && e.Kind != Discovered {
				got = append(got, e.At.Sub(t0).String()+":"+e.Kind.String())
			}
		}
	}
	for k := 1; k <= 70; k++ {
		at := t0.Add(time.Duration(k) * iv)
		record(tab.Expire(at, nil))
		if k == 40 {
			addrs = moved
		}
		for lan := range 2 {
			tab.Sent(lan, uint64(k), at)
			if lan == 1 || k < 40 && k%3 != 0 || k > 40 {
				record(tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: addrs, Interval: iv, RTT: time.Millisecond, INQ: uint64(k), At: at.Add(time.Millisecond)}, nil))
			}
			record(tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: addrs, Interval: iv, At: at.Add(50 * time.Millisecond)}, nil))
		}
	}
	// Failed for loss once its window of 20 round trips was full; back
	// when the 20th ACK at the new address came; the move itself reroutes.
	if want := "2.001s:Failover 4.05s:Rerouted 6.001s:Switchback"; strings.Join(got, " ") != want {
		t.Errorf("LAN A events %v, want %s", got, want)
	}
}
