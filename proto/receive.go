package proto

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/faild/faild/routes"
)

// Heard is the fact one packet establishes: the peer spoke to us on LAN.
type Heard struct {
	LAN      int // index into the exchange's LANs
	Type     Type
	Node     routes.PeerID
	Addrs    [MaxLANs]netip.Addr // the peer's address on each of our LANs
	Interval time.Duration       // the peer's INQ interval; 0 for a responder
	// Echo, for an ACK, is the sequence number of the INQ it answers; for
	// an INQ, its number among the sender's INQs on the LAN (0 from a
	// sender that does not number them).
	Echo uint64
	// Deaf: an INQ that is no evidence, because its sender does not hear
	// us on this LAN: it lists us as a peer it cannot hear, or (a sender
	// that reads version 2) its view does not say it hears us here, as
	// when it has restarted and does not know us yet. It makes the sender
	// known; the path is broken in our direction, so it must fail over
	// here too. A version-1 sender's INQ is evidence unless it lists us.
	Deaf bool
	At   time.Time
	Boot uint32 // the sender's boot id
	// V2: the sender reads version 2.
	V2 bool
	// View is the window of the sender's view that a version-2 INQ
	// carried, its masks turned to our LANs; nil when it carried none, or
	// the same window came on another LAN within half an interval. The
	// receiver of Heard may keep it and must not modify it: while the
	// sender's window stays the same, the Receiver hands on the same View.
	View *View
}

// View is one window of a peer's view (see packet.go): Entries, sorted by
// node id, start at Offset in the whole view of Total peers.
type View struct {
	Total, Offset int
	Entries       []ViewEntry
}

// Covers reports whether the window speaks of node id: a node it covers
// but does not list is one the sender does not know.
func (v *View) Covers(id uint32) bool {
	if len(v.Entries) == 0 {
		return v.Total == 0
	}
	lo, hi := v.Entries[0].Node, v.Entries[len(v.Entries)-1].Node
	if v.Offset == 0 {
		lo = 0
	}
	if v.Offset+len(v.Entries) == v.Total {
		hi = ^uint32(0)
	}
	return lo <= id && id <= hi
}

// Receiver turns the datagrams that arrive into Heard facts and answers
// every INQ with an ACK. It keeps the replay windows and address bindings
// of the exchange's peers (replay.go), so one goroutine owns it: the one
// that reads the socket.
type Receiver struct {
	x       *Exchange
	mac     *MAC // this goroutine's own HMAC state
	peers   *peerTable
	in, ack Packet
	// crossLogged holds, per (arrival LAN, source's LAN), when a
	// cross-wired packet was last logged.
	crossLogged [MaxLANs][MaxLANs]time.Time
}

// NewReceiver returns the exchange's Receiver; an exchange has one.
func (x *Exchange) NewReceiver() (*Receiver, error) {
	mac, err := x.newMAC()
	if err != nil {
		return nil, err
	}
	return &Receiver{x: x, mac: mac, peers: newPeerTable(&x.cfg)}, nil
}

