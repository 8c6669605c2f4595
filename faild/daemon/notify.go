package daemon

import (
	"fmt"
	"log/slog"
	"time"
)

// notifier speaks systemd's notify protocol for the loop, which owns it.
// Outside systemd (no send) every call is a no-op, not an error.
type notifier struct {
	log      *slog.Logger
	send     func(state string) error
	watchdog time.Duration // the unit's WatchdogSec; 0 when off
	status   string        // the last STATUS= sent
	warned   time.Time     // when a failure was last logged
}

func (n *notifier) notify(state string, now time.Time) {
	if n.send == nil {
		return
	}
	if err := n.send(state); err != nil && now.Sub(n.warned) >= time.Minute {
		n.warned = now
		n.log.Warn("notify-failed", "state", state, "err", err)
	}
}

// ready says that the sockets are bound and the kernel's routes read.
func (n *notifier) ready(status string) {
	n.status = status
	n.notify("READY=1\nSTATUS="+status, time.Now())
}

// setStatus updates STATUS= when the summary changed.
func (n *notifier) setStatus(status string, now time.Time) {
	if status == n.status {
		return
	}
	n.status = status
	n.notify("STATUS="+status, now)
}

func (n *notifier) petWatchdog(now time.Time) { n.notify("WATCHDOG=1", now) }

// reloading and reloaded frame a reload, so that `systemctl reload` waits
// for it (Type=notify-reload, and the protocol of systemd 253 on).
func (n *notifier) reloading(now time.Time) {
	n.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()), now)
}

func (n *notifier) reloaded(now time.Time) { n.notify("READY=1\nSTATUS="+n.status, now) }

func (n *notifier) stopping() { n.notify("STOPPING=1\nSTATUS=stopping", time.Now()) }
