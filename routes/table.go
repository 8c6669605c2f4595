package routes

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/faild/faild/routes/minheap"
)

//go:generate stringer -type=State,Kind -output=names.go

// State is the health of one path, that is one (peer, LAN) pair.
//
//	         missed packets (detect.go), carrier lost; with --max-loss or
//	         --max-rtt also loss or delay over the window, or the peer's
//	         INQs listing us for f intervals (Reason says which)
//	┌───────┐ ─────────────────────────────────────► ┌─────────┐
//	│ Valid │                                        │ Invalid │
//	└───────┘ ◄───────────────────────────────────── └─────────┘
//	         -s consecutive intervals with evidence (damping: more); after
//	         loss or delay also a full window below half the threshold
//
// A path starts Valid when the peer is discovered, with its deadline one
// full detection time away, so a LAN that is already broken when faild starts
// fails over like one that breaks later. Until the path itself has carried
// evidence it is not Heard, and no route goes through it.
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
	// because another path of the peer changed.
	Rerouted
	// Forgotten: the peer was silent on every LAN for its forget time
	// (see Config.Forget); it is gone from the table with any route it had.
	Forgotten
	// Held: a path already invalid (for missed packets, say) is now held
	// so for another Reason: loss or delay over the window, until it is
	// clean; or the peer's word, until the peer no longer lists us.
	Held
)

// Reason says why a path is invalid.
type Reason uint8

const (
	ReasonNone    Reason = iota
	ReasonMissed         // expected packets missed (detect.go), or left so by an earlier run
	ReasonCarrier        // the LAN's interface lost its carrier
	ReasonLoss           // loss over the window above Config.MaxLoss
	ReasonRTT            // median round trip over the window above Config.MaxRTT
	ReasonPeer           // the peer's INQs list us as deaf: our packets do not reach it well
)

// String is the reason as the log's reason= key says it.
func (r Reason) String() string {
	switch r {
	case ReasonMissed:
		return "missed"
	case ReasonCarrier:
		return "carrier"
	case ReasonLoss:
		return "loss"
	case ReasonRTT:
		return "rtt"
	case ReasonPeer:
		return "peer"
	}
	return ""
}

// MaxLANs is the most LANs one node can watch.
const MaxLANs = 8

// LANName names LAN i as operators do: A, B, C...; "-" for no LAN (the -1
// of peer-wide events).
func LANName(i int) string {
	if i < 0 || i >= MaxLANs {
		return "-"
	}
	return string(rune('A' + i))
}

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
	return fmt.Sprintf("%s via %s lan %s", r.Dst, r.Via, LANName(r.LAN))
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
	// Reason, on a Failover, says why; Loss and RTT, on a Failover or a
	// Switchback while loss or delay is judged, are the path's loss over
	// the window and its median round trip.
	Reason Reason
	Loss   float64
	RTT    time.Duration
}

// MinInterval is the shortest INQ interval faild sends or honours.
const MinInterval = 10 * time.Millisecond

// Config holds the detection settings.
type Config struct {
	LANs      int           // number of LANs, in priority order; at most MaxLANs
	Interval  time.Duration // our INQ interval; 0 when we only respond
	Self      PeerID        // our own node id: our rank among the requestors (phase.go)
	Misses    int           // -f: intervals without evidence before a path is invalid
	Successes int           // -s: consecutive good intervals before it is valid again
	// Forget is the least time a peer silent on every LAN is kept; a peer
	// is kept for at least 10 of its detection times too, so a slow peer
	// fails over long before it is forgotten. 0: never forget.
	Forget time.Duration
	// MaxPeers bounds the table: evidence from further peers is ignored
	// until one is forgotten. 0: no bound.
	MaxPeers int
	// DampWindow and DampMax damp a flapping path (see damp.go).
	DampWindow time.Duration
	DampMax    int
	// MaxLoss (a fraction, 0 off) invalidates a path whose loss over the
	// window exceeds it, until its loss over a full window is below half
	// of it; LossWindow is the window in intervals (0: DefaultWindow).
	// MaxRTT (0 off) does the same for the median round trip. See
	// quality.go.
	MaxLoss    float64
	LossWindow int
	MaxRTT     time.Duration
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
	// Deaf: the sender cannot hear us on LAN (it lists us in its INQ). The
	// packet makes the peer and its addresses known, but is no evidence
	// for the path.
	Deaf bool
	// INQ numbers the INQ the packet is about among its sender's INQs on
	// LAN, from 1: for an ACK, ours that it answers (see Table.Sent); for
	// an INQ, the peer's own (0 from a sender that does not number them).
	// A copy has the same number, and the numbers that did not come were
	// lost (quality.go).
	INQ uint64
	// Boot is the sender's boot id: a new one says the peer restarted,
	// and what it did not send meanwhile is no loss. 0: not known.
	Boot uint32
	At   time.Time
}

