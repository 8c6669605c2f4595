package lab

import (
	"strconv"
	"strings"
	"time"
)

// Event is one line of faild's log (log/slog text format) as key/value
// pairs: "msg", "peer", "lan", "addr", ...
type Event map[string]string

// Msg is the event's kind: start, discovered, failover, switchback, ...
func (e Event) Msg() string { return e["msg"] }

// Time is the event's time= value; zero if missing or malformed.
func (e Event) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, e["time"])
	return t
}

// Match reports whether the event has every key/value pair in kv
// ("msg", "failover", "peer", "192.0.2.2", ...).
func (e Event) Match(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := e[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}

// Find returns the events that match kv, in log order.
func Find(events []Event, kv ...string) []Event {
	var found []Event
	for _, e := range events {
		if e.Match(kv...) {
			found = append(found, e)
		}
	}
	return found
}

// ParseLog splits slog text output into events, one a line; a value in
// double quotes is unquoted. Lines that are not key=value pairs are skipped.
func ParseLog(text string) []Event {
	var events []Event
	for _, line := range strings.Split(text, "\n") {
		if e := parseLine(line); len(e) > 0 {
			events = append(events, e)
		}
	}
	return events
}

func parseLine(line string) Event {
	e := Event{}
	for {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			return e
		}
		eq := strings.IndexByte(line, '=')
		if eq <= 0 || strings.ContainsRune(line[:eq], ' ') {
			return nil
		}
		key, rest := line[:eq], line[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			val, rest = rest[:sp], rest[sp:]
		} else {
			val, rest = rest, ""
		}
		e[key] = val
		line = rest
	}
}
