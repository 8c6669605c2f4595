package platform

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestMemory holds the in-memory table to the kernel's behaviour that the
// simulated cluster relies on: routes keyed by destination and metric,
// Add refused (ErrForeign) where any route holds the key, Replace taking
// whatever holds it (and counting a foreign one it took), Delete touching
// only faild's own, and Routes sorted by destination, then metric.
func TestMemory(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	m := NewMemory()
	r2 := Route{Dst: p("192.0.2.2/32"), Via: a("198.51.100.2"), Dev: "eth1", Index: 3}
	r3 := Route{Dst: p("192.0.2.3/32"), Via: a("198.51.100.3"), Dev: "eth1", Index: 3}
	admin := KernelRoute{Route: Route{Dst: p("192.0.2.3/32"), Via: a("198.51.100.9"), Dev: "eth1", Index: 3}, Proto: 4, Ours: true}

	if err := m.Add(r2); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := m.Add(r2); !errors.Is(err, ErrForeign) {
		t.Errorf("Add over faild's own route: %v, want ErrForeign as the kernel's EEXIST", err)
	}
	if err := m.AddForeign(admin); err != nil {
		t.Fatalf("AddForeign: %v", err)
	}
	if err := m.AddForeign(admin); err == nil {
		t.Error("AddForeign took a second route with the same key")
	}
	if err := m.Add(r3); !errors.Is(err, ErrForeign) {
		t.Errorf("Add over an administrator's route: %v, want ErrForeign", err)
	}
	if err := m.Delete(r3); err != nil || len(m.AppendRoutes(nil)) != 2 {
		t.Errorf("Delete of a foreign route's destination: %v, %d routes left; want it kept", err, len(m.AppendRoutes(nil)))
	}
	high := KernelRoute{Route: Route{Dst: p("192.0.2.2/32"), Dev: "eth0", Index: 2}, Proto: 3, Metric: 100}
	if err := m.AddForeign(high); err != nil {
		t.Errorf("AddForeign beside faild's route with another metric: %v", err)
	}
	v6 := Route{Dst: p("2001:db8:a::2/128"), Via: a("2001:db8:b::2"), Dev: "eth1", Index: 3}
	if err := m.Add(v6); err != nil {
		t.Fatal(err)
	}
	rs, err := m.Routes()
	want := []KernelRoute{
		{Route: r2, Ours: true, Proto: Protocol},
		high,
		{Route: admin.Route, Proto: 4}, // AddForeign never marks a route faild's
		{Route: v6, Ours: true, Proto: Protocol},
	}
	if err != nil || !reflect.DeepEqual(rs, want) {
		t.Errorf("Routes = %v, %v\nwant %v", rs, err, want)
	}
	if got := m.Ours(); !reflect.DeepEqual(got, []Route{r2, v6}) {
		t.Errorf("Ours = %v, want %v", got, []Route{r2, v6})
	}

	moved := r2
	moved.Via, moved.Dev, moved.Index = a("203.0.113.2"), "eth2", 4
	if err := m.Replace(moved); err != nil || m.Overridden() != 0 {
		t.Errorf("Replace of faild's own route: %v, overridden %d", err, m.Overridden())
	}
	if err := m.Replace(r3); err != nil || m.Overridden() != 1 {
		t.Errorf("Replace over an administrator's route: %v, overridden %d; want it counted", err, m.Overridden())
	}
	fresh := Route{Dst: p("192.0.2.4/32"), Via: a("198.51.100.4"), Dev: "eth1", Index: 3}
	if err := m.Replace(fresh); err != nil || !reflect.DeepEqual(m.Ours(), []Route{moved, r3, fresh, v6}) {
		t.Errorf("Replace where no route is: %v; faild's routes %v", err, m.Ours())
	}
	for _, r := range []Route{moved, r3, fresh, v6, v6} {
		if err := m.Delete(r); err != nil {
			t.Errorf("Delete %v: %v", r, err)
		}
	}
	if rs, _ := m.Routes(); !reflect.DeepEqual(rs, []KernelRoute{high}) {
		t.Errorf("after deleting faild's routes: %v, want only %v", rs, high)
	}
	if !m.DeleteForeign(high.Dst, high.Metric) || m.DeleteForeign(high.Dst, high.Metric) {
		t.Error("DeleteForeign: want true for the route, then false")
	}
	if n := m.Version(); n != 12 {
		t.Errorf("Version = %d after 12 changes", n)
	}

	m.Fail = errors.New("no kernel")
	if _, err := m.Routes(); err != m.Fail {
		t.Errorf("Routes with Fail set: %v", err)
	}
	for name, f := range map[string]func(Route) error{"Add": m.Add, "Replace": m.Replace, "Delete": m.Delete} {
		if err := f(r2); err != m.Fail {
			t.Errorf("%s with Fail set: %v", name, err)
		}
	}
	if n := m.Version(); n != 12 {
		t.Errorf("Version = %d: a failed call changed the table", n)
	}
}