// Path is the exported view of one path, for status reports.
type Path struct {
	State State
	Addr  netip.Addr
	// Heard: the path has carried evidence from Addr itself; only such a
	// path carries another's traffic.
	Heard        bool
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
	// Reason says why an Invalid path is so.
	Reason Reason
	// Quality is the path's loss and round trips, set by Paths.
	Quality Quality
}

type path struct {
	Path
	lastGood time.Time // start of the last interval counted in Goods
	// deadline is when the path's queue entry comes up: at or before the
	// time it goes Invalid without more evidence (silentAt), which
	// evidence only moves later.
	deadline time.Time
	// gen numbers the path's arming: only the queue entry with the current
	// gen is live, so an entry left behind by an invalidation that did not
	// come from the queue (LANDown) dies instead of living on beside the
	// next one.
	gen uint32
	// claimed: the peer was heard from Addr itself, so its claim on the
	// address is as strong as it gets (see claim.go).
	claimed bool
	damping
	q quality

	// lastPacket is when the peer's last packet arrived on the path,
	// evidence or not: whether this node hears the peer there (Hearing).
	lastPacket time.Time
}

type peer struct {
	id       PeerID
	interval time.Duration // the peer's announced INQ interval
	paths    []*path       // indexed by LAN; nil where the peer has no address
	heard    time.Time     // last evidence on any LAN
	boot     uint32        // its boot id, when the packets give it
}

// Table tracks every path and decides failovers and switchbacks.
type Table struct {
	cfg    Config
	peers  map[PeerID]*peer
	queue  deadlines
	soon   []deadline           // Expire's scratch, kept to spare an allocation a call
	looked time.Time            // when Expire last looked ahead
	walked uint64               // entries Expire took off the queue: its work, for tests
	claims map[netip.Addr]claim // which peer an address belongs to (claim.go)
	// failed holds peer addresses whose paths start Invalid (see
	// StartInvalid).
	failed map[netip.Addr]bool
	sent   []sent // the newest INQ on each LAN (detect.go)
	short  []sent // on each LAN, the INQ before the latest shortened interval (detect.go)
	// placeHold is when our INQs may move to their place again (phase.go).
	placeHold time.Time
	// rttHi and rttLo are the codes of MaxRTT and half of it (0: off).
	rttHi, rttLo uint16
	// Refused counts announced addresses refused because another peer
	// claims them.
	Refused uint64
}

// New returns an empty table.
func New(cfg Config) *Table {
	t := &Table{cfg: cfg, peers: make(map[PeerID]*peer), claims: make(map[netip.Addr]claim), failed: make(map[netip.Addr]bool),
		sent: make([]sent, max(cfg.LANs, 0)), short: make([]sent, max(cfg.LANs, 0))}
	if cfg.MaxRTT > 0 {
		t.rttHi, t.rttLo = rttCode(cfg.MaxRTT), rttCode(cfg.MaxRTT/2)
	}
	return t
}

// StartInvalid makes the path to the peer address a start Invalid when it
// is learnt, as an earlier run left it: that run failed it over and its
// route is still in place, so the path must earn its switchback (-s good
// intervals) as it would have had the run gone on.
func (t *Table) StartInvalid(a netip.Addr) { t.failed[a] = true }

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

