package proto

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// setReceiveBuffer asks for a receive buffer of n bytes. faild refuses to
// start on Windows (platform has no route writer there); this only keeps
// the package building, so that the refusal is a clear error, not a
// build failure.
func setReceiveBuffer(fd uintptr, n int) {
	syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

// setBroadcast lets the socket send to broadcast addresses.
func setBroadcast(fd uintptr) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
}

// msgCtrunc is the receive flag that says control messages were cut short.
const msgCtrunc = windows.MSG_CTRUNC
