package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/faild/faild/platform"
)

// A failed route write is tried again after retryMin, doubling up to
// retryMax; the kernel's table is read whole every reconcileEvery, as a
// safety net under the route subscription.
const (
	retryMin       = 100 * time.Millisecond
	retryMax       = 30 * time.Second
	reconcileEvery = 30 * time.Second
)

// reconciler makes faild's routes in the kernel what faild wants, level
// triggered: every destination is judged from what the kernel holds now
// (its view, kept true by the route subscription and by a whole read when
// changes may have been lost) against what faild wants, whenever either
// changes. A route of anyone else's to a destination faild wants makes
// faild withdraw its own and wait; when that route goes, faild's comes
// back. The loop goroutine owns it.
type reconciler struct {
	w platform.Writer
	// kernel is the view: the kernel's host routes by destination,
	// faild's and others', as last read or reported.
	kernel map[netip.Prefix][]platform.KernelRoute
	// echoes holds, by destination and in order, the changes faild made
	// whose news the kernel has not yet sent back: the view shows them
	// already, and their news must not move it back to where it was.
	echoes map[netip.Prefix][]platform.RouteChange
	want   map[netip.Prefix]platform.Route
	// failed holds the destinations whose last write failed, with the
	// error, until a write succeeds or the route is no longer wanted.
	failed  map[netip.Prefix]error
	retryAt time.Time // zero when nothing waits for a retry
	backoff time.Duration
	fullAt  time.Time // when the whole table is read next
	// dirty: the view may be wrong (a read failed); read it whole again
	// at the next retry.
	dirty bool
}

func newReconciler(w platform.Writer) *reconciler {
	return &reconciler{w: w, kernel: make(map[netip.Prefix][]platform.KernelRoute), echoes: make(map[netip.Prefix][]platform.RouteChange),
		want: make(map[netip.Prefix]platform.Route), failed: make(map[netip.Prefix]error), backoff: retryMin}
}

// Action is one thing the reconciler did or found about a destination,
// for the event log and the hooks.
type Action struct {
	Kind   ActionKind
	Dst    netip.Prefix
	Route  platform.Route       // what was added, replaced to, or removed
	Old    platform.Route       // Replaced: what it was
	Other  platform.KernelRoute // Blocked, Withdrawn: the route of someone else's there
	Err    error                // Failed
	Reason string               // Removed: why (the routes' owner no longer wants it)
}

// ActionKind says what an Action did.
type ActionKind uint8

const (
	Added     ActionKind = iota + 1 // faild's route is in the kernel now
	Replaced                        // faild's route goes another way now
	Removed                         // faild's route is gone from the kernel
	Withdrawn                       // faild removed its own route for another's to the same destination
	Blocked                         // another's route holds a destination faild wants; nothing written
	Failed                          // a write failed; it is tried again
)

// Written reports whether the action changed the kernel's table.
func (a Action) Written() bool {
	return a.Kind == Added || a.Kind == Replaced || a.Kind == Removed || a.Kind == Withdrawn
}

// read replaces the view with the kernel's table.
func (r *reconciler) read() error {
	rs, err := r.w.Routes()
	if err != nil {
		r.dirty = true
		return err
	}
	clear(r.kernel)
	for _, kr := range rs {
		r.kernel[kr.Dst] = append(r.kernel[kr.Dst], kr)
	}
	r.dirty = false
	return nil
}

// news reports whether a change the kernel reported is news to the view,
// not the echo of a write of faild's own that it shows already. An echo
// out of order means the view cannot tell any more: from there on the
// kernel's word counts.
func (r *reconciler) news(c platform.RouteChange) bool {
	dst := c.Route.Dst
	q := r.echoes[dst]
	if len(q) == 0 {
		return true
	}
	if e := q[0]; e.Deleted == c.Deleted && e.Route.Ours == c.Route.Ours && e.Route.Dst == dst &&
		e.Route.Via == c.Route.Via && e.Route.Index == c.Route.Index {
		if len(q) == 1 {
			delete(r.echoes, dst)
		} else {
			r.echoes[dst] = q[1:]
		}
		return false
	}
	delete(r.echoes, dst)
	return true
}

// record applies a change faild made to the view, and waits for its echo.
func (r *reconciler) record(c platform.RouteChange) {
	r.observe(c)
	if len(r.echoes[c.Route.Dst]) < 8 { // one a write; more means the news stopped coming
		r.echoes[c.Route.Dst] = append(r.echoes[c.Route.Dst], c)
	}
}

// observe applies one reported change to the view. Routes are keyed by
// destination and metric, as the kernel keys them.
func (r *reconciler) observe(c platform.RouteChange) {
	dst := c.Route.Dst
	rs := r.kernel[dst]
	i := slices.IndexFunc(rs, func(k platform.KernelRoute) bool { return k.Metric == c.Route.Metric })
	switch {
	case c.Deleted && i >= 0:
		rs = slices.Delete(rs, i, i+1)
	case c.Deleted:
	case i >= 0:
		rs[i] = c.Route
	default:
		rs = append(rs, c.Route)
	}
	if len(rs) == 0 {
		delete(r.kernel, dst)
		return
	}
	r.kernel[dst] = rs
}

// holds returns faild's route to dst and the first route of anyone else's
// there, as the view has them.
func (r *reconciler) holds(dst netip.Prefix) (ours *platform.KernelRoute, other *platform.KernelRoute) {
	rs := r.kernel[dst]
	for i := range rs {
		if rs[i].Ours {
			if ours == nil {
				ours = &rs[i]
			}
		} else if other == nil {
			other = &rs[i]
		}
	}
	return ours, other
}

