package platform

import (
	"errors"
	"fmt"
	"net/netip"
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

// ErrForeign means a route to the destination exists that faild did not
// create; faild leaves it alone rather than replace or shadow it.
var ErrForeign = errors.New("a route faild did not create exists for this destination")

// Writer changes the kernel routing table, touching only faild's routes.
type Writer interface {
	// Installed lists every route that carries faild's protocol mark.
	Installed() ([]Route, error)
	// Add installs r, or updates faild's own route to r.Dst. If any other
	// route to r.Dst exists it returns an error wrapping ErrForeign.
	Add(r Route) error
	// Delete removes faild's route r; a route that is already gone is not
	// an error.
	Delete(r Route) error
}

// Refresher is a Writer that can read the kernel's table once ahead of a
// batch of Adds instead of once per Add; callers refresh before each batch.
type Refresher interface {
	Refresh() error
}

// LinkChange says that the kernel changed an interface (Index and Name), or
// one of its addresses (Addr, with Index only), or that changes may have
// been lost (Lost): then every LAN must be read again. The receiver reads
// the interface's state itself; a change is only the prompt.
type LinkChange struct {
	Index int
	Name  string
	Addr  bool
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
