package proto

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// parseControl reads the arrival interface and TTL of a packet from its
// control messages into cm, without allocating (ipv4.ControlMessage.Parse
// allocates for every packet). It reports false when either is missing.
func parseControl(b []byte, cm *ipv4.ControlMessage) bool {
	const (
		hdrLen = int(unsafe.Sizeof(unix.Cmsghdr{}))
		align  = int(unsafe.Sizeof(uintptr(0)))
	)
	var gotIf, gotTTL bool
	for len(b) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < hdrLen || n > len(b) {
			break
		}
		data := b[hdrLen:n]
		if h.Level == unix.IPPROTO_IP {
			switch {
			case h.Type == unix.IP_TTL && len(data) >= 4:
				cm.TTL, gotTTL = int(binary.NativeEndian.Uint32(data)), true
			case h.Type == unix.IP_PKTINFO && len(data) >= 4: // struct in_pktinfo starts with ipi_ifindex
				cm.IfIndex, gotIf = int(int32(binary.NativeEndian.Uint32(data))), true
			}
		}
		n = (n + align - 1) &^ (align - 1)
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	return gotIf && gotTTL
}

// setReceiveBuffer asks for a receive buffer of n bytes. SO_RCVBUFFORCE
// (root or CAP_NET_ADMIN, which faild has) passes over net.core.rmem_max;
// without the privilege the plain option gets what the limit allows. A
// smaller buffer only costs packets under bursts, so failure is not fatal.
func setReceiveBuffer(fd, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}