// Observe records evidence and appends any resulting events to evs: the
// peer's discovery, the paths its addresses change (claim.go), and the
// switchback when the path's good intervals reach what it needs.
func (t *Table) Observe(o Observation, evs []Event) []Event {
	if o.LAN < 0 || o.LAN >= t.cfg.LANs {
		return evs
	}
	p := t.peers[o.Peer]
	if p == nil {
		if t.cfg.MaxPeers > 0 && len(t.peers) >= t.cfg.MaxPeers {
			return evs
		}
		p, evs = t.discover(o, evs)
	}
	faster := o.Interval != 0 && (p.interval == 0 || o.Interval < p.interval)
	p.interval, p.heard = o.Interval, o.At
	evs = t.learnAddrs(p, o, evs)
	pa := p.paths[o.LAN]
	if pa == nil {
		return evs // no address on the LAN it spoke on
	}
	pa.lastPacket = o.At
	if o.Boot != p.boot {
		if p.boot != 0 {
			// The peer restarted: what it did not send meanwhile is no
			// loss, and its INQs are numbered anew.
			for _, q := range p.paths {
				if q != nil {
					q.q.restarted()
				}
			}
		}
		p.boot = o.Boot
	}
	t.measure(pa, o)
	if faster {
		for lan := range p.paths {
			t.sooner(p, lan, o.At)
		}
	}
	if o.Deaf {
		// No evidence. While loss or delay is judged, a peer may find
		// our packets too lossy while its ACKs still reach us: its word,
		// f intervals running, fails the path over here too.
		if pa.State == Valid && t.judging() && pa.q.deafRun > t.cfg.Misses {
			return t.invalidate(p, o.LAN, o.At, ReasonPeer, evs)
		}
		t.sooner(p, o.LAN, o.At) // the peer's INQs count no more
		return evs
	}
	if !pa.Heard {
		// The first evidence on the path: it may carry another's traffic
		// from now on.
		before := t.routesOf(p)
		pa.Heard = true
		evs = t.rerouted(p, o.LAN, before, o.At, evs)
	}
	if o.RTT > 0 {
		pa.RTT = o.RTT
	}
	t.countGood(p, pa, o.At)
	r := t.degraded(p, pa)
	if pa.State == Valid {
		if r != ReasonNone {
			return t.invalidate(p, o.LAN, o.At, r, evs)
		}
		return evs // its deadline moved: Expire finds out when it comes up
	}
	if r != ReasonNone && r != pa.Reason {
		// Invalid for whatever reason, and now held for this one.
		return t.hold(p, o.LAN, r, o.At, evs)
	}
	if pa.Goods < t.needs(pa, o.At) {
		return evs
	}
	if pa.Reason == ReasonMissed && t.lossAtHalf(p, pa) {
		// Back from a cut onto a LAN that loses more than half of what
		// --max-loss allows: switching back now would fail over for loss
		// once the window crosses it, a flap. Held for loss instead, so
		// it returns as a path that failed for loss would.
		return t.hold(p, o.LAN, ReasonLoss, o.At, evs)
	}
	if !t.clean(p, pa) {
		return evs
	}
	if t.judging() && pa.q.deafRun > 0 && pa.Reason != ReasonPeer {
		// Clean by its own measures, but the peer still cannot hear us
		// well (its window, say, is not clean yet): wait for its word
		// rather than switch back and fail over again on it. Held on the
		// peer's word, the path no longer lists the peer, which then
		// never waits for us in turn.
		return t.hold(p, o.LAN, ReasonPeer, o.At, evs)
	}
	return t.validate(p, o.LAN, o.At, evs)
}

// hold keeps an invalid path invalid for another reason, and says so.
func (t *Table) hold(p *peer, lan int, r Reason, at time.Time, evs []Event) []Event {
	pa := p.paths[lan]
	pa.Reason = r
	e := Event{Kind: Held, Peer: p.id, LAN: lan, Addr: pa.Addr, Reason: r, At: at}
	t.measured(p, pa, &e)
	return append(evs, e)
}

// judging reports whether loss or delay is judged (--max-loss, --max-rtt).
func (t *Table) judging() bool { return t.cfg.MaxLoss > 0 || t.rttHi > 0 }

// degraded is the reason a path's measures over a full window invalidate
// it, or ReasonNone.
func (t *Table) degraded(p *peer, pa *path) Reason {
	if t.cfg.MaxLoss > 0 {
		if loss, full := t.judged(p, &pa.q); full && loss > t.cfg.MaxLoss {
			return ReasonLoss
		}
	}
	// The median is above MaxRTT when more than half of the round trips are.
	if r := &pa.q.rtt; t.rttHi > 0 && r.full() && 2*r.above > r.n {
		return ReasonRTT
	}
	return ReasonNone
}

// lossAtHalf reports whether a path's full loss window loses half of
// --max-loss or more: too much to switch back to (the hysteresis).
func (t *Table) lossAtHalf(p *peer, pa *path) bool {
	if t.cfg.MaxLoss <= 0 {
		return false
	}
	loss, full := t.judged(p, &pa.q)
	return full && loss >= t.cfg.MaxLoss/2
}

