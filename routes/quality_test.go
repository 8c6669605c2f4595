package routes

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestLossWindow(t *testing.T) {
	w := newLossWindow(make([]uint64, 1), 8)
	const maxRun = 4
	check := func(step string, n, missed int, total, totalMissed uint64) {
		t.Helper()
		if w.n != n || w.missed != missed || w.totalSlots != total || w.totalMissed != totalMissed {
			t.Fatalf("%s: window %d slots, %d missed; totals %d, %d missed; want %d, %d; %d, %d",
				step, w.n, w.missed, w.totalSlots, w.totalMissed, n, missed, total, totalMissed)
		}
	}
	w.got(5, maxRun) // the first: nothing before it counts
	check("first", 1, 0, 1, 0)
	w.got(6, maxRun)
	w.got(9, maxRun) // 7 and 8 missing
	check("gap of two", 5, 2, 5, 2)
	w.got(9, maxRun) // a copy
	check("copy", 5, 2, 5, 2)
	w.got(7, maxRun) // late: 7 came after all
	check("late", 5, 1, 5, 1)
	w.got(7, maxRun)
	check("late copy", 5, 1, 5, 1)
	w.got(15, maxRun) // 10..14 missing: a run of 5, an outage
	check("outage", 6, 1, 6, 1)
	w.got(12, maxRun) // before the outage: its slot is not in the ring
	check("slot left out", 6, 1, 6, 1)
	w.got(17, maxRun) // 16 missing
	w.got(18, maxRun)
	w.got(19, maxRun) // 9 outcomes into 8: slot 5 drops out
	w.got(20, maxRun) // and 6
	check("full", 8, 2, 11, 2)
	// 21..23 missing: 7, 8 (missed), 9 and 15 drop out, leaving
	// 16 (missed) 17 18 19 20 21 22 23 (missed) 24.
	w.got(24, maxRun)
	check("wrapped", 8, 3, 15, 5)
	if got := w.ratio(); got != 0.375 {
		t.Errorf("ratio %v, want 0.375", got)
	}
	w.got(22, maxRun) // late, within the ring
	check("late after wrap", 8, 2, 15, 4)
	big := newLossWindow(make([]uint64, 2), 100)
	big.got(1, 1000)
	big.got(500, 1000) // a gap longer than the window: all of it missed
	if big.n != 100 || big.missed != 99 || big.totalMissed != 498 {
		t.Errorf("after a gap longer than the window: %d slots, %d missed, %d missed in all", big.n, big.missed, big.totalMissed)
	}
}

func TestRTTs(t *testing.T) {
	for _, d := range []time.Duration{time.Microsecond, 134 * time.Microsecond, 7 * time.Millisecond, 3 * time.Second} {
		if got := rttDuration(rttCode(d)); math.Abs(float64(got-d)) > 0.001*float64(d) {
			t.Errorf("%v comes back as %v", d, got)
		}
	}
	if rttCode(time.Millisecond) <= rttCode(999*time.Microsecond) {
		t.Error("codes out of order")
	}
	hi, lo := rttCode(100*time.Millisecond), rttCode(50*time.Millisecond)
	r := rtts{codes: make([]uint16, 10)}
	for i := 1; i <= 10; i++ {
		r.add(time.Duration(i)*20*time.Millisecond, hi, lo) // 20 .. 200 ms
	}
	p50, p99 := r.percentiles()
	if !near(p50, 100*time.Millisecond) || !near(p99, 200*time.Millisecond) {
		t.Errorf("p50 %v p99 %v, want 100ms and 200ms", p50, p99)
	}
	if r.above != 5 || r.low != 2 {
		t.Errorf("%d above 100ms, %d below 50ms; want 5, 2", r.above, r.low)
	}
	for range 10 {
		r.add(time.Millisecond, hi, lo) // every old sample goes
	}
	if r.above != 0 || r.low != 10 || !r.full() {
		t.Errorf("after 10 of 1ms: %d above, %d below, full %v", r.above, r.low, r.full())
	}
}

func near(a, b time.Duration) bool { return math.Abs(float64(a-b)) <= 0.001*float64(b) }

// pair drives a table as the daemon does for one peer on two LANs, at one
// interval for both: each interval k we send INQ k+1 on both LANs at
// k·iv and its ACK comes 1 ms later, the peer's INQ comes at k·iv +
// phase; what comes is up to the test.
type pair struct {
	t     *testing.T
	tab   *Table
	iv    time.Duration
	phase time.Duration
	evs   []string
	raw   []Event // the events behind evs
	now   time.Time
	sent  int
}

