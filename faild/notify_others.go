//go:build !linux

package main

import "time"

// sdNotify does nothing: systemd runs only on Linux. (go-systemd's
// notify package does not even build on NetBSD, for want of
// CLOCK_MONOTONIC in x/sys/unix.)
func sdNotify(string) (bool, error) { return false, nil }

// sdWatchdogEnabled reports no watchdog: there is no systemd to pet.
func sdWatchdogEnabled() (time.Duration, error) { return 0, nil }
