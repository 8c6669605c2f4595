package daemon

import (
	"os"
	"strings"
	"time"
)

// Signals lists the signals Deps.Signals must deliver.
var Signals = []os.Signal{reloadSignal, statusSignal, handoverSignal}

// reload re-reads the configuration (SIGHUP, faild reload) and applies
// what is safe to change while running: the log (Deps.Reload reopens it)
// and the hooks. Every other option takes a restart: changing interfaces,
// port or timing under a running detector would mean a different daemon.
// systemd hears RELOADING=1 before and READY=1 after.
func (d *Daemon) reload(now time.Time) error {
	if d.deps.Reload == nil {
		return nil
	}
	d.notify.reloading(now)
	defer d.notify.reloaded(now)
	r, err := d.deps.Reload()
	if err != nil {
		return err
	}
	d.hooks.configure(r.OnChange, r.HookTimeout)
	needs := "none"
	if len(r.NeedsRestart) > 0 {
		needs = strings.Join(r.NeedsRestart, ",")
	}
	d.log.Info("reload", "log_file", r.LogFile, "log_format", r.LogFormat, "on_change", r.OnChange,
		"hook_timeout", r.HookTimeout.String(), "needs_restart", needs)
	return nil
}

// logStatus writes the status table to the log (SIGUSR1): one line per
// path and a summary, so grep finds them like any other event.
func (d *Daemon) logStatus(now time.Time) {
	s := d.snapshot(now)
	for _, p := range s.Paths {
		route := p.Route
		if route == "" {
			route = "none"
		}
		d.log.Info("status-path", "peer", p.Peer, "lan", p.LAN, "dev", p.Dev, "addr", p.Addr, "state", p.State,
			"reason", p.Reason, "last", FormatSeconds(p.LastEvidenceSeconds), "misses", p.Misses, "goods", p.Goods,
			"loss", FormatPercent(p.LossWindowPercent/100), "loss_total", FormatPercent(p.LossTotalPercent/100),
			"rtt", FormatSeconds(p.RTTSeconds), "rtt_p50", FormatSeconds(p.RTTP50Seconds), "rtt_p99", FormatSeconds(p.RTTP99Seconds),
			"failovers", p.Failovers, "switchbacks", p.Switchbacks, "route", route, "route_state", p.RouteState)
	}
	d.log.Info("status", "peers", s.Peers, "paths", len(s.Paths), "paths_down", s.PathsDown,
		"drops", formatDrops(s.Drops), "hooks_run", s.Hooks.Run, "hooks_failed", s.Hooks.Failed, "hooks_dropped", s.Hooks.Dropped)
}
