package proto

import (
	"fmt"
	"time"
)

// sentRing is how many of the latest INQs on each LAN an ACK may answer
// and still count.
const sentRing = 8

type sentINQ struct {
	seq uint64
	n   uint64 // its number among the INQs sent on the LAN, from 1
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
	sent  [MaxLANs][sentRing]sentINQ
	nsent [MaxLANs]int
}

// NewRequestor returns the exchange's Requestor; an exchange has one.
func (x *Exchange) NewRequestor() (*Requestor, error) {
	mac, err := x.newMAC()
	if err != nil {
		return nil, err
	}
	q := &Requestor{x: x, mac: mac}
	for i := range q.bufs {
		q.bufs[i] = make([]byte, 0, MaxLen)
	}
	return q, nil
}

// INQs appends to ms an INQ, sent at now, for every LAN that can send: to
// the LAN's broadcast address or group, or with --peer to each listed peer
// on it. Each carries, in its echo field, its number among the INQs sent on
// the LAN. deaf(lan) lists the peers this node cannot hear on lan; the list
// goes in that LAN's INQ (at most MaxDeaf of them). The messages' buffers
// belong to the Requestor until the next call.
func (q *Requestor) INQs(now time.Time, deaf func(lan int) []uint32, ms []Message) ([]Message, error) {
	lans := q.x.LANs()
	for i := range lans {
		l := &lans[i]
		if !l.up() || l.Unicast && len(l.Peers) == 0 {
			continue // gone, without an address of this family, or no one to ask
		}
		q.x.packet(&q.out, INQ, q.mac)
		q.out.Echo = uint64(q.nsent[i] + 1) // its number on the LAN, by which receivers count the ones lost
		if d := deaf(i); len(d) > 0 {
			q.out.Deaf = d[:min(len(d), MaxDeaf)]
		}
		b, err := encode(&q.out, q.mac, q.bufs[i][:0])
		if err != nil {
			return ms, fmt.Errorf("proto: INQ on LAN %d: %w", i, err)
		}
		q.bufs[i] = b
		q.nsent[i]++
		q.sent[i][q.nsent[i]%sentRing] = sentINQ{seq: q.out.Seq, n: uint64(q.nsent[i]), at: now}
		if !l.Unicast {
			ms = append(ms, q.x.message(b, l, l.Broadcast))
			continue
		}
		for _, dst := range l.Peers {
			ms = append(ms, q.x.message(b, l, dst))
		}
	}
	return ms, nil
}

// Answered finds the INQ that an ACK with echo, heard on lan at now,
// answers among the latest ones sent there, and returns its round trip. An
// ACK that answers none is counted as stale and reported not ok.
func (q *Requestor) Answered(lan int, echo uint64, now time.Time) (time.Duration, bool) {
	_, rtt, ok := q.AnsweredINQ(lan, echo, now)
	return rtt, ok
}

// AnsweredINQ is Answered that also says which INQ the ACK answers: its
// number among those sent on the LAN (see Sent), so that the INQs between
// two answered ones are known to have gone unanswered.
func (q *Requestor) AnsweredINQ(lan int, echo uint64, now time.Time) (n uint64, rtt time.Duration, ok bool) {
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

// Sent returns the number of INQs sent on lan so far, the newest's number,
// and when it was sent (zero for none).
func (q *Requestor) Sent(lan int) (n uint64, at time.Time) {
	if lan < 0 || lan >= MaxLANs || q.nsent[lan] == 0 {
		return 0, time.Time{}
	}
	s := q.sent[lan][q.nsent[lan]%sentRing]
	return s.n, s.at
}
