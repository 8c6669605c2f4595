//go:build linux

package platform

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WatchLinks reports every interface and address change to fn until ctx
// ends, so that a lost carrier fails a LAN over at once instead of after -f
// intervals, and an interface that comes back, is recreated or readdressed
// is picked up without a restart. Subscription errors (an overrun socket,
// say) go to onErr and the watch goes on.
func WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	updates := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{ErrorCallback: report})
	if err != nil {
		return fmt.Errorf("failed to watch interfaces: %w", err)
	}
	err = netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: report})
	if err != nil {
		return fmt.Errorf("failed to watch addresses: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			onErr(err)
		case u, ok := <-addrs:
			if !ok {
				return errors.New("failed to watch addresses: the netlink subscription ended")
			}
			fn(LinkChange{Index: u.LinkIndex, Addr: true})
		case u, ok := <-updates:
			if !ok {
				return errors.New("failed to watch interfaces: the netlink subscription ended")
			}
			a := u.Attrs()
			fn(LinkChange{
				Index: a.Index,
				Name:  a.Name,
				Carrier: u.Header.Type != unix.RTM_DELLINK &&
					a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0,
			})
		}
	}
}