func newPair(t *testing.T, cfg Config, phase time.Duration) *pair {
	if cfg.LANs == 0 {
		cfg.LANs = 2
	}
	if cfg.Misses == 0 {
		cfg.Misses, cfg.Successes = 3, 3
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	return &pair{t: t, tab: New(cfg), iv: cfg.Interval, phase: phase, now: t0}
}

// packet is what comes in one interval on one LAN: the ACK to our INQ
// (with its round trip), and the peer's INQ (deaf: listing us).
type packet struct {
	ack, inq, deaf bool
	rtt            time.Duration
}

// run drives intervals from k to k+n; come says what comes on a LAN in
// interval k.
func (p *pair) run(n int, come func(lan, k int) packet) {
	for range n {
		k := p.sent
		start := t0.Add(time.Duration(k) * p.iv)
		p.until(start)
		p.sent++
		for lan := range 2 {
			p.tab.Sent(lan, uint64(p.sent), start)
		}
		type arrival struct {
			at  time.Time
			lan int
			o   Observation
		}
		var as []arrival
		for lan := range 2 {
			c := come(lan, k)
			if c.rtt == 0 {
				c.rtt = time.Millisecond
			}
			if c.ack {
				as = append(as, arrival{start.Add(c.rtt), lan, Observation{RTT: c.rtt, INQ: uint64(p.sent)}})
			}
			if c.inq {
				as = append(as, arrival{start.Add(p.phase), lan, Observation{Interval: p.iv, Deaf: c.deaf, INQ: uint64(k + 1)}})
			}
		}
		for len(as) > 0 {
			first := 0
			for i := range as {
				if as[i].at.Before(as[first].at) {
					first = i
				}
			}
			a := as[first]
			as = append(as[:first], as[first+1:]...)
			p.until(a.at)
			o := a.o
			o.Peer, o.LAN, o.Addrs, o.At = peerID, a.lan, peerAddrs[:2], a.at
			if o.Interval == 0 {
				o.Interval = p.iv
			}
			p.record(p.tab.Observe(o, nil))
		}
	}
	p.until(t0.Add(time.Duration(p.sent) * p.iv))
}

// until runs Expire every millisecond up to at.
func (p *pair) until(at time.Time) {
	for ; p.now.Before(at); p.now = p.now.Add(time.Millisecond) {
		p.record(p.tab.Expire(p.now, nil))
	}
	p.now = at
	p.record(p.tab.Expire(p.now, nil))
}

func (p *pair) record(evs []Event) {
	for _, e := range evs {
		if e.Kind == Discovered {
			continue
		}
		s := fmt.Sprintf("%v:%v/%d", p.now.Sub(t0), e.Kind, e.LAN) // when the table said so
		if e.Reason != ReasonNone {
			s += "/" + e.Reason.String()
		}
		p.evs = append(p.evs, s)
		p.raw = append(p.raw, e)
	}
}

func (p *pair) path(lan int) (v Path) {
	p.tab.Paths(p.now, func(_ PeerID, l int, pa Path, _ Route) {
		if l == lan {
			v = pa
		}
	})
	return v
}

func all(int, int) packet { return packet{ack: true, inq: true} }

// cutA is every packet on LAN B and none on LAN A.
func cutA(lan, k int) packet {
	if lan == 0 {
		return packet{}
	}
	return all(lan, k)
}

func TestTwoStreamsDetectSooner(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		phase  time.Duration
		before func(lan, k int) packet // the first 10 intervals
		want   string
	}{
		// The newest evidence is the peer's INQ at 950 ms; then our INQ
		// 11 (sent at 1 s) expires at 1.005 s, the peer's INQs at 1.055,
		// 1.155 s...: the fifth slot of the two is our INQ 13's at 1.205 s,
		// where f intervals from the newest evidence would be 1.255 s.
		{"both streams: 2f-1 slots", Config{}, 50 * time.Millisecond, nil, "1.205s:Failover/0/missed"},
		// The peer's INQ at 0.95 s is lost: the newest evidence is the
		// ACK at 0.901 s, and the peer's slots since are 0.955, 1.055 and
		// 1.155 s, ours 1.005 and 1.105 s.
		{"the peer's INQs first", Config{}, 50 * time.Millisecond,
			func(lan, k int) packet { return packet{ack: true, inq: lan == 1 || k != 9} }, "1.155s:Failover/0/missed"},
		{"-f 1: two slots", Config{Misses: 1, Successes: 1}, 50 * time.Millisecond, nil, "1.055s:Failover/0/missed"},
		{"-f 5: nine slots", Config{Misses: 5, Successes: 1}, 50 * time.Millisecond, nil, "1.405s:Failover/0/missed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, tt.cfg, tt.phase)
			before := tt.before
			if before == nil {
				before = all
			}
			p.run(10, before)
			p.run(20, func(lan, k int) packet {
				if lan == 1 {
					return all(lan, k)
				}
				return packet{}
			})
			if got := strings.Join(p.evs, " "); !strings.HasPrefix(got, tt.want) {
				t.Errorf("events %s, want first %s", got, tt.want)
			}
		})
	}
}

