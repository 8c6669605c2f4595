package daemon

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/faild/faild/routes"
)

// report logs what one step did, one line a happening with fixed keys, so
// that `grep msg=failover` is a way to monitor. A line names the routes the
// kernel holds after the step, not the ones the tables wanted: a failover
// whose route could not be written says why instead. Hooks run only for
// routes that were really written or removed.
func (d *Daemon) report(now time.Time) {
	told := make(map[netip.Prefix]routes.Kind) // destinations an event line covered, by the event's kind
	for _, e := range d.evs {
		if dst, ok := hostPrefix(e.Addr); ok && e.LAN >= 0 {
			told[dst] = e.Kind
		}
		d.reportEvent(e)
	}
	for _, a := range d.acts {
		kind, covered := told[a.Dst]
		// A write the event line names needs no line of its own; a
		// destination held by another's route, or a write that failed,
		// always gets one.
		if !covered || a.Kind == Withdrawn || a.Kind == Blocked || a.Kind == Failed {
			d.reportAction(a)
		}
		if a.Written() {
			d.hooks.enqueue(d.hookEvent(a, kind, covered, now))
		}
	}
}

// hostPrefix is the host route destination of a peer address.
func hostPrefix(a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// kernelArgs says, as log keys, what the kernel holds for a path's
// destination: faild's route, or "none" and why.
func (d *Daemon) kernelArgs(dst netip.Prefix) []any {
	route, state := d.describeRoute(dst)
	switch state {
	case "installed":
		return []any{"route", route}
	case "":
		return []any{"route", "none"}
	}
	return []any{"route", "none", state, route}
}

// removedArgs names the route of faild's that the step removed for dst.
func (d *Daemon) removedArgs(dst netip.Prefix) []any {
	for _, a := range d.acts {
		if a.Dst == dst && (a.Kind == Removed || a.Kind == Withdrawn) {
			return []any{"route", a.Route.String()}
		}
	}
	if _, state := d.describeRoute(dst); state == "pending" {
		return d.kernelArgs(dst)
	}
	return []any{"route", "none"}
}

func (d *Daemon) reportEvent(e routes.Event) {
	peer := e.Peer.String()
	path := func() []any {
		return []any{"peer", peer, "lan", routes.LANName(e.LAN), "dev", d.names[e.LAN], "addr", e.Addr.String()}
	}
	dst, _ := hostPrefix(e.Addr)
	switch e.Kind {
	case routes.Discovered:
		d.log.Info("discovered", path()...)
	case routes.Failover:
		args := append(path(), "reason", e.Reason.String())
		args = append(append(args, d.measuredArgs(e)...), d.kernelArgs(dst)...)
		if e.Needs > d.cfg.Successes {
			// The path flaps: say so, and what it takes to come back.
			args = append(args, "damping", fmt.Sprintf("needs %d good intervals", e.Needs))
		}
		d.log.Warn("failover", args...)
	case routes.Switchback:
		d.log.Info("switchback", append(append(path(), d.measuredArgs(e)...), d.removedArgs(dst)...)...)
	case routes.Held:
		args := append(path(), "reason", e.Reason.String())
		args = append(append(args, d.measuredArgs(e)...), d.kernelArgs(dst)...)
		detail := "failed over already, and now kept so until its window is clean"
		if e.Reason == routes.ReasonPeer {
			detail = "clean here, but the peer cannot hear this node well yet: kept failed over until it can"
		}
		d.log.Warn("held", append(args, "detail", detail)...)
	case routes.Rerouted:
		args := d.kernelArgs(dst)
		if ours, _ := d.rec.holds(dst); ours == nil {
			args = d.removedArgs(dst)
			args = append(args, "detail", "no route now")
		}
		d.log.Info("reroute", append(path(), args...)...)
	case routes.Unreachable:
		d.log.Warn("unreachable", "peer", peer, "detail", "every LAN to the peer is down; no route installed")
	case routes.Reachable:
		d.log.Info("reachable", "peer", peer)
	case routes.Forgotten:
		d.log.Info("forgotten", "peer", peer, "detail", "silent on every LAN; its routes are removed")
	}
}

// measuredArgs are the log keys of the loss and round trip that a path's
// event carries while they are judged (--max-loss, --max-rtt).
func (d *Daemon) measuredArgs(e routes.Event) []any {
	var args []any
	if d.cfg.MaxLoss > 0 {
		args = append(args, "loss", FormatPercent(e.Loss))
	}
	if d.cfg.MaxRTT > 0 {
		args = append(args, "rtt", FormatSeconds(e.RTT.Seconds()))
	}
	return args
}

// FormatPercent shows a fraction as a percentage for reading: 23%, 4.1%,
// 0%.
func FormatPercent(f float64) string {
	pct := 100 * f
	switch {
	case pct == 0:
		return "0%"
	case pct < 10:
		return strconv.FormatFloat(pct, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(pct, 'f', 0, 64) + "%"
}

// reportAction logs what the reconciler did on its own account: a
// destination held by someone else's route, that route gone, a route
// missing or left over, a write that failed.
func (d *Daemon) reportAction(a Action) {
	dst := a.Dst.String()
	other, wasBlocked := d.blocked[a.Dst]
	switch a.Kind {
	case Blocked:
		if other == a.Other.String() {
			return // logged when it began
		}
		d.blocked[a.Dst] = a.Other.String()
		d.log.Warn("foreign-route", "dst", dst, "foreign", a.Other.String(), "wanted", a.Route.String(),
			"action", "left alone, not overridden")
	case Withdrawn:
		d.blocked[a.Dst] = a.Other.String()
		d.log.Warn("foreign-route", "dst", dst, "foreign", a.Other.String(), "removed", a.Route.String(),
			"action", "removed faild's own route, not overridden; the destination is the other route's now")
	case Added:
		delete(d.blocked, a.Dst)
		if wasBlocked {
			d.log.Info("foreign-route-gone", "dst", dst, "route", a.Route.String(), "foreign", other,
				"detail", "the other route went; faild's route is in place again")
			return
		}
		d.log.Warn("route-restored", "route", a.Route.String(), "detail", "faild's route was missing from the kernel; added again")
	case Replaced:
		d.log.Info("route-moved", "old", a.Old.String(), "route", a.Route.String())
	case Removed:
		delete(d.blocked, a.Dst)
		if _, adopted := d.adoptedOnce[a.Dst]; adopted {
			d.log.Info("stale-route", "route", a.Route.String(), "action", "removed", "detail", "left by an earlier run and not wanted now")
			return
		}
		d.log.Info("route-removed", "route", a.Route.String(), "detail", "not wanted any more")
	case Failed:
		d.log.Error("route-failed", "dst", dst, "route", a.Route.String(), "err", a.Err, "action", "trying again with back-off")
	}
}

// hookEvent describes a written action for --on-change: the event that
// caused it, if a path event did, and what was done.
func (d *Daemon) hookEvent(a Action, kind routes.Kind, covered bool, now time.Time) hookEvent {
	cause := map[ActionKind]string{Added: "route-restored", Replaced: "route-moved", Removed: "route-removed", Withdrawn: "foreign-route"}[a.Kind]
	if covered && a.Kind != Withdrawn {
		cause = map[routes.Kind]string{routes.Failover: "failover", routes.Switchback: "switchback", routes.Rerouted: "reroute"}[kind]
	}
	action := map[ActionKind]string{Added: "added", Replaced: "replaced", Removed: "removed", Withdrawn: "removed"}[a.Kind]
	ev := hookEvent{kind: cause, env: []string{
		"FAILD_EVENT=" + cause,
		"FAILD_ACTION=" + action,
		"FAILD_NODE=" + routes.PeerID(d.node).String(),
		"FAILD_ROUTE=" + a.Route.String(),
		"FAILD_DST=" + a.Dst.String(),
		"FAILD_VIA=" + a.Route.Via.String(),
		"FAILD_VIA_DEV=" + a.Route.Dev,
		"FAILD_TIME=" + now.UTC().Format(time.RFC3339Nano),
	}}
	if id, lan, ok := d.pathOf(a.Dst); ok {
		ev.env = append(ev.env, "FAILD_PEER="+id.String(), "FAILD_LAN="+routes.LANName(lan),
			"FAILD_DEV="+d.names[lan], "FAILD_ADDR="+a.Dst.Addr().String())
	}
	return ev
}

// pathOf finds the path whose peer address is dst.
func (d *Daemon) pathOf(dst netip.Prefix) (routes.PeerID, int, bool) {
	f := d.fams[familyOf(dst.Addr())]
	if f == nil {
		return 0, 0, false
	}
	return f.table.Owner(dst.Addr())
}

// describeRoute is what the kernel holds for a path's destination, for the
// status report: faild's route, or who holds it instead, or what faild
// waits for.
func (d *Daemon) describeRoute(dst netip.Prefix) (route, state string) {
	ours, other := d.rec.holds(dst)
	_, wanted := d.rec.want[dst]
	switch {
	case ours != nil:
		return ours.Route.String(), "installed"
	case other != nil && wanted:
		return "foreign route " + other.String(), "blocked"
	case d.rec.failed[dst] != nil:
		return d.rec.failed[dst].Error(), "pending"
	}
	return "", ""
}
