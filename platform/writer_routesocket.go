//go:build unix

package platform

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// routeSocket is the kernel side of routeSocketWriter: route_bsd.go talks
// to a PF_ROUTE socket, the tests to a table in memory.
type routeSocket interface {
	// request sends one routing message. A refusal is the errno of the
	// write (EEXIST, ESRCH); for RTM_GET it returns the kernel's reply.
	request(msg []byte) ([]byte, error)
	// dump returns the IPv4 routing table as the NET_RT_DUMP sysctl does.
	dump() ([]byte, error)
	// ifName names an interface by index; "" when it is gone.
	ifName(index int) string
	// watch hands every routing message the kernel sends to fn until ctx
	// ends; lost says messages were dropped (the socket overflowed).
	watch(ctx context.Context, fn func(msg []byte), lost func(error)) error
}

// routeSocketWriter writes faild's host routes through a BSD routing
// socket: RTM_GET to look before it leaps, RTM_ADD and RTM_DELETE to
// change only routes that are marked RTF_PROTO1 and listed in its state
// file.
type routeSocketWriter struct {
	mu    sync.Mutex
	l     *rtLayout
	sock  routeSocket
	state *routeState
	seq   int32
}

var _ Writer = (*routeSocketWriter)(nil)

// newRouteSocketWriter loads the state file at path and drops from it
// every route the kernel no longer holds (a reboot empties the table but
// not /var/db), so that a later foreign route to the same destination is
// never mistaken for faild's.
func newRouteSocketWriter(l *rtLayout, sock routeSocket, path string) (*routeSocketWriter, error) {
	st, err := loadRouteState(path)
	if err != nil {
		return nil, err
	}
	w := &routeSocketWriter{l: l, sock: sock, state: st}
	if _, err := w.Routes(); err != nil {
		return nil, err
	}
	return w, nil
}

// Routes implements Writer: the host routes of the kernel's table, marked
// Ours where they carry the mark and the state file lists them with the
// same gateway. ARP entries and clones, which the kernel makes by itself
// as host routes, are nobody's and left out. Listed routes the kernel has
// lost are forgotten.
func (w *routeSocketWriter) Routes() ([]KernelRoute, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, err := w.sock.dump()
	if err != nil {
		return nil, fmt.Errorf("failed to list routes: %w", err)
	}
	msgs, err := w.l.messages(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to list routes: %w", err)
	}
	var out []KernelRoute
	seen := make(map[netip.Prefix]bool)
	for _, b := range msgs {
		m, err := w.l.parseRoute(b)
		if errors.Is(err, errBadVersion) {
			continue // a message format faild does not know cannot be its route
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list routes: %w", err)
		}
		r, ok := w.hostRoute(m)
		if !ok {
			continue
		}
		if r.Ours {
			seen[r.Dst] = true
		}
		out = append(out, r)
	}
	if err := w.state.keepOnly(seen); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b KernelRoute) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return out, nil
}

// hostRoute reads the kernel route m as a KernelRoute, if it is a host
// route someone set.
func (w *routeSocketWriter) hostRoute(m rtMsg) (KernelRoute, bool) {
	if !m.Host() || (m.Flags&w.l.kernelMade != 0 && m.Flags&rtfStatic == 0) {
		return KernelRoute{}, false
	}
	r := KernelRoute{Route: Route{Dst: netip.PrefixFrom(m.Dst, 32), Via: m.Gw, Index: m.Index, Dev: w.sock.ifName(m.Index)}}
	if mine, ok := w.ours(m); ok {
		r.Ours = true
		if r.Dev == "" {
			r.Dev = mine.Dev
		}
	}
	return r, true
}

// WatchRoutes implements Writer: RTM_ADD, RTM_CHANGE and RTM_DELETE of
// host routes, as every routing socket receives them.
func (w *routeSocketWriter) WatchRoutes(ctx context.Context, fn func(RouteChange), onErr func(error)) error {
	fn(RouteChange{Lost: true})
	return w.sock.watch(ctx, func(b []byte) {
		m, err := w.l.parseRoute(b)
		if err != nil || (m.Type != rtmAdd && m.Type != rtmChange && m.Type != rtmDelete) || m.Errno != 0 {
			return
		}
		w.mu.Lock()
		r, ok := w.hostRoute(m)
		w.mu.Unlock()
		if ok {
			fn(RouteChange{Route: r, Deleted: m.Type == rtmDelete})
		}
	}, func(err error) {
		onErr(err)
		fn(RouteChange{Lost: true})
	})
}