// TestOneStreamAlone: a path whose peer only answers (no INQs of its
// own), or that only hears the peer's INQs, fails after f of its
// stream's slots, as a single stream always did.
func TestOneStreamAlone(t *testing.T) {
	for _, tt := range []struct {
		name string
		come packet
		want string
	}{
		// The ACK to INQ 10 (sent at 0.9 s) is the newest: INQs 11, 12 and
		// 13 expire at 1.005, 1.105, 1.205 s.
		{"ACKs", packet{ack: true}, "1.205s:Failover/0/missed"},
		// The INQ at 0.95 s is the newest: 1.055, 1.155, 1.255 s.
		{"the peer's INQs", packet{inq: true}, "1.255s:Failover/0/missed"},
	} {
		p := newPair(t, Config{}, 50*time.Millisecond)
		p.run(30, func(lan, k int) packet {
			if lan == 0 && k >= 10 {
				return packet{}
			}
			return tt.come
		})
		if got := strings.Join(p.evs, " "); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: events %s, want first %s", tt.name, got, tt.want)
		}
	}
}

// TestUnsentINQsAreNoMisses: when our own loop is held up and sends no
// INQs, their ACKs are not missed; the path fails only on what was due.
func TestUnsentINQsAreNoMisses(t *testing.T) {
	p := newPair(t, Config{}, 50*time.Millisecond)
	p.run(10, all)
	// No INQs of ours from 1 s on, and nothing at all on LAN A: only the
	// peer's INQs count (1.055 s on), 2f−1 = 5 of them, at 1.455 s.
	// Had the INQs been counted as sent, LAN A would fail at 1.205 s.
	at := t0.Add(10 * p.iv)
	for lan := range 2 {
		p.tab.Sent(lan, uint64(p.sent), at.Add(-p.iv))
	}
	p.until(at.Add(2 * time.Second))
	if got := strings.Join(p.evs, " "); !strings.HasPrefix(got, "1.455s:Failover/0/missed") {
		t.Errorf("events %s, want LAN A at 1.455s first", got)
	}
}

func TestLossInvalidatesWithHysteresis(t *testing.T) {
	cfg := Config{MaxLoss: 0.10, LossWindow: 20, Successes: 3, Misses: 3}
	p := newPair(t, cfg, 50*time.Millisecond)
	var rate int // one in rate of the peer's INQs and of our INQs' ACKs lost on LAN A; 0 for none
	come := func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 && rate > 0 && k%rate == 0 {
			c.ack, c.inq = false, false
		}
		return c
	}
	rate = 20 // 5 %: never
	p.run(100, come)
	if len(p.evs) > 0 {
		t.Fatalf("5%% loss: %v", p.evs)
	}
	rate = 4 // 25 %: the in-loss crosses 10 % when the window holds a third
	p.run(40, come)
	if got := strings.Join(p.evs, " "); !strings.Contains(got, "Failover/0/loss") || strings.Count(got, "Failover") != 1 {
		t.Fatalf("25%% loss: events %s, want one failover for loss", got)
	}
	if pa := p.path(0); pa.State != Invalid || pa.Reason != ReasonLoss || pa.Quality.Loss <= 0.1 {
		t.Fatalf("25%% loss: path %+v", pa)
	}
	p.evs = nil
	rate = 14 // 7 %: below the threshold, above half of it: held
	p.run(100, come)
	if len(p.evs) > 0 || p.path(0).State != Invalid {
		t.Fatalf("7%% loss after a failover for loss: %v, state %v", p.evs, p.path(0).State)
	}
	// Clean: back once the window holds no loss (under 5 % of 20): when
	// the peer's INQ 20 intervals after the last one lost comes.
	last := p.sent - 1
	for last%rate != 0 {
		last--
	}
	rate = 0
	p.run(30, come)
	want := fmt.Sprintf("%v:Switchback/0", time.Duration(last+20)*p.iv+p.phase)
	if got := strings.Join(p.evs, " "); got != want {
		t.Errorf("clean: events %s, want %s", got, want)
	}
}

