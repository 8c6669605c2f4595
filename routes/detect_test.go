package routes

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ms is n milliseconds after t0.
func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// answered is a table at -f misses and -t 0.1 whose peer, a responder,
// answered INQ n (sent at 0.9 s) on LAN A a millisecond later.
func answered(misses int, n uint64) *Table {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: misses, Successes: 3})
	tab.Sent(0, n, ms(900))
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], RTT: time.Millisecond, INQ: n, At: ms(901)}, nil)
	return tab
}

// TestProgressionUpTo: a slot that expires at t has expired by t; a
// bounded progression has no more than its n slots, and n = 0 none; an
// endless one (n < 0) counts on.
func TestProgressionUpTo(t *testing.T) {
	const step = 100 * time.Millisecond
	for _, tt := range []struct {
		n    int64
		at   time.Duration // from the first slot's expiry
		want int64
	}{
		{-1, -time.Nanosecond, 0},
		{-1, 0, 1},
		{-1, step - time.Nanosecond, 1},
		{-1, step, 2},
		{-1, 10 * step, 11},
		{3, 10 * step, 3},
		{3, step, 2},
		{0, 10 * step, 0},
	} {
		s := progression{start: t0, step: step, n: tt.n}
		if got := s.upTo(t0.Add(tt.at)); got != tt.want {
			t.Errorf("%d slots: %d expired %v after the first's expiry, want %d", tt.n, got, tt.at, tt.want)
		}
	}
}

// TestSentINQsCountOnce: on a path whose peer only answers, the deadline
// after the ACK to INQ 10 (sent at 0.9 s) is the third INQ after it: each
// sent INQ unanswered expires a grace after it was sent, and the newest
// sent one is not counted again as the next to come. When our loop is held
// up and sends no more, the INQs not sent expect nothing: the slots to come
// start from now.
func TestSentINQsCountOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		sent int // INQs sent after INQ 10, one an interval from 1 s
		now  time.Time
		want time.Time
	}{
		{"none yet", 0, ms(950), ms(1205)},
		{"one", 1, ms(1000), ms(1205)},
		{"two", 2, ms(1100), ms(1205)},
		{"three", 3, ms(1200), ms(1205)},
		{"one, then held up", 1, ms(1300), ms(1405)},
	} {
		tab := answered(3, 10)
		for i := range tt.sent {
			tab.Sent(0, uint64(11+i), ms(1000+100*i))
		}
		p := tab.peers[peerID]
		if got := tab.silentAt(p, p.paths[0], 0, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: silent at %v, want %v", tt.name, got.Sub(t0), tt.want.Sub(t0))
		}
	}
}

// TestEarlyINQKeepsAnInterval: an INQ sent early to take its place
// (phase.go), 19 ms after the one before, expires no sooner than a full
// interval after that one: with -f 2, the ACK to INQ 20 (sent at 1 s) has
// until 1.205 s, not until 1.024 s, which a 30 ms round trip misses. A
// regular INQ after the early one expires a grace after it is sent.
func TestEarlyINQKeepsAnInterval(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sends []int // ms of INQs 20, 21...
		now   time.Time
		want  time.Time
	}{
		{"early one", []int{1000, 1019}, ms(1020), ms(1105)},
		{"early one, one after it", []int{1000, 1019, 1119}, ms(1120), ms(1105)},
		{"early one answered", []int{1000, 1019}, ms(1020), ms(1124)},
		{"early one answered late", []int{1000, 1019}, ms(1032), ms(1124)},
	} {
		tab := answered(2, 19)
		for i, at := range tt.sends {
			tab.Sent(0, uint64(20+i), ms(at))
		}
		if strings.HasPrefix(tt.name, "early one answered") {
			// The ACK to INQ 20, at now: after the early INQ's grace, in
			// the late case, which must still count INQ 21 as unanswered.
			tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], RTT: time.Millisecond, INQ: 20, At: tt.now}, nil)
		}
		p := tab.peers[peerID]
		if got := tab.silentAt(p, p.paths[0], 0, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: silent at %v, want %v", tt.name, got.Sub(t0), tt.want.Sub(t0))
		}
	}
}

