package main

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/faild/faild/platform"
)

func route(dst, via string) platform.Route {
	return platform.Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Dev: "eth1", Index: 3}
}

func installed(t *testing.T, m *platform.Memory) []platform.Route {
	t.Helper()
	rs, err := m.Installed()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestApplier(t *testing.T) {
	m := platform.NewMemory()
	a := newApplier(m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r2, r3 := route("192.0.2.2/32", "198.51.100.2"), route("192.0.2.3/32", "198.51.100.3")

	if !a.apply([]platform.Route{r2, r3}) {
		t.Fatal("apply failed")
	}
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r2, r3}) {
		t.Errorf("installed %v", got)
	}
	if !a.apply([]platform.Route{r3}) {
		t.Fatal("apply failed")
	}
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r3}) {
		t.Errorf("after switchback of .2: %v", got)
	}

	// A foreign route to a destination is left alone, and is not an error
	// to retry.
	m.AddForeign(r2.Dst)
	if !a.apply([]platform.Route{r2, r3}) {
		t.Error("a foreign route made apply report failure")
	}
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r3}) {
		t.Errorf("with a foreign route to .2: %v", got)
	}

	// A kernel that refuses is reported, so the caller retries.
	m.Fail = errors.New("netlink: no buffer space")
	if a.apply(nil) {
		t.Error("apply reported success while the kernel refused")
	}
	m.Fail = nil
	if !a.apply(nil) || len(installed(t, m)) != 0 {
		t.Errorf("retry left %v", installed(t, m))
	}

	a.apply([]platform.Route{r3})
	if n, err := a.removeAll(); n != 1 || err != nil || len(installed(t, m)) != 0 {
		t.Errorf("removeAll = %d, %v; left %v", n, err, installed(t, m))
	}
}

func TestRemoveStale(t *testing.T) {
	m := platform.NewMemory()
	m.Add(route("192.0.2.9/32", "198.51.100.9"))
	a := newApplier(m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := a.removeStale(); err != nil || len(installed(t, m)) != 0 {
		t.Errorf("removeStale = %v; left %v", err, installed(t, m))
	}
}

func TestReconcile(t *testing.T) {
	m := platform.NewMemory()
	a := newApplier(m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r2, r3 := route("192.0.2.2/32", "198.51.100.2"), route("192.0.2.3/32", "198.51.100.3")
	a.apply([]platform.Route{r2})

	// Someone deletes faild's route and adds one with faild's mark by hand.
	m.Delete(r2)
	m.Add(r3)
	a.reconcile()
	a.apply([]platform.Route{r2})
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r2}) {
		t.Errorf("after reconcile: %v, want only %v", got, r2)
	}
}

// TestReconcileWrongRoute: a route of faild's protocol to a destination
// faild installed, but through another gateway or interface than faild
// recorded, is removed by reconcile, and apply then puts the right one back.
func TestReconcileWrongRoute(t *testing.T) {
	r2 := route("192.0.2.2/32", "198.51.100.2")
	otherVia := route("192.0.2.2/32", "198.51.100.9")
	otherDev := r2
	otherDev.Dev, otherDev.Index = "eth2", 4
	for _, tt := range []struct {
		name  string
		wrong platform.Route
	}{
		{"other gateway", otherVia},
		{"other interface", otherDev},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := platform.NewMemory()
			a := newApplier(m, slog.New(slog.NewTextHandler(io.Discard, nil)))
			a.apply([]platform.Route{r2})
			m.Delete(r2)
			m.Add(tt.wrong) // by hand, with faild's protocol
			a.reconcile()
			if !a.apply([]platform.Route{r2}) {
				t.Fatal("apply failed")
			}
			if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r2}) {
				t.Errorf("kernel holds %v, want %v", got, r2)
			}
		})
	}
}

// failDelete is a Memory whose Delete fails while err is set.
type failDelete struct {
	*platform.Memory
	err error
}

func (f *failDelete) Delete(r platform.Route) error {
	if f.err != nil {
		return f.err
	}
	return f.Memory.Delete(r)
}

// TestApplierForeignRemovesOwn: when faild wants another gateway to a
// destination and finds a foreign route there, it leaves the foreign route
// alone and removes its own old route rather than leaving it beside it; a
// failed delete is retried.
func TestApplierForeignRemovesOwn(t *testing.T) {
	m := platform.NewMemory()
	w := &failDelete{Memory: m}
	var logBuf strings.Builder
	a := newApplier(w, slog.New(slog.NewTextHandler(&logBuf, nil)))
	old, next := route("192.0.2.2/32", "198.51.100.2"), route("192.0.2.2/32", "198.51.100.3")
	r3 := route("192.0.2.3/32", "198.51.100.3")
	if !a.apply([]platform.Route{old, r3}) {
		t.Fatal("apply failed")
	}

	m.AddForeign(old.Dst)
	w.err = errors.New("netlink: no buffer space")
	if a.apply([]platform.Route{next, r3}) {
		t.Error("apply reported success while its own route could not be removed")
	}
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{old, r3}) {
		t.Errorf("after a failed delete: %v", got)
	}
	w.err = nil
	if !a.apply([]platform.Route{next, r3}) {
		t.Error("retry failed")
	}
	if got := installed(t, m); !reflect.DeepEqual(got, []platform.Route{r3}) {
		t.Errorf("with a foreign route to .2: kernel holds %v, want only %v", got, r3)
	}
	if _, ok := a.installed[old.Dst]; ok {
		t.Errorf("applier still records %v", a.installed[old.Dst])
	}
	if !strings.Contains(logBuf.String(), `removed="`+old.String()+`"`) {
		t.Errorf("log does not name the removed route:\n%s", logBuf.String())
	}
	// Stopping removes only what is left of faild's.
	if n, err := a.removeAll(); n != 1 || err != nil {
		t.Errorf("removeAll = %d, %v", n, err)
	}
}