// TestCutOntoLossyLAN: a path that failed over for a cut comes back onto
// a LAN that loses 7 %, under --max-loss 10 but over half of it: held for
// loss rather than switched back (it would fail for loss as the window
// crossed 10 %, and flap), and back once the window is clean.
func TestCutOntoLossyLAN(t *testing.T) {
	cfg := Config{MaxLoss: 0.10, LossWindow: 20, Successes: 3, Misses: 3}
	p := newPair(t, cfg, 50*time.Millisecond)
	cut, rate := false, 0
	come := func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 && (cut || rate > 0 && k%rate == 0) {
			c.ack, c.inq = false, false
		}
		return c
	}
	rate = 14 // 7 %
	p.run(60, come)
	if len(p.evs) > 0 {
		t.Fatalf("7%% loss before the cut: %v", p.evs)
	}
	cut = true
	p.run(10, come)
	if got := strings.Join(p.evs, " "); !strings.Contains(got, "Failover/0/missed") {
		t.Fatalf("cut: events %s, want a failover for missed packets", got)
	}
	p.evs = nil
	cut = false
	p.run(40, come)
	if got := strings.Join(p.evs, " "); strings.Contains(got, "Switchback") || !strings.Contains(got, "Held/0/loss") {
		t.Fatalf("healed onto 7%% loss: events %s, want held for loss and no switchback", got)
	}
	p.evs = nil
	rate = 0
	p.run(40, come)
	if got := strings.Join(p.evs, " "); strings.Count(got, "Switchback/0") != 1 {
		t.Errorf("clean: events %s, want one switchback", got)
	}
}

// TestLossOneWay: loss of our INQs only, on their way to the peer. Its
// INQs come whole, so the loss shows in the round trips alone: 30 % spread
// over two ways is 16 %, over 10 %. At 15 % (8 %) the peer, which loses
// our INQs, says so with its deaf list, and its word fails the path over
// here too, and holds it while the peer keeps listing us.
func TestLossOneWay(t *testing.T) {
	cfg := Config{MaxLoss: 0.10, LossWindow: 20}
	for _, tt := range []struct {
		name  string
		lost  func(k int) bool
		peer  bool // the peer lists us from interval 40 on
		want  string
		state State
	}{
		{"30 %: round trips", func(k int) bool { return k%10%3 == 0 && k%10 < 9 }, false, "Failover/0/loss", Invalid},
		{"15 %: not over the threshold here", func(k int) bool { return k%20%7 == 0 }, false, "", Valid},
		{"15 %: the peer's word", func(k int) bool { return k%20%7 == 0 }, true, "Failover/0/peer", Invalid},
	} {
		p := newPair(t, cfg, 50*time.Millisecond)
		p.run(100, func(lan, k int) packet {
			c := all(lan, k)
			if lan == 0 {
				c.ack = !tt.lost(k)
				c.deaf = tt.peer && k >= 40
			}
			return c
		})
		got := strings.Join(p.evs, " ")
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) || strings.Count(got, "Failover") > 1 {
			t.Errorf("%s: events %q, want %q once", tt.name, got, tt.want)
		}
		if pa := p.path(0); pa.State != tt.state {
			t.Errorf("%s: path %v, want %v", tt.name, pa.State, tt.state)
		}
	}
}

