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
	var r viewRow
	r.apply(&proto.View{Total: 6, Offset: 0, Entries: viewEntries(1, 0, 1, 2, 3)})
	r.apply(&proto.View{Total: 6, Offset: 3, Entries: viewEntries(1, 0, 4, 5, 6)})
	r.apply(&proto.View{Total: 5, Offset: 0, Entries: viewEntries(1, 0, 1, 3)}) // 2 gone
	r.apply(&proto.View{Total: 5, Offset: 2, Entries: viewEntries(1, 0, 4, 7, 8)})
	var got []uint32
	for _, x := range r.entries {
		got = append(got, x.Node)
	}
	if want := []uint32{1, 3, 4, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("row %v, want %v", got, want)
	}
	r.apply(&proto.View{Total: 1, Entries: viewEntries(1, 0, 9)})
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

// TestApplyWindowEdges: a window replaces exactly the entries it covers:
// the first window of a view keeps the row past its end and drops what
// the row had before its first entry; a middle one keeps both sides; the
// last one drops the row past it (the view shrank).
func TestApplyWindowEdges(t *testing.T) {
	tests := []struct {
		name string
		row  []uint32
		v    proto.View
		want []uint32
	}{
		{"first window keeps the rest", []uint32{1, 2, 3, 4, 5, 6}, proto.View{Total: 6, Entries: viewEntries(1, 0, 1, 2)}, []uint32{1, 2, 3, 4, 5, 6}},
		{"first window drops what came before it", []uint32{1, 2, 3, 4}, proto.View{Total: 3, Entries: viewEntries(1, 0, 2, 3)}, []uint32{2, 3, 4}},
		{"middle window keeps both sides", []uint32{1, 2, 3, 4, 5, 6}, proto.View{Total: 6, Offset: 2, Entries: viewEntries(1, 0, 3, 4)}, []uint32{1, 2, 3, 4, 5, 6}},
		{"middle window replaces what it covers", []uint32{1, 2, 3, 4, 5, 6}, proto.View{Total: 5, Offset: 2, Entries: viewEntries(1, 0, 3, 5)}, []uint32{1, 2, 3, 5, 6}},
		{"last window drops the rest", []uint32{1, 2, 3, 4, 5}, proto.View{Total: 4, Offset: 2, Entries: viewEntries(1, 0, 3, 4)}, []uint32{1, 2, 3, 4}},
		{"window ending at the highest id", []uint32{1, 2, 3}, proto.View{Total: 4, Offset: 1, Entries: viewEntries(1, 0, 2, ^uint32(0))}, []uint32{1, 2, ^uint32(0)}},
	}
	for _, tt := range tests {
		r := viewRow{entries: viewEntries(1, 0, tt.row...)}
		r.apply(&tt.v)
		var got []uint32
		for _, x := range r.entries {
			got = append(got, x.Node)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: row %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestHeardViewBoot: windows from one boot of a peer build up its row; a
// window from a new boot starts the row afresh.
func TestHeardViewBoot(t *testing.T) {
	d, now := benchDaemon(t, 3) // nodes 1 (us), 2, 3
	f := d.fams[0]
	heard := func(boot uint32, v proto.View) {
		f.heardView(&proto.Heard{Node: 2, Boot: boot, V2: true, At: now, Interval: 100 * time.Millisecond, View: &v})
	}
	ids := func() (out []uint32) {
		for _, x := range f.rows[2].entries {
			out = append(out, x.Node)
		}
		return out
	}
	delete(f.rows, 2)
	heard(7, proto.View{Total: 3, Entries: viewEntries(3, 3, 1, 2)})
	heard(7, proto.View{Total: 3, Offset: 2, Entries: viewEntries(3, 3, 3)})
	if got := ids(); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Errorf("row after two windows of one boot: %v, want [1 2 3]", got)
	}
	heard(8, proto.View{Total: 3, Offset: 2, Entries: viewEntries(3, 3, 3)})
	if got := ids(); !slices.Equal(got, []uint32{3}) {
		t.Errorf("row after a window of a new boot: %v, want [3]", got)
	}
}

// TestFresh: a row speaks for its node for -f of the node's intervals and
// half of one more, ours when it announced none.
func TestFresh(t *testing.T) {
	d := &Daemon{cfg: Config{Interval: 100 * time.Millisecond, Misses: 3}}
	at := time.Unix(1e9, 0)
	for _, tt := range []struct {
		iv   time.Duration
		age  time.Duration
		want bool
	}{
		{200 * time.Millisecond, 700 * time.Millisecond, true},
		{200 * time.Millisecond, 700*time.Millisecond + 1, false},
		{0, 350 * time.Millisecond, true},
		{0, 350*time.Millisecond + 1, false},
	} {
		if got := d.fresh(&viewRow{at: at, interval: tt.iv}, at.Add(tt.age)); got != tt.want {
			t.Errorf("fresh(interval %v, age %v) = %v, want %v", tt.iv, tt.age, got, tt.want)
		}
	}
}

// TestMergeIDs: the union of the nodes known and those a view names, in
// order, each once.
func TestMergeIDs(t *testing.T) {
	for _, tt := range []struct {
		ids     []routes.PeerID
		entries []proto.ViewEntry
		want    []routes.PeerID
	}{
		{[]routes.PeerID{1, 2, 3}, viewEntries(0, 0, 1, 3), []routes.PeerID{1, 2, 3}},
		{[]routes.PeerID{1, 3}, viewEntries(0, 0, 2), []routes.PeerID{1, 2, 3}},
		{[]routes.PeerID{1, 2}, viewEntries(0, 0, 1, 2, 5), []routes.PeerID{1, 2, 5}},
		{nil, viewEntries(0, 0, 4), []routes.PeerID{4}},
	} {
		if got := mergeIDs(tt.ids, tt.entries); !slices.Equal(got, tt.want) {
			t.Errorf("mergeIDs(%v, %v) = %v, want %v", tt.ids, tt.entries, got, tt.want)
		}
	}
}

// TestDiagnoseCounts: a LAN is down only when every pair whose state is
// known is not heard; a lossy or a heard pair among them says otherwise.
func TestDiagnoseCounts(t *testing.T) {
	got, ok := grid(".X~", "X.X", "+X.").diagnose()
	if !ok || got.Fault != FaultNodeLink || got.Node != "192.0.2.2" {
		t.Errorf("node 2 cut off, 1 and 3 hear each other (one way lossy): %+v (%v), want node 2's link", got, ok)
	}
}

// TestDiagnoseStable: a diagnosis is taken once diagStable evaluations in
// a row gave it, logged with the nodes it names and nothing empty, and
// given up the same way; in a cluster past diagCells the evaluations
// space out.
func TestDiagnoseStable(t *testing.T) {
	d, now := benchDaemon(t, 4)
	var log strings.Builder
	d.log = slog.New(slog.NewTextHandler(&log, nil))
	f := d.fams[0]
	setPair := func(cut bool) {
		for id, r := range f.rows {
			var es []proto.ViewEntry
			for _, e := range r.entries {
				if id == 2 && e.Node == 3 || id == 3 && e.Node == 2 {
					e.Heard = 3
					if cut {
						e.Heard = 2 // not on LAN A
					}
				}
				es = append(es, e)
			}
			r.entries = es
		}
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
			if strings.Contains(l, "msg=diagnosis") {
				out = append(out, l)
			}
		}
		return out
	}
	for i := range 3 {
		if next := d.diagnose(now); !next.Equal(now.Add(d.cfg.Interval)) {
			t.Fatalf("next evaluation at %v, want one interval on (%v)", next.Sub(now), d.cfg.Interval)
		}
		switch i {
		case 0:
			setPair(true)
		case 1:
			if got := d.diagnoses(); len(got) != 0 {
				t.Fatalf("diagnoses after one evaluation of the cut: %+v, want none yet", got)
			}
		}
	}
	// The cut came in the first evaluation's wake: two evaluations saw it.
	if got := d.diagnoses(); len(got) != 1 || got[0].Fault != FaultPair || got[0].Node != "0.0.0.2" || got[0].Peer != "0.0.0.3" {
		t.Fatalf("diagnoses after two evaluations with 2 and 3 cut on LAN A: %+v", got)
	}
	ls := lines()
	if len(ls) != 1 || !strings.Contains(ls[0], "fault=pair") || !strings.Contains(ls[0], "node=0.0.0.2") ||
		!strings.Contains(ls[0], "peer=0.0.0.3") || strings.Contains(ls[0], "groups=") || strings.Contains(ls[0], `=""`) {
		t.Errorf("diagnosis lines %q, want one naming the pair and nothing empty", ls)
	}
	for range 3 {
		d.diagnose(now) // the same fault again: no new line
	}
	if got := d.diagnoses(); len(got) != 1 || len(lines()) != 1 {
		t.Errorf("the same diagnosis three times more: %+v, lines %q; want it once", got, lines())
	}
	setPair(false)
	for range 8 {
		d.log.Info("tick") // keeps "diagnosis" lines apart
		d.diagnose(now)
	}
	if got := d.diagnoses(); len(got) != 0 {
		t.Errorf("diagnoses after the heal: %+v, want none", got)
	}
	if ls := lines(); len(ls) != 2 || !strings.Contains(ls[1], "fault=none") {
		t.Errorf("diagnosis lines after the heal %q, want a second one of fault=none", ls)
	}
	// 400 nodes on two LANs are 320,000 cells: every second interval.
	big, now := benchDaemon(t, 400)
	if next := big.diagnose(now); !next.Equal(now.Add(2 * big.cfg.Interval)) {
		t.Errorf("400 nodes: next evaluation %v on, want two intervals (%v)", next.Sub(now), 2*big.cfg.Interval)
	}
}

// viewEntries is a view's entries for ids, each with the masks known and
// heard.
func viewEntries(known, heard uint8, ids ...uint32) []proto.ViewEntry {
	var out []proto.ViewEntry
	for _, id := range ids {
		out = append(out, proto.ViewEntry{Node: id, Known: known, Heard: heard})
	}
	return out
}
