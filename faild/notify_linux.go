package main

import (
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify sends one state to systemd; (false, nil) outside systemd.
func sdNotify(state string) (bool, error) { return sd.SdNotify(false, state) }

// sdWatchdogEnabled is the unit's WatchdogSec, or 0 when it has none.
func sdWatchdogEnabled() (time.Duration, error) { return sd.SdWatchdogEnabled(false) }
