package routes

import "time"

// Damping, as corosync backs off a flapping link: each failover of a path
// within Config.DampWindow of its previous one doubles the good intervals
// it needs to switch back (Successes × 2^k, at most Successes × DampMax),
// and the doubling is undone one step per DampWindow in which the path
// showed no trouble. DampWindow 0 turns damping off; DampMax below 2 means
// no doubling.

// damping is one path's damping state: penalty doublings of the good
// intervals needed, as of trouble, the last time the path went bad (a
// failover, or a run of good intervals broken while invalid);
// lastFailover tells whether a failover came within the window.
type damping struct {
	penalty      int
	trouble      time.Time
	lastFailover time.Time
}

// damp updates a path's penalty for a failover at: one more doubling if
// the previous failover was within the window, after the decay for the
// quiet windows since the last trouble.
func (t *Table) damp(pa *path, at time.Time) {
	if t.cfg.DampWindow <= 0 {
		return
	}
	k := t.penalty(pa, at)
	if !pa.lastFailover.IsZero() && at.Sub(pa.lastFailover) < t.cfg.DampWindow {
		k = min(k+1, maxPenalty(t.cfg.DampMax))
	}
	pa.penalty, pa.trouble, pa.lastFailover = k, at, at
}

// penalty is the path's doublings at now: one fewer for each whole window
// without trouble since the last.
func (t *Table) penalty(pa *path, now time.Time) int {
	if t.cfg.DampWindow <= 0 || pa.penalty == 0 {
		return 0
	}
	quiet := int(now.Sub(pa.trouble) / t.cfg.DampWindow)
	return max(pa.penalty-quiet, 0)
}

// needs is how many consecutive good intervals the path needs at now to
// switch back.
func (t *Table) needs(pa *path, now time.Time) int {
	return t.cfg.Successes * min(1<<t.penalty(pa, now), max(t.cfg.DampMax, 1))
}

// maxPenalty is the fewest doublings that reach the factor dampMax, so
// that the penalty never grows past what it can matter.
func maxPenalty(dampMax int) int {
	k := 0
	for 1<<k < dampMax && k < 20 {
		k++
	}
	return k
}