// clean reports whether an invalid path's measures let it switch back:
// after loss (delay), a full window below half the threshold, the
// hysteresis that keeps a path at the threshold from flapping; after the
// peer's word, the peer no longer listing us; after any reason, nothing
// that would invalidate it again at once. Only the peer's word waits for
// the peer: two ends invalid for their own reasons list each other, and
// each waiting for the other would never end; one whose peer still lists
// it when it switches back fails over again on the peer's word f
// intervals later, and then waits.
func (t *Table) clean(p *peer, pa *path) bool {
	if !t.judging() {
		return true
	}
	q := &pa.q
	switch {
	case pa.Reason == ReasonPeer:
		if q.deafRun > 0 {
			return false
		}
	case pa.Reason == ReasonLoss:
		if _, full := t.judged(p, q); !full || t.lossAtHalf(p, pa) {
			return false
		}
	case pa.Reason == ReasonRTT:
		// The median is below half of MaxRTT when at least half are.
		if !q.rtt.full() || 2*q.rtt.low < q.rtt.n {
			return false
		}
	}
	return t.degraded(p, pa) == ReasonNone
}

// measured fills in an event's loss and round trip, where they are judged.
func (t *Table) measured(p *peer, pa *path, e *Event) {
	if t.cfg.MaxLoss > 0 {
		e.Loss, _ = t.judged(p, &pa.q)
	}
	if t.rttHi > 0 {
		e.RTT, _ = pa.q.rtt.percentiles()
	}
}

// discover adds the peer of o's first packet to the table.
func (t *Table) discover(o Observation, evs []Event) (*peer, []Event) {
	p := &peer{id: o.Peer, paths: make([]*path, t.cfg.LANs), interval: o.Interval, heard: o.At}
	t.peers[o.Peer] = p
	if t.cfg.Forget > 0 {
		t.queue.push(deadline{at: t.forgetAt(p), peer: p, lan: forgetLAN})
	}
	return p, append(evs, Event{Kind: Discovered, Peer: o.Peer, LAN: o.LAN, Addr: addrAt(o.Addrs, o.LAN), At: o.At})
}

// countGood counts the interval of evidence at `at` towards the path's run
// of good intervals.
func (t *Table) countGood(p *peer, pa *path, at time.Time) {
	iv := t.interval(p)
	gap := at.Sub(pa.LastEvidence)
	last := pa.LastEvidence
	pa.LastEvidence = at
	switch {
	case gap > iv+iv/2:
		// An interval went by without evidence: the run starts over. For
		// damping, the path was last good just after the previous evidence.
		if pa.State == Invalid && last.After(pa.trouble) {
			pa.trouble = last
		}
		pa.Goods, pa.lastGood = 1, at
	case at.Sub(pa.lastGood) >= iv-iv/4:
		// A new interval. ACKs to our INQs and the peer's own INQs arrive
		// at different phases of the interval; both in one interval count
		// once, or -s would be met in half the time. The quarter interval
		// of slack absorbs jitter.
		pa.Goods++
		pa.lastGood = at
	}
}

// validate turns an invalid path valid (a switchback) and appends what that
// changes; invalidate is its counterpart.
func (t *Table) validate(p *peer, lan int, at time.Time, evs []Event) []Event {
	pa := p.paths[lan]
	wasUnreachable := !p.anyValid()
	before := t.routeFor(p, lan)
	others := t.routesOf(p)
	pa.State, pa.Reason = Valid, ReasonNone
	pa.q.deafRun = 0 // the peer's word counts from here
	pa.Switchbacks++
	t.arm(p, lan, at)
	e := Event{Kind: Switchback, Peer: p.id, LAN: lan, Addr: pa.Addr, Route: before, At: at}
	t.measured(p, pa, &e)
	evs = append(evs, e)
	if wasUnreachable {
		evs = append(evs, Event{Kind: Reachable, Peer: p.id, LAN: -1, At: at})
	}
	return t.rerouted(p, lan, others, at, evs)
}

// invalidate turns a valid path invalid (a failover) for reason and
// appends what that changes. Its queue entry goes stale and is dropped when
// it comes up.
func (t *Table) invalidate(p *peer, lan int, at time.Time, reason Reason, evs []Event) []Event {
	pa := p.paths[lan]
	others := t.routesOf(p)
	pa.State, pa.Reason = Invalid, reason
	pa.Goods = 0
	pa.Failovers++
	t.damp(pa, at)
	e := Event{Kind: Failover, Peer: p.id, LAN: lan, Addr: pa.Addr, Route: t.routeFor(p, lan), At: at,
		Needs: t.needs(pa, at), Reason: reason}
	t.measured(p, pa, &e)
	evs = append(evs, e)
	if !p.anyValid() {
		evs = append(evs, Event{Kind: Unreachable, Peer: p.id, LAN: -1, At: at})
	}
	return t.rerouted(p, lan, others, at, evs)
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
	pa.deadline = t.silentAt(p, pa, lan, now)
	pa.gen++
	t.queue.push(deadline{at: pa.deadline, peer: p, lan: lan, gen: pa.gen})
}

