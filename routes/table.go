package routes

import (
	"container/heap"
	"fmt"
	"net/netip"
	"time"
)

//go:generate stringer -type=State,Kind -output=names.go

// State is the health of one path, that is one (peer, LAN) pair.
//
//	         -f intervals without evidence
//	┌───────┐ ───────────────────────────► ┌─────────┐
//	│ Valid │                              │ Invalid │
//	└───────┘ ◄─────────────────────────── └─────────┘
//	         -s consecutive intervals with evidence
//
// A path starts Valid when the peer is discovered, with its deadline one
// full detection time away, so a LAN that is already broken when faild starts
// fails over like one that breaks later.
type State uint8

const (
	Valid State = iota
	Invalid
)

// Kind says what an Event reports.
type Kind uint8

const (
	// Discovered: the first packet from a peer.
	Discovered Kind = iota
	// Failover: a path went invalid; Route is what now carries its traffic.
	Failover
	// Switchback: a path is valid again; Route is what carried it until now.
	Switchback
	// Unreachable: every path to the peer is invalid; no route is installed.
	Unreachable
	// Reachable: some path to an unreachable peer is valid again.
	Reachable
	// Rerouted: a path that stays invalid has a new Route (or none now)
	// because another path of the peer changed state.
	Rerouted
	// Forgotten: the peer was silent on every LAN for its forget time
	// (see Config.Forget); it is gone from the table with any route it had.
	Forgotten
)

// PeerID is a node's stable identity on the wire (by default its LAN-A
// IPv4 address), shown in dotted-quad form.
type PeerID uint32

func (id PeerID) String() string {
	return netip.AddrFrom4([4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}).String()
}

// Route is a host route that steers a peer's address on one LAN over another.
type Route struct {
	Dst netip.Prefix // the peer's address on the broken LAN, as a host prefix
	Via netip.Addr   // the peer's address on the LAN that carries the traffic
	LAN int          // index of the LAN that carries the traffic
}

// IsZero reports whether r is no route at all.
func (r Route) IsZero() bool { return !r.Dst.IsValid() }

func (r Route) String() string {
	if r.IsZero() {
		return "none"
	}
	return fmt.Sprintf("%s via %s lan %d", r.Dst, r.Via, r.LAN)
}

// Event is one change worth logging and acting on.
type Event struct {
	Kind  Kind
	Peer  PeerID
	LAN   int        // the path's LAN; -1 for peer-wide events
	Addr  netip.Addr // the peer's address on LAN
	Route Route      // see Kind
	At    time.Time
	// Needs, on a Failover, is how many consecutive good intervals the path
	// must now show to switch back: Config.Successes, or more while the path
	// is damped for flapping (see Config.DampWindow).
	Needs int
}

// MinInterval is the shortest INQ interval faild sends or honours.
const MinInterval = 10 * time.Millisecond

// Config holds the detection settings.
type Config struct {
	LANs      int           // number of LANs, in priority order
	Interval  time.Duration // our INQ interval; 0 when we only respond
	Misses    int           // -f: intervals without evidence before a path is invalid
	Successes int           // -s: consecutive good intervals before it is valid again
	// Forget is the least time a peer silent on every LAN is kept; a peer
	// is kept for at least 10 of its detection times too, so a slow peer
	// fails over long before it is forgotten. 0: never forget.
	Forget time.Duration
	// MaxPeers bounds the table: evidence from further peers is ignored
	// until one is forgotten. 0: no bound.
	MaxPeers int
	// DampWindow and DampMax damp a flapping path, as corosync backs off a
	// flapping link: each failover of a path within DampWindow of its
	// previous one doubles the good intervals it needs to switch back
	// (Successes × 2^k, at most Successes × DampMax), and the doubling is
	// undone one step per DampWindow in which the path showed no trouble.
	// DampWindow 0 turns damping off; DampMax below 2 means no doubling.
	DampWindow time.Duration
	DampMax    int
}

// Observation is one piece of evidence: a packet from Peer on LAN.
type Observation struct {
	Peer PeerID
	LAN  int
	// Addrs holds the peer's address on each of our LANs, indexed like them;
	// the zero Addr where the peer has none.
	Addrs []netip.Addr
	// Interval is the peer's announced INQ interval; 0 for a responder.
	Interval time.Duration
	// RTT is the round trip of our INQ that this ACK answers, 0 for an INQ.
	RTT time.Duration
	At  time.Time
}

