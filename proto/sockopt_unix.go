//go:build unix && !linux

package proto

import "syscall"

// setReceiveBuffer asks for a receive buffer of n bytes, as far as the
// system's limit allows; a smaller one only costs packets under bursts.
func setReceiveBuffer(fd uintptr, n int) {
	syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

// setBroadcast lets the socket send to broadcast addresses.
func setBroadcast(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
}

// msgCtrunc is the receive flag that says control messages were cut short.
const msgCtrunc = syscall.MSG_CTRUNC
