package platform

// The BSD routing-socket messages faild writes and reads, as pure byte
// work with no system calls, so that they are tested on any OS
// (rtmsg_test.go). route_bsd.go sends them; rtmsg_<os>.go picks the layout
// of the running kernel and checks it, at compile time, against the
// structures in golang.org/x/sys/unix, which are generated from that
// kernel's headers.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// Message types, route flags and address bits that are the same on every
// BSD and on macOS (net/route.h).
const (
	rtmAdd    = 0x1
	rtmDelete = 0x2
	rtmGet    = 0x4
	rtmChange = 0x3

	rtfUp      = 0x1
	rtfGateway = 0x2
	rtfHost    = 0x4
	rtfStatic  = 0x800
	// rtfProto1 marks faild's routes. The flag is free for any routing
	// daemon to use, so the mark alone does not make a route faild's: the
	// state file must list it too (rtwriter.go).
	rtfProto1 = 0x8000

	rtaDst     = 0x1
	rtaGateway = 0x2
	rtaNetmask = 0x4

	afInet = 2  // AF_INET
	afLink = 18 // AF_LINK

	sizeofSockaddrInet4 = 16

	iffUp      = 0x1  // IFF_UP
	iffRunning = 0x40 // IFF_RUNNING
)

// faildRouteFlags are the flags of every route faild adds: a static host
// route through a gateway, marked as faild's.
const faildRouteFlags = rtfUp | rtfGateway | rtfHost | rtfStatic | rtfProto1

// The fields of struct rt_msghdr before the metrics, at the same offsets on
// FreeBSD, NetBSD, DragonFly and macOS (u_short msglen; u_char version,
// type; u_short index; int flags, addrs; pid_t pid; int seq, errno).
const (
	classicOffIndex = 4
	classicOffFlags = 8
	classicOffAddrs = 12
	classicOffPid   = 16
	classicOffSeq   = 20
	classicOffErrno = 24
)

// OpenBSD moved them to make room for rtm_hdrlen, rtm_tableid,
// rtm_priority and rtm_mpls (OpenBSD sys/net/route.h).
const (
	openbsdOffHdrlen = 4
	openbsdOffIndex  = 6
	openbsdOffAddrs  = 12
	openbsdOffFlags  = 16
	openbsdOffPid    = 24
	openbsdOffSeq    = 28
	openbsdOffErrno  = 32
)

// rtLayout describes one kernel's routing messages: struct rt_msghdr, the
// padding of the socket addresses that follow it, and struct if_msghdr.
type rtLayout struct {
	name    string
	order   binary.ByteOrder // the kernel's: messages are in host order
	version uint8            // RTM_VERSION
	hdrLen  int              // sizeof(struct rt_msghdr)
	// align pads each socket address after the header to a multiple of
	// it; a zero-length address still takes align bytes.
	align int
	// offHdrlen, when not 0, is where the header stores its own length
	// (OpenBSD's rtm_hdrlen); the addresses start there, not at hdrLen.
	offHdrlen                                            int
	offIndex, offFlags, offAddrs, offPid, offSeq, offErr int
	// kernelMade are the flags of host routes the kernel makes by itself
	// (ARP entries, clones). They are not a foreign route: the kernel
	// replaces them when a static route to the same host is added.
	kernelMade uint32

	// struct if_msghdr, of RTM_IFINFO messages.
	rtmIfinfo   uint8
	ifOffFlags  int
	ifOffIndex  int
	ifOffLink   int // ifi_link_state inside ifm_data; 0: the OS has none
	ifLinkSize  int // 1, 4 or 8 bytes
	linkStateUp func(state uint64) bool
}

// The layouts of the kernels faild supports on 64-bit CPUs, from each
// one's sys/net/route.h and sys/net/if.h. rtmsg_<os>.go takes the running
// kernel's from these, with the sizes of its word.

// freebsdLayout: FreeBSD 12 and later (RTM_VERSION 5). rt_msghdr ends in
// u_long rtm_inits and 14 u_long metrics, so it is 0x98 bytes on 64-bit
// CPUs; socket addresses are padded to sizeof(long) (SA_SIZE). Since
// FreeBSD 8 ARP entries live outside the routing table, so RTM_GET never
// returns one.
var freebsdLayout = rtLayout{
	name: "freebsd", order: binary.LittleEndian, version: 5, hdrLen: 0x98, align: 8,
	offIndex: classicOffIndex, offFlags: classicOffFlags, offAddrs: classicOffAddrs,
	offPid: classicOffPid, offSeq: classicOffSeq, offErr: classicOffErrno,
	// if_msghdr: msglen, version, type, int addrs, int flags (8), u_short
	// index (12), if_data at 16 whose fifth byte is ifi_link_state.
	rtmIfinfo: 0xe, ifOffFlags: 8, ifOffIndex: 12, ifOffLink: 16 + 4, ifLinkSize: 1,
	linkStateUp: linkUpFreeBSD,
}