// Path is the exported view of one path, for status reports.
type Path struct {
	State        State
	Addr         netip.Addr
	LastEvidence time.Time
	Goods        int           // consecutive good intervals so far
	RTT          time.Duration // last measured round trip
	Failovers    int
	Switchbacks  int
	// Needs is how many consecutive good intervals the path needs to be
	// valid again: Successes, or more while it is damped.
	Needs int
	// Interval is the expected spacing of evidence on the path, so that a
	// status report can count the intervals missed; set by Paths.
	Interval time.Duration
}

type path struct {
	Path
	lastGood time.Time // start of the last interval counted in Goods
	deadline time.Time // when a Valid path goes Invalid without more evidence
	// gen numbers the path's arming: only the queue entry with the current
	// gen is live, so an entry left behind by an invalidation that did not
	// come from the queue (LANDown) dies instead of living on beside the
	// next one.
	gen uint32
	// heard: the peer was heard from Addr itself, so its claim on the
	// address is as strong as it gets (see Table.claim).
	heard bool

	// Damping (see Config.DampWindow): penalty doublings of the good
	// intervals needed, as of trouble, the last time the path went bad
	// (a failover, or a run of good intervals broken while invalid);
	// lastFailover tells whether a failover came within the window.
	penalty      int
	trouble      time.Time
	lastFailover time.Time
}

type peer struct {
	id       PeerID
	interval time.Duration // the peer's announced INQ interval
	paths    []*path       // indexed by LAN; nil where the peer has no address
	heard    time.Time     // last evidence on any LAN
}

// Table tracks every path and decides failovers and switchbacks.
type Table struct {
	cfg    Config
	peers  map[PeerID]*peer
	queue  deadlines
	claims map[netip.Addr]claim // which peer an address belongs to
	// Refused counts announced addresses refused because another peer
	// claims them.
	Refused uint64
}

// claim says which peer uses an address for its paths, and whether that
// peer was heard from the address itself or only announced it.
type claim struct {
	p     *peer
	heard bool
}

// New returns an empty table.
func New(cfg Config) *Table {
	return &Table{cfg: cfg, peers: make(map[PeerID]*peer), claims: make(map[netip.Addr]claim)}
}

// claim reports whether p may use a as its address on a LAN, and records
// it. Every route faild installs is for a peer's address, so two peers
// must never share one: a peer heard from a (the packet's source on its
// LAN) always may, taking a from a peer that only announced it; an
// announced address may be used only while no other peer claims it, so a
// host cannot, by announcing it, point faild's routes at an address that
// is someone else's. A peer that loses an address loses the routes for it,
// reported as Rerouted events appended to evs.
func (t *Table) claim(p *peer, a netip.Addr, heard bool, at time.Time, evs []Event) (bool, []Event) {
	c, ok := t.claims[a]
	switch {
	case !ok || c.p == p:
		t.claims[a] = claim{p: p, heard: heard || (ok && c.heard)}
		return true, evs
	case heard && !c.heard:
		before := t.routesOf(c.p)
		for _, pa := range c.p.paths {
			if pa != nil && pa.Addr == a {
				pa.Addr, pa.heard = netip.Addr{}, false
			}
		}
		evs = t.rerouted(c.p, -1, before, at, evs)
		t.claims[a] = claim{p: p, heard: true}
		return true, evs
	}
	t.Refused++
	return false, evs
}

// release gives up p's claim on a.
func (t *Table) release(p *peer, a netip.Addr) {
	if c, ok := t.claims[a]; ok && c.p == p {
		delete(t.claims, a)
	}
}

// interval is the expected spacing of evidence on a path to p: our INQs
// bring ACKs at our interval and the peer's INQs come at its own; the faster
// source sets the pace.
func (t *Table) interval(p *peer) time.Duration {
	a, b := t.cfg.Interval, p.interval
	if b != 0 && b < MinInterval {
		b = MinInterval // a peer cannot make us judge faster than we allow ourselves
	}
	switch {
	case a == 0 && b == 0:
		return time.Second // an ACK without our INQ: cannot happen, but never divide time by zero
	case a == 0:
		return b
	case b == 0 || a < b:
		return a
	}
	return b
}

// grace absorbs scheduling and round-trip jitter so that a packet that is
// due exactly at the deadline does not invalidate a path.
func grace(iv time.Duration) time.Duration {
	return min(iv/4, 5*time.Millisecond)
}

