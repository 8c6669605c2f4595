package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/platform"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// grid builds a matrix of LAN A from rows of marks, one a node (ids 1..n):
// '+' heard, 'X' not heard, '~' lossy, '?' unknown, '.' self; a row of
// "" is a node without a view of its own.
func grid(rows ...string) *matrix {
	n := len(rows)
	m := &matrix{lan: 0, index: map[routes.PeerID]int{}, cells: make([]cell, n*n),
		obs: make([]bool, n), age: make([]time.Duration, n), alive: make([]bool, n)}
	for i := range rows {
		id := routes.PeerID(0xc0000201 + uint32(i))
		m.nodes = append(m.nodes, id)
		m.index[id] = i
		m.alive[i] = true
	}
	for i, r := range rows {
		if r == "" {
			continue
		}
		m.obs[i] = true
		for j, c := range r {
			m.cells[i*n+j] = map[rune]cell{'+': heard, 'X': notHeard, '~': lossy, '?': unknown, '.': unknown}[c]
		}
	}
	return m
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name string
		m    *matrix
		want Diagnosis // Fault "" for none
	}{
		{"all well", grid(".+++", "+.++", "++.+", "+++."), Diagnosis{}},
		{"node 3's link", grid(".+X+", "+.X+", "XX.X", "++X."), Diagnosis{Fault: FaultNodeLink, Node: "192.0.2.3"}},
		{"node 3's link, it has no view", grid(".+X+", "+.X+", "", "++X."), Diagnosis{Fault: FaultNodeLink, Node: "192.0.2.3"}},
		{"node 3 sends into the void", grid(".+X+", "+.X+", "++.+", "++X."), Diagnosis{Fault: FaultNodeLink, Node: "192.0.2.3"}},
		{"node 3 hears nothing", grid(".+++", "+.++", "XX.X", "+++."), Diagnosis{Fault: FaultNodeLink, Node: "192.0.2.3"}},
		{"split", grid(".+XX", "+.XX", "XX.+", "XX+."), Diagnosis{Fault: FaultSplit, Groups: "{.1,.2} {.3,.4}"}},
		{"LAN down", grid(".XXX", "X.XX", "XX.X", "XXX."), Diagnosis{Fault: FaultLANDown}},
		{"2 to 1 lost", grid(".X++", "+.++", "++.+", "+++."), Diagnosis{Fault: FaultOneWay, Node: "192.0.2.2", Peer: "192.0.2.1"}},
		{"1 and 2 cut", grid(".X++", "X.++", "++.+", "+++."), Diagnosis{Fault: FaultPair, Node: "192.0.2.1", Peer: "192.0.2.2"}},
		{"lossy port of 4", grid(".++~", "+.+~", "++.~", "~~~."), Diagnosis{Fault: FaultLossy, Node: "192.0.2.4"}},
		{"lossy LAN", grid(".~+~", "~.~+", "+~.~", "~+~."), Diagnosis{Fault: FaultLossy}},
		{"two faults", grid(".X++", "X.++", "++.X", "++X."), Diagnosis{Fault: FaultSeveral}},
		{"two links", grid(".XX+", "X.XX", "XX.+", "+X+."), Diagnosis{Fault: FaultSeveral}},
		{"split, and a link", grid(".+XXX", "+.XXX", "XX.+X", "XX+.X", "XXXX."), Diagnosis{Fault: FaultSplit, Groups: "{.1,.2} {.3,.4} {.5}"}},
		{"a down node is no LAN's fault", func() *matrix {
			m := grid(".++X", "+.+X", "++.X", "")
			m.alive[3] = false
			return m
		}(), Diagnosis{}},
	}
	for _, tt := range tests {
		got, ok := tt.m.diagnose()
		if ok != (tt.want.Fault != "") || ok && (got.Fault != tt.want.Fault || got.Node != tt.want.Node || got.Peer != tt.want.Peer || got.Groups != tt.want.Groups) {
			t.Errorf("%s: %+v (%v), want %+v", tt.name, got, ok, tt.want)
		}
		if ok && got.Detail == "" {
			t.Errorf("%s: no detail", tt.name)
		}
	}
}

