package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/faild/faild/platform"
)

// applier makes faild's routes in the kernel equal the desired set. It runs
// in its own task so that a slow kernel never delays detection: the decide
// loop hands it the latest desired set and moves on; sets that arrive while
// it is busy are coalesced.
type applier struct {
	w         platform.Writer
	log       *slog.Logger
	want      chan []platform.Route
	installed map[netip.Prefix]platform.Route
	foreign   map[netip.Prefix]bool // destinations already logged as foreign
}

// A failed route write is tried again after retryMin, doubling up to
// retryMax; the kernel's table is compared with what faild believes it holds
// every reconcileEvery, so that a route deleted or added by hand does not
// leave faild's view drifting from the truth.
const (
	retryMin       = 100 * time.Millisecond
	retryMax       = 30 * time.Second
	reconcileEvery = 30 * time.Second
)

func newApplier(w platform.Writer, log *slog.Logger) *applier {
	return &applier{
		w: w, log: log,
		want:      make(chan []platform.Route, 1),
		installed: make(map[netip.Prefix]platform.Route),
		foreign:   make(map[netip.Prefix]bool),
	}
}

// removeStale deletes every route of faild's protocol, left by an earlier
// run that did not stop cleanly, before this run decides anything.
func (a *applier) removeStale() error {
	rs, err := a.w.Installed()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := a.w.Delete(r); err != nil {
			return err
		}
		a.log.Info("stale-route", "route", r.String(), "action", "removed")
	}
	return nil
}

// set hands over the latest desired routes without blocking.
func (a *applier) set(desired []platform.Route) {
	select {
	case <-a.want:
	default:
	}
	a.want <- desired
}

// run applies desired sets until ctx ends.
func (a *applier) run(ctx context.Context) error {
	var desired []platform.Route
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := retryMin
	reconcile := time.NewTicker(reconcileEvery)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case desired = <-a.want:
		case <-retry.C:
		case <-reconcile.C:
			a.reconcile()
		}
		if a.apply(desired) {
			backoff = retryMin
			retry.Stop()
			continue
		}
		a.log.Warn("route-retry", "in", backoff.String())
		retry.Reset(backoff)
		backoff = min(2*backoff, retryMax)
	}
}

// reconcile compares faild's routes in the kernel with what it believes it
// installed: a route of faild's that it does not know of is removed, and a
// route it installed that has vanished is forgotten so that apply puts it
// back.
func (a *applier) reconcile() {
	rs, err := a.w.Installed()
	if err != nil {
		a.log.Error("reconcile-failed", "err", err)
		return
	}
	inKernel := make(map[netip.Prefix]bool, len(rs))
	for _, r := range rs {
		inKernel[r.Dst] = true
		if mine, ok := a.installed[r.Dst]; ok && mine.Via == r.Via && mine.Index == r.Index {
			continue
		}
		a.log.Warn("route-drift", "route", r.String(), "action", "removed: faild did not install it")
		if err := a.w.Delete(r); err != nil {
			a.log.Error("route-delete-failed", "route", r.String(), "err", err)
		}
		// What faild recorded for this destination, if anything, is not
		// what the kernel holds: forget it, so that apply adds the route
		// it wants again instead of taking it for installed.
		delete(a.installed, r.Dst)
	}
	for dst, r := range a.installed {
		if !inKernel[dst] {
			a.log.Warn("route-drift", "route", r.String(), "action", "missing from the kernel: adding it again")
			delete(a.installed, dst)
		}
	}
}

// apply makes one pass and reports whether every write succeeded.
func (a *applier) apply(desired []platform.Route) bool {
	ok := true
	want := make(map[netip.Prefix]platform.Route, len(desired))
	for _, r := range desired {
		want[r.Dst] = r
	}
	for dst, r := range a.installed {
		if _, keep := want[dst]; keep {
			continue
		}
		if err := a.w.Delete(r); err != nil {
			a.log.Error("route-delete-failed", "route", r.String(), "err", err)
			ok = false
			continue
		}
		delete(a.installed, dst)
	}
	for dst := range a.foreign {
		if _, still := want[dst]; !still {
			delete(a.foreign, dst)
		}
	}
	a.refresh(want)
	for dst, r := range want {
		if a.installed[dst] == r || a.foreign[dst] {
			continue
		}
		err := a.w.Add(r)
		switch {
		case errors.Is(err, platform.ErrForeign):
			old, had := a.installed[dst]
			if !had {
				a.foreign[dst] = true
				a.log.Warn("foreign-route", "dst", dst.String(), "wanted", r.String(),
					"action", "left alone, not overridden", "err", err)
				continue
			}
			// faild's own route to dst, through the gateway it wanted
			// before, must not stay beside the foreign one: it is stale,
			// and the foreign route's owner is in charge of dst now.
			a.log.Warn("foreign-route", "dst", dst.String(), "wanted", r.String(),
				"action", "left alone, not overridden; removing faild's own route", "removed", old.String(), "err", err)
			if err := a.w.Delete(old); err != nil {
				// Not marked foreign yet, so the retry tries again.
				a.log.Error("route-delete-failed", "route", old.String(), "err", err)
				ok = false
				continue
			}
			delete(a.installed, dst)
			a.foreign[dst] = true
		case err != nil:
			a.log.Error("route-add-failed", "route", r.String(), "err", err)
			ok = false
		default:
			a.installed[dst] = r
		}
	}
	return ok
}

// removeAll deletes every route this run installed, on a clean stop.
func (a *applier) removeAll() (n int, err error) {
	for dst, r := range a.installed {
		if e := a.w.Delete(r); e != nil {
			err = errors.Join(err, e)
			continue
		}
		delete(a.installed, dst)
		n++
	}
	return n, err
}

// refresh lets a writer that can read the kernel's table in one go do so
// before a pass adds routes (see platform.Refresher); without it, or if it
// fails, each Add looks its destination up alone.
func (a *applier) refresh(want map[netip.Prefix]platform.Route) {
	r, ok := a.w.(platform.Refresher)
	if !ok {
		return
	}
	for dst, rt := range want {
		if a.installed[dst] != rt && !a.foreign[dst] {
			if err := r.Refresh(); err != nil {
				a.log.Warn("route-refresh-failed", "err", err, "action", "looking each destination up alone")
			}
			return
		}
	}
}
