package proto

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/routes"
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

// keys makes a peer table keep replay state, as with --key-file: the
// table only asks whether there are keys.
var keys = [][]byte{testKey}

// TestWindowJump: the ring blocks a jump moves into held older numbers;
// they must be cleared, or late packets of the new range would be taken
// for replays of the old one.
func TestWindowJump(t *testing.T) {
	for _, jump := range []uint64{64, 65, 63 * 3, 64 * (ringBlocks - 1), 64 * ringBlocks, 64*ringBlocks + 5, 64 * 3 * ringBlocks} {
		var w window
		w.reset(0)
		for seq := uint64(1); seq < 64*ringBlocks; seq++ {
			w.mark(seq) // every block full
		}
		top := w.top + jump
		w.mark(top)
		for seq := top - min(jump, ReplayWindow) + 1; seq < top; seq++ {
			if !w.fresh(seq) {
				t.Errorf("jump of %d to %d: unseen %d (top-%d) taken for a replay", jump, top, seq, top-seq)
				break
			}
		}
	}
}

// TestWindowModel checks the ring against the rule it stands for, on
// random walks: fresh is "above the top, or within ReplayWindow below it
// and not seen".
func TestWindowModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for walk := range 200 {
		var w window
		start := r.Uint64N(1 << 40)
		w.reset(start)
		seen := map[uint64]bool{start: true}
		top := start
		for step := range 2000 {
			var seq uint64
			switch r.IntN(10) {
			case 0: // a jump, sometimes past the whole ring
				seq = top + 1 + r.Uint64N(4*64*ringBlocks)
			case 1, 2: // just below or at the window's edge
				seq = top - min(top, ReplayWindow-5+r.Uint64N(10))
			default: // around the top
				seq = top - min(top, r.Uint64N(ReplayWindow)) + r.Uint64N(70)
			}
			want := seq > top || top-seq < ReplayWindow && !seen[seq]
			if got := w.fresh(seq); got != want {
				t.Fatalf("walk %d step %d: top %d, seq %d (top-%d): fresh %v, want %v", walk, step, top, seq, int64(top-seq), got, want)
			}
			if want {
				w.mark(seq)
				seen[seq] = true
				top = max(top, seq)
			}
		}
	}
}

func TestAdmit(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Keys: keys, Interval: 100 * time.Millisecond, MaxPeers: 2, Forget: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil))}
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
		{"new boot at the highest number seen", pkt(2, 8, 501), 0, a2, time.Second, DropReplay},
		{"another address claims the id", pkt(2, 1, 502), 0, a3, time.Second, DropIDAddr},
		{"restart: new boot, ahead", pkt(2, 2, 10000), 0, a2, 2 * time.Second, -1},
		{"the old boot is now a replay", pkt(2, 1, 503), 0, a2, 2 * time.Second, DropReplay},
		{"second peer", pkt(3, 1, 1), 0, a3, 3 * time.Second, -1},
		{"third peer: table full", pkt(4, 1, 1), 0, netip.MustParseAddr("192.0.2.4"), 4 * time.Second, DropPeers},
		{"fourth peer: still full", pkt(5, 1, 1), 0, netip.MustParseAddr("192.0.2.5"), 5 * time.Second, DropPeers},
		{"renumbered after silence", pkt(2, 2, 10001), 0, netip.MustParseAddr("192.0.2.22"), 10 * time.Second, -1},
		{"peer 3 silent for just under Forget", pkt(4, 1, 2), 0, netip.MustParseAddr("192.0.2.4"), 63*time.Second - time.Nanosecond, DropPeers},
		{"peer 3 silent for Forget: 4 takes its place", pkt(4, 1, 2), 0, netip.MustParseAddr("192.0.2.4"), 63 * time.Second, -1},
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
	for i := range 121 {
		p.Seq++
		tb.admit(p, 0, netip.MustParseAddr("192.0.2.2"), t0.Add(time.Duration(i)*time.Second))
		p.Seq++
		if r := tb.admit(p, 0, netip.MustParseAddr("192.0.2.66"), t0.Add(time.Duration(i)*time.Second)); r != DropIDAddr {
			t.Fatalf("spoofed address admitted: %v", dropName(r))
		}
	}
	if n := strings.Count(logs.String(), "msg=id-moved"); n != 3 {
		t.Errorf("%d id-moved lines at 0 to 120 s, want 3 (at 0, 60 and 120 s: once a minute)", n)
	}
}

// TestRebindSlowPeer: an id stays bound to its address for five of the
// slower interval of the two nodes (here 5 x 2 s), not only for the 5 s
// floor: five of the peer's when it is slower than we are, five of ours
// when we are.
func TestRebindSlowPeer(t *testing.T) {
	for _, tt := range []struct {
		name       string
		ours, peer time.Duration
	}{
		{"the peer slower", 100 * time.Millisecond, 2 * time.Second},
		{"we slower", 2 * time.Second, 100 * time.Millisecond},
	} {
		tb := newPeerTable(&Config{Interval: tt.ours, Forget: time.Hour})
		t0 := time.Unix(1e9, 0)
		p := &Packet{Type: INQ, NodeID: 2, BootID: 1, Seq: 1, Interval: tt.peer}
		if r := tb.admit(p, 0, netip.MustParseAddr("192.0.2.2"), t0); r != -1 {
			t.Fatalf("%s: first packet: %v", tt.name, dropName(r))
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
				t.Errorf("%s: new address %v after the last packet: admit = %v, want %v", tt.name, s.at, dropName(r), dropName(s.want))
			}
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
	tb := newPeerTable(&Config{Keys: keys, Interval: 100 * time.Millisecond, Forget: time.Minute})
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
		{"the same after Forget of silence", pkt(2, 100), a2, time.Minute, -1},
		{"its window runs from there", pkt(2, 101), a2, 61 * time.Second, -1},
		{"and still holds replays", pkt(2, 100), a2, 62 * time.Second, DropReplay},
		{"a new address after Forget", pkt(2, 50), netip.MustParseAddr("192.0.2.9"), 10 * time.Minute, -1},
	}
	for _, s := range steps {
		if got := tb.admit(s.p, 0, s.from, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: admit = %v, want %v", s.name, dropName(got), dropName(s.want))
		}
	}
}