// TestApplyWindows: windows of a rotating view replace what they cover
// in the row, and the whole view replaces the row.
func TestApplyWindows(t *testing.T) {
	e := func(ids ...uint32) []proto.ViewEntry {
		var out []proto.ViewEntry
		for _, id := range ids {
			out = append(out, proto.ViewEntry{Node: id, Known: 1})
		}
		return out
	}
	var r viewRow
	r.apply(&proto.View{Total: 6, Offset: 0, Entries: e(1, 2, 3)})
	r.apply(&proto.View{Total: 6, Offset: 3, Entries: e(4, 5, 6)})
	r.apply(&proto.View{Total: 5, Offset: 0, Entries: e(1, 3)}) // 2 gone
	r.apply(&proto.View{Total: 5, Offset: 2, Entries: e(4, 7, 8)})
	var got []uint32
	for _, x := range r.entries {
		got = append(got, x.Node)
	}
	if want := []uint32{1, 3, 4, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("row %v, want %v", got, want)
	}
	r.apply(&proto.View{Total: 1, Entries: e(9)})
	if len(r.entries) != 1 || r.entries[0].Node != 9 {
		t.Errorf("row %v after a whole view of 9", r.entries)
	}
}

// BenchmarkDiagnose is one evaluation of the diagnosis (the matrices of
// two LANs drawn from every peer's view, and their diagnoses) in a
// cluster where every node hears every other.
func BenchmarkDiagnose(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("%d nodes", n), func(b *testing.B) {
			d, now := benchDaemon(b, n)
			b.ResetTimer()
			for range b.N {
				d.diagnose(now)
			}
		})
	}
}

// benchDaemon is a daemon of one IPv4 family whose table and rows hold n
// nodes, itself included, that all hear each other on two LANs.
func benchDaemon(b testing.TB, n int) (*Daemon, time.Time) {
	now := time.Unix(1e9, 0)
	d := &Daemon{cfg: Config{Interval: 100 * time.Millisecond, Misses: 3}, node: 1, lans: make([]platform.LAN, 2),
		log: slog.New(slog.DiscardHandler)}
	f := &family{table: routes.New(routes.Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3}),
		v1: map[routes.PeerID]bool{}, rows: map[routes.PeerID]*viewRow{}}
	d.fams[0] = f
	var entries []proto.ViewEntry
	for id := 1; id <= n; id++ {
		entries = append(entries, proto.ViewEntry{Node: uint32(id), Known: 3, Heard: 3})
	}
	for id := 2; id <= n; id++ {
		for lan := range 2 {
			f.table.Observe(routes.Observation{Peer: routes.PeerID(id), LAN: lan, Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(id >> 8), byte(id)}),
				netip.AddrFrom4([4]byte{10, 1, byte(id >> 8), byte(id)})}, Interval: 100 * time.Millisecond, At: now}, nil)
		}
		f.rows[routes.PeerID(id)] = &viewRow{boot: 1, at: now, interval: 100 * time.Millisecond, entries: entries}
	}
	if got := len(d.matrices(f, now, nil)[0].nodes); got != n {
		b.Fatalf("%d observers, want %d", got, n)
	}
	return d, now
}

// TestMatricesReused: the loop's evaluation draws the matrices into the
// family's storage, again and again, and gets what matrices drawn anew
// show, whatever the views held the time before; matrices drawn for a
// status report are the report's and stay as they were.
func TestMatricesReused(t *testing.T) {
	d, now := benchDaemon(t, 6)
	f := d.fams[0]
	show := func(ms []*matrix) string {
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "LAN %d nodes %v cells %v obs %v age %v alive %v\n", m.lan, m.nodes, m.cells, m.obs, m.age, m.alive)
		}
		return b.String()
	}
	kept := d.matrices(f, now, nil)
	before := show(kept)
	var buf matrixBuf
	steps := []struct {
		name   string
		change func()
	}{
		{"all hear all", func() {}},
		{"node 2 does not hear node 3 on LAN A", func() {
			e := slices.Clone(f.rows[2].entries)
			e[2].Heard = 2
			f.rows[2].entries = e
		}},
		{"node 4's view gone stale", func() { f.rows[4].at = now.Add(-time.Minute) }},
		{"node 5's view knows only nodes 1 and 5", func() {
			f.rows[5].entries = []proto.ViewEntry{{Node: 1, Known: 3, Heard: 3}, {Node: 5, Known: 3, Heard: 3}}
		}},
		{"node 4 back, node 2 hears all", func() {
			f.rows[4].at = now
			f.rows[2].entries = f.rows[3].entries
		}},
	}
	for _, s := range steps {
		s.change()
		if got, want := show(d.matrices(f, now, &buf)), show(d.matrices(f, now, nil)); got != want {
			t.Errorf("%s: reused storage gives\n%s\nwant\n%s", s.name, got, want)
		}
		d.diagnose(now)
	}
	if after := show(kept); after != before {
		t.Errorf("a status report's matrices changed to\n%s\nfrom\n%s", after, before)
	}
}

