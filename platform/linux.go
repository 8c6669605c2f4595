//go:build linux

package platform

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkWriter writes routes into the main table through rtnetlink.
type netlinkWriter struct {
	h *netlink.Handle
	// hosts holds the main table's host routes by destination, as of
	// Refresh at refreshed: whether faild owns one there, whether someone
	// else does. Add trusts it for a second; see Refresh.
	hosts     map[netip.Prefix]owners
	refreshed time.Time
}

// owners says whose host routes exist to one destination.
type owners struct{ ours, foreign bool }

var _ Refresher = (*netlinkWriter)(nil)

// Refresh implements Refresher. Looking each destination up on its own
// dumps the whole table once per route, since the kernel cannot filter a
// route dump by destination: with 1,000 peers failing over at once the
// last route went in a second after the last detection. One dump now
// serves every Add of a pass. A foreign route that appears after it with
// the same key still makes the exclusive add fail; one with another metric
// is what the periodic reconcile is for.
func (w *netlinkWriter) Refresh() error {
	w.hosts = nil
	hosts := make(map[netip.Prefix]owners)
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := w.list(family, &netlink.Route{}, 0)
		if err != nil {
			return fmt.Errorf("failed to list routes: %w", err)
		}
		for _, kr := range rs {
			if kr.Dst == nil {
				continue
			}
			if ones, bits := kr.Dst.Mask.Size(); ones != bits {
				continue // only host routes can share a destination with faild's
			}
			a, ok := netip.AddrFromSlice(kr.Dst.IP)
			if !ok {
				continue
			}
			dst := netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			o := hosts[dst]
			if kr.Protocol == Protocol {
				o.ours = true
			} else {
				o.foreign = true
			}
			hosts[dst] = o
		}
	}
	w.hosts, w.refreshed = hosts, time.Now()
	return nil
}

// owners returns whose host routes exist to dst: from the last Refresh if
// it is fresh, else from a listing of that destination alone.
func (w *netlinkWriter) owners(dst netip.Prefix) (owners, error) {
	if w.hosts != nil && time.Since(w.refreshed) < time.Second {
		return w.hosts[dst], nil
	}
	family := netlink.FAMILY_V4
	if dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	existing, err := w.list(family, &netlink.Route{Dst: prefixToIPNet(dst)}, netlink.RT_FILTER_DST)
	if err != nil {
		return owners{}, fmt.Errorf("failed to list routes to %s: %w", dst, err)
	}
	var o owners
	for _, e := range existing {
		if e.Protocol == Protocol {
			o.ours = true
		} else {
			o.foreign = true
		}
	}
	return o, nil
}

var _ Writer = (*netlinkWriter)(nil)

// NewWriter returns the Writer for this operating system.
func NewWriter() (Writer, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("failed to open rtnetlink: %w", err)
	}
	return &netlinkWriter{h: h}, nil
}

// kernelRoute is the one place that builds the route faild installs.
func kernelRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:       prefixToIPNet(r.Dst),
		Gw:        r.Via.AsSlice(),
		LinkIndex: r.Index,
		Protocol:  Protocol,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
		Type:      unix.RTN_UNICAST,
	}
}

// list dumps the main table filtered by filter, retrying a dump the kernel
// interrupted because the table changed under it.
func (w *netlinkWriter) list(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	filter.Table = unix.RT_TABLE_MAIN
	mask |= netlink.RT_FILTER_TABLE
	var err error
	for range 3 {
		var rs []netlink.Route
		if rs, err = w.h.RouteListFiltered(family, filter, mask); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return rs, err
		}
	}
	return nil, err
}