// dragonflyLayout: DragonFly 5 and later (RTM_VERSION 7), the FreeBSD
// header with rtm_use in place of rtm_fmask. Its if_msghdr puts
// ifm_index first and ifi_link_state is a u_long after ifi_mtu and
// ifi_metric.
var dragonflyLayout = rtLayout{
	name: "dragonfly", order: binary.LittleEndian, version: 7, hdrLen: 0x98, align: 8,
	offIndex: classicOffIndex, offFlags: classicOffFlags, offAddrs: classicOffAddrs,
	offPid: classicOffPid, offSeq: classicOffSeq, offErr: classicOffErrno,
	kernelMade: 0x400 | 0x20000, // RTF_LLINFO, RTF_WASCLONED
	rtmIfinfo:  0xe, ifOffFlags: 8, ifOffIndex: 4, ifOffLink: 16 + 24, ifLinkSize: 8,
	linkStateUp: linkUpFreeBSD,
}

// netbsdLayout: NetBSD 8 and later (RTM_VERSION 4). Every field after
// rtm_inits is 64-bit aligned whatever the CPU, so the header is 0x78
// bytes and addresses are padded to 8 (RT_ROUNDUP). RTM_IFINFO is 0x14
// since NetBSD 8; ifi_link_state is an int.
var netbsdLayout = rtLayout{
	name: "netbsd", order: binary.LittleEndian, version: 4, hdrLen: 0x78, align: 8,
	offIndex: classicOffIndex, offFlags: classicOffFlags, offAddrs: classicOffAddrs,
	offPid: classicOffPid, offSeq: classicOffSeq, offErr: classicOffErrno,
	kernelMade: 0x400 | 0x2000, // RTF_LLINFO, RTF_CLONED
	rtmIfinfo:  0x14, ifOffFlags: 8, ifOffIndex: 12, ifOffLink: 16 + 4, ifLinkSize: 4,
	linkStateUp: linkUpFreeBSD,
}

// openbsdLayout: OpenBSD 5.6 and later (RTM_VERSION 5). The header says
// its own length in rtm_hdrlen; it is 0x60 bytes today. Addresses are
// padded to sizeof(long). ARP entries are cloned host routes in the
// table (RTF_LLINFO|RTF_CLONED), and RTM_ADD overwrites a cloned route.
var openbsdLayout = rtLayout{
	name: "openbsd", order: binary.LittleEndian, version: 5, hdrLen: 0x60, align: 8,
	offHdrlen: openbsdOffHdrlen,
	offIndex:  openbsdOffIndex, offFlags: openbsdOffFlags, offAddrs: openbsdOffAddrs,
	offPid: openbsdOffPid, offSeq: openbsdOffSeq, offErr: openbsdOffErrno,
	kernelMade: 0x400 | 0x10000, // RTF_LLINFO, RTF_CLONED
	// if_msghdr: msglen, version, type, u_short hdrlen, index (6),
	// tableid, 2 pad, int addrs, flags (16), xflags, if_data at 24 whose
	// fourth byte is ifi_link_state.
	rtmIfinfo: 0xe, ifOffFlags: 16, ifOffIndex: 6, ifOffLink: 24 + 3, ifLinkSize: 1,
	linkStateUp: linkUpOpenBSD,
}

// darwinLayout: macOS (RTM_VERSION 5). Every metric is 32-bit, so the
// header is 0x5c bytes on every CPU, and addresses are padded to 4
// (ROUNDUP32). ARP entries are cloned host routes (RTF_LLINFO,
// RTF_WASCLONED) that RTM_ADD replaces. if_data has no link state: carrier
// is IFF_RUNNING, which the drivers set and clear with the link.
var darwinLayout = rtLayout{
	name: "darwin", order: binary.LittleEndian, version: 5, hdrLen: 0x5c, align: 4,
	offIndex: classicOffIndex, offFlags: classicOffFlags, offAddrs: classicOffAddrs,
	offPid: classicOffPid, offSeq: classicOffSeq, offErr: classicOffErrno,
	kernelMade: 0x400 | 0x20000, // RTF_LLINFO, RTF_WASCLONED
	rtmIfinfo:  0xe, ifOffFlags: 8, ifOffIndex: 12,
}

