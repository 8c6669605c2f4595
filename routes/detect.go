package routes

import (
	"time"
)

// Counting misses. A path carries up to two streams of evidence from the
// peer: ACKs to our INQs (every interval of ours, when we are a requestor
// and the peer has answered one) and the peer's own INQs (every interval
// it announces, once one came). Each expected packet has a slot that
// expires a grace after it is due: an INQ of ours when it was sent, one of
// the peer's one of its intervals after the one before. A Valid path is
// invalid when, since its latest evidence,
//
//   - f slots have expired, where only one stream runs: f intervals, as
//     the options say; or
//   - 2f−1 slots of the two streams together have expired, where both
//     run: at -f 3, five packets, between two and three intervals.
//
// Two packets an interval that both fail to come are far stronger evidence
// of a cut than one: random loss must take both. Taken from the latest
// evidence of either stream, f intervals would wait for f of each, 2f
// packets, and detect a cut later than bfdd does with f; 2f−1 of them
// detect it sooner while random loss fakes a cut less often than it makes
// bfdd's f missed packets (BENCHMARKS.md: the round trips lose about twice
// as much as one direction, and 4f/3 of them, tried too, did not). The
// peer's INQs that list us as deaf are no evidence and expect none: the
// path then has our stream alone. A path that has carried no evidence yet
// has one detection time (detection) from when it was learnt.

// sent is an INQ we sent on a LAN: its number and when.
type sent struct {
	n  uint64
	at time.Time
}

// Sent tells the table of the newest INQ sent on lan: its number n
// (counted per LAN from 1, as the ACKs' Observation.INQ) and when it was
// sent. The expected ACKs are counted against it, so an INQ that was due
// but never sent (our own loop held up) is no miss. The INQs before it
// are taken to be spaced at our interval, except across the latest
// interval that was clearly shorter (an INQ sent early to take its place,
// phase.go): that one is kept too, and those up to it are spaced back
// from it. Spaced back from the newest instead, they would seem older
// than they are and expire early.
func (t *Table) Sent(lan int, n uint64, at time.Time) {
	if lan < 0 || lan >= len(t.sent) {
		return
	}
	s := &t.sent[lan]
	early := false
	if iv := t.cfg.Interval; n == s.n+1 && s.n > 0 && at.Sub(s.at) < iv-iv/8 {
		t.short[lan] = *s
		early = true
	}
	*s = sent{n: n, at: at}
	if early {
		// The INQs after an early one come sooner than the deadlines
		// queued before it expected (the early one itself is due when
		// the one it replaces was, silentAt): queue anew those that now
		// fall sooner. At most once an interval, as the look-ahead's
		// walk: an INQ moved to its place (phase.go), or sent on time
		// after one our loop sent late.
		for _, p := range t.peers {
			t.sooner(p, lan, at)
		}
	}
}

// misses is how many slots since the latest evidence make a Valid path
// invalid: f with one stream, 2f−1 (at least 2) with two.
func (t *Table) misses(streams int) int {
	if streams < 2 {
		return t.cfg.Misses
	}
	return max(2*t.cfg.Misses-1, 2)
}

// progression is the expiry times start + i·step of slots i = 0, 1, ...,
// n of them (n < 0: without end).
type progression struct {
	start time.Time
	step  time.Duration
	n     int64
}

// upTo counts the slots that have expired by t.
func (s progression) upTo(t time.Time) int64 {
	if t.Before(s.start) {
		return 0
	}
	k := int64(t.Sub(s.start)/s.step) + 1
	if s.n >= 0 {
		k = min(k, s.n)
	}
	return k
}

// silentAt is when a Valid path goes invalid without further evidence, as
// of now.
func (t *Table) silentAt(p *peer, pa *path, lan int, now time.Time) time.Time {
	q := &pa.q
	var ps [5]progression
	slots := ps[:0]
	streams := 0
	from := pa.LastEvidence // the newest evidence of the streams that count
	if s := t.sent[lan]; t.acksRun(q) && s.n >= q.ackN {
		// Our INQs after the newest answered one: those sent (spaced at
		// our interval back from the newest) and those to come, from now
		// at the soonest.
		iv := t.cfg.Interval
		g := grace(iv)
		// The k INQs up to last, spaced back from it.
		upTo := func(last sent, k uint64) progression {
			return progression{start: last.at.Add(-time.Duration(k-1)*iv + g), step: iv, n: int64(k)}
		}
		if s.n > q.ackN {
			after := q.ackN
			e := t.short[lan]
			if e.n > q.ackN && e.n < s.n {
				// A shortened interval among them (see Sent).
				slots = append(slots, upTo(e, e.n-q.ackN))
				after = e.n
			}
			if e.n > 0 && e.n == after {
				// The INQ sent early after it expires no sooner than a
				// full interval after the one before: a miss is an
				// interval without its ACK, and f INQs sent closer
				// together would leave the ACKs less time than f
				// intervals, less than a round trip once the gap is.
				early := upTo(s, s.n-after)
				early.n = 1
				if floor := e.at.Add(iv + g); early.start.Before(floor) {
					early.start = floor
				}
				slots = append(slots, early)
				after++
			}
			if s.n > after {
				slots = append(slots, upTo(s, s.n-after))
			}
		}
		next := s.at.Add(iv)
		if next.Before(now) {
			next = now
		}
		slots = append(slots, progression{start: next.Add(g), step: iv, n: -1})
		streams++
		from = q.ackAt
	}
	if t.inqsRun(p, q) && !q.inqEvidence.IsZero() && q.deafRun == 0 {
		// While the peer's INQs list us they are no evidence, and they
		// expect none either: counting them as misses would have the
		// ACKs alone beat a miss every interval.
		iv := max(p.interval, MinInterval)
		slots = append(slots, progression{start: q.inqEvidence.Add(iv + grace(iv)), step: iv, n: -1})
		if streams == 0 {
			from = q.inqEvidence
		}
		streams++
	}
	switch streams {
	case 0:
		return pa.LastEvidence.Add(t.detection(p))
	case 2:
		from = pa.LastEvidence
	}
	// With one stream, since its own newest evidence: our unanswered INQs
	// count from the cut even while the peer's INQs came on a while.
	need := t.misses(streams)
	// The need-th slot to expire after from, the streams' slots taken in
	// the order they expire: a merge of at most five progressions, need
	// steps (2f−1 at most).
	var taken [len(ps)]int64
	for i, s := range slots {
		taken[i] = s.upTo(from) // expired by from: before the count starts
	}
	var at time.Time
	for range need {
		first := -1
		var firstAt time.Time
		for i, s := range slots {
			if s.n >= 0 && taken[i] >= s.n {
				continue
			}
			if e := s.start.Add(time.Duration(taken[i]) * s.step); first < 0 || e.Before(firstAt) {
				first, firstAt = i, e
			}
		}
		if first < 0 {
			// Cannot happen: every stream that runs expects packets
			// without end.
			return pa.LastEvidence.Add(t.detection(p))
		}
		taken[first]++
		at = firstAt
	}
	return at
}