func (t *Table) detection(p *peer) time.Duration {
	iv := t.interval(p)
	return time.Duration(t.cfg.Misses)*iv + grace(iv)
}

// Observe records evidence and appends any resulting events to evs.
func (t *Table) Observe(o Observation, evs []Event) []Event {
	if o.LAN < 0 || o.LAN >= t.cfg.LANs {
		return evs
	}
	p := t.peers[o.Peer]
	if p == nil {
		if t.cfg.MaxPeers > 0 && len(t.peers) >= t.cfg.MaxPeers {
			return evs
		}
		p = &peer{id: o.Peer, paths: make([]*path, t.cfg.LANs)}
		t.peers[o.Peer] = p
		evs = append(evs, Event{Kind: Discovered, Peer: o.Peer, LAN: o.LAN, Addr: addrAt(o.Addrs, o.LAN), At: o.At})
		p.interval, p.heard = o.Interval, o.At
		if t.cfg.Forget > 0 {
			heap.Push(&t.queue, deadline{at: t.forgetAt(p), peer: p, lan: forgetLAN})
		}
	}
	p.interval = o.Interval
	p.heard = o.At
	// Learn or refresh the peer's addresses; a LAN seen for the first time
	// gets a path that must prove itself within one detection time.
	for lan := range p.paths {
		a := addrAt(o.Addrs, lan)
		if !a.IsValid() {
			continue
		}
		heard := lan == o.LAN
		if pa := p.paths[lan]; pa != nil && pa.Addr == a && (pa.heard || !heard) {
			continue // a path's address is always claimed by its peer
		}
		var ok bool
		if ok, evs = t.claim(p, a, heard, o.At, evs); !ok {
			continue
		}
		if p.paths[lan] == nil {
			p.paths[lan] = &path{Path: Path{State: Valid, Addr: a, LastEvidence: o.At}}
			t.arm(p, lan, o.At)
		}
		if old := p.paths[lan].Addr; old != a {
			t.release(p, old)
			p.paths[lan].Addr, p.paths[lan].heard = a, false
		}
		p.paths[lan].heard = p.paths[lan].heard || heard
	}
	pa := p.paths[o.LAN]
	if pa == nil {
		return evs // the peer announced no address on the LAN it spoke on
	}
	iv := t.interval(p)
	if o.RTT > 0 {
		pa.RTT = o.RTT
	}
	gap := o.At.Sub(pa.LastEvidence)
	last := pa.LastEvidence
	pa.LastEvidence = o.At
	switch {
	case gap > iv+iv/2:
		// An interval went by without evidence: the run starts over. For
		// damping, the path was last good just after the previous evidence.
		if pa.State == Invalid && last.After(pa.trouble) {
			pa.trouble = last
		}
		pa.Goods, pa.lastGood = 1, o.At
	case o.At.Sub(pa.lastGood) >= iv-iv/4:
		// A new interval. ACKs to our INQs and the peer's own INQs arrive
		// at different phases of the interval; both in one interval count
		// once, or -s would be met in half the time. The quarter interval
		// of slack absorbs jitter.
		pa.Goods++
		pa.lastGood = o.At
	}
	if pa.State == Valid {
		pa.deadline = o.At.Add(t.detection(p))
		return evs
	}
	if pa.Goods < t.needs(pa, o.At) {
		return evs
	}
	wasUnreachable := !p.anyValid()
	before := t.routeFor(p, o.LAN)
	others := t.routesOf(p)
	pa.State = Valid
	pa.Switchbacks++
	t.arm(p, o.LAN, o.At)
	evs = append(evs, Event{Kind: Switchback, Peer: p.id, LAN: o.LAN, Addr: pa.Addr, Route: before, At: o.At})
	if wasUnreachable {
		evs = append(evs, Event{Kind: Reachable, Peer: p.id, LAN: -1, At: o.At})
	}
	return t.rerouted(p, o.LAN, others, o.At, evs)
}

// routesOf is the route of each of p's paths, to compare after a change.
func (t *Table) routesOf(p *peer) []Route {
	rs := make([]Route, len(p.paths))
	for lan := range p.paths {
		rs[lan] = t.routeFor(p, lan)
	}
	return rs
}

