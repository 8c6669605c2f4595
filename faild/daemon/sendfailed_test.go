package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSendFailed: a LAN whose link is down fails a send every interval,
// so the line is logged at most once every 10 s per packet kind and LAN,
// naming the LAN's interface; a LAN the daemon does not have (-1, as
// LANOf says) is named with no interface.
func TestSendFailed(t *testing.T) {
	var logs bytes.Buffer
	d := &Daemon{log: slog.New(slog.NewTextHandler(&logs, nil)), names: []string{"e0", "e1"}}
	last := map[string]time.Time{}
	down := errors.New("network is down")
	for _, s := range []struct {
		what string
		lan  int
		at   time.Duration
	}{
		{"inq", 0, 0}, {"inq", 0, 5 * time.Second}, {"inq", 0, 10*time.Second - time.Nanosecond},
		{"inq", 0, 10 * time.Second}, // 10 s after the first line
		{"ack", 0, 10 * time.Second}, // another kind
		{"inq", 1, 11 * time.Second}, // another LAN
		{"inq", -1, 12 * time.Second},
		{"inq", 2, 13 * time.Second},
	} {
		d.sendFailed(last, s.what, s.lan, down, t0.Add(s.at))
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		_, rest, _ := strings.Cut(l, "msg=send-failed ")
		got = append(got, rest)
	}
	want := []string{
		`packet=inq lan=A dev=e0 err="network is down"`,
		`packet=inq lan=A dev=e0 err="network is down"`,
		`packet=ack lan=A dev=e0 err="network is down"`,
		`packet=inq lan=B dev=e1 err="network is down"`,
		`packet=inq lan=- dev="" err="network is down"`,
		`packet=inq lan=C dev="" err="network is down"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("send-failed lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
