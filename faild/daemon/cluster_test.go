package daemon

import (
	"slices"
	"testing"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// grid builds a matrix of LAN A from rows of marks, one a node (ids 1..n):
// '+' heard, 'X' not heard, '~' lossy, '?' unknown, '.' self; a row of
// "" is a node without a view of its own.
func grid(rows ...string) *matrix {
	m := &matrix{lan: 0, obs: map[routes.PeerID]map[routes.PeerID]cell{}, alive: map[routes.PeerID]bool{}}
	for i := range rows {
		id := routes.PeerID(0xc0000201 + i)
		m.nodes = append(m.nodes, id)
		m.alive[id] = true
	}
	for i, r := range rows {
		if r == "" {
			continue
		}
		cells := map[routes.PeerID]cell{}
		for j, c := range r {
			cells[m.nodes[j]] = map[rune]cell{'+': heard, 'X': notHeard, '~': lossy, '?': unknown, '.': unknown}[c]
		}
		m.obs[m.nodes[i]] = cells
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
			m.alive[m.nodes[3]] = false
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
