package proto

import (
	"fmt"
	"time"
)

// sentRing is how many of the latest INQs on each LAN an ACK may answer
// and still count, a round's version-1 copy counted apart: 8 rounds.
const sentRing = 16

type sentINQ struct {
	seq uint64
	n   uint64 // its number among the INQs sent on the LAN, from 1; a version-1 copy has its round's
	at  time.Time
}

// Requestor builds this node's INQs and matches the ACKs that answer them,
// which gives each path's round trip. One goroutine owns it: the one that
// decides when INQs are due.
type Requestor struct {
	x     *Exchange
	mac   *MAC // this goroutine's own HMAC state
	out   Packet
	bufs  [MaxLANs][]byte // the encoded INQ of each LAN, reused
	bufs1 [MaxLANs][]byte // the version-1 INQ of each LAN, when one goes too
	deaf  [MaxLANs][]uint32
	sent  [MaxLANs][sentRing]sentINQ
	nsent [MaxLANs]uint64 // the number of the newest INQ on each LAN
	nrec  [MaxLANs]int    // the entries written to sent, copies included
	// round counts the rounds of INQs; cursor is where in the view the
	// next round's window starts.
	round  uint64
	cursor int
}

// Round is what one round of INQs says besides the header, from the
// owner of the path tables.
type Round struct {
	// Deaf lists the peers this node cannot hear on a LAN as of now, when
	// the round goes; the list goes in that LAN's INQ (at most MaxDeaf of
	// them).
	Deaf func(lan int, now time.Time) []uint32
	// View is this node's whole view, sorted by node id, its masks
	// indexed by our LANs; it goes out in windows (see packet.go).
	View []ViewEntry
	// V1 sends a version-1 INQ beside each version-2 one, for the
	// version-1 peers among those known. In the first v1Every rounds, and
	// every v1Every rounds after, one goes anyway: a version-1 responder
	// speaks only when asked, so it would not be known otherwise, and
	// would lose a node that was upgraded and restarted.
	V1 bool
}

// v1Every spaces the version-1 INQs of a cluster whose known peers all
// read version 2.
const v1Every = 16

// NewRequestor returns the exchange's Requestor; an exchange has one.
func (x *Exchange) NewRequestor() (*Requestor, error) {
	mac, err := x.newMAC()
	if err != nil {
		return nil, err
	}
	q := &Requestor{x: x, mac: mac}
	for i := range q.bufs {
		q.bufs[i], q.bufs1[i] = make([]byte, 0, MaxLen), make([]byte, 0, MaxLen)
	}
	return q, nil
}

// INQs appends to ms the INQs of one round, sent at now, for every LAN
// that can send: to the LAN's broadcast address or group, or with --peer
// to each listed peer on it. Each is a version-2 INQ with the next window
// of the view, the same window on every LAN, and with r.V1 (or every
// v1Every rounds) a version-1 INQ too. Each carries, in its echo field,
// its number among the INQs sent on the LAN; a version-1 copy has the
// same, so that a receiver that hears both counts one. The messages'
// buffers belong to the Requestor until the next call.
func (q *Requestor) INQs(now time.Time, r Round, ms []Message) ([]Message, error) {
	lans := q.x.LANs()
	// The window is as large as the fullest LAN's INQ leaves room for, so
	// that a node that hears us on one LAN only still gets all of it.
	deaf := q.deaf[:len(lans)]
	room := MaxView
	for i := range lans {
		if !q.sends(&lans[i]) {
			continue
		}
		deaf[i] = deaf[i][:0]
		if r.Deaf != nil {
			d := r.Deaf(i, now) // copied: the caller may reuse its buffer for the next LAN
			deaf[i] = append(deaf[i], d[:min(len(d), MaxDeaf)]...)
		}
		room = min(room, q.viewRoom(len(deaf[i])))
	}
	if q.cursor >= len(r.View) {
		q.cursor = 0
	}
	window := r.View[q.cursor:min(len(r.View), q.cursor+room)]
	v1 := r.V1 || q.round < v1Every || q.round%v1Every == v1Every-1
	q.round++
	for i := range lans {
		l := &lans[i]
		if !q.sends(l) {
			continue
		}
		q.nsent[i]++
		b, err := q.encode(i, deaf[i], Version2, len(r.View), window, q.bufs[i][:0], now)
		if err != nil {
			return ms, fmt.Errorf("proto: INQ on LAN %d: %w", i, err)
		}
		q.bufs[i] = b
		ms = q.address(ms, l, b)
		if v1 {
			b, err := q.encode(i, deaf[i], Version, 0, nil, q.bufs1[i][:0], now)
			if err != nil {
				return ms, fmt.Errorf("proto: INQ on LAN %d: %w", i, err)
			}
			q.bufs1[i] = b
			ms = q.address(ms, l, b)
		}
	}
	q.cursor += len(window)
	return ms, nil
}

