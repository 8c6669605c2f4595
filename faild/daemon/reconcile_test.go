package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/faild/faild/platform"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	routeAB = platform.Route{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "eth1", Index: 3}
	routeAC = platform.Route{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: netip.MustParseAddr("203.0.113.2"), Dev: "eth2", Index: 4}
	foreign = platform.KernelRoute{Route: platform.Route{Dst: netip.MustParsePrefix("192.0.2.2/32"),
		Via: netip.MustParseAddr("198.51.100.3"), Dev: "eth1", Index: 3}, Proto: 4, Metric: 50}
)

func kinds(acts []Action) []ActionKind {
	var ks []ActionKind
	for _, a := range acts {
		ks = append(ks, a.Kind)
	}
	return ks
}

func want(rs ...platform.Route) map[netip.Prefix]platform.Route {
	m := map[netip.Prefix]platform.Route{}
	for _, r := range rs {
		m[r.Dst] = r
	}
	return m
}

// TestReconcilerLifecycle: a wanted route is added, moved when it should
// go another way, and removed when no longer wanted; each once.
func TestReconcilerLifecycle(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	for _, step := range []struct {
		name string
		want map[netip.Prefix]platform.Route
		acts []ActionKind
		ours []platform.Route
	}{
		{"add", want(routeAB), []ActionKind{Added}, []platform.Route{routeAB}},
		{"again", want(routeAB), nil, []platform.Route{routeAB}},
		{"move", want(routeAC), []ActionKind{Replaced}, []platform.Route{routeAC}},
		{"remove", want(), []ActionKind{Removed}, nil},
		{"gone", want(), nil, nil},
	} {
		r.setWant(step.want)
		acts := r.syncAll(t0, nil)
		if !slices.Equal(kinds(acts), step.acts) || !slices.Equal(k.Ours(), step.ours) {
			t.Errorf("%s: did %v, kernel %v; want %v, %v", step.name, kinds(acts), k.Ours(), step.acts, step.ours)
		}
	}
}

// TestReconcilerForeign: faild never writes over, beside or instead of a
// route of someone else's: it waits while one holds the destination,
// withdraws its own when one appears, and comes back when it goes.
func TestReconcilerForeign(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	k.AddForeign(foreign)
	r.read()
	r.setWant(want(routeAB))
	if acts := r.syncAll(t0, nil); !slices.Equal(kinds(acts), []ActionKind{Blocked}) || len(k.Ours()) != 0 {
		t.Fatalf("with a foreign route: did %v, kernel %v; want blocked, nothing written", kinds(acts), k.Ours())
	}
	k.DeleteForeign(foreign.Dst, foreign.Metric)
	r.observe(platform.RouteChange{Route: foreign, Deleted: true})
	if acts := r.sync(foreign.Dst, t0, nil); !slices.Equal(kinds(acts), []ActionKind{Added}) {
		t.Fatalf("foreign route gone: did %v, want added", kinds(acts))
	}
	k.AddForeign(foreign)
	r.observe(platform.RouteChange{Route: foreign})
	acts := r.sync(foreign.Dst, t0, nil)
	if !slices.Equal(kinds(acts), []ActionKind{Withdrawn}) || acts[0].Other != foreign || len(k.Ours()) != 0 {
		t.Fatalf("foreign route appeared: did %+v, kernel %v; want faild's withdrawn", acts, k.Ours())
	}
	if k.Overridden() != 0 {
		t.Error("replaced someone else's route")
	}
}

// TestReconcilerEchoes: the news of faild's own writes does not move the
// view back; a deletion by someone else is news and the route is put back.
func TestReconcilerEchoes(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	var news []platform.RouteChange
	k.Subscribe(func(c platform.RouteChange) { news = append(news, c) })
	r.setWant(want(routeAB))
	r.syncAll(t0, nil)
	r.setWant(want())
	r.syncAll(t0, nil)
	r.setWant(want(routeAB))
	r.syncAll(t0, nil)
	// The kernel's news of add, delete, add comes now, late.
	for _, c := range news {
		if r.news(c) {
			t.Errorf("the echo %+v of faild's own write taken for news", c)
		}
	}
	if ours, _ := r.holds(routeAB.Dst); ours == nil || len(r.echoes) != 0 {
		t.Fatalf("view after the echoes: %v, %d waiting", r.kernel, len(r.echoes))
	}
	k.DeleteForeign(routeAB.Dst, 0) // an administrator's ip route del
	del := platform.RouteChange{Route: platform.KernelRoute{Route: routeAB, Ours: true, Proto: platform.Protocol}, Deleted: true}
	if !r.news(del) {
		t.Fatal("a deletion by someone else taken for an echo")
	}
	r.observe(del)
	if acts := r.sync(routeAB.Dst, t0, nil); !slices.Equal(kinds(acts), []ActionKind{Added}) || len(k.Ours()) != 1 {
		t.Errorf("after the deletion: did %v, kernel %v; want it added again", kinds(acts), k.Ours())
	}
}

// TestReconcilerRetry: a write the kernel refuses is retried with back-off
// that doubles, and the back-off starts over once writes succeed.
func TestReconcilerRetry(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	k.Fail = errors.New("no buffer space available")
	r.setWant(want(routeAB))
	acts := r.syncAll(t0, nil)
	if !slices.Equal(kinds(acts), []ActionKind{Failed}) || !r.retryAt.Equal(t0.Add(retryMin)) || r.failed[routeAB.Dst] == nil {
		t.Fatalf("refused: did %v, retry at %v", kinds(acts), r.retryAt.Sub(t0))
	}
	now := r.retryAt
	r.retry(now, nil)
	if !r.retryAt.Equal(now.Add(2 * retryMin)) {
		t.Errorf("second failure: retry in %v, want %v", r.retryAt.Sub(now), 2*retryMin)
	}
	k.Fail = nil
	now = r.retryAt
	if acts := r.retry(now, nil); !slices.Equal(kinds(acts), []ActionKind{Added}) || !r.retryAt.IsZero() || r.backoff != retryMin ||
		len(r.failed) != 0 {
		t.Errorf("kernel back: did %v, retry at %v, back-off %v, failed %v", kinds(acts), r.retryAt, r.backoff, r.failed)
	}
}

// TestReconcilerStaleView: a route the view missed refuses faild's add;
// the reconciler reads the table again and yields to it.
func TestReconcilerStaleView(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	k.AddForeign(platform.KernelRoute{Route: foreign.Route, Proto: 4}) // metric 0: the key faild's add wants
	r.setWant(want(routeAB))
	acts := r.syncAll(t0, nil)
	if !slices.Equal(kinds(acts), []ActionKind{Blocked}) || len(k.Ours()) != 0 {
		t.Errorf("did %v, kernel %v; want blocked after reading the table again", kinds(acts), k.Ours())
	}
}

// TestRemoveAll: a stop for good removes faild's routes and nobody else's.
func TestRemoveAll(t *testing.T) {
	k := platform.NewMemory()
	r := newReconciler(k)
	other := foreign
	other.Dst = netip.MustParsePrefix("192.0.2.9/32")
	k.AddForeign(other)
	r.setWant(want(routeAB))
	r.syncAll(t0, nil)
	r.read()
	if n, err := r.removeAll(); n != 1 || err != nil || len(k.Ours()) != 0 {
		t.Errorf("removeAll = %d, %v; kernel %v", n, err, k.Ours())
	}
	if rs, _ := k.Routes(); len(rs) != 1 || rs[0].Ours {
		t.Errorf("routes %v; want the foreign one left", rs)
	}
}
