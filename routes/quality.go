package routes

import (
	"math"
	"slices"
	"time"
)

// Path quality, measured from the packets that flow anyway: per path, two
// streams of expected packets and the round trips of one of them.
//
//   - The round trips: every INQ we send on a LAN expects an ACK from each
//     peer there. The Requestor numbers our INQs per LAN, so an ACK says
//     exactly which INQ it answers and the INQs between two answered ones
//     went unanswered: lost on the way out or on the way back.
//   - The peer's INQs, every interval it announces: each carries its
//     number among the peer's INQs on the LAN (Observation.INQ), so the
//     numbers between two heard ones went missing on the way to us. An
//     interval the peer skipped (its loop held up: it sends no burst
//     after) has no number and is no loss.
//
// Each stream keeps the outcomes of its last W expected packets (a ring of
// bits) and totals since the path began; the round trips keep the last
// rttWindow RTTs. Memory is fixed per path when the path is made, and
// recording an outcome allocates nothing.
//
// An outage is not loss: a run of more than maxRun missed packets of one
// stream (a cut, one way or both) and the gap of a peer's restart (a new
// boot id) are left out, so a cut that heals does not leave a path judged
// lossy. A shorter cut counts: at -t 0.1 one of 0.8 s is 8 of the
// default window's 300 packets, under 3 %. How long a path stays failed
// over is no guide: under heavy loss it fails over for missed packets
// again and again, and leaving those runs out would hide the loss.

// DefaultLossWindow is the loss window, in packets of a stream, without
// --loss-window. Against --max-loss 10 a LAN that loses 3 % of its packets
// crosses 10 % over a window of 300 about once in 12 years at -t 0.1, one
// losing 5 % (half the threshold) once in 40 hours at -t 1 and 4 at
// -t 0.1; loss of 20 % crosses it after about 150 intervals (the model is
// in BENCHMARKS.md). A window of 600 makes half the threshold once in
// 11 days even at -t 0.01, and takes twice as long to react.
const DefaultLossWindow = 300

// MaxLossWindow bounds Config.LossWindow: 1.25 KiB of bits per stream and
// path.
const MaxLossWindow = 10000

// DefaultWindow is the window for a threshold of maxLoss (a fraction; 0
// for none): DefaultLossWindow, or 3000 intervals over the threshold in
// percent where that is longer, so that a lower threshold still stands as
// many standard deviations of a window's noise (about four) above half of
// itself.
func DefaultWindow(maxLoss float64) int {
	if maxLoss <= 0 {
		return DefaultLossWindow
	}
	return min(max(DefaultLossWindow, int(math.Ceil(30/maxLoss))), MaxLossWindow)
}

// MinWindow is the shortest window that can measure a loss of maxLoss (a
// fraction): one that holds at least one loss at that rate.
func MinWindow(maxLoss float64) int {
	if maxLoss <= 0 {
		return 1
	}
	return int(math.Ceil(1/maxLoss - 1e-9))
}

// rttWindow is how many of the latest round trips a path keeps for its
// percentiles (fewer when the loss window is shorter).
const rttWindow = 128

// lossWindow holds the outcomes of the last size expected packets of one
// stream, 1 for a packet that did not come, and counts since the start.
type lossWindow struct {
	bits   []uint64
	size   int    // W
	n      int    // outcomes held, at most size
	missed int    // 1 bits among them
	pos    int    // where the next outcome goes
	head   uint64 // the number of the newest slot; 0 before the first
	// run counts the slots up to head that are numbered one after another
	// in the ring (no outage left out between them), so that a late ACK
	// finds its INQ's slot.
	run                     int
	totalSlots, totalMissed uint64
	// outage marks the gap up to the next slot that comes as no loss.
	outage bool
}

func newLossWindow(bits []uint64, size int) lossWindow {
	return lossWindow{bits: bits, size: size}
}