// TestPeerWordNeedsJudging: without --max-loss or --max-rtt, a peer
// listing us fails the path over only when nothing else is evidence (as it
// always did); with them, after f intervals of its listing, and a start's
// single listing does not.
func TestPeerWordNeedsJudging(t *testing.T) {
	for _, tt := range []struct {
		cfg    Config
		listed func(k int) bool
		want   string
	}{
		{Config{}, func(k int) bool { return k >= 10 }, ""},
		{Config{MaxLoss: 0.1}, func(k int) bool { return k == 10 || k == 20 || k == 21 || k == 22 }, ""},
		// The fourth INQ that lists us (at 1.35 s) is f intervals of it;
		// once the peer no longer does, -s good intervals switch back.
		{Config{MaxLoss: 0.1}, func(k int) bool { return k >= 10 && k < 14 }, "1.35s:Failover/0/peer 1.601s:Switchback/0"},
		{Config{MaxRTT: time.Second}, func(k int) bool { return k >= 10 }, "1.35s:Failover/0/peer"},
	} {
		p := newPair(t, tt.cfg, 50*time.Millisecond)
		p.run(30, func(lan, k int) packet {
			c := all(lan, k)
			c.deaf = lan == 0 && tt.listed(k)
			return c
		})
		if got := strings.Join(p.evs, " "); got != tt.want {
			t.Errorf("%+v: events %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestMaxRTT(t *testing.T) {
	p := newPair(t, Config{MaxRTT: 50 * time.Millisecond}, 80*time.Millisecond)
	var rtt func(k int) time.Duration // LAN A's round trips
	come := func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 {
			c.rtt = rtt(k)
		}
		return c
	}
	slow := func(k int) time.Duration { return 70 * time.Millisecond }
	rtt = func(k int) time.Duration { // a third slow: the median is fast
		if k%3 == 0 {
			return slow(k)
		}
		return time.Millisecond
	}
	p.run(200, come)
	if len(p.evs) > 0 {
		t.Fatalf("a third of round trips slow: %v", p.evs)
	}
	rtt = slow
	p.run(100, come)
	if got := strings.Join(p.evs, " "); !strings.Contains(got, "Failover/0/rtt") || strings.Count(got, "Failover") != 1 {
		t.Fatalf("slow: events %s, want a failover for the round trip", got)
	}
	if q := p.path(0).Quality; !near(q.RTT50, 70*time.Millisecond) || q.RTTSamples != rttWindow {
		t.Errorf("slow: %+v", q)
	}
	p.evs = nil
	rtt = func(k int) time.Duration { // 30 ms and 40 ms: under 50 ms, not under half of it
		return time.Duration(30+10*(k%2)) * time.Millisecond
	}
	p.run(200, come)
	if len(p.evs) > 0 {
		t.Fatalf("round trips of 30 and 40 ms: %v, want the path held", p.evs)
	}
	rtt = func(int) time.Duration { return time.Millisecond } // back once half the window is
	p.run(100, come)
	if got := strings.Join(p.evs, " "); !strings.Contains(got, "Switchback/0") {
		t.Fatalf("fast again: events %s, want a switchback", got)
	}
}

// TestCutIsNoLoss: a cut of both streams fails a path over for missed
// packets; its gap does not count as loss, so with --max-loss the path
// switches back after -s good intervals as it would without.
func TestCutIsNoLoss(t *testing.T) {
	p := newPair(t, Config{MaxLoss: 0.1, LossWindow: 50}, 50*time.Millisecond)
	p.run(100, all)
	p.run(30, cutA)
	p.run(10, all)
	got := strings.Join(p.evs, " ")
	if !strings.Contains(got, "Failover/0/missed") || !strings.Contains(got, "Switchback/0") || strings.Count(got, "Failover") != 1 {
		t.Fatalf("events %s, want one failover for missed packets and its switchback", got)
	}
	if q := p.path(0).Quality; q.Loss != 0 || q.LossTotal != 0 {
		t.Errorf("quality after the cut %+v, want no loss", q)
	}
}

// TestQualityReported: the status view of a path's measures.
func TestQualityReported(t *testing.T) {
	p := newPair(t, Config{LossWindow: 40}, 50*time.Millisecond)
	p.run(100, func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 {
			c.inq = k%10 != 0  // 10 % of the peer's INQs
			c.ack = k%20 != 10 // 5 % of the round trips
			c.rtt = time.Duration(1+b2i(k%4 == 0)) * time.Millisecond
		}
		return c
	})
	q := p.path(0).Quality
	if q.InSlots != 40 || q.RoundTripSlots != 40 || q.Window != 40 || q.RTTSamples != 40 {
		t.Errorf("slots: %+v", q)
	}
	if q.LossIn != 0.1 || q.LossRoundTrip != 0.05 || q.Loss != 0.1 {
		t.Errorf("loss: %+v", q)
	}
	if math.Abs(q.LossTotal-0.1) > 0.011 {
		t.Errorf("loss since start %v, want about 10 %%", q.LossTotal)
	}
	if !near(q.RTT50, time.Millisecond) || !near(q.RTT99, 2*time.Millisecond) {
		t.Errorf("round trips p50 %v p99 %v", q.RTT50, q.RTT99)
	}
	if b := p.path(1).Quality; b.Loss != 0 || b.InSlots != 40 {
		t.Errorf("LAN B: %+v", b)
	}
}

func TestDefaultWindow(t *testing.T) {
	for _, tt := range []struct {
		loss       float64
		def, least int
	}{
		{0, 300, 1},
		{0.10, 300, 10},
		{0.05, 600, 20},
		{0.01, 3000, 100},
		{0.99, 300, 2},
		{0.30, 300, 4},
	} {
		if got := DefaultWindow(tt.loss); got != tt.def {
			t.Errorf("DefaultWindow(%v) = %d, want %d", tt.loss, got, tt.def)
		}
		if got := MinWindow(tt.loss); got != tt.least {
			t.Errorf("MinWindow(%v) = %d, want %d", tt.loss, got, tt.least)
		}
	}
}

// TestLossWaitsForFullWindow: the first packets of a path are too few to
// judge: two lost of the first five is no failover at --max-loss 10.
func TestLossWaitsForFullWindow(t *testing.T) {
	p := newPair(t, Config{MaxLoss: 0.1, LossWindow: 20}, 50*time.Millisecond)
	p.run(40, func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 && (k == 2 || k == 4) {
			c.ack, c.inq = false, false
		}
		return c
	})
	if len(p.evs) > 0 {
		t.Errorf("events %v, want none", p.evs)
	}
}

