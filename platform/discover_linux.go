//go:build linux

package platform

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// discover finds the LAN interfaces. With names, those interfaces in that
// order (each must exist and have an IPv4 address or a global or
// unique-local IPv6 address); without, every interface that is up, not
// loopback, and has an IPv4 address with a broadcast address or a global or
// unique-local IPv6 address, in interface-index order.
func discover(names []string) ([]LAN, error) {
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

// lookup describes the interface called name as a LAN as it is now, for
// picking up an interface that came back, was recreated or readdressed: a
// LAN with Index 0 when there is no such interface, and without addresses
// when it has none. The error is for netlink failing.
func lookup(name string) (LAN, error) {
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
	lan := LAN{Name: a.Name, Index: a.Index, Up: a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0,
		Loopback: a.Flags&net.FlagLoopback != 0}
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
