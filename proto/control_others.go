//go:build !linux

package proto

import (
	"syscall"

	"golang.org/x/net/ipv4"
)

// parseControl reads the arrival interface and TTL of a packet from its
// control messages into cm; it reports false when either is missing. Only
// the Linux version avoids allocating.
func parseControl(b []byte, cm *ipv4.ControlMessage) bool {
	*cm = ipv4.ControlMessage{TTL: -1}
	if cm.Parse(b) != nil {
		return false
	}
	return cm.IfIndex != 0 && cm.TTL >= 0
}

// setReceiveBuffer asks for a receive buffer of n bytes, as far as the
// system's limit allows; a smaller one only costs packets under bursts.
func setReceiveBuffer(fd, n int) {
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