// TestEarlyINQMovesDeadlines: the INQs after an early one come sooner than
// a deadline queued before it expected, so the early INQ queues the path
// anew: with -f 3, a responder's path whose last ACK answered INQ 19 and
// whose deadline was queued when it was learnt, at 1.206 s (its detection
// time; by its INQs 20 to 22 it would be 1.205 s), is due at 1.124 s once
// INQ 21 went early at 1.019 s, the next one coming at 1.119 s.
func TestEarlyINQMovesDeadlines(t *testing.T) {
	tab := answered(3, 19)
	tab.Sent(0, 20, ms(1000))
	if at, _ := tab.NextDeadline(); !at.Equal(ms(1206)) {
		t.Fatalf("deadline at %v before the early INQ, want 1.206s", at.Sub(t0))
	}
	tab.Sent(0, 21, ms(1019))
	if at, _ := tab.NextDeadline(); !at.Equal(ms(1124)) {
		t.Errorf("deadline at %v after the early INQ, want 1.124s", at.Sub(t0))
	}
}

// TestFailoverDatedAtExpiry: the Failover of an ACK-only path is dated
// when the last slot it needed expired, the third INQ unanswered's send
// time plus the grace, not when Expire happened to run.
func TestFailoverDatedAtExpiry(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3})
	var evs []Event
	for k := 1; k <= 13; k++ {
		at := t0.Add(time.Duration(k) * iv)
		evs = tab.Expire(at, evs)
		tab.Sent(0, uint64(k), at)
		if k <= 10 {
			evs = tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], RTT: time.Millisecond, INQ: uint64(k), At: at.Add(time.Millisecond)}, evs)
		}
	}
	evs = tab.Expire(t0.Add(2*time.Second), evs) // late
	want := t0.Add(13*iv + grace(iv))
	for _, e := range evs {
		if e.Kind == Failover && e.LAN == 0 {
			if !e.At.Equal(want) {
				t.Errorf("failover at %v, want %v", e.At.Sub(t0), want.Sub(t0))
			}
			return
		}
	}
	t.Errorf("events %+v, want a failover", evs)
}

// TestSentIgnoresUnknownLAN: Sent for a LAN the table does not have is
// ignored, not a panic.
func TestSentIgnoresUnknownLAN(t *testing.T) {
	tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})
	for _, lan := range []int{-1, 2, MaxLANs} {
		tab.Sent(lan, 1, t0)
	}
	if tab.sent[0] != (sent{}) || tab.sent[1] != (sent{}) {
		t.Errorf("sent %+v, want nothing recorded", tab.sent)
	}
}

// TestACKsAloneKeepThePath: when the peer's INQs stop reaching us on a
// LAN but its ACKs still come, the path stays valid: every ACK is fresh
// evidence, and the peer's missed INQs since the last one count only
// after it. At -f 2 (three slots of the two streams) the path would fail
// in the middle of an interval had the slots before the newest evidence
// counted.
func TestACKsAloneKeepThePath(t *testing.T) {
	for _, misses := range []int{2, 3} {
		p := newPair(t, Config{Misses: misses, Successes: misses}, 50*time.Millisecond)
		p.run(10, all)
		p.run(30, func(lan, k int) packet { return packet{ack: true, inq: lan == 1} })
		if len(p.evs) > 0 {
			t.Errorf("-f %d: events %v, want none while the ACKs come", misses, p.evs)
		}
		p.run(10, func(lan, k int) packet { return packet{ack: lan == 1, inq: lan == 1} })
		if got := strings.Join(p.evs, " "); !strings.Contains(got, "Failover/0/missed") {
			t.Errorf("-f %d: events %s, want LAN A failed over once the ACKs stop too", misses, got)
		}
	}
}

