package routes

import "time"

// Placing our INQs. A path's two evidence streams, the ACKs to our INQs
// and the peer's own INQs, detect a cut soonest when they are half an
// interval apart: the 2f−1st slot after the cut (detect.go) then expires
// 2.25 intervals after it on average, against 2.5 when they are in phase,
// as they are in a cluster whose nodes started together. (For streams φ
// of an interval apart, 2.5 − φ + φ².) So the requestors of one interval
// spread their INQs evenly over it in the order of their node ids: the
// one with the highest id keeps its time, and one with r higher ids among
// n sends r/n of an interval after it. All take their place from the
// same node, so no move makes another move.
//
// A node takes its place only by sending an INQ early (a late one would
// be a missed slot at its peers), only when it is more than an eighth of
// an interval off, and then not again for placeHold intervals, while its
// peers measure the new time. Peers whose INQs did not come in the last
// two of our intervals, or that send at another interval, do not count.

// placeHold is how many intervals our INQs stay where they are after a move.
const placeHold = 16

// Place returns when our INQ due at due should go: at due, or earlier to
// take its place among the requestors. Called once an interval, when the
// INQs before it have gone, at now.
func (t *Table) Place(due, now time.Time) time.Time {
	iv := t.cfg.Interval
	if iv <= 0 || now.Before(t.placeHold) {
		return due
	}
	announced := iv.Truncate(time.Microsecond) // as the wire carries it
	// anchor is the highest id above ours, anchorAt when its newest INQ came.
	var anchor PeerID
	var anchorAt time.Time
	n, r := int64(1), int64(0)
	for _, p := range t.peers {
		if p.interval != announced {
			continue
		}
		at := p.lastINQ()
		if at.IsZero() || now.Sub(at) >= 2*iv {
			continue
		}
		n++
		if p.id > t.cfg.Self {
			r++
			if p.id > anchor {
				anchor, anchorAt = p.id, at
			}
		}
	}
	if r == 0 {
		return due
	}
	place := anchorAt.Add(time.Duration(int64(iv) * r / n))
	// How far due lies after the latest place at or before it.
	off := (due.Sub(place)%iv + iv) % iv
	if off <= iv/8 || off >= iv-iv/8 {
		return due
	}
	t.placeHold = now.Add(placeHold * iv)
	return due.Add(-off)
}

// lastINQ is when the newest of the peer's INQs that counted came, on any
// LAN; zero for none.
func (p *peer) lastINQ() time.Time {
	var at time.Time
	for _, pa := range p.paths {
		if pa != nil && pa.q.inqEvidence.After(at) {
			at = pa.q.inqEvidence
		}
	}
	return at
}
