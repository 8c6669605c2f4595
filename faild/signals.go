package main

import (
	"os"
	"os/signal"

	"github.com/faild/faild/faild/daemon"
)

// catchSignals takes the daemon's signals (SIGHUP, SIGUSR1, SIGUSR2) away
// from their default action, which is to kill the process, for the whole
// life of the process: main calls it before anything is touched and it is
// never undone. Without it a SIGHUP (logrotate, systemctl reload) while
// faild starts or while it removes its routes at stop would kill it and
// leave routes behind, and systemd takes death by SIGHUP for a clean exit,
// so it would not restart it. A signal that comes before the loop runs
// waits in the buffer and is handled then; one after it stopped, or beyond
// the buffer, is dropped.
func catchSignals() <-chan os.Signal {
	c := make(chan os.Signal, 4)
	signal.Notify(c, daemon.Signals...)
	return c
}