// TestLateINQIsOldNews: a peer's INQ up to maxRun behind the newest (a
// delayed copy, or one overtaken) only fills its slot: it does not put
// off detection, which counts from the newest INQ's arrival. One further
// behind numbers the stream anew and counts as fresh evidence.
func TestLateINQIsOldNews(t *testing.T) {
	iv := 100 * time.Millisecond
	for _, tt := range []struct {
		behind uint64
		want   time.Duration // the failover, from t0
	}{
		{0, 2305 * time.Millisecond}, // a copy
		{1, 2305 * time.Millisecond},
		{8, 2305 * time.Millisecond}, // maxRun at -f 3
		{9, 2455 * time.Millisecond},
	} {
		tab := New(Config{LANs: 2, Misses: 3, Successes: 3}) // we only respond: the peer's INQs alone
		inq := func(lan int, n uint64, at time.Time) []Event {
			return tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, INQ: n, At: at}, nil)
		}
		var got time.Duration
		for ms := 0; ms <= 3000 && got == 0; ms++ {
			at := t0.Add(time.Duration(ms) * time.Millisecond)
			if ms%100 == 0 && ms > 0 {
				n := uint64(ms / 100)
				inq(1, n, at)
				if n <= 20 {
					inq(0, n, at)
				}
			}
			if ms == 2150 {
				inq(0, 20-tt.behind, at)
			}
			for _, e := range tab.Expire(at, nil) {
				if e.Kind == Failover && e.LAN == 0 {
					got = e.At.Sub(t0)
				}
			}
		}
		if got != tt.want {
			t.Errorf("INQ %d behind the newest, 150 ms after it: failover at %v, want %v", tt.behind, got, tt.want)
		}
	}
}

// TestDeafCopiesCountOnce: the peer's word (its INQs listing us, f
// intervals of them, with --max-loss) counts rounds, not packets: a round
// sent twice (the version-1 copy beside the version-2 INQ) counts once.
func TestDeafCopiesCountOnce(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, MaxLoss: 0.1})
	var got []string
	for k := 1; k <= 20; k++ {
		at := t0.Add(time.Duration(k) * iv)
		for lan := range 2 {
			tab.Sent(lan, uint64(k), at)
			evs := tab.Observe(Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, RTT: time.Millisecond, INQ: uint64(k), At: at.Add(time.Millisecond)}, nil)
			for c := range 2 {
				o := Observation{Peer: peerID, LAN: lan, Addrs: peerAddrs[:2], Interval: iv, INQ: uint64(k), Deaf: lan == 0 && k > 10,
					At: at.Add(time.Duration(50+c) * time.Millisecond)}
				evs = tab.Observe(o, evs)
			}
			for _, e := range evs {
				if e.Kind == Failover {
					got = append(got, e.At.Sub(t0).String()+"/"+e.Reason.String())
				}
			}
		}
	}
	// The fourth round listing us (deafRun > f) is interval 14's.
	if want := "1.45s/peer"; strings.Join(got, " ") != want {
		t.Errorf("failovers %v, want %s", got, want)
	}
}

// steady drives tab through k intervals of 100 ms from interval from on:
// our INQs at the start of each (a requestor's), and from each of peers
// peers, heard on both LANs at its phase, its own INQ and (to a
// requestor) the ACK to ours, unless silent. Expire runs at each start and
// at each deadline it asks for before the next packet, as the daemon's
// loop does; wakes counts those at a deadline.
type steady struct {
	tab       *Table
	requestor bool
	addrs     [][]netip.Addr
	evs       []Event
	wakes     int
	late      int // failovers Expire made after their time
}

func newSteady(peers int, requestor bool) *steady {
	cfg := Config{LANs: 2, Misses: 3, Successes: 3}
	if requestor {
		cfg.Interval = 100 * time.Millisecond
	}
	st := &steady{tab: New(cfg), requestor: requestor}
	for i := range peers {
		st.addrs = append(st.addrs, []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}),
			netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})})
	}
	return st
}