// TestClusterReport: in a simulated cluster of requestors with node 3's
// port on LAN A cut, node 1's cluster report has a row for every node
// on both LANs, node 3 not heard on LAN A by anyone and heard on LAN B,
// node 3's own row (come over LAN B) hearing no one on LAN A, and the
// diagnosis on top of both reports.
func TestClusterReport(t *testing.T) {
	s := newSim(7)
	for _, n := range s.nodes {
		n.cfg.Requestor = true
	}
	s.run(s.now.Add(time.Second))
	s.net.cutIn[0][3], s.net.cutOut[0][3] = true, true
	s.run(s.now.Add(2 * time.Second))
	d := s.node(1).d
	c := d.cluster(s.now)
	id3 := routes.PeerID(s.node(3).d.node).String()
	if len(c.Diagnosis) != 1 || c.Diagnosis[0].Fault != FaultNodeLink || c.Diagnosis[0].Node != id3 {
		t.Fatalf("diagnosis %+v, want node-link %s", c.Diagnosis, id3)
	}
	seen := map[string]bool{}
	for _, l := range c.LANs {
		seen[l.LAN+" "+l.Family] = true
		col := slices.Index(l.Nodes, id3)
		if col < 0 || len(l.Rows) != len(s.nodes) || len(l.Nodes) != len(s.nodes) {
			t.Fatalf("LAN %s %s: nodes %v, %d rows; want all %d nodes", l.LAN, l.Family, l.Nodes, len(l.Rows), len(s.nodes))
		}
		for _, r := range l.Rows {
			want := "heard"
			switch {
			case r.Observer == id3:
				want = "self"
			case l.LAN == "A":
				want = "not-heard"
			}
			if !r.Fresh || r.Cells[col] != want {
				t.Errorf("LAN %s %s: %s says %s of %s (fresh %v), want %s", l.LAN, l.Family, r.Observer, r.Cells[col], id3, r.Fresh, want)
			}
			if r.Observer == id3 && l.LAN == "A" && slices.Contains(r.Cells, "heard") {
				t.Errorf("LAN A: %s, cut off, hears %v", id3, r.Cells)
			}
		}
	}
	if !seen["A "+c.LANs[0].Family] || !seen["B "+c.LANs[0].Family] {
		t.Errorf("LANs %v", seen)
	}
	var table, status strings.Builder
	c.WriteTable(&table)
	d.snapshot(s.now).WriteTable(&status)
	for _, out := range []string{table.String(), status.String()} {
		if !strings.HasPrefix(out, "diagnosis: LAN A node-link node="+id3+": ") {
			t.Errorf("report does not start with the diagnosis:\n%s", out)
		}
	}
	if !strings.Contains(table.String(), "OBSERVER") {
		t.Errorf("no matrix:\n%s", table.String())
	}
}

// TestLossyDiagnosis: in a simulated cluster of requestors, 30 % loss
// both ways at node 3's port on LAN A makes its paths there lossy by the
// paths' own loss figures (the ones faild status shows), on every node,
// and so the diagnosis names node 3's port; a window after the loss ends
// the diagnosis clears.
func TestLossyDiagnosis(t *testing.T) {
	s := newSim(7)
	for _, n := range s.nodes {
		n.cfg.Requestor, n.cfg.LossWindow = true, 50
	}
	s.run(s.now.Add(time.Second))
	s.net.lossIn[0][3], s.net.lossOut[0][3] = 0.3, 0.3
	s.run(s.now.Add(8 * time.Second))
	id3 := routes.PeerID(s.node(3).d.node).String()
	for _, n := range s.nodes {
		dg := n.d.diagnoses()
		if len(dg) != 1 || dg[0].Fault != FaultLossy || dg[0].Node != id3 || dg[0].LAN != "A" {
			t.Fatalf("node%d: diagnosis %+v, want lossy at %s on LAN A", n.id, dg, id3)
		}
		st := n.d.snapshot(s.now)
		for _, p := range st.Paths {
			if p.LAN != "A" || n.id != 3 && p.Peer != id3 {
				continue // only the paths through node 3's port
			}
			if p.LossWindowPercent <= 10 {
				t.Errorf("node%d: path to %s on LAN A loses %.1f%% by its status, not lossy", n.id, p.Peer, p.LossWindowPercent)
			}
		}
	}
	s.net.lossIn[0][3], s.net.lossOut[0][3] = 0, 0
	s.run(s.now.Add(8 * time.Second))
	for _, n := range s.nodes {
		if dg := n.d.diagnoses(); len(dg) != 0 {
			t.Errorf("node%d: diagnosis %+v after the loss ended, want none", n.id, dg)
		}
	}
}