// TestCopiesAreNotSlots: a switch that duplicates frames adds no slots:
// the peer's INQs on LAN A, every one twice and a quarter of them lost,
// lose 25 %.
func TestCopiesAreNotSlots(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, LossWindow: 40})
	for k := range 100 {
		at := t0.Add(time.Duration(k) * 100 * time.Millisecond)
		for lan := range 2 {
			if lan == 0 && k%4 == 0 {
				continue
			}
			for c := range 2 {
				o := Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond,
					INQ: uint64(k + 1), At: at.Add(time.Duration(c) * time.Millisecond)}
				tab.Observe(o, nil)
			}
		}
	}
	tab.Paths(t0.Add(10*time.Second), func(_ PeerID, lan int, p Path, _ Route) {
		if lan == 0 && (p.Quality.LossIn != 0.25 || p.Quality.InSlots != 40) {
			t.Errorf("quality %+v, want 25 %% of 40 slots lost", p.Quality)
		}
	})
}

// TestHeavyLossReadsTrue: loss heavy enough to fail a path over for
// missed packets again and again (three of four of the peer's INQs and of
// our round trips lost, in runs of three) still reads as what it is.
func TestHeavyLossReadsTrue(t *testing.T) {
	p := newPair(t, Config{LossWindow: 40, Misses: 3, Successes: 1}, 50*time.Millisecond)
	p.run(100, all)
	p.run(200, func(lan, k int) packet {
		if lan == 0 && k%4 != 0 {
			return packet{}
		}
		return all(lan, k)
	})
	if got := strings.Join(p.evs, " "); strings.Count(got, "Failover/0/missed") < 10 {
		t.Fatalf("events %s, want the path failing over again and again", got)
	}
	if q := p.path(0).Quality; q.LossIn != 0.75 || q.LossRoundTrip != 0.75 {
		t.Errorf("quality %+v, want 75 %% lost each way", q)
	}
}

// TestRestartIsNoLoss: a peer that restarts (a new boot id) within a
// detection time sent nothing meanwhile; that is no loss.
func TestRestartIsNoLoss(t *testing.T) {
	p := newPair(t, Config{MaxLoss: 0.15, LossWindow: 10}, 50*time.Millisecond)
	boot := uint32(1)
	tab := p.tab
	observe := func(lan, k int, ack bool) {
		at := t0.Add(time.Duration(k)*p.iv + time.Millisecond)
		tab.Sent(lan, uint64(k+1), at.Add(-time.Millisecond))
		o := Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: p.iv, Boot: boot, At: at}
		if ack {
			o.RTT, o.INQ = time.Millisecond, uint64(k+1)
		} else {
			o.INQ, o.At = uint64(k+1), at.Add(40*time.Millisecond)
			if boot == 2 {
				o.INQ = uint64(k - 21) // numbered anew by the restarted peer
			}
		}
		p.record(tab.Observe(o, nil))
	}
	for k := range 40 {
		if k == 20 || k == 21 {
			boot = 2
			continue // restarting
		}
		for lan := range 2 {
			observe(lan, k, true)
			observe(lan, k, false)
		}
		p.record(tab.Expire(t0.Add(time.Duration(k+1)*p.iv), nil))
	}
	if len(p.evs) > 0 {
		t.Errorf("events %v, want none", p.evs)
	}
	if q := p.path(0).Quality; q.Loss != 0 {
		t.Errorf("quality after the restart %+v, want no loss", q)
	}
}

// TestFarEndOfOneWayCut: our INQs stop reaching the peer at 1 s; its INQs
// still come, and list us from 1.25 s on, once it has failed over. From
// then our unanswered INQs alone count, from the last ACK (0.901 s): the
// third expired at 1.205 s, so the path fails over at once, at 1.25 s.
func TestFarEndOfOneWayCut(t *testing.T) {
	p := newPair(t, Config{}, 50*time.Millisecond)
	p.run(10, all)
	p.run(10, func(lan, k int) packet {
		if lan == 1 {
			return all(lan, k)
		}
		return packet{inq: true, deaf: k >= 12}
	})
	if got := strings.Join(p.evs, " "); !strings.HasPrefix(got, "1.25s:Failover/0/missed") {
		t.Errorf("events %s, want LAN A failed over at 1.25s", got)
	}
	if p.path(0).LastEvidence != t0.Add(1150*time.Millisecond) {
		t.Errorf("last evidence %v, want the peer's last INQ before it listed us", p.path(0).LastEvidence.Sub(t0))
	}
}

