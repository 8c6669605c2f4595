//go:build linux

package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkWriter writes routes into the main table through rtnetlink.
type netlinkWriter struct {
	h *netlink.Handle
}

var _ Writer = (*netlinkWriter)(nil)

// NewWriter returns the Writer for this operating system.
func NewWriter() (Writer, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("failed to open rtnetlink: %w", err)
	}
	return &netlinkWriter{h: h}, nil
}

// kernelRoute is the one place that builds the route faild installs.
func kernelRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:       prefixToIPNet(r.Dst),
		Gw:        r.Via.AsSlice(),
		LinkIndex: r.Index,
		Protocol:  Protocol,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
		Type:      unix.RTN_UNICAST,
	}
}

// list dumps the main table of a family, retrying a dump the kernel
// interrupted because the table changed under it.
func (w *netlinkWriter) list(family int) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	var err error
	for range 3 {
		var rs []netlink.Route
		if rs, err = w.h.RouteListFiltered(family, filter, netlink.RT_FILTER_TABLE); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return rs, err
		}
	}
	return nil, err
}

// Routes implements Writer. The kernel cannot filter a dump by
// destination, so one dump of each family reads the whole main table.
func (w *netlinkWriter) Routes() ([]KernelRoute, error) {
	var out []KernelRoute
	names := make(map[int]string)
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := w.list(family)
		if err != nil {
			return nil, fmt.Errorf("failed to list routes: %w", err)
		}
		for _, kr := range rs {
			if r, ok := hostRoute(&kr); ok {
				r.Dev = w.devName(r.Index, names)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// devName names an interface, remembering the answer in names.
func (w *netlinkWriter) devName(index int, names map[int]string) string {
	if n, ok := names[index]; ok {
		return n
	}
	n := linkName(index)
	names[index] = n
	return n
}

// linkName names an interface by index. It asks on a netlink socket of its
// own (the package's functions open one a call), so that the route watch's
// goroutine never shares the writer's handle, which the loop uses.
func linkName(index int) string {
	if index == 0 {
		return ""
	}
	if l, err := netlink.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("if%d", index)
}

// hostRoute reads a route of the main table to one address, of any type
// and protocol, as a KernelRoute.
func hostRoute(kr *netlink.Route) (KernelRoute, bool) {
	if kr.Dst == nil || kr.Table != unix.RT_TABLE_MAIN {
		return KernelRoute{}, false
	}
	ones, bits := kr.Dst.Mask.Size()
	dst, ok := netip.AddrFromSlice(kr.Dst.IP)
	if !ok || ones != bits {
		return KernelRoute{}, false
	}
	dst = dst.Unmap()
	r := KernelRoute{Route: Route{Dst: netip.PrefixFrom(dst, dst.BitLen()), Index: kr.LinkIndex},
		Ours: kr.Protocol == Protocol, Proto: int(kr.Protocol), Metric: kr.Priority}
	gw := kr.Gw
	if len(gw) == 0 && len(kr.MultiPath) > 0 {
		gw, r.Index = kr.MultiPath[0].Gw, kr.MultiPath[0].LinkIndex
	}
	if a, ok := netip.AddrFromSlice(gw); ok {
		r.Via = a.Unmap()
	}
	return r, true
}

// Add implements Writer: an exclusive create, which the kernel refuses
// with EEXIST when a route with the same key (destination, metric, table)
// is there. A foreign route with another metric is the caller's to see
// (Routes, WatchRoutes): the kernel would take faild's beside it.
func (w *netlinkWriter) Add(r Route) error {
	err := w.h.RouteAdd(kernelRoute(r))
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
	}
	if err != nil {
		return fmt.Errorf("failed to add %v: %w", r, err)
	}
	return nil
}

// Replace implements Writer. RTM_NEWROUTE with NLM_F_REPLACE replaces the
// route with the same key, which is faild's own where the caller saw it:
// a foreign route cannot hold the same key beside it.
func (w *netlinkWriter) Replace(r Route) error {
	if err := w.h.RouteReplace(kernelRoute(r)); err != nil {
		return fmt.Errorf("failed to replace the route to %s with %v: %w", r.Dst, r, err)
	}
	return nil
}

// Delete implements Writer. The kernel matches the protocol on delete, so
// this never removes a route faild did not create.
func (w *netlinkWriter) Delete(r Route) error {
	err := w.h.RouteDel(kernelRoute(r))
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("failed to delete %v: %w", r, err)
	}
	return nil
}

// WatchRoutes implements Writer with an rtnetlink route subscription.
func (w *netlinkWriter) WatchRoutes(ctx context.Context, fn func(RouteChange), onErr func(error)) error {
	return resubscribe(ctx, onErr, func(onErr func(error)) error {
		ch := make(chan netlink.RouteUpdate, 256)
		done := make(chan struct{})
		defer close(done)
		err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{
			ErrorCallback: onErr, ReceiveBufferSize: watchBuffer, ReceiveBufferForceSize: true})
		if err != nil {
			return fmt.Errorf("failed to watch routes: %w", err)
		}
		fn(RouteChange{Lost: true})
		for {
			select {
			case <-ctx.Done():
				return nil
			case u, ok := <-ch:
				if !ok {
					return errors.New("the route subscription ended; subscribing again")
				}
				if r, ok := hostRoute(&u.Route); ok {
					r.Dev = linkName(r.Index)
					fn(RouteChange{Route: r, Deleted: u.Type == unix.RTM_DELROUTE})
				}
			}
		}
	})
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
