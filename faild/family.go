package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// family is the pipeline of one address family: its exchange and the path
// table its packets feed. IPv4 packets judge IPv4 paths and IPv6 packets
// IPv6 paths, so a dual-stack LAN that drops only one family fails over
// only that family's routes.
type family struct {
	name  string // "ipv4" or "ipv6", for logs
	v6    bool
	x     *proto.Exchange
	table *routes.Table
}

// families is every pipeline this node runs: IPv4 where some LAN has an
// IPv4 address, IPv6 where some LAN has an IPv6 one. Its methods stand for
// a single routes.Table in the decide loop: evidence goes to the table of
// its family, and deadlines, routes and paths come from both.
type families []*family

// listenFamilies opens one exchange per family present on the LANs. With
// peers (--peer), each LAN sends its INQs to the listed peers on its subnet
// instead of to its broadcast address or group; LANs left without any are
// logged, since they send no INQs at all.
func listenFamilies(base proto.Config, rcfg routes.Config, lans []platform.LAN, peers []netip.Addr, log *slog.Logger) (families, error) {
	var fs families
	for _, v6 := range []bool{false, true} {
		cfg := base
		cfg.LANs = familyLANs(lans, v6, peers)
		present := false
		for i, l := range cfg.LANs {
			if !l.Addr.IsValid() {
				continue
			}
			present = true
			if l.Unicast && len(l.Peers) == 0 {
				log.Warn("peer-none", "lan", lanName(i), "dev", lans[i].Name, "addr", l.Addr.String(),
					"detail", "--peer names no address on this subnet: no INQs are sent on it")
			}
		}
		if !present {
			continue
		}
		f := &family{name: "ipv4", table: routes.New(rcfg)}
		var err error
		if v6 {
			f.name, f.v6 = "ipv6", true
			f.x, err = proto.Listen6(cfg)
		} else {
			f.x, err = proto.Listen(cfg)
		}
		if err != nil {
			fs.Close()
			return nil, err
		}
		fs = append(fs, f)
	}
	for _, p := range peers {
		if !onSomeLAN(p, lans) {
			log.Warn("peer-unused", "peer", p.String(), "detail", "on no LAN's subnet: no INQs go to it")
		}
	}
	return fs, nil
}

// familyLANs describes the LANs to the exchange of one family; a LAN
// without an address of that family gets the zero Addr.
func familyLANs(lans []platform.LAN, v6 bool, peers []netip.Addr) []proto.LAN {
	out := make([]proto.LAN, len(lans))
	for i, l := range lans {
		pl := proto.LAN{Name: l.Name, IfIndex: l.Index, Addr: l.Addr, Broadcast: l.Broadcast, Unicast: len(peers) > 0}
		if v6 {
			pl.Addr, pl.Broadcast = l.Addr6, proto.Group6
		}
		if pl.Addr.IsValid() {
			pl.Peers = peersOn(pl.Addr, peers)
		}
		out[i] = pl
	}
	return out
}

// peersOn selects the peers on the subnet of our address p.
func peersOn(p netip.Prefix, peers []netip.Addr) []netip.Addr {
	var on []netip.Addr
	for _, a := range peers {
		if p.Masked().Contains(a) {
			on = append(on, a)
		}
	}
	return on
}

func onSomeLAN(a netip.Addr, lans []platform.LAN) bool {
	for _, l := range lans {
		for _, p := range l.Prefixes() {
			if p.Masked().Contains(a) {
				return true
			}
		}
	}
	return false
}

// start runs every family's responder and, for a requestor, its requestor.
func (fs families) start(g *errgroup.Group, ctx context.Context, requestor bool, heard func(*proto.Heard), failed func(string) func(int, error)) {
	for _, f := range fs {
		g.Go(func() error { return f.x.Responder(ctx, heard, failed("ack")) })
		if requestor {
			g.Go(func() error { return f.x.Requestor(ctx, failed("inq")) })
		}
	}
}

// Close releases every exchange's socket.
func (fs families) Close() error {
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.x.Close())
	}
	return errors.Join(errs...)
}

