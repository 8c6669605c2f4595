package proto

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// msgCtrunc is the receive flag that says control messages were cut short.
const msgCtrunc = unix.MSG_CTRUNC

// parseControl4 reads the arrival interface and TTL of an IPv4 packet from
// its control messages into cm, without allocating
// (ipv4.ControlMessage.Parse allocates for every packet).
func parseControl4(b []byte, cm *control) bool {
	return walkControl(b, cm, unix.IPPROTO_IP, unix.IP_TTL, unix.IP_PKTINFO, 0)
}

// parseControl6 does the same for IPv6: the hop limit, and the interface
// from IPV6_PKTINFO (struct in6_pktinfo: the 16-byte address, then the
// interface index).
func parseControl6(b []byte, cm *control) bool {
	return walkControl(b, cm, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unix.IPV6_PKTINFO, 16)
}

// walkControl fills cm from the control messages of one level: hopsType
// carries an int, infoType a packet info struct whose interface index (a
// 32-bit int) sits at ifOff. It reports false when either is missing.
func walkControl(b []byte, cm *control, level, hopsType, infoType int32, ifOff int) bool {
	const (
		hdrLen = int(unsafe.Sizeof(unix.Cmsghdr{}))
		align  = int(unsafe.Sizeof(uintptr(0)))
	)
	var gotIf, gotHops bool
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
				cm.hops, gotHops = int(binary.NativeEndian.Uint32(data)), true
			case h.Type == infoType && len(data) >= ifOff+4:
				cm.ifIndex, gotIf = int(int32(binary.NativeEndian.Uint32(data[ifOff:]))), true
			}
		}
		n = (n + align - 1) &^ (align - 1)
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	return gotIf && gotHops
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
