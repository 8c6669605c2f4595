package main

import (
	"log/slog"
	"time"
)

// notifier speaks systemd's notify protocol. Outside systemd (no
// NOTIFY_SOCKET) every call is a no-op, not an error.
type notifier struct {
	log      *slog.Logger
	send     func(state string) (bool, error) // sdNotify; a seam for tests
	watchdog time.Duration                    // how often to pet the watchdog; 0 when off
	status   string                           // the last STATUS= sent
	warned   func() bool
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, warned: every(time.Minute),
		send: func(state string) (bool, error) { return sdNotify(state) }}
	iv, err := sdWatchdogEnabled()
	if err != nil {
		log.Warn("watchdog-disabled", "err", err)
	}
	// Half the timeout, as sd_watchdog_enabled(3) advises.
	n.watchdog = iv / 2
	return n
}

func (n *notifier) notify(state string) {
	if _, err := n.send(state); err != nil && n.warned() {
		n.log.Warn("notify-failed", "state", state, "err", err)
	}
}

// ready says that sockets are bound and stale routes removed.
func (n *notifier) ready(status string) {
	n.status = status
	n.notify("READY=1\nSTATUS=" + status)
}

// setStatus updates STATUS= when the summary changed.
func (n *notifier) setStatus(status string) {
	if status == n.status {
		return
	}
	n.status = status
	n.notify("STATUS=" + status)
}

// ticker returns the watchdog's tick channel and a stop func; the channel
// is nil, never ready, when the watchdog is off.
func (n *notifier) ticker() (<-chan time.Time, func()) {
	if n.watchdog <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(n.watchdog)
	return t.C, t.Stop
}

func (n *notifier) petWatchdog() { n.notify("WATCHDOG=1") }

func (n *notifier) stopping() { n.notify("STOPPING=1\nSTATUS=stopping") }
