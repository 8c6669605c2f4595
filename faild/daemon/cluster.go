package daemon

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// The cluster's view: what every node hears of every other, per LAN, as
// the version-2 INQs carry it (proto/packet.go). The loop owns it, as it
// owns the tables it comes from.

// viewRow is one peer's view as its INQs' windows brought it.
type viewRow struct {
	boot     uint32
	at       time.Time     // when a window last came
	interval time.Duration // the peer's INQ interval
	entries  []proto.ViewEntry
}

// apply puts a window into the row: the entries it covers are replaced.
func (r *viewRow) apply(v *proto.View) {
	if v.Offset == 0 && len(v.Entries) == v.Total {
		r.entries = v.Entries
		return
	}
	if len(v.Entries) == 0 {
		return
	}
	lo, hi := 0, len(r.entries)
	if v.Offset > 0 {
		lo, _ = slices.BinarySearchFunc(r.entries, v.Entries[0].Node, byNode)
	}
	if v.Offset+len(v.Entries) < v.Total {
		last := v.Entries[len(v.Entries)-1].Node
		hi, _ = slices.BinarySearchFunc(r.entries, last+1, byNode)
		if last == ^uint32(0) {
			hi = len(r.entries)
		}
	}
	r.entries = slices.Concat(r.entries[:lo], v.Entries, r.entries[hi:])
}

func byNode(e proto.ViewEntry, id uint32) int { return cmp.Compare(e.Node, id) }

// heardView takes in what one packet says about the cluster: whether its
// sender reads version 2, and the window of its view.
func (f *family) heardView(h *proto.Heard) {
	if !f.table.Has(h.Node) {
		return // the table is full: keep nothing of the stranger
	}
	if h.V2 {
		delete(f.v1, h.Node)
	} else {
		f.v1[h.Node] = true
	}
	if h.View == nil {
		return
	}
	r := f.rows[h.Node]
	if r == nil || r.boot != h.Boot {
		r = &viewRow{boot: h.Boot}
		f.rows[h.Node] = r
	}
	r.at, r.interval = h.At, h.Interval
	r.apply(h.View)
}

// forgetView drops what the family keeps of a peer the table forgot.
func (f *family) forgetView(id routes.PeerID) {
	delete(f.v1, id)
	delete(f.rows, id)
}

// view is this node's own view, sorted by node id, for its INQs and its
// row of the matrix. A path is lossy in it by the path's own quality
// (routes.Table.Lossy), the figures that --max-loss judges and the
// status shows.
func (f *family) view(now time.Time) []proto.ViewEntry {
	f.hearing = f.table.Hearing(now, f.hearing[:0])
	out := f.viewBuf[:0]
	for _, h := range f.hearing {
		out = append(out, proto.ViewEntry{Node: uint32(h.Peer), Known: h.Known, Heard: h.Heard, Lossy: h.Lossy})
	}
	slices.SortFunc(out, func(a, b proto.ViewEntry) int { return cmp.Compare(a.Node, b.Node) })
	f.viewBuf = out
	return out
}

// fresh reports whether a row is recent enough to speak for its node: it
// came within the node's detection time (-f of its intervals), as a
// path's evidence must.
func (d *Daemon) fresh(r *viewRow, now time.Time) bool {
	iv := r.interval
	if iv <= 0 {
		iv = d.cfg.Interval
	}
	return now.Sub(r.at) <= time.Duration(d.cfg.Misses)*iv+iv/2
}

// cell is what one observer says of one node on one LAN.
type cell uint8

const (
	unknown cell = iota
	heard
	notHeard
	lossy
)

func (c cell) String() string {
	return [...]string{"unknown", "heard", "not-heard", "lossy"}[c]
}

func cellOf(e proto.ViewEntry, lan int) cell {
	switch b := uint8(1) << lan; {
	case e.Lossy&b != 0:
		return lossy
	case e.Heard&b != 0:
		return heard
	case e.Known&b != 0:
		return notHeard
	}
	return unknown
}

