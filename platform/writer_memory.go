package platform

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Memory is a routing table in memory that behaves like the kernel's main
// table as a Writer sees it, for tests: faild's routes and others' side by
// side, keyed as on Linux by destination and metric (faild's have metric
// 0), and every change reported to the watchers.
type Memory struct {
	mu       sync.Mutex
	routes   []KernelRoute
	watchers map[int]func(RouteChange)
	next     int
	// Fail, when set, is returned by every call; tests use it to see how
	// callers handle a kernel that refuses.
	Fail error
	// overridden counts the routes of others that Replace replaced: faild
	// must never cause one.
	overridden int
	version    int
}

// Overridden counts the routes of others that Replace replaced.
func (m *Memory) Overridden() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overridden
}

var _ Writer = (*Memory)(nil)

// NewMemory returns an empty routing table.
func NewMemory() *Memory { return &Memory{watchers: make(map[int]func(RouteChange))} }

func (m *Memory) find(dst netip.Prefix, metric int) int {
	return slices.IndexFunc(m.routes, func(r KernelRoute) bool { return r.Dst == dst && r.Metric == metric })
}

// notify counts a change and tells every watcher of it, with m.mu released.
func (m *Memory) notify(cs ...RouteChange) {
	m.mu.Lock()
	m.version++
	ws := make([]func(RouteChange), 0, len(m.watchers))
	for _, w := range m.watchers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		for _, c := range cs {
			w(c)
		}
	}
}

// AddForeign adds a route someone other than faild owns, as an
// administrator's `ip route add` would: refused when a route with the same
// key is there.
func (m *Memory) AddForeign(r KernelRoute) error {
	r.Ours = false
	m.mu.Lock()
	if m.find(r.Dst, r.Metric) >= 0 {
		m.mu.Unlock()
		return fmt.Errorf("route to %s metric %d exists", r.Dst, r.Metric)
	}
	m.routes = append(m.routes, r)
	m.mu.Unlock()
	m.notify(RouteChange{Route: r})
	return nil
}

// DeleteForeign deletes the route to dst with metric, whoever owns it, as
// an administrator's `ip route del` would; false if there is none.
func (m *Memory) DeleteForeign(dst netip.Prefix, metric int) bool {
	m.mu.Lock()
	i := m.find(dst, metric)
	if i < 0 {
		m.mu.Unlock()
		return false
	}
	r := m.routes[i]
	m.routes = slices.Delete(m.routes, i, i+1)
	m.mu.Unlock()
	m.notify(RouteChange{Route: r, Deleted: true})
	return true
}

// Routes implements Writer, sorted by destination and metric.
func (m *Memory) Routes() ([]KernelRoute, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	out := slices.Clone(m.routes)
	slices.SortFunc(out, func(a, b KernelRoute) int {
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c
		}
		return a.Metric - b.Metric
	})
	return out, nil
}

// AppendRoutes appends every route to dst, in no order.
func (m *Memory) AppendRoutes(dst []KernelRoute) []KernelRoute {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append(dst, m.routes...)
}

// Version counts the changes to the table so far.
func (m *Memory) Version() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version
}

// Ours lists faild's routes, sorted by destination.
func (m *Memory) Ours() []Route {
	rs, _ := m.Routes()
	var out []Route
	for _, r := range rs {
		if r.Ours {
			out = append(out, r.Route)
		}
	}
	return out
}

// Add implements Writer: refused with ErrForeign, as by the kernel's
// EEXIST, when any route holds the key, faild's own included.
func (m *Memory) Add(r Route) error {
	m.mu.Lock()
	if m.Fail != nil {
		m.mu.Unlock()
		return m.Fail
	}
	if m.find(r.Dst, 0) >= 0 {
		m.mu.Unlock()
		return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
	}
	kr := KernelRoute{Route: r, Ours: true, Proto: Protocol}
	m.routes = append(m.routes, kr)
	m.mu.Unlock()
	m.notify(RouteChange{Route: kr})
	return nil
}

// Replace implements Writer as the kernel does: it replaces whatever route
// holds the key, and creates one if none does.
func (m *Memory) Replace(r Route) error {
	m.mu.Lock()
	if m.Fail != nil {
		m.mu.Unlock()
		return m.Fail
	}
	kr := KernelRoute{Route: r, Ours: true, Proto: Protocol}
	if i := m.find(r.Dst, 0); i >= 0 {
		if !m.routes[i].Ours {
			m.overridden++
		}
		m.routes[i] = kr
	} else {
		m.routes = append(m.routes, kr)
	}
	m.mu.Unlock()
	m.notify(RouteChange{Route: kr})
	return nil
}

// Delete implements Writer: only faild's own route goes.
func (m *Memory) Delete(r Route) error {
	m.mu.Lock()
	if m.Fail != nil {
		m.mu.Unlock()
		return m.Fail
	}
	i := m.find(r.Dst, 0)
	if i < 0 || !m.routes[i].Ours {
		m.mu.Unlock()
		return nil
	}
	kr := m.routes[i]
	m.routes = slices.Delete(m.routes, i, i+1)
	m.mu.Unlock()
	m.notify(RouteChange{Route: kr, Deleted: true})
	return nil
}

// Subscribe calls fn with every change from now on, synchronously on the
// goroutine that made it, until cancel is called.
func (m *Memory) Subscribe(fn func(RouteChange)) (cancel func()) {
	m.mu.Lock()
	id := m.next
	m.next++
	m.watchers[id] = fn
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.watchers, id)
		m.mu.Unlock()
	}
}

// WatchRoutes implements Writer. Like the kernel's, its changes arrive on
// a goroutine of their own, after the call that made them returned.
func (m *Memory) WatchRoutes(ctx context.Context, fn func(RouteChange), onErr func(error)) error {
	var (
		mu    sync.Mutex
		queue []RouteChange
		wake  = make(chan struct{}, 1)
	)
	cancel := m.Subscribe(func(c RouteChange) {
		mu.Lock()
		queue = append(queue, c)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer cancel()
	fn(RouteChange{Lost: true})
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		mu.Lock()
		cs := queue
		queue = nil
		mu.Unlock()
		for _, c := range cs {
			fn(c)
		}
	}
}
