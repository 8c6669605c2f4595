package routes

import (
	"time"
)

// forgetLAN marks the one queue entry per peer that is its forget time.
const forgetLAN = -1

// forgetAt is when p is forgotten without further evidence.
func (t *Table) forgetAt(p *peer) time.Time {
	return p.heard.Add(max(t.cfg.Forget, 10*t.detection(p)))
}

// forget drops d's peer, with its address claims, if it has been silent
// for its forget time, and requeues it otherwise; discover is its
// counterpart.
func (t *Table) forget(d deadline, now time.Time, evs []Event) []Event {
	if t.peers[d.peer.id] != d.peer {
		return evs
	}
	if at := t.forgetAt(d.peer); at.After(now) {
		t.queue.push(deadline{at: at, peer: d.peer, lan: forgetLAN})
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