// matrix is one family's picture of one LAN: for every observer with a
// fresh view (this node included), what it hears of every node. Dense,
// by the nodes' places in nodes: at 1,000 nodes a map an observer made
// one evaluation cost 0.6 s.
type matrix struct {
	lan   int
	nodes []routes.PeerID // every node any observer speaks of, sorted
	index map[routes.PeerID]int
	cells []cell          // cells[o*len(nodes)+p]: what o says of p
	obs   []bool          // o has a fresh view (this node always)
	age   []time.Duration // how old o's view is
	// alive: some fresh observer hears the node on some LAN of the
	// family, or the node has a fresh view of its own. A node that is
	// down is no LAN's fault.
	alive []bool
}

// matrixBuf is the storage of one family's matrices, which the loop's
// evaluation every interval reuses: allocating it anew each time was
// most of the evaluation's cost.
type matrixBuf struct {
	rows  []matrixRow
	ids   []routes.PeerID
	obs   []bool
	age   []time.Duration
	alive []bool
	cells []cell
	ms    []matrix
	out   []*matrix
}

// matrixRow is one observer's fresh view, for matrices.
type matrixRow struct {
	id      routes.PeerID
	age     time.Duration
	entries []proto.ViewEntry
}

// matrices draws the picture of every LAN from the family's rows and its
// own view, in one pass over the views. With buf, the matrices live in
// its storage until the next call with it, and have no index (the
// evaluation needs none); without, they are the caller's to keep.
func (d *Daemon) matrices(f *family, now time.Time, buf *matrixBuf) []*matrix {
	keep := buf == nil
	if keep {
		buf = &matrixBuf{}
	}
	self := routes.PeerID(d.node)
	rows := append(buf.rows[:0], matrixRow{self, 0, f.view(now)})
	for id, r := range f.rows {
		if id != self && d.fresh(r, now) && f.table.Has(id) {
			rows = append(rows, matrixRow{id, now.Sub(r.at), r.entries})
		}
	}
	// Every row is sorted by node id, so the nodes are their merge and
	// each row's cells are found by walking it beside them: no hashing
	// per cell.
	ids := buf.ids[:0]
	for _, r := range rows {
		ids = append(ids, r.id)
	}
	slices.Sort(ids)
	buf.rows, buf.ids = rows, ids
	nodes := ids
	for _, r := range rows {
		nodes = mergeIDs(nodes, r.entries)
	}
	var index map[routes.PeerID]int
	if keep {
		index = make(map[routes.PeerID]int, len(nodes))
		for i, id := range nodes {
			index[id] = i
		}
	}
	n := len(nodes)
	obs, age, alive := zeroed(&buf.obs, n), zeroed(&buf.age, n), zeroed(&buf.alive, n)
	cells := zeroed(&buf.cells, len(d.lans)*n*n)
	ms, out := zeroed(&buf.ms, len(d.lans)), zeroed(&buf.out, len(d.lans))
	for lan := range out {
		ms[lan] = matrix{lan: lan, nodes: nodes, index: index, cells: cells[lan*n*n : (lan+1)*n*n : (lan+1)*n*n],
			obs: obs, age: age, alive: alive}
		out[lan] = &ms[lan]
	}
	for _, r := range rows {
		o, _ := slices.BinarySearch(nodes, r.id)
		obs[o], age[o], alive[o] = true, r.age, true
		p := 0
		for _, e := range r.entries {
			for p < n && nodes[p] != routes.PeerID(e.Node) {
				p++
			}
			if p == n {
				break // not sorted: cannot happen, rows are kept sorted
			}
			if p == o {
				continue
			}
			if e.Heard != 0 {
				alive[p] = true
			}
			for lan, m := range out {
				m.cells[o*n+p] = cellOf(e, lan)
			}
		}
	}
	return out
}

// zeroed makes *s n zero values long, in its own array while that is
// large enough.
func zeroed[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	} else {
		*s = (*s)[:n]
		clear(*s)
	}
	return *s
}

