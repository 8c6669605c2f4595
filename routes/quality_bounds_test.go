package routes

import (
	"testing"
	"time"
)

// TestLossWindowBounds: a gap of exactly maxRun missed slots is loss, not
// an outage; a slot exactly maxRun behind the newest is late and fills
// its slot; the totals' ratio is missed over slots.
func TestLossWindowBounds(t *testing.T) {
	const maxRun = 4
	w := newLossWindow(make([]uint64, 1), 16)
	w.got(1, maxRun)
	w.got(2+maxRun, maxRun) // 2..5 missing: maxRun of them
	if w.n != 6 || w.missed != maxRun || w.head != 6 {
		t.Fatalf("after a gap of maxRun: %d slots, %d missed, head %d; want 6, %d, 6", w.n, w.missed, w.head, maxRun)
	}
	w.got(2, maxRun) // maxRun behind the newest: late
	if w.n != 6 || w.missed != maxRun-1 || w.head != 6 {
		t.Errorf("a slot maxRun late: %d slots, %d missed, head %d; want 6, %d, 6", w.n, w.missed, w.head, maxRun-1)
	}
	if got := w.totalRatio(); got != 0.5 {
		t.Errorf("totalRatio %v, want 3 missed of 6 = 0.5", got)
	}
	if got := (&lossWindow{}).totalRatio(); got != 0 {
		t.Errorf("totalRatio of no slots %v, want 0", got)
	}
}

// TestRTTsBounds: a round trip of exactly the maximum is not above it, one
// of exactly half of it not below that, also when it leaves the ring; with
// no limits judged (0) nothing is counted.
func TestRTTsBounds(t *testing.T) {
	const max = 100 * time.Millisecond
	hi, lo := rttCode(max), rttCode(max/2)
	for _, tt := range []struct {
		name   string
		d      time.Duration
		hi, lo uint16
	}{
		{"the maximum", max, hi, lo},
		{"half of it", max / 2, hi, lo},
		{"no limits, long", 10 * max, 0, 0},
		{"no limits, short", max / 10, 0, 0},
	} {
		r := rtts{codes: make([]uint16, 4)}
		for range 12 { // three times round the ring
			r.add(tt.d, tt.hi, tt.lo)
		}
		if r.above != 0 || r.low != 0 || !r.full() {
			t.Errorf("%s: %d above, %d below, full %v; want 0, 0, true", tt.name, r.above, r.low, r.full())
		}
	}
	if (&rtts{}).full() {
		t.Error("a ring of no slots is full")
	}
}

// TestQualityWindowWords: a path's windows hold their whole size, here
// the default 300 slots, in each of both streams, in the fewest words.
func TestQualityWindowWords(t *testing.T) {
	q := newQuality(DefaultLossWindow)
	if len(q.acks.bits) != 5 || len(q.inqs.bits) != 5 {
		t.Errorf("%d and %d words of bits, want 5 each", len(q.acks.bits), len(q.inqs.bits))
	}
	for s := uint64(1); s <= 2*DefaultLossWindow; s += 2 { // every other slot missing
		q.acks.got(s, 8)
		q.inqs.got(s, 8)
	}
	for name, w := range map[string]*lossWindow{"acks": &q.acks, "inqs": &q.inqs} {
		if !w.full() || w.missed != DefaultLossWindow/2 {
			t.Errorf("%s: %d slots, %d missed; want %d, %d", name, w.n, w.missed, DefaultLossWindow, DefaultLossWindow/2)
		}
	}
}

// TestMaxRun: a run of missed packets counts as loss up to 2·f + 2 of
// them, and never fewer than 8.
func TestMaxRun(t *testing.T) {
	for misses, want := range map[int]uint64{1: 8, 3: 8, 4: 10, 5: 12, 10: 22} {
		tab := New(Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: misses, Successes: 3})
		if got := tab.maxRun(); got != want {
			t.Errorf("-f %d: maxRun %d, want %d", misses, got, want)
		}
	}
}
