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

// LAN is one interface faild watches, with its IPv4 address on that LAN.
type LAN struct {
	Name      string
	Index     int
	Addr      netip.Prefix // our address and the LAN's prefix length
	Broadcast netip.Addr   // where INQs go
	// NoBroadcast: the interface has no broadcast address configured and
	// Broadcast was derived from the prefix.
	NoBroadcast bool
	Up          bool // administratively up and with carrier
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

// LinkChange reports the state of an interface after the kernel changed it,
// or, with Addr, that one of its addresses changed.
type LinkChange struct {
	Index   int
	Name    string // "" with Addr
	Carrier bool   // administratively up and the link has carrier; not set with Addr
	Addr    bool   // an address was added to or removed from the interface
}

// Usable reports whether faild can send and receive on the LAN: the
// interface exists, is up with carrier, and has an IPv4 address.
func (l LAN) Usable() bool { return l.Index > 0 && l.Up && l.Addr.IsValid() }