// mergeIDs is the sorted union of ids and the node ids of entries, both
// sorted; ids itself when it holds them all already, as it mostly does.
func mergeIDs(ids []routes.PeerID, entries []proto.ViewEntry) []routes.PeerID {
	i, j := 0, 0
	for i < len(ids) && j < len(entries) {
		switch e := routes.PeerID(entries[j].Node); {
		case ids[i] == e:
			i, j = i+1, j+1
		case ids[i] < e:
			i++
		default:
			goto merge
		}
	}
	if j == len(entries) {
		return ids
	}
merge:
	out := make([]routes.PeerID, 0, len(ids)+len(entries))
	i, j = 0, 0
	for i < len(ids) || j < len(entries) {
		switch {
		case j == len(entries) || i < len(ids) && ids[i] < routes.PeerID(entries[j].Node):
			out = append(out, ids[i])
			i++
		case i == len(ids) || routes.PeerID(entries[j].Node) < ids[i]:
			out = append(out, routes.PeerID(entries[j].Node))
			j++
		default:
			out = append(out, ids[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// at is what observer o says of node p; unknown without a view of o's.
func (m *matrix) at(o, p routes.PeerID) cell {
	i, ok1 := m.index[o]
	j, ok2 := m.index[p]
	if !ok1 || !ok2 || i == j {
		return unknown
	}
	return m.cells[i*len(m.nodes)+j]
}

// Diagnosis is the most likely fault on one LAN, as the matrix shows it.
type Diagnosis struct {
	LAN    string `json:"lan"`
	Fault  string `json:"fault"`            // see the Fault* constants
	Node   string `json:"node,omitempty"`   // node-link, lossy at a port
	Peer   string `json:"peer,omitempty"`   // the other node of a pair or one-way fault
	Groups string `json:"groups,omitempty"` // split: "{.1,.2} {.3,.4}"
	Detail string `json:"detail"`
}

// The diagnosis kinds.
const (
	FaultNodeLink = "node-link" // one node's link to the LAN (its port, cable or interface)
	FaultSplit    = "split"     // the LAN fell into groups that do not hear each other
	FaultOneWay   = "one-way"   // one node hears another, not the other way round
	FaultPair     = "pair"      // two nodes do not hear each other; all else does
	FaultLANDown  = "lan-down"  // no node hears any other on the LAN
	FaultLossy    = "lossy"     // lossy paths at one node's port, or across the LAN
	FaultSeveral  = "several"   // no single fault explains what the nodes hear
)

func (d Diagnosis) key() string { return d.Fault + " " + d.Node + " " + d.Peer + " " + d.Groups }

// pair is an observer and a node it speaks of, by their places in a
// matrix.
type pair struct{ o, p int }

// diagnose names the most likely fault on the matrix's LAN; ok is false
// when every node hears every other cleanly.
func (m *matrix) diagnose() (Diagnosis, bool) {
	lanName := routes.LANName(m.lan)
	n := len(m.nodes)
	// It runs every interval: the scratch of a cluster of up to 16 nodes
	// (of up to 64 bad or lossy pairs) stays on the stack.
	var (
		liveBuf, groupBuf [16]int
		badBuf, lossBuf   [64]pair
	)
	live := liveBuf[:0] // the nodes that are up, by place
	for i := range m.nodes {
		if m.alive[i] {
			live = append(live, i)
		}
	}
	at := func(o, p int) cell { return m.cells[o*n+p] }
	bad, loss := badBuf[:0], lossBuf[:0]
	known := 0
	for _, o := range live {
		for _, p := range live {
			switch c := at(o, p); {
			case o == p || c == unknown:
			case c == notHeard:
				bad = append(bad, pair{o, p})
				known++
			case c == lossy:
				loss = append(loss, pair{o, p})
				known++
			default:
				known++
			}
		}
	}
	dg := Diagnosis{LAN: lanName}
	if len(bad) == 0 && len(loss) == 0 {
		return dg, false
	}
	if len(bad) == 0 {
		dg.Fault = FaultLossy
		if x, ok := common(loss, func(p pair) (int, int) { return p.o, p.p }); ok && len(loss) >= 2 {
			dg.Node = m.nodes[x].String()
			dg.Detail = fmt.Sprintf("the paths between %s and the others on LAN %s are lossy, and nowhere else: its port or cable", dg.Node, lanName)
		} else {
			dg.Detail = fmt.Sprintf("the paths between %d pairs of nodes on LAN %s are lossy: the LAN itself", len(loss), lanName)
		}
		return dg, true
	}
	if len(bad) == known {
		dg.Fault = FaultLANDown
		dg.Detail = fmt.Sprintf("no node hears another on LAN %s", lanName)
		return dg, true
	}
	// Groups: nodes joined by any direction heard.
	group := groupBuf[:0]
	for range n {
		group = append(group, -1)
	}
	var groups [][]int
	hears := func(c cell) bool { return c == heard || c == lossy }
	for _, x := range live {
		if group[x] >= 0 {
			continue
		}
		g := len(groups)
		group[x] = g
		members := []int{x}
		for i := 0; i < len(members); i++ {
			for _, q := range live {
				if group[q] < 0 && (hears(at(members[i], q)) || hears(at(q, members[i]))) {
					group[q] = g
					members = append(members, q)
				}
			}
		}
		slices.Sort(members)
		groups = append(groups, members)
	}
	inside := 0 // bad pairs within a group
	for _, b := range bad {
		if group[b.o] == group[b.p] {
			inside++
		}
	}
	if len(groups) > 1 && inside == 0 {
		var singles, large []int
		for i, g := range groups {
			if len(g) == 1 {
				singles = append(singles, i)
			} else {
				large = append(large, i)
			}
		}
		switch {
		case len(singles) == 1 && len(large) == 1:
			dg.Fault, dg.Node = FaultNodeLink, m.nodes[groups[singles[0]][0]].String()
			dg.Detail = fmt.Sprintf("no node hears %s on LAN %s and it hears none", dg.Node, lanName)
			return dg, true
		case len(large) < 2:
			var ids []string
			for _, i := range singles {
				ids = append(ids, m.nodes[groups[i][0]].String())
			}
			dg.Fault = FaultSeveral
			dg.Detail = fmt.Sprintf("%d nodes hear no one on LAN %s and no one hears them (%s): as many links, not one fault",
				len(singles), lanName, strings.Join(ids, ", "))
			return dg, true
		}
		var parts []string
		for _, g := range groups {
			var ids []string
			for _, i := range g {
				ids = append(ids, shortID(m.nodes[i]))
			}
			parts = append(parts, "{"+strings.Join(ids, ",")+"}")
		}
		dg.Fault, dg.Groups = FaultSplit, strings.Join(parts, " ")
		dg.Detail = fmt.Sprintf("LAN %s is split into %d groups that do not hear each other: a link between switches", lanName, len(groups))
		return dg, true
	}
	if len(groups) > 1 {
		dg.Fault = FaultSeveral
		dg.Detail = fmt.Sprintf("%d pairs of nodes do not hear each other on LAN %s and no single fault explains it", len(bad), lanName)
		return dg, true
	}
	// One group: a fault at one node's port in one direction, or between
	// two nodes.
	if x, ok := common(bad, func(p pair) (int, int) { return p.p, p.p }); ok && len(bad) >= 2 {
		dg.Fault, dg.Node = FaultNodeLink, m.nodes[x].String()
		dg.Detail = fmt.Sprintf("one way: no node hears %s on LAN %s, and it hears them: what it sends is lost", dg.Node, lanName)
		return dg, true
	}
	if x, ok := common(bad, func(p pair) (int, int) { return p.o, p.o }); ok && len(bad) >= 2 {
		dg.Fault, dg.Node = FaultNodeLink, m.nodes[x].String()
		dg.Detail = fmt.Sprintf("one way: %s hears no node on LAN %s, and they hear it: what is sent to it is lost", dg.Node, lanName)
		return dg, true
	}
	a, b := bad[0].o, bad[0].p
	if len(bad) <= 2 && !slices.ContainsFunc(bad, func(p pair) bool { return !(p.o == a && p.p == b || p.o == b && p.p == a) }) {
		na, nb := m.nodes[a], m.nodes[b]
		if len(bad) == 1 && hears(at(b, a)) {
			dg.Fault, dg.Node, dg.Peer = FaultOneWay, nb.String(), na.String()
			dg.Detail = fmt.Sprintf("%s hears %s on LAN %s, not the other way round: frames from %s to %s are lost", nb, na, lanName, nb, na)
			return dg, true
		}
		if na > nb {
			na, nb = nb, na
		}
		dg.Fault, dg.Node, dg.Peer = FaultPair, na.String(), nb.String()
		dg.Detail = fmt.Sprintf("%s and %s do not hear each other on LAN %s; every other pair does", na, nb, lanName)
		return dg, true
	}
	dg.Fault = FaultSeveral
	dg.Detail = fmt.Sprintf("%d pairs of nodes do not hear each other on LAN %s and no single fault explains it", len(bad), lanName)
	return dg, true
}

// common finds the node that every pair involves (either of the two nodes
// ends gives), if there is one.
func common[P any](ps []P, ends func(P) (int, int)) (int, bool) {
	if len(ps) == 0 {
		return 0, false
	}
	a, b := ends(ps[0])
	for _, cand := range []int{a, b} {
		all := true
		for _, p := range ps[1:] {
			if x, y := ends(p); x != cand && y != cand {
				all = false
				break
			}
		}
		if all {
			return cand, true
		}
	}
	return 0, false
}

// shortID names a node in a group list by the last part of its id (.3).
func shortID(id routes.PeerID) string {
	s := id.String()
	return s[strings.LastIndexByte(s, '.'):]
}

// diagStable is how many evaluations in a row, one an interval, must give
// a LAN the same diagnosis before it is taken: while a fault is being
// detected, nodes see it one after the other.
const diagStable = 2

// diagState is the diagnosis of one LAN: the one taken, and the candidate
// that may replace it.
type diagState struct {
	cur       Diagnosis
	has       bool
	candidate Diagnosis
	hasCand   bool
	count     int
}

// diagCells is how many cells of the matrices one interval's evaluation
// may cover; a larger cluster is evaluated less often. An evaluation
// costs about 12 ns a cell (25 ms at 1,000 nodes and two LANs, 2 million
// cells, on a loaded 2-core VM: BenchmarkDiagnose), so this keeps it near
// 2% of a core however large the cluster.
const diagCells = 200_000

// diagnose evaluates every LAN's matrices, takes a new diagnosis once it
// held diagStable times, logs each change, and says when to evaluate
// again: after an interval, or more in a cluster past diagCells.
func (d *Daemon) diagnose(now time.Time) (next time.Time) {
	var ms [2][]*matrix
	cells := 0
	for i, f := range d.fams {
		if f != nil {
			ms[i] = d.matrices(f, now, &f.matrixBuf)
			if len(ms[i]) > 0 {
				cells += len(ms[i]) * len(ms[i][0].cells)
			}
		}
	}
	next = now.Add(d.cfg.Interval * time.Duration(1+cells/diagCells))
	for lan := range d.lans {
		var got []Diagnosis
		for _, fm := range ms {
			if fm == nil {
				continue
			}
			if dg, ok := fm[lan].diagnose(); ok {
				got = append(got, dg)
			}
		}
		dg, ok := Diagnosis{}, len(got) > 0
		switch {
		case len(got) == 1 || len(got) == 2 && got[0].key() == got[1].key():
			dg = got[0]
		case len(got) == 2:
			dg = Diagnosis{LAN: got[0].LAN, Fault: FaultSeveral, Detail: "IPv4: " + got[0].Detail + "; IPv6: " + got[1].Detail}
		}
		st := &d.diags[lan]
		if st.hasCand == ok && (!ok || st.candidate.key() == dg.key()) {
			st.count++
		} else {
			st.candidate, st.hasCand, st.count = dg, ok, 1
		}
		st.candidate.Detail = dg.Detail // the figures in it may move
		if st.count < diagStable || st.has == ok && (!ok || st.cur.key() == dg.key()) {
			if ok && st.has && st.cur.key() == dg.key() {
				st.cur = dg
			}
			continue
		}
		st.cur, st.has = dg, ok
		if !ok {
			d.log.Info("diagnosis", "lan", routes.LANName(lan), "fault", "none",
				"detail", fmt.Sprintf("every node hears every other on LAN %s again", routes.LANName(lan)))
			continue
		}
		args := []any{"lan", dg.LAN, "fault", dg.Fault}
		if dg.Node != "" {
			args = append(args, "node", dg.Node)
		}
		if dg.Peer != "" {
			args = append(args, "peer", dg.Peer)
		}
		if dg.Groups != "" {
			args = append(args, "groups", dg.Groups)
		}
		d.log.Warn("diagnosis", append(args, "detail", dg.Detail)...)
	}
	return next
}

// diagnoses is every LAN's current diagnosis.
func (d *Daemon) diagnoses() []Diagnosis {
	out := []Diagnosis{}
	for _, st := range d.diags {
		if st.has {
			out = append(out, st.cur)
		}
	}
	return out
}
