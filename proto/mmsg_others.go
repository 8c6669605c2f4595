//go:build !linux

package proto

import (
	"errors"
	"net"
)

// mmsg is Linux's own recvmmsg and sendmmsg (mmsg_linux.go); elsewhere
// the Conn moves its datagrams through x/net, one a call.
type mmsg struct{}

func newMmsg(*net.UDPConn, bool, func() []byte) (*mmsg, error) {
	return nil, errors.ErrUnsupported
}

func (*mmsg) read([]Message) (int, error) { return 0, errors.ErrUnsupported }

func (*mmsg) write([]Message, [][]byte) (int, error) {
	return 0, errors.ErrUnsupported
}
