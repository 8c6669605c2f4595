//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/net/route"
	"golang.org/x/sys/unix"
)

// stateFile is where faild keeps, on the BSDs and macOS, the routes it
// installed. The RTF_PROTO1 mark is a flag any routing daemon may set, so
// a route is faild's only when it carries the mark AND is listed here; the
// file survives a crash so that the next start can still tell its routes
// from anyone else's.
const stateFile = "/var/db/faild/routes"

// NewWriter returns the Writer for this operating system: RTM_ADD and
// RTM_DELETE on a PF_ROUTE socket, with faild's routes marked RTF_PROTO1
// and listed in stateFile.
func NewWriter() (Writer, error) {
	w, err := newRouteSocketWriter(&hostLayout, &sysRouteSocket{l: &hostLayout, pid: int32(os.Getpid())}, stateFile)
	if err != nil {
		return nil, fmt.Errorf("failed to open the route writer: %w", err)
	}
	return w, nil
}

// replyTimeout bounds the wait for the kernel's answer to RTM_GET, which
// comes back on the socket among every other routing message.
const replyTimeout = 5 * time.Second

// sysRouteSocket is the routeSocket of the running kernel.
type sysRouteSocket struct {
	l   *rtLayout
	pid int32
}

var _ routeSocket = (*sysRouteSocket)(nil)

// request opens a routing socket for this one message. A fresh socket
// holds only what the kernel sends after it was opened, so the reply to
// RTM_GET is not queued behind a backlog of other processes' messages,
// and nothing piles up between requests.
func (s *sysRouteSocket) request(msg []byte) ([]byte, error) {
	h, err := s.l.header(msg)
	if err != nil {
		return nil, err
	}
	// Protocol AF_INET: the kernel sends this socket only IPv4 messages.
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("failed to open a routing socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(replyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("failed to set a timeout on the routing socket: %w", err)
	}
	// The kernel acts on the message inside write(2) and fails it with
	// the errno of the refusal (EEXIST, ESRCH, ENETUNREACH).
	for {
		_, err = unix.Write(fd, msg)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if h.Type != rtmGet {
		return nil, nil
	}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			// The socket overflowed and dropped messages; the reply may
			// still come, or the timeout ends the wait.
			continue
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
			return nil, fmt.Errorf("failed to read the routing socket: no reply in %v", replyTimeout)
		case err != nil:
			return nil, fmt.Errorf("failed to read the routing socket: %w", err)
		}
		r, err := s.l.header(buf[:n])
		if err != nil || r.Type != rtmGet || r.Seq != h.Seq || r.Pid != s.pid {
			continue // another process's message, or an older one of ours
		}
		if r.Errno != 0 {
			return nil, syscall.Errno(r.Errno)
		}
		return slices.Clone(buf[:n]), nil
	}
}

// dump reads the IPv4 routing table with the NET_RT_DUMP sysctl.
func (s *sysRouteSocket) dump() ([]byte, error) {
	b, err := route.FetchRIB(unix.AF_INET, route.RIBTypeRoute, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to dump the routing table: %w", err)
	}
	return b, nil
}

func (s *sysRouteSocket) ifName(index int) string {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return ""
	}
	return ifi.Name
}

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

// Discover finds the LAN interfaces. With names, those interfaces in that
// order (each must exist and have an IPv4 address); without, every
// interface that is up, not loopback, and has an IPv4 address with a
// broadcast address, in interface-index order.
func Discover(names []string) ([]LAN, error) {
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

// Lookup describes the interface called name as a LAN as it is now, for
// picking up an interface that came back, was recreated or readdressed: a
// LAN with Index 0 when there is no such interface, and without Addr when
// it has no IPv4 address. The error is for the routing socket failing.
func Lookup(name string) (LAN, error) {
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
		return LAN{Name: name, Index: ifc.index, Up: ifc.flags&unix.IFF_UP != 0 && ifc.carrier}, nil
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
			Up: ifc.flags&unix.IFF_UP != 0 && ifc.carrier}
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

// WatchLinks reports every interface change to fn until ctx ends, so that a
// lost carrier fails a LAN over at once instead of after -f intervals. It
// reads RTM_IFINFO from a routing socket, which the kernel sends when the
// flags or the link state of an interface change. An interface that is
// destroyed is reported with IFF_UP cleared before it goes. When the socket
// overflows, messages are lost: the error goes to onErr and every
// interface's state is read again.
func WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("failed to watch interfaces: %w", err)
	}
	// Non-blocking, so that os.File puts it in the runtime's poller and a
	// read deadline can end a blocked read when ctx ends.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("failed to watch interfaces: %w", err)
	}
	f := os.NewFile(uintptr(fd), "routing socket")
	defer f.Close()
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		// Not in the poller, so nothing could end a blocked read at
		// shutdown. Without the watch, a dead LAN still fails over
		// after -f intervals; that is no reason to stop the daemon.
		onErr(fmt.Errorf("interface changes are not watched: %w", err))
		<-ctx.Done()
		return nil
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()

	report := func(info ifInfo) {
		name := ""
		if ifi, err := net.InterfaceByIndex(info.Index); err == nil {
			name = ifi.Name
		}
		fn(LinkChange{Index: info.Index, Name: name})
	}
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, unix.ENOBUFS) {
			onErr(fmt.Errorf("interface changes were lost (routing socket overflow); reading every interface again: %w", err))
			fn(LinkChange{Lost: true})
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to watch interfaces: %w", err)
		}
		msgs, err := hostLayout.messages(buf[:n])
		if err != nil {
			onErr(err)
			continue
		}
		for _, b := range msgs {
			info, ok, err := hostLayout.parseIfInfo(b)
			if err != nil {
				onErr(err)
				continue
			}
			if ok {
				report(info)
			}
		}
	}
}

// rpFilterWarnings has nothing to check here: the BSDs and macOS have no
// rp_filter sysctl. Reverse-path checks are packet-filter rules there (pf
// urpf-failed, ipfw verrevpath), which faild cannot judge; README says to
// leave them off the LAN interfaces.
func rpFilterWarnings([]LAN) []string { return nil }
