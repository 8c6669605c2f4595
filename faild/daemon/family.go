package daemon

import (
	"net/netip"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// family is the pipeline of one address family: its socket, its exchange
// and the path table its packets feed. IPv4 packets judge IPv4 paths and
// IPv6 packets IPv6 paths, so a dual-stack LAN that drops only one family
// fails over only that family's routes.
type family struct {
	v6    bool
	conn  proto.Conn
	x     *proto.Exchange
	rx    *proto.Receiver // the receiver goroutine's
	tx    *proto.Requestor
	table *routes.Table

	nextINQ time.Time
	out     []proto.Message // INQs, reused
	deafBuf []uint32
	routes  []routes.Route

	// The cluster's view (cluster.go): the peers whose latest packet
	// says they do not read version 2, and every peer's view as its INQs
	// brought it.
	v1      map[routes.PeerID]bool
	rows    map[routes.PeerID]*viewRow
	hearing []routes.Hearing
	viewBuf []proto.ViewEntry
	// matrixBuf is the storage of the loop's evaluation (diagnose).
	matrixBuf matrixBuf
}

func (f *family) name() string { return familyName(f.v6) }

func familyName(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// deaf lists the peers this node cannot hear on lan, for that LAN's INQs:
// a peer that finds itself listed fails that path over too, when only one
// direction of it is broken.
func (f *family) deaf(lan int, now time.Time) []uint32 {
	f.deafBuf = f.table.Deaf(lan, now, f.deafBuf[:0])
	return f.deafBuf
}

// familyOf indexes Daemon.fams by an address's family.
func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// hasFamily reports whether some LAN has an address of the family.
func (d *Daemon) hasFamily(v6 bool) bool {
	for _, l := range d.lans {
		if v6 && l.Addr6.IsValid() || !v6 && l.Addr.IsValid() {
			return true
		}
	}
	return false
}

// openFamily opens the pipeline of a family: at start, or once an address
// of the family appears on a LAN (an IPv6 address after DAD or SLAAC at
// boot, say).
func (d *Daemon) openFamily(v6 bool, now time.Time) error {
	conn, err := d.deps.Listen(d.cfg.Port, v6)
	if err != nil {
		return err
	}
	var iv time.Duration
	if d.cfg.Requestor {
		iv = d.cfg.Interval
	}
	x, err := proto.NewExchange(proto.Config{Port: d.cfg.Port, Node: d.node, Boot: d.boot, Interval: iv, V6: v6,
		LANs: protoLANs(d.lans, v6, d.cfg.Peers), Keys: d.cfg.Keys, MaxPeers: d.cfg.MaxPeers, Forget: d.forgetAfter(), Log: d.log})
	if err == nil {
		err = joinGroups(conn, x)
	}
	f := &family{v6: v6, conn: conn, x: x, nextINQ: now,
		v1: map[routes.PeerID]bool{}, rows: map[routes.PeerID]*viewRow{}}
	if err == nil {
		f.rx, err = x.NewReceiver()
	}
	if err == nil {
		f.tx, err = x.NewRequestor()
	}
	if err != nil {
		conn.Close()
		return err
	}
	f.table = routes.New(routes.Config{LANs: len(d.lans), Interval: iv, Self: routes.PeerID(d.node), Misses: d.cfg.Misses, Successes: d.cfg.Successes,
		Forget: d.forgetAfter(), MaxPeers: d.cfg.MaxPeers, DampWindow: d.cfg.DampWindow, DampMax: d.cfg.DampMax,
		MaxLoss: d.cfg.MaxLoss, LossWindow: d.cfg.LossWindow, MaxRTT: d.cfg.MaxRTT})
	d.fams[boolInt(v6)] = f
	for i, l := range x.LANs() {
		if l.Addr.IsValid() && l.Unicast && len(l.Peers) == 0 {
			d.log.Warn("peer-none", "lan", routes.LANName(i), "dev", l.Name, "addr", l.Addr.String(),
				"detail", "--peer names no address on this subnet: no INQs are sent on it")
		}
	}
	if d.spawn != nil {
		d.spawn(f)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// joinGroups makes an IPv6 family's socket a member of each LAN's group.
func joinGroups(conn proto.Conn, x *proto.Exchange) error {
	for _, l := range x.LANs() {
		if l.Index > 0 && l.Addr.IsValid() && l.Broadcast.IsMulticast() {
			if err := conn.Join(l.Index, l.Broadcast); err != nil {
				return err
			}
		}
	}
	return nil
}

// protoLANs describes the LANs to the exchange of one family: the one
// place a platform.LAN becomes a proto.LAN. A LAN without an address of
// the family gets the zero Addr.
func protoLANs(lans []platform.LAN, v6 bool, peers []netip.Addr) []proto.LAN {
	out := make([]proto.LAN, len(lans))
	for i, l := range lans {
		pl := proto.LAN{Name: l.Name, Index: l.Index, Addr: l.Addr, Broadcast: l.Broadcast, Unicast: len(peers) > 0}
		if v6 {
			pl.Addr, pl.Broadcast = l.Addr6, proto.Group6
		}
		if pl.Addr.IsValid() {
			for _, a := range peers {
				if pl.Addr.Masked().Contains(a) {
					pl.Peers = append(pl.Peers, a)
				}
			}
		}
		out[i] = pl
	}
	return out
}

// forgetAfter is how long a peer silent on every LAN is remembered: ten
// detection times (-f x -t), and at least a minute so that a short outage
// of a whole node does not lose its state. The path table keeps a slower
// peer for ten of its own detection times.
func (d *Daemon) forgetAfter() time.Duration {
	return max(10*time.Duration(d.cfg.Misses)*d.cfg.Interval, time.Minute)
}

// lossWindow is the loss window in intervals, as the tables use it.
func (d *Daemon) lossWindow() int {
	if d.cfg.LossWindow > 0 {
		return d.cfg.LossWindow
	}
	return routes.DefaultWindow(d.cfg.MaxLoss)
}

// setLANs hands every family its view of the LANs after an interface came
// back, was recreated or readdressed, and opens a family whose first
// address just appeared.
func (d *Daemon) setLANs(now time.Time) {
	for _, v6 := range []bool{false, true} {
		f := d.fams[boolInt(v6)]
		if f == nil {
			if d.hasFamily(v6) {
				if err := d.openFamily(v6, now); err != nil {
					d.log.Error("family-failed", "family", familyName(v6), "err", err,
						"detail", "tried again at the next interface change")
				} else {
					d.log.Info("family-started", "family", d.fams[boolInt(v6)].name())
				}
			}
			continue
		}
		if err := f.x.SetLANs(protoLANs(d.lans, v6, d.cfg.Peers)); err != nil {
			d.log.Error("lan-update-failed", "family", f.name(), "err", err)
			continue
		}
		if err := joinGroups(f.conn, f.x); err != nil {
			d.log.Error("lan-update-failed", "family", f.name(), "err", err)
		}
	}
}

// refused adds up the announced addresses the tables refused because
// another peer owns them.
func (d *Daemon) refused() (n uint64) {
	for _, f := range d.fams {
		if f != nil {
			n += f.table.Refused
		}
	}
	return n
}

// drops adds up the drop counters of every family.
func (d *Daemon) drops() (out proto.Drops) {
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		for i, n := range f.x.Drops() {
			out[i] += n
		}
	}
	return out
}

// checkPeers refuses a --peer that cannot be a peer's address on the LANs:
// the network or broadcast address of a LAN's subnet, or one of our own.
func checkPeers(peers []netip.Addr, lans []platform.LAN) error {
	for _, a := range peers {
		for _, l := range lans {
			for _, p := range l.Prefixes() {
				switch {
				case p.Addr() == a:
					return configErrorf("invalid --peer %s: this node's own address on %s", a, l.Name)
				case p.Masked().Contains(a) && proto.SubnetEnd(p, a):
					return configErrorf("invalid --peer %s: the network or broadcast address of %s's subnet %s", a, l.Name, p.Masked())
				}
			}
		}
	}
	return nil
}
