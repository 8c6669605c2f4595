//go:build unix

package platform

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeRouteSocket is a kernel routing table in memory that speaks the
// routing-message bytes of one layout, the way the BSD kernels answer
// route(8): RTM_GET returns the longest match or ESRCH, RTM_ADD refuses an
// existing destination with EEXIST unless the entry there is kernel-made,
// RTM_DELETE wants the gateway to match.
type fakeRouteSocket struct {
	t      *testing.T
	l      *rtLayout
	routes map[netip.Prefix]fakeRoute
	// failAdd, when set, is what the next RTM_ADD returns.
	failAdd error
	events  chan []byte // what watch hands on
	sent    []uint8     // message types, in order
}

type fakeRoute struct {
	flags uint32
	gw    netip.Addr
	index int
}

// The LANs of the fake: LAN A 192.0.2.0/24 on em0 (1), LAN B
// 198.51.100.0/24 on em1 (2).
var fakeLANs = map[netip.Prefix]int{
	netip.MustParsePrefix("192.0.2.0/24"):    1,
	netip.MustParsePrefix("198.51.100.0/24"): 2,
}

func newFakeRouteSocket(t *testing.T, l *rtLayout) *fakeRouteSocket {
	k := &fakeRouteSocket{t: t, l: l, routes: make(map[netip.Prefix]fakeRoute), events: make(chan []byte)}
	for p, i := range fakeLANs {
		k.routes[p] = fakeRoute{flags: rtfUp, index: i}
	}
	return k
}