// Replace implements Writer: Add moves faild's own route already.
func (w *routeSocketWriter) Replace(r Route) error { return w.Add(r) }

// ours returns faild's record of the kernel route m when m is faild's: a
// host route with the mark, listed in the state file through the same
// gateway.
func (w *routeSocketWriter) ours(m rtMsg) (Route, bool) {
	if !m.Host() || m.Flags&rtfProto1 == 0 {
		return Route{}, false
	}
	r, ok := w.state.routes[netip.PrefixFrom(m.Dst, 32)]
	return r, ok && r.Via == m.Gw
}

// get asks the kernel for its route to dst. The kernel answers with the
// best match, which may be a network route that covers dst; found is
// false when it has no route at all.
func (w *routeSocketWriter) get(dst netip.Addr) (m rtMsg, found bool, err error) {
	w.seq++
	msg, err := w.l.marshalRoute(rtmGet, rtfUp|rtfHost, w.seq, dst, netip.Addr{})
	if err != nil {
		return rtMsg{}, false, err
	}
	reply, err := w.sock.request(msg)
	if errors.Is(err, syscall.ESRCH) {
		return rtMsg{}, false, nil
	}
	if err != nil {
		return rtMsg{}, false, fmt.Errorf("failed to look up the route to %s: %w", dst, err)
	}
	m, err = w.l.parseRoute(reply)
	if err != nil {
		return rtMsg{}, false, fmt.Errorf("failed to look up the route to %s: %w", dst, err)
	}
	return m, true, nil
}

// write sends RTM_ADD or RTM_DELETE for faild's route to dst via gw.
func (w *routeSocketWriter) write(typ uint8, dst, gw netip.Addr) error {
	w.seq++
	msg, err := w.l.marshalRoute(typ, faildRouteFlags, w.seq, dst, gw)
	if err != nil {
		return err
	}
	_, err = w.sock.request(msg)
	return err
}

// Add implements Writer. The kernel would install a host route in front of
// a foreign one in some cases (OpenBSD keeps routes of different
// priorities side by side), so faild looks first and refuses when any host
// route to the destination exists that is not its own.
func (w *routeSocketWriter) Add(r Route) error {
	if !r.Dst.Addr().Is4() || r.Dst.Bits() != 32 || !r.Via.Is4() {
		return fmt.Errorf("failed to add %v: only IPv4 host routes are supported on this OS", r)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	dst := r.Dst.Addr()
	m, found, err := w.get(dst)
	if err != nil {
		return fmt.Errorf("failed to add %v: %w", r, err)
	}
	if found && m.Host() && m.Dst == dst {
		if _, mine := w.ours(m); mine {
			if m.Gw == r.Via {
				return w.state.put(r) // already there
			}
			// A delete and an add rather than RTM_CHANGE: what RTM_CHANGE
			// does with the flags and with multipath routes differs
			// between the BSDs, and the gap is one system call long.
			if err := w.write(rtmDelete, dst, m.Gw); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("failed to replace the route to %s via %s: %w", dst, m.Gw, err)
			}
		} else if m.Flags&w.l.kernelMade == 0 || m.Flags&rtfStatic != 0 {
			return fmt.Errorf("failed to add %v: %w (flags %#x, via %s)", r, ErrForeign, m.Flags, m.Gw)
		}
		// Otherwise an ARP entry or a clone: not a route anyone set, and
		// RTM_ADD replaces it (OpenBSD, macOS).
	}
	// Listed before it exists: a crash between the two leaves a listed
	// route that the next start drops, never an unlisted one of faild's.
	if err := w.state.put(r); err != nil {
		return fmt.Errorf("failed to add %v: %w", r, err)
	}
	if err := w.write(rtmAdd, dst, r.Via); err != nil {
		if serr := w.state.remove(r.Dst); serr != nil {
			err = errors.Join(err, serr)
		}
		if errors.Is(err, syscall.EEXIST) {
			// A route appeared between the look and the add.
			return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
		}
		return fmt.Errorf("failed to add %v: %w", r, err)
	}
	return nil
}

