//go:build !linux

package daemon

import "time"

// Systemd reports no systemd: it runs only on Linux. (go-systemd's notify
// package does not even build on NetBSD, for want of CLOCK_MONOTONIC in
// x/sys/unix.)
func Systemd() (notify func(state string) error, watchdog time.Duration, err error) {
	return nil, 0, nil
}

func monotonicUsec() int64 { return 0 }
