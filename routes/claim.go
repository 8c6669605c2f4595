package routes

import (
	"net/netip"
	"time"
)

// claim says which peer uses an address for its paths, and whether that
// peer was heard from the address itself or only announced it.
type claim struct {
	p     *peer
	heard bool
}

// learnAddrs learns or refreshes the peer's address on every LAN from o: a
// LAN seen for the first time gets a path that must prove itself within
// one detection time, a LAN whose address changed follows it (and must be
// heard anew), and the address o came from is the peer's by the strongest
// claim. Routes that change with it are reported as Rerouted.
func (t *Table) learnAddrs(p *peer, o Observation, evs []Event) []Event {
	var before []Route // the routes before the first change, if any
	for lan := range p.paths {
		a := addrAt(o.Addrs, lan)
		if !a.IsValid() {
			continue
		}
		heard := lan == o.LAN
		pa := p.paths[lan]
		if pa != nil && pa.Addr == a && (pa.claimed || !heard) {
			continue // a path's address is always claimed by its peer
		}
		if pa != nil && pa.claimed && !heard {
			// An address the peer was heard from moves only when the peer
			// is heard from another there: an announcement from another
			// LAN (a forgery, without a key) must not move it.
			continue
		}
		var ok bool
		if ok, evs = t.claim(p, a, heard, o.At, evs); !ok {
			continue
		}
		if before == nil {
			before = t.routesOf(p)
		}
		if pa == nil {
			pa = &path{Path: Path{State: Valid, Addr: a, LastEvidence: o.At}, q: newQuality(t.window())}
			p.paths[lan] = pa
			if t.failed[a] {
				delete(t.failed, a)
				pa.State, pa.Reason = Invalid, ReasonMissed
			} else {
				t.arm(p, lan, o.At)
			}
		}
		if pa.Addr != a {
			t.release(p, pa.Addr)
			pa.Addr, pa.claimed, pa.Heard = a, false, false
			pa.q = newQuality(t.window()) // another address: another path, measured anew
		}
		pa.claimed = pa.claimed || heard
	}
	if before != nil {
		evs = t.rerouted(p, -1, before, o.At, evs)
	}
	return evs
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
				pa.Addr, pa.claimed, pa.Heard = netip.Addr{}, false, false
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
