//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import (
	"fmt"
	"net"
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
