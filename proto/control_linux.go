package proto

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// msgCtrunc is the receive flag that says control messages were cut short.
const msgCtrunc = unix.MSG_CTRUNC

// parseControl reads the arrival interface and the TTL or hop limit of a
// datagram from its control messages into m, without allocating
// (ipv4.ControlMessage.Parse allocates for every packet). IPv4 has them in
// IP_TTL and IP_PKTINFO (struct in_pktinfo: the interface index first);
// IPv6 in IPV6_HOPLIMIT and IPV6_PKTINFO (struct in6_pktinfo: the 16-byte
// address, then the interface index). A field that is missing stays as it
// was (0, -1).
func parseControl(b []byte, v6 bool, m *Message) {
	if v6 {
		walkControl(b, m, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unix.IPV6_PKTINFO, 16)
		return
	}
	walkControl(b, m, unix.IPPROTO_IP, unix.IP_TTL, unix.IP_PKTINFO, 0)
}

// walkControl fills m from the control messages of one level: hopsType
// carries an int, infoType a packet info struct whose interface index (a
// 32-bit int) sits at ifOff.
func walkControl(b []byte, m *Message, level, hopsType, infoType int32, ifOff int) {
	const (
		hdrLen = int(unsafe.Sizeof(unix.Cmsghdr{}))
		align  = int(unsafe.Sizeof(uintptr(0)))
	)
	for len(b) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < hdrLen || n > len(b) {
			break
		}
		data := b[hdrLen:n]
		if h.Level == level {
			switch {
			case h.Type == hopsType && len(data) >= 4:
				m.Hops = int(binary.NativeEndian.Uint32(data))
			case h.Type == infoType && len(data) >= ifOff+4:
				m.IfIndex = int(int32(binary.NativeEndian.Uint32(data[ifOff:])))
			}
		}
		n = (n + align - 1) &^ (align - 1)
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
}

// setReceiveBuffer asks for a receive buffer of n bytes. SO_RCVBUFFORCE
// (root or CAP_NET_ADMIN, which faild has) passes over net.core.rmem_max;
// without the privilege the plain option gets what the limit allows. A
// smaller buffer only costs packets under bursts, so failure is not fatal.
func setReceiveBuffer(fd uintptr, n int) {
	if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}

// setBroadcast lets the socket send to broadcast addresses.
func setBroadcast(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
}