// advance runs the wake-ups Expire asks for before at.
func (st *steady) advance(at time.Time) {
	for {
		next, ok := st.tab.NextDeadline()
		if !ok || !next.Before(at) {
			return
		}
		st.wakes++
		st.expire(next)
	}
}

// expire runs Expire at now and counts the failovers it made late: a
// path due before now whose deadline did not wake the loop in time.
func (st *steady) expire(now time.Time) {
	n := len(st.evs)
	st.evs = st.tab.Expire(now, st.evs)
	for _, e := range st.evs[n:] {
		if e.Kind == Failover && !e.At.Equal(now) {
			st.late++
		}
	}
}

func (st *steady) run(from, k int, silent bool) {
	iv := 100 * time.Millisecond
	for n := from; n < from+k; n++ {
		start := t0.Add(time.Duration(n) * iv)
		st.advance(start)
		st.expire(start) // the wake-up that sends our INQs
		if st.requestor {
			for lan := range 2 {
				st.tab.Sent(lan, uint64(n), start)
			}
		}
		for i := range st.addrs {
			at := start.Add(time.Duration(i) * iv / time.Duration(len(st.addrs)))
			st.advance(at)
			if silent {
				continue
			}
			for lan := range 2 {
				if st.requestor {
					st.evs = st.tab.Observe(Observation{Peer: PeerID(1000 + i), LAN: lan, Addrs: st.addrs[i], Interval: iv,
						RTT: time.Millisecond, INQ: uint64(n), At: at}, st.evs)
				}
				st.evs = st.tab.Observe(Observation{Peer: PeerID(1000 + i), LAN: lan, Addrs: st.addrs[i], Interval: iv,
					INQ: uint64(n), At: at.Add(time.Millisecond)}, st.evs)
			}
		}
	}
}

// TestExpireLooksAhead: in a steady state, 50 peers heard on both LANs at
// phases spread over the interval, the only wake-ups that Expire needs are
// those that send our INQs: each healthy path's entry that comes up in the
// interval ahead is moved on by the Expire before it. Without the
// look-ahead the entries' phases were a wake-up each.
func TestExpireLooksAhead(t *testing.T) {
	st := newSteady(50, true)
	st.run(1, 10, false)
	st.wakes = 0
	st.run(11, 40, false)
	for _, e := range st.evs {
		if e.Kind != Discovered {
			t.Fatalf("event %v in a steady state", e)
		}
	}
	if st.wakes != 0 {
		t.Errorf("%d wake-ups besides the INQs' in 4 s, want none", st.wakes)
	}
}

// TestExpireLooksAheadLinearly: when every peer falls silent at once, the
// deadlines of all their paths fall within one interval, and Expire wakes
// at each; it must not walk all the others at each of them again. A
// responder's paths have only the peers' INQs, at their phases, so the
// deadlines are spread. 200 peers, 400 paths: a walk of the whole queue
// at each deadline is some 40,000 entries taken off it; looking ahead once
// a half interval, a few per path.
func TestExpireLooksAheadLinearly(t *testing.T) {
	const peers = 200
	st := newSteady(peers, false)
	st.run(1, 10, false)
	before := st.tab.walked
	st.run(11, 10, true)
	failovers := 0
	for _, e := range st.evs {
		if e.Kind == Failover {
			failovers++
		}
	}
	if failovers != 2*peers || st.late > 0 {
		t.Fatalf("%d failovers after the cut, %d of them late, want %d on time", failovers, st.late, 2*peers)
	}
	if walked := st.tab.walked - before; walked > 10*2*peers {
		t.Errorf("Expire took %d entries off its queue for %d paths going silent, want at most %d", walked, 2*peers, 10*2*peers)
	}
}