func (k *fakeRouteSocket) lookup(a netip.Addr) (netip.Prefix, bool) {
	best, found := netip.Prefix{}, false
	for p := range k.routes {
		if p.Contains(a) && (!found || p.Bits() > best.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

func (k *fakeRouteSocket) reply(p netip.Prefix, r fakeRoute, seq int32) []byte {
	b, err := k.l.marshalRoute(rtmGet, r.flags, seq, p.Addr(), r.gw)
	if err != nil {
		k.t.Fatal(err)
	}
	k.l.order.PutUint16(b[k.l.offIndex:], uint16(r.index))
	return b
}

func (k *fakeRouteSocket) request(msg []byte) ([]byte, error) {
	m, err := k.l.parseRoute(msg)
	if err != nil {
		k.t.Fatalf("the writer sent a bad message: %v", err)
	}
	k.sent = append(k.sent, m.Type)
	host := netip.PrefixFrom(m.Dst, 32)
	switch m.Type {
	case rtmGet:
		p, ok := k.lookup(m.Dst)
		if !ok {
			return nil, syscall.ESRCH
		}
		return k.reply(p, k.routes[p], m.Seq), nil
	case rtmAdd:
		if err := k.failAdd; err != nil {
			k.failAdd = nil
			return nil, err
		}
		if old, ok := k.routes[host]; ok && old.flags&k.l.kernelMade == 0 {
			return nil, syscall.EEXIST
		}
		via, _ := k.lookup(m.Gw)
		k.routes[host] = fakeRoute{flags: m.Flags | 0x40, gw: m.Gw, index: k.routes[via].index}
		return nil, nil
	case rtmDelete:
		if old, ok := k.routes[host]; !ok || old.gw != m.Gw {
			return nil, syscall.ESRCH
		}
		delete(k.routes, host)
		return nil, nil
	}
	k.t.Fatalf("unexpected message type %d", m.Type)
	return nil, nil
}

func (k *fakeRouteSocket) dump() ([]byte, error) {
	var b []byte
	for p, r := range k.routes {
		if p.Bits() == 32 { // a connected route's AF_LINK gateway is beyond marshalRoute
			b = append(b, k.reply(p, r, 0)...)
		}
	}
	return b, nil
}

func (k *fakeRouteSocket) ifName(i int) string { return map[int]string{1: "em0", 2: "em1"}[i] }

// watch feeds the messages sent on k.events; a nil message is an overflow.
func (k *fakeRouteSocket) watch(ctx context.Context, fn func([]byte), lost func(error)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-k.events:
			if b == nil {
				lost(syscall.ENOBUFS)
				continue
			}
			fn(b)
		}
	}
}

var (
	peerA  = netip.MustParsePrefix("192.0.2.2/32")
	viaB   = netip.MustParseAddr("198.51.100.2")
	viaB3  = netip.MustParseAddr("198.51.100.3")
	routeB = Route{Dst: peerA, Via: viaB, Dev: "em1", Index: 2}
)

func newTestWriter(t *testing.T, k *fakeRouteSocket, path string) *routeSocketWriter {
	t.Helper()
	w, err := newRouteSocketWriter(k.l, k, path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// installed is faild's routes among the writer's Routes.
func installed(t *testing.T, w *routeSocketWriter) []Route {
	t.Helper()
	rs, err := w.Routes()
	if err != nil {
		t.Fatal(err)
	}
	var ours []Route
	for _, r := range rs {
		if r.Ours {
			ours = append(ours, r.Route)
		}
	}
	return ours
}

func TestRouteSocketWriterLifecycle(t *testing.T) {
	for _, l := range []*rtLayout{&freebsdLayout, &openbsdLayout, &netbsdLayout, &darwinLayout, &dragonflyLayout} {
		t.Run(l.name, func(t *testing.T) {
			k := newFakeRouteSocket(t, l)
			path := filepath.Join(t.TempDir(), "db", "routes")
			w := newTestWriter(t, k, path)
			if err := w.Add(routeB); err != nil {
				t.Fatal(err)
			}
			if got := k.routes[peerA]; got.flags&faildRouteFlags != faildRouteFlags || got.gw != viaB {
				t.Fatalf("kernel route %+v, want flags %#x via %s", got, faildRouteFlags, viaB)
			}
			if rs := installed(t, w); len(rs) != 1 || rs[0] != routeB {
				t.Fatalf("Installed = %v, want [%v]", rs, routeB)
			}
			// Adding the same route again changes nothing.
			k.sent = nil
			if err := w.Add(routeB); err != nil || len(k.sent) != 1 {
				t.Fatalf("second Add: %v, sent %v, want one RTM_GET", err, k.sent)
			}
			// Another gateway replaces faild's own route.
			moved := Route{Dst: peerA, Via: viaB3, Dev: "em1", Index: 2}
			if err := w.Add(moved); err != nil {
				t.Fatal(err)
			}
			if rs := installed(t, w); len(rs) != 1 || rs[0] != moved {
				t.Fatalf("after replace: Installed = %v, want [%v]", rs, moved)
			}
			b, _ := os.ReadFile(path)
			if !strings.Contains(string(b), "192.0.2.2/32 via 198.51.100.3 dev em1\n") {
				t.Errorf("state file:\n%s", b)
			}
			// A new run adopts what the last one left.
			w2 := newTestWriter(t, k, path)
			if rs := installed(t, w2); len(rs) != 1 || rs[0] != moved {
				t.Fatalf("after restart: Installed = %v", rs)
			}
			if err := w2.Delete(moved); err != nil {
				t.Fatal(err)
			}
			if _, ok := k.routes[peerA]; ok {
				t.Error("Delete left the route in the kernel")
			}
			if err := w2.Delete(moved); err != nil {
				t.Errorf("deleting a route that is gone: %v", err)
			}
			if rs := installed(t, w2); len(rs) != 0 {
				t.Errorf("after Delete: Installed = %v", rs)
			}
		})
	}
}

func TestRouteSocketWriterForeign(t *testing.T) {
	tests := []struct {
		name    string
		l       *rtLayout
		kernel  fakeRoute
		foreign bool
	}{
		{"static route", &freebsdLayout, fakeRoute{flags: rtfUp | rtfGateway | rtfHost | rtfStatic, gw: viaB3, index: 2}, true},
		// Another daemon's route with the same flag: marked, but not in
		// faild's state file.
		{"someone else's RTF_PROTO1", &freebsdLayout, fakeRoute{flags: faildRouteFlags, gw: viaB, index: 2}, true},
		{"host route without a gateway", &darwinLayout, fakeRoute{flags: rtfUp | rtfHost | rtfStatic, index: 1}, true},
		// ARP entries are cloned host routes on OpenBSD and macOS; the
		// kernel replaces them on RTM_ADD.
		{"openbsd ARP entry", &openbsdLayout, fakeRoute{flags: rtfUp | rtfHost | 0x400 | 0x10000, index: 1}, false},
		{"darwin ARP entry", &darwinLayout, fakeRoute{flags: rtfUp | rtfHost | 0x400 | 0x20000, index: 1}, false},
		// Flags FreeBSD does not give kernel-made routes count as foreign.
		{"freebsd route with 0x400", &freebsdLayout, fakeRoute{flags: rtfUp | rtfHost | 0x400, index: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeRouteSocket(t, tt.l)
			k.routes[peerA] = tt.kernel
			w := newTestWriter(t, k, filepath.Join(t.TempDir(), "routes"))
			err := w.Add(routeB)
			if tt.foreign {
				if !errors.Is(err, ErrForeign) {
					t.Fatalf("Add = %v, want ErrForeign", err)
				}
				if k.routes[peerA] != tt.kernel {
					t.Errorf("the foreign route changed: %+v", k.routes[peerA])
				}
				if rs := installed(t, w); len(rs) != 0 {
					t.Errorf("Installed = %v, want none", rs)
				}
				if rs, _ := w.Routes(); len(rs) != 1 || rs[0].Ours || rs[0].Dst != peerA {
					t.Errorf("Routes = %v, want the foreign route alone", rs)
				}
				if err := w.Delete(routeB); err != nil || k.routes[peerA] != tt.kernel {
					t.Errorf("Delete = %v and left %+v", err, k.routes[peerA])
				}
				return
			}
			if err != nil {
				t.Fatalf("Add = %v", err)
			}
			if rs := installed(t, w); len(rs) != 1 {
				t.Errorf("Installed = %v, want one", rs)
			}
		})
	}
	// An ARP entry is nobody's route: Routes leaves it out.
	k := newFakeRouteSocket(t, &openbsdLayout)
	k.routes[peerA] = fakeRoute{flags: rtfUp | rtfHost | 0x400 | 0x10000, index: 1}
	if rs, _ := newTestWriter(t, k, filepath.Join(t.TempDir(), "routes")).Routes(); len(rs) != 0 {
		t.Errorf("Routes = %v with only an ARP entry, want none", rs)
	}
}

// TestRouteSocketWriterWatch: the routing messages of host routes become
// changes, faild's own told apart by the mark and the state file; an
// overflow says changes were lost.
func TestRouteSocketWriterWatch(t *testing.T) {
	k := newFakeRouteSocket(t, &freebsdLayout)
	w := newTestWriter(t, k, filepath.Join(t.TempDir(), "routes"))
	if err := w.Add(routeB); err != nil {
		t.Fatal(err)
	}
	msg := func(typ uint8, flags uint32, dst, gw string) []byte {
		b, err := k.l.marshalRoute(typ, flags, 1, netip.MustParseAddr(dst), netip.MustParseAddr(gw))
		if err != nil {
			t.Fatal(err)
		}
		k.l.order.PutUint16(b[k.l.offIndex:], 2)
		return b
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan RouteChange, 10)
	done := make(chan error)
	go func() {
		done <- w.WatchRoutes(ctx, func(c RouteChange) { changes <- c }, func(error) {})
	}()
	next := func() RouteChange {
		select {
		case c := <-changes:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no change")
		}
		return RouteChange{}
	}
	if c := next(); !c.Lost {
		t.Fatalf("first change %+v, want Lost", c)
	}
	k.events <- msg(rtmAdd, rtfUp|rtfGateway|rtfHost|rtfStatic, "192.0.2.3", "198.51.100.3")
	if c := next(); c.Lost || c.Deleted || c.Route.Ours || c.Route.Dst != netip.MustParsePrefix("192.0.2.3/32") || c.Route.Via != viaB3 || c.Route.Dev != "em1" {
		t.Errorf("foreign add: %+v", c)
	}
	k.events <- msg(rtmDelete, faildRouteFlags, "192.0.2.2", "198.51.100.2")
	if c := next(); !c.Deleted || !c.Route.Ours || c.Route.Dst != peerA {
		t.Errorf("faild's route deleted: %+v", c)
	}
	// faild's route on an interface the socket cannot name: the state
	// file's name for it.
	unnamed := msg(rtmAdd, faildRouteFlags, "192.0.2.2", "198.51.100.2")
	k.l.order.PutUint16(unnamed[k.l.offIndex:], 9)
	k.events <- unnamed
	if c := next(); c.Deleted || !c.Route.Ours || c.Route.Dev != "em1" || c.Route.Index != 9 {
		t.Errorf("faild's route on interface 9: %+v, want dev em1 from the state file", c)
	}
	k.events <- msg(rtmAdd, rtfUp|rtfGateway, "192.0.2.0", "198.51.100.3") // a network route, not a host route
	k.events <- msg(rtmGet, rtfUp|rtfGateway|rtfHost|rtfStatic, "192.0.2.3", "198.51.100.3")
	k.events <- nil
	if c := next(); !c.Lost {
		t.Errorf("after a network route, an RTM_GET reply and an overflow: %+v, want Lost only", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchRoutes = %v", err)
	}
}

// A foreign route that appears between RTM_GET and RTM_ADD makes the add
// fail with EEXIST: faild reports it as foreign and does not list it.
func TestRouteSocketWriterAddRace(t *testing.T) {
	k := newFakeRouteSocket(t, &freebsdLayout)
	w := newTestWriter(t, k, filepath.Join(t.TempDir(), "routes"))
	k.failAdd = syscall.EEXIST
	if err := w.Add(routeB); !errors.Is(err, ErrForeign) {
		t.Fatalf("Add = %v, want ErrForeign", err)
	}
	if len(w.state.routes) != 0 {
		t.Errorf("state lists %v after a refused add", w.state.routes)
	}
	k.failAdd = syscall.ENETUNREACH
	if err := w.Add(routeB); err == nil || errors.Is(err, ErrForeign) || len(w.state.routes) != 0 {
		t.Errorf("Add = %v, state %v", err, w.state.routes)
	}
}

// A listed route the kernel lost (a reboot, route flush) is forgotten at
// start; a foreign route there later is not taken for faild's.
func TestRouteSocketWriterStateReconcile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes")
	os.WriteFile(path, []byte("# comment\n192.0.2.2/32 via 198.51.100.2 dev em1\n192.0.2.9/32 via 198.51.100.9 dev em1\n"), 0o600)
	k := newFakeRouteSocket(t, &freebsdLayout)
	k.routes[peerA] = fakeRoute{flags: faildRouteFlags, gw: viaB, index: 2}
	w := newTestWriter(t, k, path)
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "192.0.2.9") || !strings.Contains(string(b), "192.0.2.2/32 via 198.51.100.2 dev em1\n") {
		t.Errorf("state file after the start:\n%s\nwant the lost route gone, the other kept", b)
	}
	if rs := installed(t, w); len(rs) != 1 || rs[0] != routeB {
		t.Fatalf("Installed = %v", rs)
	}
	// The interface of a listed route is renamed: the file follows.
	renamed := routeB
	renamed.Dev = "em9"
	if err := w.Add(renamed); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "192.0.2.2/32 via 198.51.100.2 dev em9\n") {
		t.Errorf("state file after the route's interface was renamed:\n%s", b)
	}

	os.WriteFile(path, []byte("# comment\n192.0.2.9/32 via 198.51.100.9 dev em1\n192.0.2.2/32 by 198.51.100.2\n"), 0o600)
	if _, err := newRouteSocketWriter(k.l, k, path); err == nil || !strings.Contains(err.Error(), path+":3") {
		t.Errorf("bad state file: err %v, want it to name %s:3", err, path)
	}
}

func TestRouteSocketWriterIPv4Only(t *testing.T) {
	k := newFakeRouteSocket(t, &freebsdLayout)
	w := newTestWriter(t, k, filepath.Join(t.TempDir(), "routes"))
	r := Route{Dst: netip.MustParsePrefix("2001:db8:a::2/128"), Via: netip.MustParseAddr("2001:db8:b::2")}
	if err := w.Add(r); err == nil {
		t.Error("Add accepted an IPv6 route")
	}
}