// sooner queues a Valid path anew when what it expects changed so that it
// goes invalid before its queue entry comes up: evidence only ever moves
// that later, but a stream that stops counting (the peer's INQs listing
// us) or a peer that speeds up moves it sooner.
func (t *Table) sooner(p *peer, lan int, now time.Time) {
	if pa := p.paths[lan]; pa != nil && pa.State == Valid && t.silentAt(p, pa, lan, now).Before(pa.deadline) {
		t.arm(p, lan, now)
	}
}

// NextDeadline is when Expire next has work to do; ok is false when no
// path can expire.
func (t *Table) NextDeadline() (at time.Time, ok bool) {
	if len(t.queue) == 0 {
		return time.Time{}, false
	}
	return t.queue[0].at, true
}

// Expire invalidates every path whose deadline has passed by now, forgets
// the peers silent for their forget time, and appends the resulting events
// to evs.
//
// Every half look-ahead (lookAhead) at most, it also looks one look-ahead
// ahead: the entries due by then whose paths have had evidence since they
// were queued are queued anew at their moved deadlines now. A healthy
// path's entry comes up about every f−1 intervals only to move on, at its
// own phase; without the look-ahead each such phase is a wake-up of the
// daemon, with it the wake-up that sends our INQs handles them all. Only
// the deadlines that stay within the look-ahead wake the daemon when they
// come, so a path is invalidated as exactly as before. Looking ahead at
// every call instead would walk those deadlines again at each of them:
// when a LAN dies, all its paths' deadlines fall within one interval, and
// the walks would grow with the square of the peers.
func (t *Table) Expire(now time.Time, evs []Event) []Event {
	horizon := now
	if ahead := t.lookAhead(); now.Sub(t.looked) >= ahead/2 {
		horizon, t.looked = now.Add(ahead), now
	}
	soon := t.soon[:0] // entries due by the horizon, queued again after the walk
	for len(t.queue) > 0 && !t.queue[0].at.After(horizon) {
		d := t.queue.pop()
		t.walked++
		if d.lan == forgetLAN {
			if d.at.After(now) {
				soon = append(soon, d)
			} else {
				evs = t.forget(d, now, evs)
			}
			continue
		}
		pa := d.peer.paths[d.lan]
		if pa == nil || pa.State != Valid || pa.gen != d.gen || t.peers[d.peer.id] != d.peer {
			continue // stale entry
		}
		at := t.silentAt(d.peer, pa, d.lan, now)
		if at.After(now) {
			// Evidence moved the deadline (or it is still to come); each
			// valid path keeps one entry.
			pa.deadline = at
			d.at = at
			if at.After(horizon) {
				t.queue.push(d)
			} else {
				soon = append(soon, d)
			}
			continue
		}
		evs = t.invalidate(d.peer, d.lan, at, ReasonMissed, evs)
	}
	for _, d := range soon {
		t.queue.push(d)
	}
	clear(soon) // hold no peer that may be forgotten
	t.soon = soon[:0]
	return evs
}

// lookAhead is how far ahead Expire moves entries on: our interval, or for
// a responder, which sends no INQs, the shortest interval faild honours
// times ten.
func (t *Table) lookAhead() time.Duration {
	if t.cfg.Interval > 0 {
		return t.cfg.Interval
	}
	return 10 * MinInterval
}

// Deaf appends to dst the peers this node cannot hear on lan as of now:
// those whose path there is invalid, or has carried no evidence yet. A node
// that has just started cannot yet tell a peer that its packets on a LAN
// are lost; listing the peers it has not heard says so until it hears them.
// A path invalid only on the peer's word (ReasonPeer) hears the peer well
// and does not list it: two ends that each waited for the other's word
// would wait for ever. Nor does one invalid for missed packets or for its
// carrier that hears the peer again, its good intervals running (held for
// -s, or damped):
// listed, a responder, whose only evidence is our INQs, could start its
// own count only once ours was done, and switch back twice as late.
func (t *Table) Deaf(lan int, now time.Time, dst []uint32) []uint32 {
	for _, p := range t.peers {
		if lan >= len(p.paths) || p.paths[lan] == nil {
			continue
		}
		if pa := p.paths[lan]; !pa.Heard || pa.State == Invalid && pa.Reason != ReasonPeer && !t.hearsAgain(p, pa, now) {
			dst = append(dst, uint32(p.id))
		}
	}
	return dst
}

