package proto

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	var w window
	w.reset(1000)
	steps := []struct {
		seq  uint64
		want bool
	}{
		{1000, false},               // the first one again
		{1001, true},                // next
		{1003, true},                // one skipped...
		{1002, true},                // ...arrives late, still counts
		{1002, false},               // but once
		{1000 + ReplayWindow, true}, // far ahead
		{1003, false},               // now below the window
		{1004, true},                // inside it, unseen
		{1001, false},               // inside it, seen before the jump
		{100000, true},              // a jump clears the ring
		{100000 - ReplayWindow + 1, true},
		{100000 - ReplayWindow, false},
		{1000 + ReplayWindow, false},
	}
	for i, s := range steps {
		got := w.fresh(s.seq)
		if got {
			w.mark(s.seq)
		}
		if got != s.want {
			t.Errorf("step %d: seq %d fresh = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

func TestAdmit(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Interval: 100 * time.Millisecond, MaxPeers: 2, Forget: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	tb := newPeerTable(&cfg)
	t0 := time.Unix(1e9, 0)
	a2, a3 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	pkt := func(node, boot uint32, seq uint64) *Packet {
		return &Packet{Type: INQ, NodeID: node, BootID: boot, Seq: seq, Interval: 100 * time.Millisecond}
	}
	steps := []struct {
		name string
		p    *Packet
		lan  int
		from netip.Addr
		at   time.Duration
		want int
	}{
		{"first packet", pkt(2, 1, 500), 0, a2, 0, -1},
		{"next, other LAN", pkt(2, 1, 501), 1, netip.MustParseAddr("198.51.100.2"), 0, -1},
		{"replayed", pkt(2, 1, 500), 0, a2, time.Second, DropReplay},
		{"reordered", pkt(2, 1, 499), 0, a2, time.Second, -1},
		{"old boot replayed", pkt(2, 7, 400), 0, a2, time.Second, DropReplay},
		{"another address claims the id", pkt(2, 1, 502), 0, a3, time.Second, DropIDAddr},
		{"restart: new boot, ahead", pkt(2, 2, 10000), 0, a2, 2 * time.Second, -1},
		{"the old boot is now a replay", pkt(2, 1, 503), 0, a2, 2 * time.Second, DropReplay},
		{"second peer", pkt(3, 1, 1), 0, a3, 3 * time.Second, -1},
		{"third peer: table full", pkt(4, 1, 1), 0, netip.MustParseAddr("192.0.2.4"), 4 * time.Second, DropPeers},
		{"fourth peer: still full", pkt(5, 1, 1), 0, netip.MustParseAddr("192.0.2.5"), 5 * time.Second, DropPeers},
		{"renumbered after silence", pkt(2, 2, 10001), 0, netip.MustParseAddr("192.0.2.22"), 10 * time.Second, -1},
		{"peer 3 silent for Forget: 4 takes its place", pkt(4, 1, 2), 0, netip.MustParseAddr("192.0.2.4"), 64 * time.Second, -1},
		{"forgotten peer 3 is a stranger now", pkt(3, 1, 1), 0, a3, 64 * time.Second, DropPeers},
	}
	for _, s := range steps {
		if got := tb.admit(s.p, s.lan, s.from, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: admit = %v, want %v", s.name, dropName(got), dropName(s.want))
		}
	}
	out := logs.String()
	for _, want := range []string{"msg=id-moved node=0.0.0.2 lan=A addr=192.0.2.2 from=192.0.2.3", "msg=peer-limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "msg=peer-limit"); n != 2 {
		t.Errorf("%d peer-limit lines, want one for each time the table filled up:\n%s", n, out)
	}
}

func TestIDMovedLogRate(t *testing.T) {
	var logs bytes.Buffer
	tb := newPeerTable(&Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	t0 := time.Unix(1e9, 0)
	p := &Packet{NodeID: 2, Seq: 1}
	tb.admit(p, 0, netip.MustParseAddr("192.0.2.2"), t0)
	for i := range 100 {
		p.Seq++
		tb.admit(p, 0, netip.MustParseAddr("192.0.2.2"), t0.Add(time.Duration(i)*time.Second))
		p.Seq++
		if r := tb.admit(p, 0, netip.MustParseAddr("192.0.2.66"), t0.Add(time.Duration(i)*time.Second)); r != DropIDAddr {
			t.Fatalf("spoofed address admitted: %v", dropName(r))
		}
	}
	if n := strings.Count(logs.String(), "msg=id-moved"); n != 2 {
		t.Errorf("%d id-moved lines in 100 s, want 2 (once a minute)", n)
	}
}

// TestRebindSlowPeer: an id stays bound to its address for five of the
// peer's intervals when the peer is slower than we are (here 5 x 2 s), not
// only for the 5 s floor or five of our own intervals.
func TestRebindSlowPeer(t *testing.T) {
	tb := newPeerTable(&Config{Interval: 100 * time.Millisecond, Forget: time.Hour})
	t0 := time.Unix(1e9, 0)
	p := &Packet{Type: INQ, NodeID: 2, BootID: 1, Seq: 1, Interval: 2 * time.Second}
	if r := tb.admit(p, 0, netip.MustParseAddr("192.0.2.2"), t0); r != -1 {
		t.Fatalf("first packet: %v", dropName(r))
	}
	moved := netip.MustParseAddr("192.0.2.22")
	for _, s := range []struct {
		at   time.Duration
		want int
	}{
		{6 * time.Second, DropIDAddr}, // past the 5 s floor, within 5 x 2 s
		{9900 * time.Millisecond, DropIDAddr},
		{10 * time.Second, -1},
	} {
		p.Seq++
		if r := tb.admit(p, 0, moved, t0.Add(s.at)); r != s.want {
			t.Errorf("new address %v after the last packet: admit = %v, want %v", s.at, dropName(r), dropName(s.want))
		}
	}
}

func dropName(r int) string {
	if r < 0 {
		return "accepted"
	}
	return DropNames[r]
}

func BenchmarkAdmit(b *testing.B) {
	tb := newPeerTable(&Config{})
	p := &Packet{NodeID: 2, BootID: 1}
	from := netip.MustParseAddr("192.0.2.2")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		if tb.admit(p, 0, from, now) >= 0 {
			b.Fatal("dropped")
		}
	}
}

// TestAdmitAfterForget: a peer silent for Forget is treated as new even
// while the table has room, so one that restarts with its clock behind (a
// new boot id, a lower sequence number) is heard again instead of being
// dropped as a replay forever; before Forget it is still a replay.
func TestAdmitAfterForget(t *testing.T) {
	tb := newPeerTable(&Config{Interval: 100 * time.Millisecond, Forget: time.Minute})
	t0 := time.Unix(1e9, 0)
	a2 := netip.MustParseAddr("192.0.2.2")
	pkt := func(boot uint32, seq uint64) *Packet {
		return &Packet{Type: INQ, NodeID: 2, BootID: boot, Seq: seq, Interval: 100 * time.Millisecond}
	}
	steps := []struct {
		name string
		p    *Packet
		from netip.Addr
		at   time.Duration
		want int
	}{
		{"first packet", pkt(1, 5000), a2, 0, -1},
		{"restart, clock behind, too soon", pkt(2, 100), a2, 59 * time.Second, DropReplay},
		{"the same after Forget of silence", pkt(2, 100), a2, 59*time.Second + time.Minute, -1},
		{"its window runs from there", pkt(2, 101), a2, 60*time.Second + time.Minute, -1},
		{"and still holds replays", pkt(2, 100), a2, 61*time.Second + time.Minute, DropReplay},
		{"a new address after Forget", pkt(2, 50), netip.MustParseAddr("192.0.2.9"), 10 * time.Minute, -1},
	}
	for _, s := range steps {
		if got := tb.admit(s.p, 0, s.from, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: admit = %v, want %v", s.name, dropName(got), dropName(s.want))
		}
	}
}
