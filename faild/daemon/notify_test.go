package daemon

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	var sent []string
	n := &notifier{log: slog.New(slog.DiscardHandler), send: func(s string) error { sent = append(sent, s); return nil }}
	n.ready("0 peers, 0 of 0 paths down")
	n.setStatus("0 peers, 0 of 0 paths down", t0) // unchanged: not sent again
	n.setStatus("1 peer, 0 of 2 paths down", t0)
	n.petWatchdog(t0)
	n.reloading(t0)
	n.reloaded(t0)
	n.stopping()
	if len(sent) != 6 || !strings.HasPrefix(sent[3], "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("sent %q", sent)
	}
	sent[3] = "RELOADING=1"
	want := []string{"READY=1\nSTATUS=0 peers, 0 of 0 paths down", "STATUS=1 peer, 0 of 2 paths down", "WATCHDOG=1",
		"RELOADING=1", "READY=1\nSTATUS=1 peer, 0 of 2 paths down", "STOPPING=1\nSTATUS=stopping"}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
	(&notifier{}).ready("outside systemd") // no send: no panic, nothing to do
}

// TestNotifierWarnsOnce: a notify socket that fails is logged at most once
// a minute.
func TestNotifierWarnsOnce(t *testing.T) {
	var logs strings.Builder
	n := &notifier{log: slog.New(slog.NewTextHandler(&logs, nil)), send: func(string) error { return errors.New("refused") }}
	for i := range 10 {
		n.petWatchdog(t0.Add(time.Duration(i) * time.Second))
	}
	n.petWatchdog(t0.Add(time.Minute))
	if c := strings.Count(logs.String(), "msg=notify-failed"); c != 2 {
		t.Errorf("%d notify-failed lines in 10 s and a minute on, want 2", c)
	}
}