// Receive handles one datagram m that arrived at now. A packet from a peer
// fills h and reports heard; h.Deaf says whether it is evidence. An INQ is
// answered all the same (our ACKs are how a peer that cannot hear us finds
// the path again): the ACK is encoded into reply, whose Buf must have room
// for MaxLen bytes, and replied is set. Bad packets are counted by reason
// and dropped.
func (r *Receiver) Receive(m *Message, now time.Time, h *Heard, reply *Message) (heard, replied bool) {
	x := r.x
	if m.IfIndex == 0 || m.Hops < 0 {
		x.drops[DropControl].Add(1)
		return false, false
	}
	b := m.Buf[:m.N]
	if r.in.Decode(b) != nil {
		x.drops[DropDecode].Add(1)
		return false, false
	}
	if d := r.authenticate(b); d >= 0 {
		x.drops[d].Add(1)
		return false, false
	}
	lp := x.lans.Load()
	lans := *lp
	lan, from, d := x.check(lans, &r.in, m)
	if d == DropCross {
		r.logCross(lans, lan, from, now)
	}
	if d < 0 {
		d = r.peers.admit(&r.in, lan, from, now)
	}
	if d >= 0 {
		x.drops[d].Add(1)
		return false, false
	}
	*h = Heard{LAN: lan, Type: r.in.Type, Node: routes.PeerID(r.in.NodeID), Interval: r.in.Interval, Echo: r.in.Echo,
		At: now, Boot: r.in.BootID, V2: r.in.V2}
	st := r.peers.m[r.in.NodeID]
	x.peerAddrs(lp, &r.in, st, h)
	h.Addrs[lan] = from // where it really came from is where ACKs go
	if r.in.Type == ACK {
		return true, false
	}
	if r.in.Version == Version2 {
		h.View = r.learnView(st, lan, now)
	}
	h.Deaf = r.in.Lists(x.cfg.Node) || r.in.V2 && !st.hearsUs(r.in.BootID, lan)
	return true, r.answer(&lans[lan], from, reply)
}

// learnView records what the window of the view in r.in says of us on
// lan, the LAN it arrived on, in st, the sender's state, and returns the window with its masks turned to
// our LANs for the loop's matrix; nil when the same window came within
// half the sender's interval (on another LAN: each round of INQs carries
// the same window on every LAN). The LAN of each of the sender's address
// entries is st.lanOf, which peerAddrs set.
//
// Only the LAN a packet arrives on learns whether the sender hears us:
// without a key anyone on LAN A can forge an INQ, and what it says of LAN
// B must not take evidence away there.
func (r *Receiver) learnView(st *peerState, lan int, now time.Time) *View {
	p := &r.in
	if st.viewBoot != p.BootID || !st.viewed {
		st.viewBoot, st.viewed, st.hears = p.BootID, true, [MaxLANs]int8{}
		st.viewAt = time.Time{}
	}
	// A sender's window mostly stays as it was, and comes on every LAN:
	// the same window, its address entries on the same LANs (else
	// peerAddrs dropped turned), is the View turned last time.
	v := st.turned
	if v == nil || v.Total != p.ViewTotal || v.Offset != p.ViewOffset || !slices.Equal(st.window, p.View) {
		v = &View{Total: p.ViewTotal, Offset: p.ViewOffset, Entries: make([]ViewEntry, len(p.View))}
		for i, e := range p.View {
			v.Entries[i] = turn(e, st.lanOf, len(p.Addrs))
		}
		st.turned, st.window = v, append(st.window[:0], p.View...)
	}
	if v.Covers(r.x.cfg.Node) {
		st.hears[lan] = 0
		for _, e := range v.Entries {
			if e.Node != r.x.cfg.Node {
				continue
			}
			switch {
			case e.Heard&(1<<lan) != 0:
				st.hears[lan] = 1
			case e.Known&(1<<lan) != 0:
				st.hears[lan] = -1
			}
		}
	}
	if st.viewOffset == p.ViewOffset && !st.viewAt.IsZero() && now.Sub(st.viewAt) < p.Interval/2 {
		return nil
	}
	st.viewOffset, st.viewAt = p.ViewOffset, now
	return v
}

// turn is a view entry with its masks, by the sender's n address entries,
// turned to our LANs by lanOf.
func turn(e ViewEntry, lanOf [MaxViewLANs]int8, n int) ViewEntry {
	out := ViewEntry{Node: e.Node}
	for j := range n {
		if lanOf[j] < 0 || e.Known&(1<<j) == 0 {
			continue
		}
		out.Known |= 1 << lanOf[j]
		if e.Heard&(1<<j) != 0 {
			out.Heard |= 1 << lanOf[j]
		}
		if e.Lossy&(1<<j) != 0 {
			out.Lossy |= 1 << lanOf[j]
		}
	}
	return out
}

