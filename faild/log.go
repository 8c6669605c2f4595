package main

import (
	"io"
	"log/slog"
	"os"
	"time"
)

// newLogger returns the event logger: one key=value line an event, with a
// millisecond timestamp, to path or, without one, to standard error.
func newLogger(path string) (*slog.Logger, func() error, error) {
	var w io.Writer = os.Stderr
	closer := func() error { return nil }
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, err
		}
		w, closer = f, f.Close
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			a.Value = slog.StringValue(a.Value.Time().Format("2006-01-02T15:04:05.000Z07:00"))
		}
		return a
	}})
	return slog.New(h), closer, nil
}

// lanName names LAN i as operators do: A, B, C...
func lanName(i int) string {
	if i < 0 {
		return "-"
	}
	return string(rune('A' + i))
}

// every returns a func that reports true at most once per d, to keep a
// repeating error from flooding the log.
func every(d time.Duration) func() bool {
	var last time.Time
	return func() bool {
		now := time.Now()
		if now.Sub(last) < d {
			return false
		}
		last = now
		return true
	}
}