// linkUpFreeBSD: LINK_STATE_UNKNOWN (0), DOWN (1), UP (2). Drivers that
// cannot tell (tun, some virtual NICs) report unknown; faild counts that
// as carrier, as ifconfig does.
func linkUpFreeBSD(s uint64) bool { return s != 1 }

// linkUpOpenBSD is LINK_STATE_IS_UP: UNKNOWN (0), or UP (4) and above
// (HALF_DUPLEX 5, FULL_DUPLEX 6).
func linkUpOpenBSD(s uint64) bool { return s == 0 || s >= 4 }

// Errors of parsing. A routing socket never sends half a message, so these
// mean a layout that does not fit the kernel.
var (
	errShortMessage = errors.New("routing message too short")
	errBadVersion   = errors.New("routing message of another RTM_VERSION")
)

// rtMsg is the part of one routing message faild needs.
type rtMsg struct {
	Type  uint8
	Flags uint32
	Index int // rtm_index: the interface the route leaves by
	Pid   int32
	Seq   int32
	Errno int32
	Dst   netip.Addr // invalid unless the destination is IPv4
	Gw    netip.Addr // invalid unless the gateway is IPv4
	Mask  int        // prefix length of RTA_NETMASK; -1 without one
}

// Host reports whether m is a route to exactly one IPv4 address.
func (m rtMsg) Host() bool {
	return m.Dst.IsValid() && (m.Flags&rtfHost != 0 || m.Mask == 32)
}

// roundup is the space a socket address of length n takes.
func (l *rtLayout) roundup(n int) int {
	if n == 0 {
		return l.align
	}
	return (n + l.align - 1) &^ (l.align - 1)
}

// marshalRoute builds the RTM_ADD, RTM_DELETE or RTM_GET message for a
// host route to dst (through gw, when gw is valid). rtm_pid is left 0: the
// kernel fills it in.
func (l *rtLayout) marshalRoute(typ uint8, flags uint32, seq int32, dst, gw netip.Addr) ([]byte, error) {
	if !dst.Is4() || (gw.IsValid() && !gw.Is4()) {
		return nil, fmt.Errorf("failed to build a routing message for %s via %s: only IPv4 is supported", dst, gw)
	}
	addrs := uint32(rtaDst)
	n := l.hdrLen + l.roundup(sizeofSockaddrInet4)
	if gw.IsValid() {
		addrs |= rtaGateway
		n += l.roundup(sizeofSockaddrInet4)
	}
	b := make([]byte, n)
	l.order.PutUint16(b[0:], uint16(n))
	b[2] = l.version
	b[3] = typ
	if l.offHdrlen != 0 {
		l.order.PutUint16(b[l.offHdrlen:], uint16(l.hdrLen))
	}
	l.order.PutUint32(b[l.offFlags:], flags)
	l.order.PutUint32(b[l.offAddrs:], addrs)
	l.order.PutUint32(b[l.offSeq:], uint32(seq))
	off := l.hdrLen
	off += putSockaddrInet4(b[off:], dst)
	if gw.IsValid() {
		putSockaddrInet4(b[off:], gw)
	}
	return b, nil
}

// putSockaddrInet4 writes a struct sockaddr_in (sin_len, sin_family, port
// 0, the address in network order, 8 zero bytes) and returns its size.
func putSockaddrInet4(b []byte, a netip.Addr) int {
	b[0] = sizeofSockaddrInet4
	b[1] = afInet
	a4 := a.As4()
	copy(b[4:8], a4[:])
	return sizeofSockaddrInet4
}

// messages splits a buffer of routing messages (a sysctl dump, or what
// one read returned) by their rtm_msglen, which every message type starts
// with.
func (l *rtLayout) messages(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("failed to split routing messages: %w", errShortMessage)
		}
		n := int(l.order.Uint16(b))
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("failed to split routing messages: length %d of %d bytes: %w", n, len(b), errShortMessage)
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}