// sends reports whether INQs go out on l.
func (q *Requestor) sends(l *LAN) bool {
	return l.up() && !(l.Unicast && len(l.Peers) == 0) // not gone, has an address of the family, someone to ask
}

// viewRoom is how many view entries fit in an INQ with a deaf list of
// ndeaf within INQBudget.
func (q *Requestor) viewRoom(ndeaf int) int {
	lans := q.x.LANs()
	size, n := HeaderLen+1+4*ndeaf+viewHdrLen, 0
	for _, l := range lans {
		if l.Addr.IsValid() {
			n++
			size += addr4Len
			if !l.Addr.Addr().Is4() {
				size += addr6Len - addr4Len
			}
		}
	}
	if q.mac != nil {
		size += TagLen
	}
	if n == 0 || n > MaxViewLANs || size >= INQBudget {
		return 0
	}
	return min(MaxView, (INQBudget-size)/(4+ViewStateLen(n)))
}

// encode builds the INQ of one version for LAN lan into b, numbered as
// the LAN's newest, and records it as sent. The view's masks turn from
// our LANs to the packet's address entries.
func (q *Requestor) encode(lan int, deaf []uint32, v uint8, total int, window []ViewEntry, b []byte, now time.Time) ([]byte, error) {
	q.x.packet(&q.out, INQ, q.mac)
	q.out.Version, q.out.Deaf, q.out.Echo = v, deaf, q.nsent[lan]
	if v == Version2 {
		var pos [MaxLANs]int8 // each of our LANs' place among the address entries, -1 for none
		n := int8(0)
		for i, l := range q.x.LANs() {
			pos[i] = -1
			if l.Addr.IsValid() {
				pos[i], n = n, n+1
			}
		}
		q.out.ViewTotal, q.out.ViewOffset = total, q.cursor
		q.out.View = q.out.View[:0]
		for _, e := range window {
			var w ViewEntry
			w.Node = e.Node
			for i := range MaxLANs {
				if pos[i] < 0 || e.Known&(1<<i) == 0 {
					continue
				}
				w.Known |= 1 << pos[i]
				if e.Heard&(1<<i) != 0 {
					w.Heard |= 1 << pos[i]
				}
				if e.Lossy&(1<<i) != 0 {
					w.Lossy |= 1 << pos[i]
				}
			}
			q.out.View = append(q.out.View, w)
		}
	}
	b, err := encode(&q.out, q.mac, b)
	if err != nil {
		return b, err
	}
	q.sent[lan][q.nrec[lan]%sentRing] = sentINQ{seq: q.out.Seq, n: q.nsent[lan], at: now}
	q.nrec[lan]++
	return b, nil
}

// address appends the messages that carry b on l.
func (q *Requestor) address(ms []Message, l *LAN, b []byte) []Message {
	if !l.Unicast {
		return append(ms, q.x.message(b, l, l.Broadcast))
	}
	for _, dst := range l.Peers {
		ms = append(ms, q.x.message(b, l, dst))
	}
	return ms
}

// Answered finds the INQ that an ACK with echo, heard on lan at now,
// answers among the latest ones sent there, and returns its number among
// those sent on the LAN (see Sent), so that the INQs between two answered
// ones are known to have gone unanswered, and its round trip. An ACK that
// answers none is counted as stale and reported not ok.
func (q *Requestor) Answered(lan int, echo uint64, now time.Time) (n uint64, rtt time.Duration, ok bool) {
	if lan >= 0 && lan < MaxLANs {
		for _, s := range q.sent[lan] {
			if s.seq == echo && !s.at.IsZero() {
				return s.n, now.Sub(s.at), true
			}
		}
	}
	q.x.drops[DropStaleACK].Add(1)
	return 0, 0, false
}

// Sent returns the number of the newest INQ sent on lan, and when it was
// sent (zero for none).
func (q *Requestor) Sent(lan int) (n uint64, at time.Time) {
	if lan < 0 || lan >= MaxLANs || q.nrec[lan] == 0 {
		return 0, time.Time{}
	}
	return q.nsent[lan], q.sent[lan][(q.nrec[lan]-1)%sentRing].at
}