// Observe hands evidence to the table of its family: that of the address
// it came from.
func (fs families) Observe(o routes.Observation, evs []routes.Event) []routes.Event {
	v6 := o.LAN >= 0 && o.LAN < len(o.Addrs) && o.Addrs[o.LAN].Is6()
	for _, f := range fs {
		if f.v6 == v6 {
			return f.table.Observe(o, evs)
		}
	}
	return evs
}

// NextDeadline is the earliest deadline of any family.
func (fs families) NextDeadline() (at time.Time, ok bool) {
	for _, f := range fs {
		if t, fok := f.table.NextDeadline(); fok && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// Expire expires the paths of every family.
func (fs families) Expire(now time.Time, evs []routes.Event) []routes.Event {
	for _, f := range fs {
		evs = f.table.Expire(now, evs)
	}
	return evs
}

// LANDown fails every path on lan, of both families: a lost carrier
// carries neither.
func (fs families) LANDown(lan int, now time.Time, evs []routes.Event) []routes.Event {
	for _, f := range fs {
		evs = f.table.LANDown(lan, now, evs)
	}
	return evs
}

// Routes appends the host routes of every family; the applier keys routes
// by destination prefix, so /32 and /128 routes live side by side.
func (fs families) Routes(dst []routes.Route) []routes.Route {
	for _, f := range fs {
		dst = f.table.Routes(dst)
	}
	return dst
}

// Paths calls fn for every path of every family.
func (fs families) Paths(now time.Time, fn func(id routes.PeerID, lan int, p routes.Path, route routes.Route)) {
	for _, f := range fs {
		f.table.Paths(now, fn)
	}
}

// setLANs hands every exchange its view of the LANs after an interface
// came back, was recreated or readdressed. A family that no LAN had at
// start is not started later: that takes a restart.
func (fs families) setLANs(lans []platform.LAN, peers []netip.Addr) error {
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.x.SetLANs(familyLANs(lans, f.v6, peers)))
	}
	return errors.Join(errs...)
}

// summary is the one-line state for systemd's STATUS=, in the words of
// the status report: peers (of the family that has the most: a dual-stack
// peer is one peer), paths down and paths in all.
func (fs families) summary() string {
	var peers, paths, down int
	for _, f := range fs {
		p, n, d := f.table.Counts()
		peers, paths, down = max(peers, p), paths+n, down+d
	}
	return fmt.Sprintf("%d peers, %d of %d paths down", peers, down, paths)
}

// Refused adds up the announced addresses the tables refused because
// another peer owns them.
func (fs families) Refused() (n uint64) {
	for _, f := range fs {
		n += f.table.Refused
	}
	return n
}

// Drops adds up the drop counters of every exchange.
func (fs families) Drops() (out [len(proto.DropNames)]uint64) {
	for _, f := range fs {
		for i, n := range f.x.Drops() {
			out[i] += n
		}
	}
	return out
}

// publishDeaf tells each family's requestor which peers this node cannot
// hear on each LAN in that family, so that its next INQs let those peers
// fail over too when only one direction of a path is broken.
func (fs families) publishDeaf(nlans int) {
	for _, f := range fs {
		var lists [proto.MaxLANs][]uint32
		for lan := range nlans {
			lists[lan] = f.table.Invalid(lan, nil)
		}
		f.x.SetDeaf(&lists)
	}
}

// defaultNodeID is this node's id without --node-id: its IPv4 address on
// LAN A, or on an IPv6-only LAN A the 32-bit FNV-1a hash of its IPv6
// address there, which is as stable as the address.
func defaultNodeID(a platform.LAN) (uint32, error) {
	switch {
	case a.Addr.IsValid():
		b := a.Addr.Addr().As4()
		return binary.BigEndian.Uint32(b[:]), nil
	case a.Addr6.IsValid():
		h := fnv.New32a()
		b := a.Addr6.Addr().As16()
		h.Write(b[:])
		return h.Sum32(), nil
	}
	return 0, fmt.Errorf("failed to choose a node id: LAN A (%s) has no address; set --node-id", a.Name)
}

// lanAddrs lists a LAN's addresses for logs and status: "192.0.2.1/24",
// "2001:db8:a::1/64" or both, comma-separated.
func lanAddrs(l platform.LAN) string {
	var s []string
	for _, p := range l.Prefixes() {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}
