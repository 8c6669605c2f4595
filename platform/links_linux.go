//go:build linux

package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
)

// watchBuffer is the receive buffer of the netlink subscriptions, large
// enough for a burst of interface changes (containers starting, say).
const watchBuffer = 1 << 20

// WatchLinks reports every interface and address change to fn until ctx
// ends, so that a lost carrier fails a LAN over at once instead of after -f
// intervals, and an interface that comes back, is recreated or readdressed
// is picked up without a restart.
//
// The netlink library ends a subscription on a receive error such as an
// overrun (ENOBUFS). The watch then reports the error to onErr, subscribes
// again (after 100 ms, doubling to 5 s while it keeps failing) and sends a
// Lost change, since changes may have been missed in between. It never
// ends the daemon.
func WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	backoff := 100 * time.Millisecond
	for first := true; ; first = false {
		err := watchOnce(ctx, fn, onErr, !first)
		if ctx.Err() != nil {
			return nil
		}
		onErr(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watchOnce runs one pair of subscriptions until one of them ends or ctx
// does; with lost, it first tells fn that changes may have been missed.
func watchOnce(ctx context.Context, fn func(LinkChange), onErr func(error), lost bool) error {
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
	if lost {
		fn(LinkChange{Lost: true})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-addrs:
			if !ok {
				return fmt.Errorf("the address subscription ended; subscribing again")
			}
			fn(LinkChange{Index: u.LinkIndex, Addr: true})
		case u, ok := <-links:
			if !ok {
				return fmt.Errorf("the interface subscription ended; subscribing again")
			}
			a := u.Attrs()
			fn(LinkChange{Index: a.Index, Name: a.Name})
		}
	}
}