func (w *lossWindow) bit(i int) bool { return w.bits[i/64]&(1<<(i%64)) != 0 }

func (w *lossWindow) setBit(i int, missed bool) {
	if missed {
		w.bits[i/64] |= 1 << (i % 64)
	} else {
		w.bits[i/64] &^= 1 << (i % 64)
	}
}

// push appends one outcome, dropping the oldest from a full window.
func (w *lossWindow) push(missed bool) {
	if w.n == w.size {
		if w.bit(w.pos) {
			w.missed--
		}
	} else {
		w.n++
	}
	w.setBit(w.pos, missed)
	if missed {
		w.missed++
	}
	if w.pos++; w.pos == w.size {
		w.pos = 0
	}
}

// got records that slot s came. The slots between the newest and s went
// missing, unless they were an outage: more than maxRun of them, or the
// stream was marked so (outage, cleared here). A slot at most maxRun
// before the newest is late: it turns its slot's miss into a receipt, or
// is a copy and changes nothing.
func (w *lossWindow) got(s, maxRun uint64) {
	if w.head != 0 && s <= w.head && w.head-s <= maxRun {
		back := w.head - s
		if back >= uint64(min(w.run, w.n)) {
			return
		}
		i := (w.pos - 1 - int(back)%w.size + w.size) % w.size
		if w.bit(i) {
			w.setBit(i, false)
			w.missed--
			w.totalMissed--
		}
		return
	}
	// Further back than a late packet comes, s numbers the stream anew
	// and is an outage too: a keyless forgery far ahead of the real
	// numbers must not freeze the window.
	outage := w.outage
	w.outage = false
	if gap := s - w.head - 1; w.head != 0 && s > w.head && gap <= maxRun && !outage {
		w.totalSlots += gap
		w.totalMissed += gap
		if gap >= uint64(w.size) {
			for i := range w.bits {
				w.bits[i] = ^uint64(0)
			}
			w.n, w.missed = w.size, w.size
		} else {
			for range gap {
				w.push(true)
			}
		}
		w.run += int(min(gap, uint64(w.size)))
	} else {
		// The first slot, or after an outage: numbered apart from the
		// slots before it.
		w.run = 0
	}
	w.push(false)
	w.totalSlots++
	w.head = s
	w.run = min(w.run+1, w.size)
}

// full reports whether the window holds size outcomes.
func (w *lossWindow) full() bool { return w.n == w.size }

func (w *lossWindow) ratio() float64 {
	if w.n == 0 {
		return 0
	}
	return float64(w.missed) / float64(w.n)
}

func (w *lossWindow) totalRatio() float64 {
	if w.totalSlots == 0 {
		return 0
	}
	return float64(w.totalMissed) / float64(w.totalSlots)
}

// rtts holds the latest round trips, each as rttCode, in a ring, and how
// many lie above Config.MaxRTT and below half of it, so that judging the
// median costs nothing per sample.
type rtts struct {
	codes      []uint16
	n, pos     int
	above, low int
}

// rttCode encodes a round trip as 1024 × log2 of its nanoseconds: two
// bytes, 0.07 % apart, in the order of the durations.
func rttCode(d time.Duration) uint16 {
	if d <= 1 {
		return 0
	}
	return uint16(min(math.Log2(float64(d))*1024, math.MaxUint16))
}

func rttDuration(c uint16) time.Duration {
	return time.Duration(math.Round(math.Exp2(float64(c) / 1024)))
}

// add records a round trip; hi and lo are the codes of the judged limits
// (the maximum and half of it), 0 when none are judged.
func (r *rtts) add(d time.Duration, hi, lo uint16) {
	c := rttCode(d)
	if r.n == len(r.codes) {
		old := r.codes[r.pos]
		r.above -= b2i(hi > 0 && old > hi)
		r.low -= b2i(lo > 0 && old < lo)
	} else {
		r.n++
	}
	r.codes[r.pos] = c
	r.above += b2i(hi > 0 && c > hi)
	r.low += b2i(lo > 0 && c < lo)
	if r.pos++; r.pos == len(r.codes) {
		r.pos = 0
	}
}