// Delete implements Writer. It removes the route only if the kernel's
// route to r.Dst is still the marked one the state file lists; someone
// else's route there is left alone and faild forgets its own.
func (w *routeSocketWriter) Delete(r Route) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, listed := w.state.routes[r.Dst]; !listed {
		return nil
	}
	m, found, err := w.get(r.Dst.Addr())
	if err != nil {
		return fmt.Errorf("failed to delete %v: %w", r, err)
	}
	if found && m.Dst == r.Dst.Addr() {
		if mine, ok := w.ours(m); ok {
			if err := w.write(rtmDelete, m.Dst, mine.Via); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("failed to delete %v: %w", r, err)
			}
		}
	}
	if err := w.state.remove(r.Dst); err != nil {
		return fmt.Errorf("failed to delete %v: %w", r, err)
	}
	return nil
}

// routeState is the state file: the routes faild installed, one a line
// ("192.0.2.2/32 via 198.51.100.2 dev em1"), rewritten whole on every
// change.
type routeState struct {
	path   string
	routes map[netip.Prefix]Route
}

func loadRouteState(path string) (*routeState, error) {
	st := &routeState{path: path, routes: make(map[netip.Prefix]Route)}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the route state file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseStateLine(line)
		if err != nil {
			return nil, fmt.Errorf("failed to read the route state file %s:%d: %w (remove the file to start afresh; faild then leaves the routes it lists alone)", path, n, err)
		}
		st.routes[r.Dst] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the route state file: %w", err)
	}
	return st, nil
}

func parseStateLine(line string) (Route, error) {
	f := strings.Fields(line)
	if len(f) != 5 || f[1] != "via" || f[3] != "dev" {
		return Route{}, fmt.Errorf("want DST via GATEWAY dev IFACE, got %q", line)
	}
	dst, err := netip.ParsePrefix(f[0])
	if err != nil {
		return Route{}, err
	}
	via, err := netip.ParseAddr(f[2])
	if err != nil {
		return Route{}, err
	}
	return Route{Dst: dst, Via: via, Dev: f[4]}, nil
}

func (st *routeState) put(r Route) error {
	if old, ok := st.routes[r.Dst]; ok && old.Via == r.Via && old.Dev == r.Dev {
		return nil
	}
	st.routes[r.Dst] = r
	return st.save()
}

func (st *routeState) remove(dst netip.Prefix) error {
	if _, ok := st.routes[dst]; !ok {
		return nil
	}
	delete(st.routes, dst)
	return st.save()
}

// keepOnly forgets every route not in keep.
func (st *routeState) keepOnly(keep map[netip.Prefix]bool) error {
	n := len(st.routes)
	for dst := range st.routes {
		if !keep[dst] {
			delete(st.routes, dst)
		}
	}
	if len(st.routes) == n {
		return nil
	}
	return st.save()
}

// save writes the file to a temporary name and renames it over the old
// one, so that a crash leaves either the old list or the new one.
func (st *routeState) save() error {
	if err := os.MkdirAll(filepath.Dir(st.path), 0o700); err != nil {
		return fmt.Errorf("failed to write the route state file: %w", err)
	}
	var b strings.Builder
	b.WriteString("# Host routes faild installed (RTF_PROTO1). faild rewrites this file; see faild(8).\n")
	rs := make([]Route, 0, len(st.routes))
	for _, r := range st.routes {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	for _, r := range rs {
		dev := r.Dev
		if dev == "" {
			dev = "-"
		}
		b.WriteString(r.Dst.String() + " via " + r.Via.String() + " dev " + dev + "\n")
	}
	tmp := st.path + ".tmp." + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("failed to write the route state file: %w", err)
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, st.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to write the route state file: %w", err)
	}
	return nil
}