// answer encodes the ACK to the INQ in r.in into reply, to from on l.
func (r *Receiver) answer(l *LAN, from netip.Addr, reply *Message) bool {
	r.x.packet(&r.ack, ACK, r.mac)
	r.ack.Echo = r.in.Seq
	b, err := encode(&r.ack, r.mac, reply.Buf[:0])
	if err != nil {
		return false // cannot happen with our own packet; nothing to send
	}
	*reply = r.x.message(b, l, from)
	return true
}

// authenticate returns the drop reason for a decoded packet whose tag is
// missing or wrong, or -1. Without a key, a signed packet is dropped too:
// it comes from a node configured with a key that we cannot check.
func (r *Receiver) authenticate(b []byte) int {
	switch {
	case r.mac == nil && r.in.Auth:
		return DropAuth
	case r.mac == nil:
		return -1
	case !r.in.Auth:
		return DropNoTag
	case r.mac.Verify(b) != nil:
		return DropAuth
	}
	return -1
}

// logCross logs a cross-wired packet, at most once a minute per pair of
// LANs. faild does not act on it: the operator must look.
func (r *Receiver) logCross(lans []LAN, arrived int, from netip.Addr, now time.Time) {
	log := r.x.cfg.Log
	if log == nil {
		return
	}
	src := otherSubnet(lans, arrived, from)
	if src < 0 {
		return // not cross-wired after all
	}
	last := &r.crossLogged[arrived][src]
	if !last.IsZero() && now.Sub(*last) < crossLogEvery {
		return
	}
	*last = now
	log.Warn("cross-wired", "lan", routes.LANName(arrived), "dev", lans[arrived].Name,
		"from", from.String(), "from_lan", routes.LANName(src),
		"detail", fmt.Sprintf("packets for LAN %s arrive on %s (LAN %s): are the cables swapped? Dropped; logged once a minute",
			routes.LANName(src), lans[arrived].Name, routes.LANName(arrived)))
}

// Serve reads batches of datagrams from c until c is closed, answers the
// INQs among each batch with one batch of ACKs, and hands what it heard to
// heard once the socket has nothing more waiting (or handover facts have
// gathered): a burst of a thousand ACKs is one hand-over, not sixteen,
// and each hand-over can cost the loop a wake-up. heard must not keep the
// slice: Serve reuses it. An ACK that cannot be sent goes to failed with
// its LAN, and Serve goes on. It returns nil once c is closed.
func (r *Receiver) Serve(c Conn, heard func([]Heard), failed func(lan int, err error)) error {
	in := make([]Message, BatchSize)
	for i := range in {
		in[i].Buf = make([]byte, MaxLen+1) // one byte more shows an oversized datagram
	}
	out := make([]Message, BatchSize)
	bufs := make([][]byte, BatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 0, MaxLen)
	}
	hs := make([]Heard, 0, handover)
	onFail := func(m *Message, err error) { failed(r.x.LANOf(m.IfIndex), err) }
	for {
		n, err := c.ReadBatch(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("failed to read: %w", err)
		}
		now := time.Now()
		replies := 0
		for i := range in[:n] {
			out[replies].Buf = bufs[replies]
			hs = append(hs, Heard{})
			heard, replied := r.Receive(&in[i], now, &hs[len(hs)-1], &out[replies])
			if !heard {
				hs = hs[:len(hs)-1]
			}
			if replied {
				bufs[replies] = out[replies].Buf
				replies++
			}
		}
		WriteAll(c, out[:replies], onFail)
		// A full batch says more may be waiting; a short one, that the
		// socket is empty (recvmmsg takes what there is).
		if n == len(in) && len(hs)+len(in) <= handover {
			continue
		}
		if len(hs) > 0 {
			heard(hs)
		}
		hs = hs[:0]
	}
}

// handover is the most facts Serve gathers before it hands them over.
const handover = 8 * BatchSize
