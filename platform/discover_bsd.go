//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// bsdIface is one interface of the NET_RT_IFLIST sysctl.
type bsdIface struct {
	index   int
	name    string
	flags   int
	carrier bool
	addrs   []*route.InterfaceAddrMessage
}

// fetchIfaces lists the interfaces with their IPv4 addresses, in
// interface-index order. x/net/route parses the addresses; faild's own
// parser reads the link state, which x/net/route does not expose.
func fetchIfaces() ([]*bsdIface, error) {
	raw, err := route.FetchRIB(unix.AF_INET, route.RIBTypeInterface, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to list interfaces: %w", err)
	}
	msgs, err := route.ParseRIB(route.RIBTypeInterface, raw)
	if err != nil {
		return nil, fmt.Errorf("failed to list interfaces: %w", err)
	}
	byIndex := make(map[int]*bsdIface)
	for _, m := range msgs {
		switch m := m.(type) {
		case *route.InterfaceMessage:
			byIndex[m.Index] = &bsdIface{index: m.Index, name: m.Name, flags: m.Flags}
		case *route.InterfaceAddrMessage:
			if ifc := byIndex[m.Index]; ifc != nil {
				ifc.addrs = append(ifc.addrs, m)
			}
		}
	}
	raws, err := hostLayout.messages(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to list interfaces: %w", err)
	}
	for _, b := range raws {
		if info, ok, err := hostLayout.parseIfInfo(b); err == nil && ok && byIndex[info.Index] != nil {
			byIndex[info.Index].carrier = info.Carrier
		}
	}
	var out []*bsdIface
	for _, ifc := range byIndex {
		out = append(out, ifc)
	}
	slices.SortFunc(out, func(a, b *bsdIface) int { return a.index - b.index })
	return out, nil
}

// discover finds the LAN interfaces. With names, those interfaces in that
// order (each must exist and have an IPv4 address); without, every
// interface that is up, not loopback, and has an IPv4 address with a
// broadcast address, in interface-index order.
func discover(names []string) ([]LAN, error) {
	all, err := fetchIfaces()
	if err != nil {
		return nil, err
	}
	var ifcs []*bsdIface
	if len(names) == 0 {
		for _, ifc := range all {
			if ifc.flags&unix.IFF_UP != 0 && ifc.flags&unix.IFF_LOOPBACK == 0 {
				ifcs = append(ifcs, ifc)
			}
		}
	} else {
		for _, name := range names {
			i := slices.IndexFunc(all, func(ifc *bsdIface) bool { return ifc.name == name })
			if i < 0 {
				return nil, fmt.Errorf("interface %s: %w", name, os.ErrNotExist)
			}
			ifcs = append(ifcs, all[i])
		}
	}
	return lansOf(ifcs, len(names) > 0, bsdLAN)
}

// lookup describes the interface called name as a LAN as it is now, for
// picking up an interface that came back, was recreated or readdressed: a
// LAN with Index 0 when there is no such interface, and without Addr when
// it has no IPv4 address. The error is for the routing socket failing.
func lookup(name string) (LAN, error) {
	all, err := fetchIfaces()
	if err != nil {
		return LAN{Name: name}, err
	}
	i := slices.IndexFunc(all, func(ifc *bsdIface) bool { return ifc.name == name })
	if i < 0 {
		return LAN{Name: name}, nil
	}
	ifc := all[i]
	lan, err := bsdLAN(ifc)
	if err != nil {
		// There, but without an IPv4 address: a LAN that is down.
		return LAN{Name: name, Index: ifc.index, Up: ifc.flags&unix.IFF_UP != 0 && ifc.carrier,
			Loopback: ifc.flags&unix.IFF_LOOPBACK != 0}, nil
	}
	return lan, nil
}

// bsdLAN describes ifc as a LAN: its first IPv4 address that has a
// broadcast address (or, failing that, the first IPv4 address, whose
// broadcast faild derives from the prefix).
func bsdLAN(ifc *bsdIface) (LAN, error) {
	var first, best *LAN
	for _, m := range ifc.addrs {
		ip, ok := sockaddr4(m.Addrs, unix.RTAX_IFA)
		if !ok {
			continue
		}
		mask, _ := sockaddr4(m.Addrs, unix.RTAX_NETMASK)
		ones, bits := net.IPMask(mask.AsSlice()).Size()
		if bits == 0 {
			ones = 32 // no netmask, or not a contiguous one
		}
		lan := LAN{Name: ifc.name, Index: ifc.index, Addr: netip.PrefixFrom(ip, ones),
			Up: ifc.flags&unix.IFF_UP != 0 && ifc.carrier, Loopback: ifc.flags&unix.IFF_LOOPBACK != 0}
		// On a point-to-point interface the kernel puts the far end's
		// address where the broadcast address goes (RTAX_BRD is
		// RTAX_DSTADDR's slot), so it is not taken for one.
		brd, ok := sockaddr4(m.Addrs, unix.RTAX_BRD)
		if ok && !brd.IsUnspecified() && ifc.flags&unix.IFF_POINTOPOINT == 0 {
			lan.Broadcast = brd
			best = &lan
			break
		}
		lan.Broadcast, lan.NoBroadcast = broadcastOf(lan.Addr), true
		if first == nil {
			first = &lan
		}
	}
	switch {
	case best != nil:
		return *best, nil
	case first != nil:
		return *first, nil
	}
	return LAN{}, fmt.Errorf("interface %s has no IPv4 address", ifc.name)
}

// sockaddr4 is the IPv4 address in slot i of a message's addresses.
func sockaddr4(addrs []route.Addr, i int) (netip.Addr, bool) {
	if i >= len(addrs) {
		return netip.Addr{}, false
	}
	a, ok := addrs[i].(*route.Inet4Addr)
	if !ok {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a.IP), true
}