// rerouted appends a Rerouted event for every path other than changed whose
// route differs from before, so that no route comes or goes unlogged.
func (t *Table) rerouted(p *peer, changed int, before []Route, at time.Time, evs []Event) []Event {
	for lan, pa := range p.paths {
		if lan == changed || pa == nil {
			continue
		}
		if r := t.routeFor(p, lan); r != before[lan] {
			evs = append(evs, Event{Kind: Rerouted, Peer: p.id, LAN: lan, Addr: pa.Addr, Route: r, At: at})
		}
	}
	return evs
}

// arm sets a fresh deadline for a Valid path and queues it.
func (t *Table) arm(p *peer, lan int, now time.Time) {
	pa := p.paths[lan]
	pa.deadline = now.Add(t.detection(p))
	pa.gen++
	heap.Push(&t.queue, deadline{at: pa.deadline, peer: p, lan: lan, gen: pa.gen})
}

// NextDeadline is when Expire next has work to do; ok is false when no
// path can expire.
func (t *Table) NextDeadline() (at time.Time, ok bool) {
	if len(t.queue) == 0 {
		return time.Time{}, false
	}
	return t.queue[0].at, true
}

// Expire invalidates every path whose deadline has passed by now and
// appends the resulting events to evs.
func (t *Table) Expire(now time.Time, evs []Event) []Event {
	for len(t.queue) > 0 && !t.queue[0].at.After(now) {
		d := heap.Pop(&t.queue).(deadline)
		if d.lan == forgetLAN {
			evs = t.forget(d, now, evs)
			continue
		}
		pa := d.peer.paths[d.lan]
		if pa == nil || pa.State != Valid || pa.gen != d.gen || t.peers[d.peer.id] != d.peer {
			continue // stale entry
		}
		if pa.deadline.After(now) {
			// Evidence moved the deadline; each valid path keeps one entry.
			heap.Push(&t.queue, deadline{at: pa.deadline, peer: d.peer, lan: d.lan, gen: d.gen})
			continue
		}
		evs = t.invalidate(d.peer, d.lan, pa.deadline, evs)
	}
	return evs
}

// Invalid appends to dst the peers whose path on lan is invalid: those this
// node cannot hear there.
func (t *Table) Invalid(lan int, dst []uint32) []uint32 {
	for _, p := range t.peers {
		if lan < len(p.paths) && p.paths[lan] != nil && p.paths[lan].State == Invalid {
			dst = append(dst, uint32(p.id))
		}
	}
	return dst
}

// LANDown invalidates every valid path on lan at once, because the LAN's
// interface lost its carrier: no evidence can come, so there is no point
// waiting for the deadlines.
func (t *Table) LANDown(lan int, now time.Time, evs []Event) []Event {
	if lan < 0 || lan >= t.cfg.LANs {
		return evs
	}
	for _, p := range t.peers {
		if pa := p.paths[lan]; pa != nil && pa.State == Valid {
			evs = t.invalidate(p, lan, now, evs)
		}
	}
	return evs
}

// invalidate turns a valid path invalid and appends what that changes. Its
// queue entry goes stale and is dropped when it comes up.
func (t *Table) invalidate(p *peer, lan int, at time.Time, evs []Event) []Event {
	pa := p.paths[lan]
	others := t.routesOf(p)
	pa.State = Invalid
	pa.Goods = 0
	pa.Failovers++
	t.damp(pa, at)
	evs = append(evs, Event{Kind: Failover, Peer: p.id, LAN: lan, Addr: pa.Addr, Route: t.routeFor(p, lan), At: at,
		Needs: t.needs(pa, at)})
	if !p.anyValid() {
		evs = append(evs, Event{Kind: Unreachable, Peer: p.id, LAN: -1, At: at})
	}
	return t.rerouted(p, lan, others, at, evs)
}

// damp updates a path's penalty for a failover at: one more doubling if
// the previous failover was within the window, after the decay for the
// quiet windows since the last trouble.
func (t *Table) damp(pa *path, at time.Time) {
	if t.cfg.DampWindow <= 0 {
		return
	}
	k := t.penalty(pa, at)
	if !pa.lastFailover.IsZero() && at.Sub(pa.lastFailover) < t.cfg.DampWindow {
		k = min(k+1, maxPenalty(t.cfg.DampMax))
	}
	pa.penalty, pa.trouble, pa.lastFailover = k, at, at
}

