//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// readRoutingSocket opens a routing socket and hands every message the
// kernel sends on it to fn until ctx ends. When the socket overflows,
// messages are lost: lost hears of it, and the caller reads what it
// watches again.
func readRoutingSocket(ctx context.Context, fn func(msg []byte), lost func(error)) error {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("failed to open a routing socket: %w", err)
	}
	// Non-blocking, so that os.File puts it in the runtime's poller and a
	// read deadline can end a blocked read when ctx ends.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("failed to open a routing socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "routing socket")
	defer f.Close()
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		// Not in the poller, so nothing could end a blocked read at
		// shutdown. Without the watch, a dead LAN still fails over after
		// -f intervals and the periodic reconcile still finds route
		// changes; that is no reason to stop the daemon.
		lost(fmt.Errorf("routing messages are not watched: %w", err))
		<-ctx.Done()
		return nil
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, unix.ENOBUFS) {
			lost(fmt.Errorf("routing messages were lost (routing socket overflow): %w", err))
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to read the routing socket: %w", err)
		}
		msgs, err := hostLayout.messages(buf[:n])
		if err != nil {
			lost(err)
			continue
		}
		for _, b := range msgs {
			fn(b)
		}
	}
}

// watchLinks reports every interface change to fn until ctx ends, so that a
// lost carrier fails a LAN over at once instead of after -f intervals. It
// reads RTM_IFINFO, which the kernel sends when the flags or the link state
// of an interface change. An interface that is destroyed is reported with
// IFF_UP cleared before it goes. Lost messages mean every interface's state
// is read again.
func watchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	return readRoutingSocket(ctx, func(b []byte) {
		info, ok, err := hostLayout.parseIfInfo(b)
		if err != nil {
			onErr(err)
			return
		}
		if !ok {
			return
		}
		name := ""
		if ifi, err := net.InterfaceByIndex(info.Index); err == nil {
			name = ifi.Name
		}
		fn(LinkChange{Index: info.Index, Name: name})
	}, func(err error) {
		onErr(err)
		fn(LinkChange{Lost: true})
	})
}

// watch implements routeSocket.
func (s *sysRouteSocket) watch(ctx context.Context, fn func([]byte), lost func(error)) error {
	return readRoutingSocket(ctx, fn, lost)
}