// hearsAgain reports whether a path invalid for silence (missed packets,
// or its carrier) has evidence in its latest interval that counted towards
// its run of good ones. One held for its loss or delay hears its peer all
// along and is not hearing it again.
func (t *Table) hearsAgain(p *peer, pa *path, now time.Time) bool {
	iv := t.interval(p)
	return (pa.Reason == ReasonMissed || pa.Reason == ReasonCarrier) && pa.Goods > 0 && now.Sub(pa.LastEvidence) <= iv+iv/2
}

// Hearing is what this node hears of one peer, for the view its INQs
// carry: bit i of Known is set when it has a path to the peer on LAN i,
// bit i of Heard when a packet of the peer's arrived there within the
// path's detection time, evidence or not, and bit i of Lossy when the
// path is heard but lossy (Table.Lossy). Heard says which way frames go:
// a path broken one way is invalid at both ends, but only one end hears
// the other.
type Hearing struct {
	Peer                PeerID
	Known, Heard, Lossy uint8
}

// Hearing appends what this node hears of every peer as of now to dst.
func (t *Table) Hearing(now time.Time, dst []Hearing) []Hearing {
	for _, p := range t.peers {
		h := Hearing{Peer: p.id}
		det := t.detection(p)
		for lan, pa := range p.paths {
			if pa == nil || lan >= MaxLANs {
				continue
			}
			h.Known |= 1 << lan
			if !pa.lastPacket.IsZero() && now.Sub(pa.lastPacket) <= det {
				h.Heard |= 1 << lan
				if t.lossy(p, pa) {
					h.Lossy |= 1 << lan
				}
			}
		}
		dst = append(dst, h)
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
			evs = t.invalidate(p, lan, now, ReasonCarrier, evs)
		}
	}
	return evs
}

// EachPeer calls fn with every peer's id.
func (t *Table) EachPeer(fn func(PeerID)) {
	for id := range t.peers {
		fn(id)
	}
}

// Has reports whether the table holds the peer id.
func (t *Table) Has(id PeerID) bool { return t.peers[id] != nil }

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
// the peer was heard at an address of the same family; none when there is
// no such LAN. An address only announced, never heard from, carries no
// traffic: nobody has shown that the peer is there.
func (t *Table) routeFor(p *peer, lan int) Route {
	broken := p.paths[lan]
	if broken == nil || broken.State == Valid || !broken.Addr.IsValid() {
		return Route{}
	}
	for m, pa := range p.paths {
		if m == lan || pa == nil || pa.State != Valid || !pa.Heard || !pa.Addr.IsValid() || pa.Addr.Is4() != broken.Addr.Is4() {
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
				v.Quality = t.quality(p, &pa.q)
				fn(p.id, lan, v, t.routeFor(p, lan))
			}
		}
	}
}

// Path returns the path whose peer address is a, if any.
func (t *Table) Path(a netip.Addr) (Path, bool) {
	if p, lan, ok := t.path(a); ok {
		return p.paths[lan].Path, true
	}
	return Path{}, false
}

// Owner returns the peer and LAN of the path whose peer address is a.
func (t *Table) Owner(a netip.Addr) (PeerID, int, bool) {
	if p, lan, ok := t.path(a); ok {
		return p.id, lan, true
	}
	return 0, 0, false
}

func (t *Table) path(a netip.Addr) (*peer, int, bool) {
	c, ok := t.claims[a]
	if !ok {
		return nil, 0, false
	}
	for lan, pa := range c.p.paths {
		if pa != nil && pa.Addr == a {
			return c.p, lan, true
		}
	}
	return nil, 0, false
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

// deadlines is the expiry queue, a min-heap by at (routes/minheap).
type deadlines []deadline

func earlier(a, b deadline) bool { return a.at.Before(b.at) }

func (d *deadlines) push(x deadline) { minheap.Push((*[]deadline)(d), x, earlier) }

func (d *deadlines) pop() deadline { return minheap.Pop((*[]deadline)(d), earlier) }