// TestMemoryKeys: the first route of a table is found like any other, and
// routes to one destination sort by metric whatever order they came in.
func TestMemoryKeys(t *testing.T) {
	p := netip.MustParsePrefix
	m := NewMemory()
	admin := KernelRoute{Route: Route{Dst: p("192.0.2.2/32"), Dev: "eth0", Index: 2}, Proto: 4, Metric: 100}
	if err := m.AddForeign(admin); err != nil {
		t.Fatal(err)
	}
	if err := m.AddForeign(admin); err == nil {
		t.Error("AddForeign took a second route with the key of the table's first")
	}
	r := Route{Dst: p("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "eth1", Index: 3}
	if err := m.Add(r); err != nil {
		t.Fatal(err)
	}
	want := []KernelRoute{{Route: r, Ours: true, Proto: Protocol}, admin}
	if rs, err := m.Routes(); err != nil || !reflect.DeepEqual(rs, want) {
		t.Errorf("Routes = %v, %v; want metric 0 first: %v", rs, err, want)
	}
}

// TestMemoryWatch: WatchRoutes says Lost first, then every change, in
// order, on its own goroutine, and stops with its context; a cancelled
// Subscribe hears no more.
func TestMemoryWatch(t *testing.T) {
	m := NewMemory()
	var direct []RouteChange
	cancelSub := m.Subscribe(func(c RouteChange) { direct = append(direct, c) })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan RouteChange, 16)
	done := make(chan error)
	go func() { done <- m.WatchRoutes(ctx, func(c RouteChange) { got <- c }, func(err error) { t.Error(err) }) }()
	next := func() RouteChange {
		select {
		case c := <-got:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change reported in 10 s")
			return RouteChange{}
		}
	}
	if c := next(); !c.Lost {
		t.Fatalf("first change %+v, want Lost", c)
	}
	r := Route{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "eth1", Index: 3}
	m.Add(r)
	m.Delete(r)
	if c := next(); c.Deleted || c.Route.Route != r || !c.Route.Ours {
		t.Errorf("after Add: %+v", c)
	}
	if c := next(); !c.Deleted || c.Route.Route != r {
		t.Errorf("after Delete: %+v", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchRoutes = %v after its context ended", err)
	}
	cancelSub()
	m.Add(r)
	if len(direct) != 2 {
		t.Errorf("Subscribe heard %d changes, want the 2 before its cancel", len(direct))
	}
}

// TestKernelRouteString: routes print as ip-route(8) shows them, protocols
// by their names in /etc/iproute2/rt_protos.
func TestKernelRouteString(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		r    KernelRoute
		want string
	}{
		{KernelRoute{Route: Route{Dst: p("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "eth1"}, Proto: Protocol, Ours: true},
			"192.0.2.2/32 via 198.51.100.2 dev eth1 proto faild"},
		{KernelRoute{Route: Route{Dst: p("192.0.2.3/32"), Dev: "eth0"}, Proto: 2}, "192.0.2.3/32 dev eth0 proto kernel"},
		{KernelRoute{Route: Route{Dst: p("192.0.2.4/32")}, Proto: 3, Metric: 100}, "192.0.2.4/32 proto boot metric 100"},
		{KernelRoute{Route: Route{Dst: p("192.0.2.5/32"), Dev: "eth0"}, Proto: 4}, "192.0.2.5/32 dev eth0 proto static"},
		{KernelRoute{Route: Route{Dst: p("192.0.2.6/32"), Dev: "eth0"}, Proto: 186}, "192.0.2.6/32 dev eth0 proto 186"},
		{KernelRoute{Route: Route{Dst: p("2001:db8:a::2/128")}}, "2001:db8:a::2/128"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
}

// TestLansOf: with -i every named interface must be a LAN, as it is
// (qualified or not); without, interfaces that are not LANs or do not
// qualify are passed by.
func TestLansOf(t *testing.T) {
	p := netip.MustParsePrefix
	lans := map[string]LAN{
		"eth0": {Name: "eth0", Index: 2, Addr: p("192.0.2.1/24"), Broadcast: netip.MustParseAddr("192.0.2.255")},
		"wg0":  {Name: "wg0", Index: 3, Addr: p("203.0.113.7/32"), NoBroadcast: true},
		"eth1": {Name: "eth1", Index: 4, Addr6: p("2001:db8:b::1/64")},
	}
	errNot := errors.New("not a LAN")
	describe := func(name string) (LAN, error) {
		if l, ok := lans[name]; ok {
			return l, nil
		}
		return LAN{}, errNot
	}
	got, err := lansOf([]string{"eth0", "lo", "wg0", "eth1"}, false, describe)
	if want := []LAN{lans["eth0"], lans["eth1"]}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("discovery = %v, %v; want %v", got, err, want)
	}
	got, err = lansOf([]string{"wg0", "eth0"}, true, describe)
	if want := []LAN{lans["wg0"], lans["eth0"]}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("named = %v, %v; want %v, as named", got, err, want)
	}
	if _, err := lansOf([]string{"eth0", "lo"}, true, describe); !errors.Is(err, errNot) {
		t.Errorf("a named interface that is not a LAN: %v, want its error", err)
	}
}