// Installed implements Writer.
func (w *netlinkWriter) Installed() ([]Route, error) {
	var out []Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := w.list(family, &netlink.Route{Protocol: Protocol}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("failed to list routes: %w", err)
		}
		for _, kr := range rs {
			r, ok := fromKernel(kr)
			if !ok {
				continue
			}
			if l, err := w.h.LinkByIndex(kr.LinkIndex); err == nil {
				r.Dev = l.Attrs().Name
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Add implements Writer. The kernel would happily install a /32 next to a
// foreign one with another metric and so shadow it, so faild looks first.
func (w *netlinkWriter) Add(r Route) error {
	o, err := w.owners(r.Dst)
	if err != nil {
		return err
	}
	if o.foreign {
		return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
	}
	if o.ours {
		// Replacing can only hit our own route: a foreign one with the same
		// key cannot coexist with it.
		err = w.h.RouteReplace(kernelRoute(r))
	} else {
		// Exclusive add: if a foreign route appeared since the listing, the
		// kernel refuses with EEXIST instead of faild replacing it.
		err = w.h.RouteAdd(kernelRoute(r))
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
		}
	}
	if err != nil {
		return fmt.Errorf("failed to add %v: %w", r, err)
	}
	if w.hosts != nil {
		w.hosts[r.Dst] = owners{ours: true}
	}
	return nil
}

// Delete implements Writer. The kernel matches the protocol on delete, so
// this never removes a route faild did not create.
func (w *netlinkWriter) Delete(r Route) error {
	err := w.h.RouteDel(kernelRoute(r))
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("failed to delete %v: %w", r, err)
	}
	if o, ok := w.hosts[r.Dst]; ok {
		o.ours = false
		w.hosts[r.Dst] = o
	}
	return nil
}

func fromKernel(kr netlink.Route) (Route, bool) {
	if kr.Dst == nil {
		return Route{}, false
	}
	dst, ok := netip.AddrFromSlice(kr.Dst.IP)
	via, ok2 := netip.AddrFromSlice(kr.Gw)
	if !ok || !ok2 {
		return Route{}, false
	}
	bits, _ := kr.Dst.Mask.Size()
	return Route{Dst: netip.PrefixFrom(dst.Unmap(), bits), Via: via.Unmap(), Index: kr.LinkIndex}, true
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Discover finds the LAN interfaces. With names, those interfaces in that
// order (each must exist and have an IPv4 address or a global or
// unique-local IPv6 address); without, every interface that is up, not
// loopback, and has an IPv4 address with a broadcast address or a global or
// unique-local IPv6 address, in interface-index order.
func Discover(names []string) ([]LAN, error) {
	var links []netlink.Link
	if len(names) == 0 {
		all, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("failed to list interfaces: %w", err)
		}
		slices.SortFunc(all, func(a, b netlink.Link) int { return a.Attrs().Index - b.Attrs().Index })
		for _, l := range all {
			a := l.Attrs()
			if a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0 {
				links = append(links, l)
			}
		}
	} else {
		for _, name := range names {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return nil, fmt.Errorf("interface %s: %w", name, err)
			}
			links = append(links, l)
		}
	}
	return lansOf(links, len(names) > 0, lanOf)
}

// Lookup describes the interface called name as a LAN as it is now, for
// picking up an interface that came back, was recreated or readdressed: a
// LAN with Index 0 when there is no such interface, and without addresses
// when it has none. The error is for netlink failing.
func Lookup(name string) (LAN, error) {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return LAN{Name: name}, nil
	}
	if err != nil {
		return LAN{Name: name}, fmt.Errorf("failed to look up interface %s: %w", name, err)
	}
	lan, err := lanOf(l)
	if errors.Is(err, errNoAddr) {
		return lan, nil
	}
	return lan, err
}

// errNoAddr: an interface with no address faild can use on a LAN.
var errNoAddr = errors.New("neither an IPv4 address nor a global or unique-local IPv6 address")

// lanOf describes link as a LAN: its first IPv4 address that has a
// broadcast address (or, failing that, the first IPv4 address, whose
// broadcast faild derives from the prefix), and its IPv6 address as
// pickAddr6 chooses it. With neither it returns the LAN without addresses
// and an error wrapping errNoAddr.
func lanOf(l netlink.Link) (LAN, error) {
	a := l.Attrs()
	lan := LAN{Name: a.Name, Index: a.Index, Up: a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return LAN{}, fmt.Errorf("interface %s: failed to list addresses: %w", a.Name, err)
	}
	addrs6, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return LAN{}, fmt.Errorf("interface %s: failed to list IPv6 addresses: %w", a.Name, err)
	}
	lan.Addr6 = pickAddr6(addrs6)
	var best *netlink.Addr
	for i := range addrs {
		if addrs[i].Broadcast != nil {
			best = &addrs[i]
			break
		}
	}
	if best == nil {
		if len(addrs) == 0 {
			if lan.Addr6.IsValid() {
				return lan, nil // IPv6 only
			}
			return lan, fmt.Errorf("interface %s has %w", a.Name, errNoAddr)
		}
		best = &addrs[0]
	}
	ip, _ := netip.AddrFromSlice(best.IP.To4())
	bits, _ := best.Mask.Size()
	lan.Addr = netip.PrefixFrom(ip, bits)
	if b, ok := netip.AddrFromSlice(best.Broadcast.To4()); ok {
		lan.Broadcast = b
	} else {
		lan.Broadcast = broadcastOf(lan.Addr)
		lan.NoBroadcast = true
	}
	return lan, nil
}

// pickAddr6 chooses the IPv6 address faild announces on a LAN: global or
// unique-local (link-local ones are alike on every LAN), not tentative or
// failed in duplicate address detection (the kernel cannot send from them),
// and a preferred one over a deprecated one. The zero Prefix if none.
func pickAddr6(addrs []netlink.Addr) netip.Prefix {
	var deprecated netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.Is6() || ip.Is4In6() || !ip.IsGlobalUnicast() {
			continue
		}
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		bits, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip, bits)
		if a.Flags&unix.IFA_F_DEPRECATED != 0 {
			if !deprecated.IsValid() {
				deprecated = p
			}
			continue
		}
		return p
	}
	return deprecated
}
