package main

import (
	"context"
	"os"
	"os/signal"
	"time"
)

// session is what a running daemon needs to re-read its configuration: the
// command line it started with, the log to reopen, and the signals that
// catchSignals queues for it.
type session struct {
	args    []string
	log     *logOutput
	signals <-chan os.Signal
}

// catchSignals takes SIGHUP and SIGUSR1 away from their default action,
// which is to kill the process, for the whole life of the process: main
// calls it before anything is touched and it is never undone. Without it a
// SIGHUP (logrotate, systemctl reload) while faild starts or while it
// removes its routes at stop would kill it and leave routes behind, and
// systemd takes death by SIGHUP for a clean exit, so it would not restart
// it. A signal that comes before the signals task runs waits in the buffer
// and is handled then; one after it stopped, or beyond the buffer, is
// dropped.
func catchSignals() <-chan os.Signal {
	c := make(chan os.Signal, 4)
	signal.Notify(c, reloadSignal, statusSignal)
	return c
}

// signals handles SIGHUP (reopen the log, re-read the config file) and
// SIGUSR1 (write the status table to the log) until ctx ends, as
// catchSignals delivers them.
func (d *daemon) signals(ctx context.Context) error {
	var c <-chan os.Signal // nil without a session: nothing to handle
	if s := d.opts.session; s != nil {
		c = s.signals
	}
	cur := *d.opts // the reloadable values now in force
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-c:
			if sig == reloadSignal {
				d.reload(&cur)
			} else {
				d.logStatus(ctx)
			}
		}
	}
}

// reload reopens the log and applies what is safe to change from the
// re-read options (see reloadable); a bad file keeps the running values, and
// the log is reopened all the same so that log rotation never stalls.
func (d *daemon) reload(cur *options) {
	s := d.opts.session
	if s == nil {
		return
	}
	next, _, err := loadOptions(s.args)
	if err == nil {
		err = next.validate()
	}
	if err != nil {
		if rerr := s.log.reopen(cur.LogFile, cur.Ops.LogFormat); rerr != nil {
			d.log.Error("reopen-failed", "log_file", cur.LogFile, "err", rerr)
		}
		d.log.Error("reload-failed", "err", err, "detail", "kept the running configuration")
		return
	}
	if err := s.log.reopen(next.LogFile, next.Ops.LogFormat); err != nil {
		d.log.Error("reopen-failed", "log_file", next.LogFile, "err", err, "detail", "still logging to the old file")
		next.LogFile, next.Ops.LogFormat = cur.LogFile, cur.Ops.LogFormat
	}
	d.hooks.configure(next.Ops.OnChange, next.Ops.HookTimeout)
	cur.LogFile, cur.Ops.LogFormat = next.LogFile, next.Ops.LogFormat
	cur.Ops.OnChange, cur.Ops.HookTimeout = next.Ops.OnChange, next.Ops.HookTimeout
	d.log.Info("reload", "log_file", cur.LogFile, "log_format", cur.Ops.LogFormat, "on_change", cur.Ops.OnChange,
		"hook_timeout", cur.Ops.HookTimeout.String(), "needs_restart", describeReload(restartOnly(d.opts, next)))
}

// logStatus writes the status table to the log: one line per path and a
// summary, so grep finds them like any other event.
func (d *daemon) logStatus(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := d.askSnapshot(ctx)
	if err != nil {
		d.log.Error("status-failed", "err", err)
		return
	}
	for _, p := range s.Paths {
		route := p.Route
		if route == "" {
			route = "none"
		}
		d.log.Info("status-path", "peer", p.Peer, "lan", p.LAN, "dev", p.Dev, "addr", p.Addr, "state", p.State,
			"last", fmtSeconds(p.LastEvidenceSeconds), "misses", p.Misses, "goods", p.Goods, "rtt", fmtSeconds(p.RTTSeconds),
			"failovers", p.Failovers, "switchbacks", p.Switchbacks, "route", route)
	}
	d.log.Info("status", "peers", s.Peers, "paths", len(s.Paths), "paths_down", s.PathsDown,
		"drops", fmtDrops(s.Drops), "hooks_run", s.Hooks.Run, "hooks_failed", s.Hooks.Failed, "hooks_dropped", s.Hooks.Dropped)
}