// setWant replaces the set of routes faild wants.
func (r *reconciler) setWant(want map[netip.Prefix]platform.Route) {
	r.want = want
	for dst := range r.failed {
		if _, ok := want[dst]; !ok {
			delete(r.failed, dst)
		}
	}
}

// syncAll brings every destination into line, in address order, and
// appends what it did.
func (r *reconciler) syncAll(now time.Time, acts []Action) []Action {
	dsts := make([]netip.Prefix, 0, len(r.want))
	for dst := range r.want {
		dsts = append(dsts, dst)
	}
	for dst, rs := range r.kernel {
		if _, wanted := r.want[dst]; !wanted && slices.ContainsFunc(rs, func(k platform.KernelRoute) bool { return k.Ours }) {
			dsts = append(dsts, dst)
		}
	}
	slices.SortFunc(dsts, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	for _, dst := range dsts {
		acts = r.sync(dst, now, acts)
	}
	return acts
}

// sync brings one destination into line: faild's route there when it is
// wanted and no one else has a route there, none otherwise.
func (r *reconciler) sync(dst netip.Prefix, now time.Time, acts []Action) []Action {
	want, wanted := r.want[dst]
	ours, other := r.holds(dst)
	switch {
	case !wanted && ours == nil:
		return acts
	case !wanted:
		return r.remove(ours.Route, Action{Kind: Removed, Dst: dst, Route: ours.Route}, now, acts)
	case other != nil && ours != nil:
		return r.remove(ours.Route, Action{Kind: Withdrawn, Dst: dst, Route: ours.Route, Other: *other}, now, acts)
	case other != nil:
		delete(r.failed, dst)
		return append(acts, Action{Kind: Blocked, Dst: dst, Route: want, Other: *other})
	case ours == nil:
		err := r.w.Add(want)
		if errors.Is(err, platform.ErrForeign) {
			// A route the view does not show holds the place: the view is
			// wrong. Read it again and judge anew.
			if rerr := r.read(); rerr != nil {
				return r.fail(dst, errors.Join(err, rerr), now, acts)
			}
			if ours, other := r.holds(dst); ours != nil || other != nil {
				return r.sync(dst, now, acts)
			}
			return r.fail(dst, err, now, acts)
		}
		if err != nil {
			return r.fail(dst, err, now, acts)
		}
		r.wrote(want)
		return append(acts, Action{Kind: Added, Dst: dst, Route: want})
	case ours.Via != want.Via || ours.Index != want.Index:
		old := ours.Route
		if err := r.w.Replace(want); err != nil {
			return r.fail(dst, err, now, acts)
		}
		r.wrote(want)
		return append(acts, Action{Kind: Replaced, Dst: dst, Route: want, Old: old})
	}
	delete(r.failed, dst)
	return acts
}

// remove deletes faild's route rt and appends act when it is gone.
func (r *reconciler) remove(rt platform.Route, act Action, now time.Time, acts []Action) []Action {
	if err := r.w.Delete(rt); err != nil {
		return r.fail(act.Dst, err, now, acts)
	}
	delete(r.failed, act.Dst)
	r.record(platform.RouteChange{Route: platform.KernelRoute{Route: rt, Ours: true, Proto: platform.Protocol}, Deleted: true})
	return append(acts, act)
}

// wrote records faild's route rt in the view, as the kernel now holds it.
func (r *reconciler) wrote(rt platform.Route) {
	delete(r.failed, rt.Dst)
	r.record(platform.RouteChange{Route: platform.KernelRoute{Route: rt, Ours: true, Proto: platform.Protocol}})
}

// fail records a failed write, to be tried again with back-off.
func (r *reconciler) fail(dst netip.Prefix, err error, now time.Time, acts []Action) []Action {
	r.failed[dst] = err
	if r.retryAt.IsZero() {
		r.retryAt = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, retryMax)
	}
	return append(acts, Action{Kind: Failed, Dst: dst, Route: r.want[dst], Err: err})
}

// retry runs when retryAt has come: a whole read if the view may be wrong,
// then every destination again.
func (r *reconciler) retry(now time.Time, acts []Action) []Action {
	r.retryAt = time.Time{}
	if r.dirty {
		if err := r.read(); err != nil {
			r.retryAt = now.Add(r.backoff)
			r.backoff = min(2*r.backoff, retryMax)
			return acts
		}
	}
	acts = r.syncAll(now, acts)
	if r.retryAt.IsZero() {
		r.backoff = retryMin
	}
	return acts
}

// next is when the reconciler has work to do without news: a retry, or
// the periodic whole read.
func (r *reconciler) next() time.Time {
	if !r.retryAt.IsZero() && r.retryAt.Before(r.fullAt) {
		return r.retryAt
	}
	return r.fullAt
}

// removeAll deletes every route of faild's in the view, on a stop for
// good, and reports how many went.
func (r *reconciler) removeAll() (n int, err error) {
	for _, rs := range r.kernel {
		for _, kr := range slices.Clone(rs) {
			if !kr.Ours {
				continue
			}
			if e := r.w.Delete(kr.Route); e != nil {
				err = errors.Join(err, e)
				continue
			}
			r.observe(platform.RouteChange{Route: kr, Deleted: true})
			n++
		}
	}
	return n, err
}

// ours counts faild's routes in the view.
func (r *reconciler) ours() int {
	n := 0
	for _, rs := range r.kernel {
		for _, kr := range rs {
			if kr.Ours {
				n++
			}
		}
	}
	return n
}
