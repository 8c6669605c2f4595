package platform

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Protocol is the route protocol number that marks every route faild
// installs (see /etc/iproute2/rt_protos.d/faild.conf), so that it can list
// exactly its own routes and never touch anyone else's.
const Protocol = 157

// LAN is one interface faild watches, with its addresses on that LAN. A LAN
// carries IPv4, IPv6 or both; faild runs one exchange per family present.
type LAN struct {
	Name      string
	Index     int
	Addr      netip.Prefix // our IPv4 address and the LAN's prefix length; invalid on an IPv6-only LAN
	Broadcast netip.Addr   // where IPv4 INQs go
	// Addr6 is our global or unique-local IPv6 address on the LAN, the one
	// peers route to; invalid on an IPv4-only LAN. Link-local addresses do
	// not qualify: the same fe80:: prefix is on every LAN, so a receiver
	// could not tell the LANs apart by subnet.
	Addr6 netip.Prefix
	// NoBroadcast: the interface has no broadcast address configured and
	// Broadcast was derived from the prefix.
	NoBroadcast bool
	Up          bool // administratively up and with carrier
	Loopback    bool
}

// Prefixes lists the LAN's addresses, IPv4 first, for logs.
func (l LAN) Prefixes() []netip.Prefix {
	var ps []netip.Prefix
	for _, p := range []netip.Prefix{l.Addr, l.Addr6} {
		if p.IsValid() {
			ps = append(ps, p)
		}
	}
	return ps
}

// Route is a host route as the kernel holds it: Dst via Via out of Dev.
type Route struct {
	Dst   netip.Prefix
	Via   netip.Addr
	Dev   string
	Index int // interface index of Dev
}

func (r Route) String() string {
	return fmt.Sprintf("%s via %s dev %s", r.Dst, r.Via, r.Dev)
}

// KernelRoute is one host route of the kernel's main routing table, faild's
// or anyone else's.
type KernelRoute struct {
	Route  // Via is invalid for a route without a gateway (dev only, blackhole)
	Ours   bool
	Proto  int // the route's protocol number (Linux); 0 where the system has none
	Metric int
}

func (r KernelRoute) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Proto != 0 {
		s += " proto " + protoName(r.Proto)
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// protoName names a route protocol as ip-route(8) does.
func protoName(p int) string {
	switch p {
	case 2:
		return "kernel"
	case 3:
		return "boot"
	case 4:
		return "static"
	case Protocol:
		return "faild"
	}
	return strconv.Itoa(p)
}

// RouteChange is one change to the kernel's host routes: Route appeared or
// changed, or with Deleted went. Lost says changes may have been missed
// (a resubscription after an overrun, or the first subscription): every
// route must be read again.
type RouteChange struct {
	Route   KernelRoute
	Deleted bool
	Lost    bool
}

// ErrForeign means a route to the destination exists that faild did not
// create; faild leaves it alone rather than replace or shadow it.
var ErrForeign = errors.New("a route faild did not create exists for this destination")

// Writer is faild's access to the kernel's routing table. It writes only
// faild's own routes and reads everyone's, so that the caller can keep its
// view of the kernel true (Routes, WatchRoutes) and decide from it what to
// write; it never replaces, deletes or shadows a route faild did not
// create on its own account.
type Writer interface {
	// Routes lists every host route of the main table, faild's (Ours)
	// and others'.
	Routes() ([]KernelRoute, error)
	// Add installs r as a new route of faild's. Where the kernel holds
	// another route in its place it changes nothing and returns an error
	// wrapping ErrForeign.
	Add(r Route) error
	// Replace points faild's own route to r.Dst at r's gateway and
	// interface; call it only for a destination where faild's route is.
	Replace(r Route) error
	// Delete removes faild's route r; a route that is already gone is not
	// an error.
	Delete(r Route) error
	// WatchRoutes reports every change to the kernel's host routes to fn
	// until ctx ends, starting with a Lost change once it is subscribed.
	// Receive errors go to onErr; it subscribes again after them.
	WatchRoutes(ctx context.Context, fn func(RouteChange), onErr func(error)) error
}

// Interfaces is the system's network interfaces as faild sees them.
type Interfaces interface {
	// Discover finds the LAN interfaces: with names, those (see
	// Options of the OS's discover function); without, every interface
	// that qualifies.
	Discover(names []string) ([]LAN, error)
	// Lookup describes the interface called name as a LAN as it is now:
	// Index 0 when there is no such interface, no addresses when it has
	// none. The error is for the system failing to answer.
	Lookup(name string) (LAN, error)
	// WatchLinks reports interface and address changes to fn until ctx
	// ends.
	WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error
}

// Host is this system's Interfaces.
var Host Interfaces = host{}

type host struct{}

func (host) Discover(names []string) ([]LAN, error) { return discover(names) }
func (host) Lookup(name string) (LAN, error)        { return lookup(name) }
func (host) WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	return watchLinks(ctx, fn, onErr)
}

// LinkChange says that the kernel changed an interface (Index and Name), or
// one of its addresses (Addr, with Index only), or that changes may have
// been lost (Lost): then every LAN must be read again. The receiver reads
// the interface's state itself; a change is only the prompt.
type LinkChange struct {
	Index int
	Name  string
	Lost  bool
}

// Usable reports whether faild can send and receive on the LAN: the
// interface exists, is up with carrier, and has an address.
func (l LAN) Usable() bool { return l.Index > 0 && l.Up && len(l.Prefixes()) > 0 }

// lansOf describes each candidate interface as a LAN, in order. Named
// ones (-i) must all be LANs; without -i, those that are not, or that do
// not qualify, are passed by.
func lansOf[T any](cands []T, named bool, describe func(T) (LAN, error)) ([]LAN, error) {
	var lans []LAN
	for _, c := range cands {
		lan, err := describe(c)
		if err != nil {
			if named {
				return nil, err
			}
			continue // not a LAN interface; discovery passes it by
		}
		if !named {
			var ok bool
			if lan, ok = qualifies(lan); !ok {
				continue
			}
		}
		lans = append(lans, lan)
	}
	return lans, nil
}

// qualifies reports whether discovery without -i takes lan as a LAN. An
// IPv4 address counts only with a broadcast address of its own, so that
// point-to-point and tunnel interfaces (a /32 on wg0, say) are passed by,
// where faild would send INQs to a broadcast derived from the prefix; such
// an interface still qualifies by a global or unique-local IPv6 address,
// and then only for IPv6.
func qualifies(lan LAN) (LAN, bool) {
	if lan.NoBroadcast {
		lan.Addr, lan.Broadcast, lan.NoBroadcast = netip.Prefix{}, netip.Addr{}, false
	}
	return lan, lan.Addr.IsValid() || lan.Addr6.IsValid()
}