// TestPeerSpeedsUp: a responder judges by the peer's INQs at the
// interval it announces; when the peer comes back faster (1 s, then
// 100 ms), a silence counts at the new pace at once, not after the old
// deadline came up.
func TestPeerSpeedsUp(t *testing.T) {
	tab := New(Config{LANs: 2, Misses: 3, Successes: 1})
	var evs []Event
	at, n := t0, uint64(0)
	inq := func(iv time.Duration) {
		n++
		for lan := range 2 {
			evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, INQ: n, At: at}, evs)
		}
	}
	for range 4 { // 0 to 3 s; the path's queue entry comes up at 3.005 s and is set to 6.005 s
		inq(time.Second)
		at = at.Add(time.Second)
		evs = tab.Expire(at, evs)
	}
	at = at.Add(-900 * time.Millisecond)
	for range 10 { // 3.1 to 4 s
		inq(100 * time.Millisecond)
		at = at.Add(100 * time.Millisecond)
		evs = tab.Expire(at, evs)
	}
	last := at.Add(-100 * time.Millisecond)
	for ; at.Before(last.Add(time.Second)); at = at.Add(time.Millisecond) {
		evs = tab.Expire(at, evs)
		for _, e := range evs {
			if e.Kind == Failover {
				if took := at.Sub(last); took != 305*time.Millisecond {
					t.Fatalf("failover noticed %v after the last INQ, want 305ms", took)
				}
				return
			}
		}
	}
	t.Fatalf("no failover within a second of the last INQ: %+v", evs)
}

// TestHeldForLoss: a path that fails over for missed packets under heavy
// loss and then shows the loss over a full window is held for it, which is
// an event of its own.
func TestHeldForLoss(t *testing.T) {
	p := newPair(t, Config{MaxLoss: 0.1, LossWindow: 20}, 50*time.Millisecond)
	p.run(30, all)
	p.run(40, func(lan, k int) packet {
		if lan == 0 && k%4 != 0 {
			return packet{} // three of four lost, in runs of three: a failover for missed packets first
		}
		return all(lan, k)
	})
	got := strings.Join(p.evs, " ")
	if !strings.HasPrefix(got, "3.505s:Failover/0/missed 3.601s:Held/0/loss") || strings.Contains(got, "Switchback") {
		t.Errorf("events %s, want a failover for missed packets, then held for loss", got)
	}
}

// TestWaitForPeersWord: a path failed over for loss whose window clears
// while the peer (whose own window clears later) still lists us waits on
// its word, held, and switches back once, when the peer stops listing us.
func TestWaitForPeersWord(t *testing.T) {
	p := newPair(t, Config{MaxLoss: 0.1, LossWindow: 20}, 50*time.Millisecond)
	p.run(120, func(lan, k int) packet {
		c := all(lan, k)
		if lan == 0 {
			if k >= 20 && k < 60 && k%10%3 == 0 && k%10 < 9 { // 30 %
				c.ack, c.inq = false, false
			}
			c.deaf = k >= 40 && k < 100
		}
		return c
	})
	got := strings.Join(p.evs, " ")
	if strings.Count(got, "Failover") != 1 || !strings.Contains(got, "Failover/0/loss") || !strings.Contains(got, "Held/0/peer") ||
		strings.Count(got, "Switchback") != 1 || !strings.HasSuffix(got, "10.05s:Switchback/0") {
		t.Errorf("events %s, want one failover for loss, held on the peer's word, one switchback when it stops listing us", got)
	}
}

// TestNumberedINQs: the peer numbers its INQs on each LAN, and only the
// numbers count. Intervals it skipped (its loop held up) have no number
// and are no loss; numbers that did not come are, on their LAN alone,
// whatever else the peer sends between its INQs. Far behind the newest, a
// number starts the count anew, so a keyless forgery far ahead does not
// freeze the window; a new boot id starts it anew too. An INQ without a
// number (an older sender) measures nothing.
func TestNumberedINQs(t *testing.T) {
	tab := New(Config{LANs: 3, Misses: 3, Successes: 3, LossWindow: 40})
	at := t0
	var n uint64
	observe := func(lan int, n uint64, boot uint32) {
		tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:3], Interval: 10 * time.Millisecond, INQ: n, Boot: boot, At: at}, nil)
	}
	loss := func(step string, want ...float64) {
		t.Helper()
		tab.Paths(at, func(_ PeerID, lan int, p Path, _ Route) {
			if p.Quality.LossIn != want[lan] || p.Quality.InSlots != 40 {
				t.Errorf("%s: LAN %s: %+v, want %v lost of 40", step, LANName(lan), p.Quality, want[lan])
			}
		})
	}
	// rounds sends 40 rounds; every lossA-th is lost on LAN A (0: none),
	// every 20th on LAN C.
	rounds := func(boot uint32, lossA int) {
		for k := range 40 {
			at = at.Add(10 * time.Millisecond)
			if k%5 == 0 {
				at = at.Add(25 * time.Millisecond) // held up: two intervals skipped, unnumbered
			}
			n++
			for lan := range 3 {
				if lan == 0 && lossA > 0 && k%lossA == lossA/2 || lan == 2 && k%20 == 7 {
					continue
				}
				observe(lan, n, boot)
			}
		}
	}
	rounds(1, 10)
	rounds(1, 10)
	loss("numbered", 0.1, 0, 0.05)

	observe(0, n+1_000_000, 1) // forged far ahead on LAN A: an outage, and no more
	rounds(1, 0)
	loss("after a forgery", 0, 0, 0.05)

	n = 0 // restarted
	rounds(2, 4)
	loss("after a restart", 0.25, 0, 0.05)

	old := New(Config{LANs: 2, Misses: 3, Successes: 3, LossWindow: 40})
	for k := range 60 {
		if k%2 == 0 {
			old.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], Interval: 10 * time.Millisecond, At: t0.Add(time.Duration(k) * 10 * time.Millisecond)}, nil)
		}
	}
	old.Paths(t0.Add(time.Second), func(_ PeerID, lan int, p Path, _ Route) {
		if lan == 0 && (p.Quality.LossIn != 0 || p.Quality.InSlots != 0) {
			t.Errorf("unnumbered INQs: %+v, want nothing measured", p.Quality)
		}
	})
}

