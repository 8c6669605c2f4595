package daemon

import (
	"os"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Systemd returns how to tell systemd this daemon's state, and how often
// its watchdog wants to hear from it: nil and 0 when not run by systemd
// (no NOTIFY_SOCKET; no WatchdogSec).
func Systemd() (notify func(state string) error, watchdog time.Duration, err error) {
	watchdog, err = sd.SdWatchdogEnabled(false)
	if _, ok := os.LookupEnv("NOTIFY_SOCKET"); !ok {
		return nil, watchdog, err
	}
	return func(state string) error {
		_, err := sd.SdNotify(false, state)
		return err
	}, watchdog, err
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants
// it.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano() / 1000
}
