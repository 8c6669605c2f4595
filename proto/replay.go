package proto

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/faild/faild/routes"
)

// Replay protection, with --key-file only. A packet counts as evidence
// only if it is new: per peer node id, the pair (boot id, sequence number)
// must move forward.
//
// Each exchange (the IPv4 one of Listen, the IPv6 one of Listen6) numbers
// all the packets it sends (INQs and ACKs, on every LAN) from a counter of
// its own that starts at the wall clock in nanoseconds when it is made
// (see newExchange), and keeps a peer table of its own: a node's IPv4 and
// IPv6 packets are two series under the same node id and boot id, and each
// is checked only against the table of its family. With a key the tag
// covers the family (see MAC), so a packet of one series replayed to the
// other family's socket does not verify and cannot move that window.
// Within a series, sequence numbers grow across restarts as well as within
// one run, and the rule needs no order among boot ids, which are random:
//
//   - Same boot id: the sequence number must be above the highest seen, or
//     within the window below it and not seen before (a sliding bitmap as in
//     IPsec and WireGuard, so that packets reordered between LANs still
//     count). Anything older or seen before is a replay.
//   - Another boot id: accepted, and the window starts over at it, only if
//     its sequence number is above the highest seen from the peer. A
//     restarted peer passes (its clock moved on); a replayed packet of an
//     older boot does not, and so cannot reset the window.
//   - A peer not in the table (new, or evicted for a stranger when the
//     table was full), or silent for Config.Forget (its state is forgotten
//     then, see admit), is accepted as it comes.
//
// With a key every packet that reaches this check is authenticated, so no
// one without the key can move a peer's window. Known limits: a peer whose
// clock stepped back across a restart is ignored until it has been silent
// (no packet accepted) for Config.Forget, then heard again; state is kept
// for Config.Forget of silence, so a capture of a peer that has been
// silent that long is taken as new.
//
// Without a key there is no replay state at all. Anyone on a LAN can
// forge a packet with any id, boot and sequence number, so a replay is no
// more than a forgery, and a window that unsigned packets can move is a
// lever for one: with one window per peer, one forged INQ 10^12 ahead,
// sent on LAN A only, had every real packet of the peer on every LAN
// dropped as a replay until the peer was forgotten (60 s: both LANs
// failed over, the peer unreachable, 2,441 packets lost); with a window
// per LAN the same packet failed LAN A over for as long as the forged
// sequence number stayed ahead of the peer's (far beyond 90 s, since LAN
// B kept the peer from being forgotten); and a jump held back until a
// second packet confirmed it fell to two forged packets (issue 15). So
// without a key a packet that passes the other checks counts, whatever
// its sequence number: a stranger can add evidence for a peer on its LAN
// (impersonate it), and cannot take any away.
const (
	ringBlocks = 16
	// ReplayWindow is how far below the highest sequence number a packet
	// may arrive and still count, once: one block of the ring is always
	// the one being filled, so it is not part of the window.
	ReplayWindow = (ringBlocks - 1) * 64
)

// window is one peer's sliding bitmap over its sequence numbers.
type window struct {
	top  uint64
	ring [ringBlocks]uint64
}

// fresh reports whether seq is new to the window, without recording it.
func (w *window) fresh(seq uint64) bool {
	if seq > w.top {
		return true
	}
	if w.top-seq >= ReplayWindow {
		return false
	}
	return w.ring[(seq/64)%ringBlocks]&(1<<(seq%64)) == 0
}

// mark records seq, which fresh accepted.
func (w *window) mark(seq uint64) {
	if seq > w.top {
		cur, next := w.top/64, seq/64
		for i := uint64(1); i <= min(next-cur, ringBlocks); i++ {
			w.ring[(cur+i)%ringBlocks] = 0
		}
		w.top = seq
	}
	w.ring[(seq/64)%ringBlocks] |= 1 << (seq % 64)
}

// reset starts the window over at seq.
func (w *window) reset(seq uint64) {
	*w = window{top: seq}
	w.mark(seq)
}

// peerState is what the exchange remembers of one peer node id.
type peerState struct {
	boot     uint32 // with a key only, as win
	win      window
	last     time.Time     // last packet accepted
	interval time.Duration // its announced INQ interval
	// The source address the id speaks from on each LAN, and when it last
	// did: the id is bound to it (see admit).
	addr   [MaxLANs]netip.Addr
	addrAt [MaxLANs]time.Time
	// movedLog is when the id was last logged speaking from another
	// address, to log that at most once a minute.
	movedLog time.Time
	// What the peer's view (version 2) last said of us under viewBoot,
	// once viewed: per LAN of ours, 1 it hears us, -1 it does not, 0 it
	// has no path to us there or does not know us. viewOffset and viewAt
	// are the last window handed on (see learnView).
	viewBoot   uint32
	viewed     bool
	hears      [MaxLANs]int8
	viewOffset int
	viewAt     time.Time
	// The peer's address entries as they last came (placedFrom) and fall
	// on our LANs at placedFor: an address per LAN (placed) and the LAN of
	// each entry, -1 for none (lanOf); see peerAddrs.
	placedFor  *[]LAN
	placedFrom []netip.Prefix
	placed     [MaxLANs]netip.Addr
	lanOf      [MaxViewLANs]int8
	// The last window that came, as it came and turned by lanOf: no one
	// modifies turned once it is made, so learnView hands it on again.
	window []ViewEntry
	turned *View
}

// hearsUs reports whether the peer's view, under boot, says it hears us
// on lan; without one of that boot it does not.
func (st *peerState) hearsUs(boot uint32, lan int) bool {
	return st.viewed && st.viewBoot == boot && st.hears[lan] == 1
}

