package lab

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RouteChange is one faild route added to or removed from a node's main
// table, with the time the netlink notification arrived.
type RouteChange struct {
	At    time.Time
	Add   bool
	Route Route
}

// RouteWatch follows faild's routes in one node through a netlink route
// subscription. It learns of a change the moment the kernel makes it, so a
// test times failovers from the kernel's side without polling "ip route"
// (whose subprocesses load the machine and add their own delay).
type RouteWatch struct {
	node *Node
	done chan struct{}
	h    *netlink.Handle // in the node's namespace, for interface names

	mu      sync.Mutex
	changes []RouteChange
	others  []RouteChange // the host routes of the main table that are not faild's
	names   map[int]string
	err     error
}

// WatchRoutes subscribes to the route changes in the node's namespace;
// Close ends the subscription.
func (n *Node) WatchRoutes() (*RouteWatch, error) {
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		return nil, fmt.Errorf("failed to open namespace %s: %w", n.NS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("failed to open netlink in %s: %w", n.NS, err)
	}
	w := &RouteWatch{node: n, done: make(chan struct{}), h: h, names: map[int]string{}}
	up := make(chan netlink.RouteUpdate, 1024)
	err = netlink.RouteSubscribeWithOptions(up, w.done, netlink.RouteSubscribeOptions{Namespace: &ns,
		ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case <-w.done: // closing ends the receive with an error
			default:
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("failed to subscribe to routes in %s: %w", n.NS, err)
	}
	go func() {
		defer h.Close() // once the subscription has ended and closed up
		for u := range up {
			at := time.Now()
			if u.Route.Dst == nil || u.Route.Table != syscall.RT_TABLE_MAIN {
				continue
			}
			ones, bits := u.Route.Dst.Mask.Size()
			if u.Route.Protocol != protoFaildNum && ones != bits {
				continue
			}
			w.mu.Lock()
			c := RouteChange{At: at, Add: u.Type == syscall.RTM_NEWROUTE, Route: w.route(u.Route)}
			if u.Route.Protocol == protoFaildNum {
				w.changes = append(w.changes, c)
			} else {
				w.others = append(w.others, c)
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// protoFaildNum is ProtoFaild as netlink reports it.
const protoFaildNum = 157

// route converts a netlink route to the form Node.Routes reports. w.mu is
// held.
func (w *RouteWatch) route(r netlink.Route) Route {
	out := Route{Dst: r.Dst.String()}
	if ones, bits := r.Dst.Mask.Size(); ones == bits {
		out.Dst = r.Dst.IP.String() // a host route, shown as ip does
	}
	if r.Gw != nil {
		out.Via = r.Gw.String()
	}
	name, ok := w.names[r.LinkIndex]
	if !ok {
		// Interfaces are recreated under a running faild: look the
		// index up when it is new, and keep it.
		if l, err := w.h.LinkByIndex(r.LinkIndex); err == nil {
			name = l.Attrs().Name
			w.names[r.LinkIndex] = name
		} else {
			name = fmt.Sprintf("if%d", r.LinkIndex)
		}
	}
	out.Dev = name
	return out
}

// Close ends the subscription.
func (w *RouteWatch) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

// Err is the error that ended the subscription early, if any.
func (w *RouteWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Changes returns every change seen at or after since.
func (w *RouteWatch) Changes(since time.Time) []RouteChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []RouteChange
	for _, c := range w.changes {
		if !c.At.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// Foreign returns when a host route to dst that is not faild's was first
// added (add) or removed at or after since, and whether one was.
func (w *RouteWatch) Foreign(since time.Time, add bool, dst string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.others {
		if !c.At.Before(since) && c.Add == add && c.Route.Dst == dst {
			return c.At, true
		}
	}
	return time.Time{}, false
}

// First returns when the first change at or after since added (add) or
// removed r, and whether there was one.
func (w *RouteWatch) First(since time.Time, add bool, r Route) (time.Time, bool) {
	for _, c := range w.Changes(since) {
		if c.Add == add && c.Route == r {
			return c.At, true
		}
	}
	return time.Time{}, false
}

// Added returns when every route of want had been added at or after since
// (the time of the last of them), and whether all were.
func (w *RouteWatch) Added(since time.Time, want ...Route) (time.Time, bool) {
	return w.all(since, true, want)
}

// Removed is Added for removals.
func (w *RouteWatch) Removed(since time.Time, want ...Route) (time.Time, bool) {
	return w.all(since, false, want)
}

func (w *RouteWatch) all(since time.Time, add bool, want []Route) (time.Time, bool) {
	var last time.Time
	for _, r := range want {
		at, ok := w.First(since, add, r)
		if !ok {
			return time.Time{}, false
		}
		if at.After(last) {
			last = at
		}
	}
	return last, true
}
