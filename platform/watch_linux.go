//go:build linux

package platform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
)

// watchBuffer is the receive buffer of the netlink subscriptions, large
// enough for a burst of interface or route changes (containers starting,
// a thousand routes at once).
const watchBuffer = 1 << 20

// resubscribe runs subscribe until ctx ends. The netlink library ends a
// subscription on a receive error such as an overrun (ENOBUFS): the error
// goes to onErr and resubscribe subscribes again after 100 ms, doubling to
// 5 s while it keeps failing; a subscription that starts again says Lost,
// since changes may have been missed in between. It never ends the daemon.
// Errors that come once ctx has ended are the subscriptions closing, not
// news, and are dropped.
func resubscribe(ctx context.Context, onErr func(error), subscribe func(onErr func(error)) error) error {
	report := func(err error) {
		if ctx.Err() == nil {
			onErr(err)
		}
	}
	backoff := 100 * time.Millisecond
	for {
		err := subscribe(report)
		if ctx.Err() != nil {
			return nil
		}
		report(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watchLinks reports every interface and address change to fn until ctx
// ends, so that a lost carrier fails a LAN over at once instead of after -f
// intervals, and an interface that comes back, is recreated or readdressed
// is picked up without a restart.
func watchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	first := true
	return resubscribe(ctx, onErr, func(onErr func(error)) error {
		links := make(chan netlink.LinkUpdate, 64)
		addrs := make(chan netlink.AddrUpdate, 64)
		done := make(chan struct{})
		defer close(done)
		err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
			ErrorCallback: onErr, ReceiveBufferSize: watchBuffer, ReceiveBufferForceSize: true})
		if err != nil {
			return fmt.Errorf("failed to watch interfaces: %w", err)
		}
		err = netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{
			ErrorCallback: onErr, ReceiveBufferSize: watchBuffer, ReceiveBufferForceSize: true})
		if err != nil {
			return fmt.Errorf("failed to watch addresses: %w", err)
		}
		if !first {
			fn(LinkChange{Lost: true})
		}
		first = false
		for {
			select {
			case <-ctx.Done():
				return nil
			case u, ok := <-addrs:
				if !ok {
					return errors.New("the address subscription ended; subscribing again")
				}
				fn(LinkChange{Index: u.LinkIndex})
			case u, ok := <-links:
				if !ok {
					return errors.New("the interface subscription ended; subscribing again")
				}
				a := u.Attrs()
				fn(LinkChange{Index: a.Index, Name: a.Name})
			}
		}
	})
}