// TestAdmitKeyless: without a key there is no replay state, so no packet
// can make another one a replay, on its LAN or any other: issue 15's
// forged INQ 10^12 ahead on LAN A, a forged new boot, and old packets are
// all taken, and the peer's real packets on both LANs after them too. The
// address binding still holds.
func TestAdmitKeyless(t *testing.T) {
	tb := newPeerTable(&Config{Interval: 100 * time.Millisecond, Forget: time.Minute})
	t0 := time.Unix(1e9, 0)
	a2, b2 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
	pkt := func(boot uint32, seq uint64) *Packet {
		return &Packet{Type: INQ, NodeID: 2, BootID: boot, Seq: seq, Interval: 100 * time.Millisecond}
	}
	steps := []struct {
		name string
		p    *Packet
		lan  int
		from netip.Addr
		want int
	}{
		{"first packet", pkt(1, 5000), 0, a2, -1},
		{"LAN B", pkt(1, 5001), 1, b2, -1},
		{"forged, 10^12 ahead on LAN A", pkt(1, 5002+1e12), 0, a2, -1},
		{"real, LAN A", pkt(1, 5003), 0, a2, -1},
		{"real, LAN B", pkt(1, 5004), 1, b2, -1},
		{"forged new boot far ahead", pkt(9, 1e15), 0, a2, -1},
		{"real old boot, LAN A", pkt(1, 5005), 0, a2, -1},
		{"real old boot, LAN B", pkt(1, 5006), 1, b2, -1},
		{"a replay is just another packet", pkt(1, 5005), 0, a2, -1},
		{"from another address: still the binding's", pkt(1, 5007), 0, netip.MustParseAddr("192.0.2.200"), DropIDAddr},
	}
	for i, s := range steps {
		if got := tb.admit(s.p, s.lan, s.from, t0.Add(time.Duration(i)*10*time.Millisecond)); got != s.want {
			t.Errorf("%s: admit = %v, want %v", s.name, dropName(got), dropName(s.want))
		}
	}
}

// FuzzAdmitKeyless plays a stranger on LAN A against the keyless rule:
// between any two steps of node 2's real packets (on LAN A from
// 192.0.2.2, on LAN B from 198.51.100.2, sequence numbers counting up),
// the stranger sends one packet on LAN A with whatever id, boot (as a
// difference from node 2's, so 0 is its own), sequence number (as an
// offset from node 2's last), source on that subnet and announced
// addresses the input says, node 2's spoofed address included. Node 2's
// real packets must all count, on both LANs, and the stranger's claim to
// node 2's id from any other address must never count.
func FuzzAdmitKeyless(f *testing.F) {
	// Issue 15: node 2's boot, 10^12 ahead, from node 2's address.
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0xd4, 0xa5, 0x10, 0, 0, 2, 100})
	// A new boot far ahead, then one far behind, from the stranger's own address.
	f.Add([]byte{4, 0, 0, 0, 9, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 200, 1, 0, 1, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 1, 100, 2, 255})
	// Another id, announcing node 2's LAN-B address.
	f.Add([]byte{6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		const step = 16 // bytes of input per stranger packet
		tb := newPeerTable(&Config{Interval: 100 * time.Millisecond, MaxPeers: 4, Forget: time.Minute})
		now := time.Unix(1e9, 0)
		a2, b2 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
		real := &Packet{Type: INQ, NodeID: 2, BootID: 77, Seq: 1 << 62, Interval: 100 * time.Millisecond,
			Addrs: []netip.Prefix{netip.PrefixFrom(a2, 24), netip.PrefixFrom(b2, 24)}}
		send := func(lan int, from netip.Addr) {
			real.Seq++
			if r := tb.admit(real, lan, from, now); r >= 0 {
				t.Fatalf("node 2's real packet %d on LAN %s dropped: %s", real.Seq, routes.LANName(lan), dropName(r))
			}
		}
		send(0, a2)
		send(1, b2)
		for ; len(b) >= step; b = b[step:] {
			p := &Packet{Type: Type(1 + b[0]&1), NodeID: 2, BootID: real.BootID ^ binary.BigEndian.Uint32(b[1:]),
				Seq: real.Seq + uint64(int64(binary.BigEndian.Uint64(b[5:]))), Interval: time.Duration(b[13]) * time.Millisecond}
			if b[0]&2 != 0 {
				p.NodeID = uint32(b[0]) // some other id
			}
			from := netip.AddrFrom4([4]byte{192, 0, 2, b[14]})
			if b[0]&4 != 0 {
				p.Addrs = []netip.Prefix{netip.PrefixFrom(from, 24), netip.PrefixFrom(b2, 24)}
			}
			r := tb.admit(p, 0, from, now)
			if p.NodeID == 2 && from != a2 && r < 0 {
				t.Fatalf("a stranger at %v took node 2's id on LAN A", from)
			}
			now = now.Add(time.Duration(b[15]) * time.Millisecond)
			send(0, a2)
			send(1, b2)
		}
	})
}