// DefaultMaxPeers bounds the peer table when Config.MaxPeers is 0: far more
// nodes than a broadcast LAN of dual-homed servers holds, and small enough
// (a few hundred bytes each) not to matter.
const DefaultMaxPeers = 256

// DefaultForget is how long a peer is remembered without a packet when
// Config.Forget is 0.
const DefaultForget = 60 * time.Second

const (
	// movedLogEvery limits the id-moved log line, per id.
	movedLogEvery = time.Minute
	// minRebind is the least time an id stays bound to a source address
	// after its last packet from there.
	minRebind = 5 * time.Second
)

// peerTable holds the replay windows and address bindings of at most max
// peers. Only the responder goroutine uses it.
type peerTable struct {
	keyed    bool // packets are authenticated: keep replay state
	max      int
	forget   time.Duration
	interval time.Duration // ours
	log      *slog.Logger
	m        map[uint32]*peerState
	// noEvict is when the table, full, may next hold a peer silent for
	// forget, so a flood of strangers does not scan the table per packet.
	noEvict time.Time
	// fullLogged is set when a refused stranger was logged, and cleared
	// when the table takes a new peer again: one line an episode.
	fullLogged bool
}

func newPeerTable(cfg *Config) *peerTable {
	t := &peerTable{keyed: len(cfg.Keys) > 0, max: cfg.MaxPeers, forget: cfg.Forget, interval: cfg.Interval, log: cfg.Log, m: make(map[uint32]*peerState)}
	if t.max <= 0 {
		t.max = DefaultMaxPeers
	}
	if t.forget <= 0 {
		t.forget = DefaultForget
	}
	return t
}

// admit applies the replay rule (with a key) and the address binding to a
// packet that passed every other check, and records it when it passes. It
// returns the drop reason, or -1 when the packet counts.
//
// The address binding: a node id that speaks on a LAN from one source
// address is bound to it; the same id from another address on that LAN is
// dropped, counted and logged (at most once a minute per id) until the bound
// address has been silent for max(5 s, 5 of the peer's intervals), after
// which the id moves to the new address (a node renumbered).
func (t *peerTable) admit(p *Packet, lan int, from netip.Addr, now time.Time) int {
	st := t.m[p.NodeID]
	if st != nil && now.Sub(st.last) >= t.forget {
		// Silent for forget: forgotten, even though room() did not need
		// its place. A peer whose clock stepped back across a restart
		// sends lower sequence numbers than the table holds, and every
		// one is a replay until then; dropped packets do not refresh last.
		*st = peerState{}
		t.start(st, p)
		t.bind(st, p, lan, from, now)
		return -1
	}
	if st == nil {
		if !t.room(now) {
			if !t.fullLogged && t.log != nil {
				t.fullLogged = true
				t.log.Warn("peer-limit", "node", routes.PeerID(p.NodeID).String(), "lan", routes.LANName(lan), "from", from.String(),
					"max_peers", t.max, "detail", "peer table full; ignoring new peers until one is forgotten")
			}
			return DropPeers
		}
		t.fullLogged = false
		st = &peerState{}
		t.start(st, p)
		t.m[p.NodeID] = st
		t.bind(st, p, lan, from, now)
		return -1
	}
	newBoot := p.BootID != st.boot
	if t.keyed && (newBoot && p.Seq <= st.win.top || !newBoot && !st.win.fresh(p.Seq)) {
		return DropReplay
	}
	if a := st.addr[lan]; a.IsValid() && a != from && now.Sub(st.addrAt[lan]) < t.rebind(st) {
		if t.log != nil && now.Sub(st.movedLog) >= movedLogEvery {
			st.movedLog = now
			t.log.Warn("id-moved", "node", routes.PeerID(p.NodeID).String(), "lan", routes.LANName(lan), "addr", a.String(), "from", from.String(),
				"detail", "another address claims this node id; ignoring it")
		}
		return DropIDAddr
	}
	if t.keyed && newBoot {
		t.start(st, p)
	} else if t.keyed {
		st.win.mark(p.Seq)
	}
	t.bind(st, p, lan, from, now)
	return -1
}

// start begins st's replay state at p.
func (t *peerTable) start(st *peerState, p *Packet) {
	if t.keyed {
		st.boot = p.BootID
		st.win.reset(p.Seq)
	}
}

func (t *peerTable) bind(st *peerState, p *Packet, lan int, from netip.Addr, now time.Time) {
	st.last = now
	st.interval = p.Interval
	st.addr[lan], st.addrAt[lan] = from, now
}

// rebind is how long an id stays bound to an address after its last
// packet from there. It is not cut short for a peer that looks renumbered
// (same boot, announcing the new address): without a key anyone can copy
// those fields from a broadcast INQ; with one, the routes through the
// peer's path on that LAN follow a new address only when the path fails
// and comes back, and the hold-down is what makes it fail (issue 15:
// following at once left a LAN-A failover route pointing at the old LAN-B
// address for good).
func (t *peerTable) rebind(st *peerState) time.Duration {
	return max(minRebind, 5*max(st.interval, t.interval))
}

// room makes room for one more peer if it can: below the limit there is
// room; at it, the peer silent longest goes if it has been silent for
// forget.
func (t *peerTable) room(now time.Time) bool {
	if len(t.m) < t.max {
		return true
	}
	if now.Before(t.noEvict) {
		return false
	}
	var (
		oldID   uint32
		oldLast time.Time
		found   bool
	)
	for id, st := range t.m {
		if !found || st.last.Before(oldLast) {
			oldID, oldLast, found = id, st.last, true
		}
	}
	if !found || now.Sub(oldLast) < t.forget {
		t.noEvict = oldLast.Add(t.forget)
		return false
	}
	delete(t.m, oldID)
	return true
}