// penalty is the path's doublings at now: one fewer for each whole window
// without trouble since the last.
func (t *Table) penalty(pa *path, now time.Time) int {
	if t.cfg.DampWindow <= 0 || pa.penalty == 0 {
		return 0
	}
	quiet := int(now.Sub(pa.trouble) / t.cfg.DampWindow)
	return max(pa.penalty-quiet, 0)
}

// needs is how many consecutive good intervals the path needs at now to
// switch back.
func (t *Table) needs(pa *path, now time.Time) int {
	return t.cfg.Successes * min(1<<t.penalty(pa, now), max(t.cfg.DampMax, 1))
}

// maxPenalty is the fewest doublings that reach the factor dampMax, so
// that the penalty never grows past what it can matter.
func maxPenalty(dampMax int) int {
	k := 0
	for 1<<k < dampMax && k < 20 {
		k++
	}
	return k
}

// forgetLAN marks the one queue entry per peer that is its forget time.
const forgetLAN = -1

// forgetAt is when p is forgotten without further evidence.
func (t *Table) forgetAt(p *peer) time.Time {
	return p.heard.Add(max(t.cfg.Forget, 10*t.detection(p)))
}

// forget drops d's peer if it has been silent for its forget time, and
// requeues it otherwise.
func (t *Table) forget(d deadline, now time.Time, evs []Event) []Event {
	if t.peers[d.peer.id] != d.peer {
		return evs
	}
	if at := t.forgetAt(d.peer); at.After(now) {
		heap.Push(&t.queue, deadline{at: at, peer: d.peer, lan: forgetLAN})
		return evs
	}
	for _, pa := range d.peer.paths {
		if pa != nil {
			t.release(d.peer, pa.Addr)
		}
	}
	delete(t.peers, d.peer.id)
	return append(evs, Event{Kind: Forgotten, Peer: d.peer.id, LAN: -1, At: now})
}

// Len is the number of peers in the table.
func (t *Table) Len() int { return len(t.peers) }

// Counts returns how many peers and paths the table holds and how many of
// the paths are invalid, without building a report: cheap enough to run
// after every change.
func (t *Table) Counts() (peers, paths, invalid int) {
	for _, p := range t.peers {
		for _, pa := range p.paths {
			if pa == nil {
				continue
			}
			paths++
			if pa.State == Invalid {
				invalid++
			}
		}
	}
	return len(t.peers), paths, invalid
}

func (p *peer) anyValid() bool {
	for _, pa := range p.paths {
		if pa != nil && pa.State == Valid {
			return true
		}
	}
	return false
}

// routeFor is the host route for the peer's address on lan: none while that
// path is valid, else via the first valid LAN (in priority order) on which
// the peer has an address of the same family; none when there is no such LAN.
func (t *Table) routeFor(p *peer, lan int) Route {
	broken := p.paths[lan]
	if broken == nil || broken.State == Valid || !broken.Addr.IsValid() {
		return Route{}
	}
	for m, pa := range p.paths {
		if m == lan || pa == nil || pa.State != Valid || !pa.Addr.IsValid() || pa.Addr.Is4() != broken.Addr.Is4() {
			continue
		}
		return Route{Dst: netip.PrefixFrom(broken.Addr, broken.Addr.BitLen()), Via: pa.Addr, LAN: m}
	}
	return Route{}
}

// Routes appends the host routes the node should have to dst.
func (t *Table) Routes(dst []Route) []Route {
	for _, p := range t.peers {
		for lan := range p.paths {
			if r := t.routeFor(p, lan); !r.IsZero() {
				dst = append(dst, r)
			}
		}
	}
	return dst
}

// Paths calls fn for every path as of now, for status reports.
func (t *Table) Paths(now time.Time, fn func(id PeerID, lan int, p Path, route Route)) {
	for _, p := range t.peers {
		for lan, pa := range p.paths {
			if pa != nil {
				v := pa.Path
				v.Interval = t.interval(p)
				v.Needs = t.needs(pa, now)
				fn(p.id, lan, v, t.routeFor(p, lan))
			}
		}
	}
}

func addrAt(addrs []netip.Addr, i int) netip.Addr {
	if i < len(addrs) {
		return addrs[i]
	}
	return netip.Addr{}
}

// deadline is one entry in the expiry queue, a min-heap by time.
type deadline struct {
	at   time.Time
	peer *peer
	lan  int
	gen  uint32 // the path's gen when armed; see path.gen
}

type deadlines []deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