func (r *rtts) full() bool { return len(r.codes) > 0 && r.n == len(r.codes) }

// percentiles returns the round trips below which 50 % and 99 % of those
// held lie.
func (r *rtts) percentiles() (p50, p99 time.Duration) {
	if r.n == 0 {
		return 0, 0
	}
	var buf [rttWindow]uint16
	s := buf[:r.n]
	copy(s, r.codes[:r.n])
	slices.Sort(s)
	at := func(q float64) time.Duration { return rttDuration(s[int(math.Ceil(q*float64(r.n)))-1]) }
	return at(0.5), at(0.99)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quality is one path's measures, and the evidence its miss counting
// (detect.go) runs from.
type quality struct {
	acks, inqs lossWindow // round trips of our INQs; the peer's INQs
	rtt        rtts
	// The newest answered INQ: its number, and when its ACK came.
	ackN  uint64
	ackAt time.Time
	// The newest INQ of the peer's: its number (0: unnumbered), and when
	// it came; inqEvidence is when the newest one that counted as
	// evidence (did not list us as deaf) came.
	inqN        uint64
	inqAt       time.Time
	inqEvidence time.Time
	// deafRun counts the peer's INQs in a row that listed us.
	deafRun int
}

// restarted notes that the peer restarted: the gap in our round trips is
// no loss, and its INQs are numbered anew.
func (q *quality) restarted() {
	q.acks.outage = true
	q.inqs.head, q.inqN = 0, 0
}

// newQuality makes a path's measures with a window of w slots per stream,
// in one allocation of bits.
func newQuality(w int) quality {
	words := (w + 63) / 64
	bits := make([]uint64, 2*words)
	return quality{
		acks: newLossWindow(bits[:words:words], w),
		inqs: newLossWindow(bits[words:], w),
		rtt:  rtts{codes: make([]uint16, min(w, rttWindow))},
	}
}

// Quality is a path's measures, for status reports. Loss figures are
// fractions; a stream that has not been measured reports 0 with no slots.
type Quality struct {
	// Loss is what --max-loss judges: the larger of LossIn and the round
	// trips' loss spread over both directions, 1 − √(1 − LossRoundTrip),
	// over the window; LossTotal the same since the path began.
	Loss, LossTotal float64
	// LossIn is the loss of the peer's INQs, on their way to us;
	// LossRoundTrip that of our INQs and their ACKs together.
	LossIn, LossRoundTrip float64
	// InSlots and RoundTripSlots are how many expected packets each
	// window holds (at most Window).
	InSlots, RoundTripSlots int
	Window                  int
	// RTT50 and RTT99 are percentiles of the latest round trips
	// (RTTSamples of them).
	RTT50, RTT99 time.Duration
	RTTSamples   int
}

// spread is the loss per direction that a round-trip loss rt makes when
// both directions lose alike.
func spread(rt float64) float64 { return 1 - math.Sqrt(1-rt) }

// judged is the loss --max-loss compares: the larger of the peer's INQs'
// loss and the round trips' spread over both ways, over the window, and
// whether every stream the path has holds a full window.
func (t *Table) judged(p *peer, q *quality) (loss float64, full bool) {
	full = true
	streams := 0
	if t.acksRun(q) {
		loss = spread(q.acks.ratio())
		full = full && q.acks.full()
		streams++
	}
	if t.inqsMeasured(p, q) {
		loss = max(loss, q.inqs.ratio())
		full = full && q.inqs.full()
		streams++
	}
	return loss, full && streams > 0
}

// acksRun and inqsRun report whether a stream runs on the path: we send
// INQs and the peer has answered one; the peer sends INQs and one came.
// inqsMeasured: the peer's INQs run and are numbered, so their loss is
// known (a sender older than the numbers leaves it to the round trips).
func (t *Table) acksRun(q *quality) bool { return t.cfg.Interval > 0 && q.ackN > 0 }

func (t *Table) inqsRun(p *peer, q *quality) bool { return p.interval > 0 && !q.inqAt.IsZero() }

func (t *Table) inqsMeasured(p *peer, q *quality) bool {
	return t.inqsRun(p, q) && q.inqs.totalSlots > 0
}

// DefaultLossy is the loss over a full window past which a path counts
// as lossy in the cluster's view (Hearing) without --max-loss: 10 %, the
// threshold the bench recommends for --max-loss.
const DefaultLossy = 0.10

// Lossy is the loss past which a path counts as lossy in the cluster's
// view: Config.MaxLoss, or DefaultLossy without it.
func (t *Table) Lossy() float64 {
	if t.cfg.MaxLoss > 0 {
		return t.cfg.MaxLoss
	}
	return DefaultLossy
}

// lossy reports whether a path counts as lossy in the cluster's view: it
// loses more than Lossy over a full window, or it is held invalid for
// its loss until a window is clean (the hysteresis of --max-loss, so
// that a path at the threshold does not flicker in the view either).
func (t *Table) lossy(p *peer, pa *path) bool {
	if pa.Reason == ReasonLoss {
		return true
	}
	loss, full := t.judged(p, &pa.q)
	return full && loss > t.Lossy()
}

// quality reports a path's measures.
func (t *Table) quality(p *peer, q *quality) Quality {
	v := Quality{Window: t.window()}
	v.Loss, _ = t.judged(p, q)
	if t.acksRun(q) {
		v.LossRoundTrip, v.RoundTripSlots = q.acks.ratio(), q.acks.n
		v.LossTotal = spread(q.acks.totalRatio())
	}
	if t.inqsMeasured(p, q) {
		v.LossIn, v.InSlots = q.inqs.ratio(), q.inqs.n
		v.LossTotal = max(v.LossTotal, q.inqs.totalRatio())
	}
	v.RTT50, v.RTT99 = q.rtt.percentiles()
	v.RTTSamples = q.rtt.n
	return v
}

// maxRun is the longest run of missed packets of one stream that counts as
// loss; a longer one is an outage. Under random loss of 30 % the round trips
// lose one in two, and a run longer than 8 holds under 5 % of their misses.
func (t *Table) maxRun() uint64 { return uint64(max(8, 2*t.cfg.Misses+2)) }

// window is the loss window in intervals.
func (t *Table) window() int {
	if t.cfg.LossWindow > 0 {
		return t.cfg.LossWindow
	}
	return DefaultWindow(t.cfg.MaxLoss)
}

// measure records what one packet on a path says of its quality: an ACK
// closes its INQ's slot (and those unanswered before it) and gives a round
// trip; an INQ of the peer's closes its own slot and those of the numbers
// before it that did not come. A copy changes nothing, and a late INQ only
// fills its slot: it is old news for the rest.
func (t *Table) measure(pa *path, o Observation) {
	q := &pa.q
	maxRun := t.maxRun()
	if o.RTT > 0 {
		if o.INQ > 0 {
			q.acks.got(o.INQ, maxRun)
			if o.INQ >= q.ackN {
				q.ackN, q.ackAt = o.INQ, o.At
			}
		}
		q.rtt.add(o.RTT, t.rttHi, t.rttLo)
		return
	}
	if n := o.INQ; n > 0 {
		q.inqs.got(n, maxRun)
		if q.inqN > 0 && n <= q.inqN && q.inqN-n <= maxRun {
			return
		}
		q.inqN = n
	}
	q.inqAt = o.At
	if o.Deaf {
		q.deafRun++
	} else {
		q.deafRun = 0
		q.inqEvidence = o.At
	}
}