// TestRestartNumbersAnew: a peer that restarts soon after it started
// numbers its INQs from 1 again, close behind the numbers it sent before;
// they are new INQs, not copies, and keep the path valid on their own.
func TestRestartNumbersAnew(t *testing.T) {
	tab := New(Config{LANs: 2, Misses: 3, Successes: 3, MaxLoss: 0.2, LossWindow: 10})
	var evs []Event
	at := t0
	for k := range 30 {
		boot, n := uint32(1), uint64(k+1)
		if k >= 4 {
			boot, n = 2, uint64(k-3)
		}
		for lan := range 2 {
			evs = tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: 100 * time.Millisecond, INQ: n, Boot: boot, At: at}, evs)
		}
		at = at.Add(100 * time.Millisecond)
		evs = tab.Expire(at, evs)
		if k == 6 {
			tab.Paths(at, func(_ PeerID, lan int, p Path, _ Route) {
				if p.Quality.InSlots != 7 {
					t.Errorf("LAN %s, 3 INQs after the restart: %d slots, want 4 before it and 3 after", LANName(lan), p.Quality.InSlots)
				}
			})
		}
	}
	for _, e := range evs {
		if e.Kind != Discovered {
			t.Errorf("event %+v, want none", e)
		}
	}
	tab.Paths(at, func(_ PeerID, lan int, p Path, _ Route) {
		if p.Quality.LossIn != 0 || p.Quality.InSlots != 10 {
			t.Errorf("LAN %s: %+v, want none lost of 10", LANName(lan), p.Quality)
		}
	})
}

// TestHearingLossy: the cluster's view marks a heard path lossy by the
// path's own figures: over a full window, loss past DefaultLossy without
// --max-loss, past --max-loss with it; and a path held invalid for loss
// stays lossy until it is clean, below half the threshold, so that the
// view does not flicker at the threshold.
func TestHearingLossy(t *testing.T) {
	lossy := func(p *pair) uint8 {
		hs := p.tab.Hearing(p.now, nil)
		if len(hs) != 1 || hs[0].Heard != 0b11 {
			t.Fatalf("hearing %+v, want the peer heard on both LANs", hs)
		}
		return hs[0].Lossy
	}
	every := func(n int) func(lan, k int) packet {
		return func(lan, k int) packet {
			if lan == 0 && k%n == 0 {
				return packet{}
			}
			return all(lan, k)
		}
	}
	p := newPair(t, Config{LossWindow: 20}, 50*time.Millisecond)
	p.run(10, every(4))
	if got := lossy(p); got != 0 {
		t.Errorf("25 %% lost, half a window: lossy %02b, want none before the window is full", got)
	}
	p.run(30, every(4))
	if got := lossy(p); got != 0b01 {
		t.Errorf("25 %% lost on LAN A: lossy %02b, want 01", got)
	}
	p.run(30, every(6)) // about 17 %
	if got := lossy(p); got != 0b01 {
		t.Errorf("17 %% lost on LAN A: lossy %02b, want 01", got)
	}
	p.run(30, every(16)) // about 6 %
	if got := lossy(p); got != 0 {
		t.Errorf("6 %% lost: lossy %02b, want none", got)
	}

	p = newPair(t, Config{LossWindow: 20, MaxLoss: 0.2}, 50*time.Millisecond)
	p.run(40, every(3))
	if got := lossy(p); got != 0b01 || p.path(0).State != Invalid {
		t.Fatalf("33 %% lost against --max-loss 20: lossy %02b, path %v; want 01, invalid", got, p.path(0).State)
	}
	p.run(40, every(8)) // 12.5 %: under the threshold, over half of it
	if got := lossy(p); got != 0b01 || p.path(0).State != Invalid {
		t.Errorf("12.5 %% lost, held for loss: lossy %02b, path %v; want 01, invalid", got, p.path(0).State)
	}
	p.run(40, all)
	if got := lossy(p); got != 0 || p.path(0).State != Valid {
		t.Errorf("clean again: lossy %02b, path %v; want none, valid", got, p.path(0).State)
	}
}