// header reads the fixed part of a routing message; it does not look at
// the addresses.
func (l *rtLayout) header(b []byte) (rtMsg, error) {
	if len(b) < l.offErr+4 || int(l.order.Uint16(b)) > len(b) {
		return rtMsg{}, errShortMessage
	}
	if b[2] != l.version {
		return rtMsg{}, fmt.Errorf("%w: %d, want %d", errBadVersion, b[2], l.version)
	}
	return rtMsg{
		Type:  b[3],
		Flags: l.order.Uint32(b[l.offFlags:]),
		Index: int(l.order.Uint16(b[l.offIndex:])),
		Pid:   int32(l.order.Uint32(b[l.offPid:])),
		Seq:   int32(l.order.Uint32(b[l.offSeq:])),
		Errno: int32(l.order.Uint32(b[l.offErr:])),
		Mask:  -1,
	}, nil
}

// parseRoute reads a route message: an RTM_GET reply or one entry of a
// NET_RT_DUMP sysctl.
func (l *rtLayout) parseRoute(b []byte) (rtMsg, error) {
	m, err := l.header(b)
	if err != nil {
		return rtMsg{}, fmt.Errorf("failed to parse a routing message: %w", err)
	}
	b = b[:l.order.Uint16(b)]
	off := l.hdrLen
	if l.offHdrlen != 0 {
		off = int(l.order.Uint16(b[l.offHdrlen:]))
	}
	if off > len(b) {
		return rtMsg{}, fmt.Errorf("failed to parse a routing message: header of %d bytes in %d: %w", off, len(b), errShortMessage)
	}
	addrs := l.order.Uint32(b[l.offAddrs:])
	for bit := uint32(1); bit != 0 && addrs >= bit; bit <<= 1 {
		if addrs&bit == 0 {
			continue
		}
		if off >= len(b) {
			return rtMsg{}, fmt.Errorf("failed to parse a routing message: address %#x missing: %w", bit, errShortMessage)
		}
		sa := b[off:]
		n := int(sa[0])
		if n > len(sa) {
			return rtMsg{}, fmt.Errorf("failed to parse a routing message: address %#x of %d bytes in %d: %w", bit, n, len(sa), errShortMessage)
		}
		sa = sa[:n]
		switch bit {
		case rtaDst:
			m.Dst = inet4(sa)
		case rtaGateway:
			m.Gw = inet4(sa)
		case rtaNetmask:
			m.Mask = maskBits(sa)
		}
		off += l.roundup(n)
	}
	return m, nil
}

// inet4 is the address of a struct sockaddr_in, or the zero Addr for any
// other family.
func inet4(sa []byte) netip.Addr {
	if len(sa) < 8 || sa[1] != afInet {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(sa[4:8]))
}

// maskBits is the prefix length of a netmask. The kernel trims trailing
// zero bytes from netmasks (sa_len 0 for /0, 7 for /24) and leaves their
// family unset, so the address bytes that are absent count as zero.
func maskBits(sa []byte) int {
	var m [4]byte
	if len(sa) > 4 {
		copy(m[:], sa[4:])
	}
	v := binary.BigEndian.Uint32(m[:])
	ones := bits.LeadingZeros32(^v)
	if v<<ones != 0 {
		return -1 // not contiguous: no prefix
	}
	return ones
}

// ifInfo is the part of an RTM_IFINFO message faild needs.
type ifInfo struct {
	Index   int
	Flags   uint32
	Carrier bool // IFF_UP and the link is up
}

// parseIfInfo reads an RTM_IFINFO message; ok is false for any other
// message type.
func (l *rtLayout) parseIfInfo(b []byte) (info ifInfo, ok bool, err error) {
	if len(b) < 4 {
		return ifInfo{}, false, fmt.Errorf("failed to parse an interface message: %w", errShortMessage)
	}
	if b[3] != l.rtmIfinfo || b[2] != l.version {
		return ifInfo{}, false, nil
	}
	need := max(l.ifOffFlags+4, l.ifOffIndex+2, l.ifOffLink+l.ifLinkSize)
	if len(b) < need {
		return ifInfo{}, false, fmt.Errorf("failed to parse an interface message: %d bytes, want %d: %w", len(b), need, errShortMessage)
	}
	info.Index = int(l.order.Uint16(b[l.ifOffIndex:]))
	info.Flags = l.order.Uint32(b[l.ifOffFlags:])
	link := info.Flags&iffRunning != 0
	if l.ifOffLink != 0 {
		var s uint64
		switch l.ifLinkSize {
		case 1:
			s = uint64(b[l.ifOffLink])
		case 4:
			s = uint64(l.order.Uint32(b[l.ifOffLink:]))
		case 8:
			s = l.order.Uint64(b[l.ifOffLink:])
		}
		link = l.linkStateUp(s)
	}
	info.Carrier = info.Flags&iffUp != 0 && link
	return info, true, nil
}
