package test

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/test/lab"
)

// The reconciler on the real kernel: what faild says and does matches what
// the kernel holds, whoever changed it; and restarts keep the routes.

// reactLimit bounds how long faild may take to follow a route someone else
// added or deleted: the route subscription tells it at once.
const reactLimit = 100 * time.Millisecond

// statusPath returns n's status --json entry for the path to the peer
// address addr.
func statusPath(t *testing.T, bin string, n *lab.Node, addr string) map[string]any {
	t.Helper()
	out, _ := runStatus(t, bin, n, "--json")
	var s struct {
		Paths []map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: status --json: %v\n%s", n, err, out)
	}
	for _, p := range s.Paths {
		if p["addr"] == addr {
			return p
		}
	}
	t.Fatalf("%v: no path to %s in %s", n, addr, out)
	return nil
}

// family is one address family of the lab, for tests that run in both.
type family struct {
	name   string
	opt    lab.Family
	bits   string // host prefix length
	ipFlag string // ip's option for the family: "ip route show" alone shows IPv4
	addr   func(n *lab.Node, lan lab.LAN) string
}

var families = []family{
	{"IPv4", lab.IPv4, "/32", "-4", (*lab.Node).Addr},
	{"IPv6", lab.IPv6, "/128", "-6", (*lab.Node).Addr6},
}

// forEachFamily runs test as a parallel subtest in an IPv4-only and an
// IPv6-only lab of nodes nodes.
func forEachFamily(t *testing.T, nodes int, test func(t *testing.T, f family, l *lab.Lab, b *budget)) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			l := lab.ForTest(t, lab.Options{Nodes: nodes, Bin: sharedBin(t), Family: f.opt})
			test(t, f, l, newBudget(t, 30*time.Second))
		})
	}
}

// over is the failover route to peer's LAN-A address over LAN B.
func (f family) over(peer *lab.Node) lab.Route {
	return lab.Route{Dst: f.addr(peer, lab.A), Via: f.addr(peer, lab.B), Dev: lab.B.Iface()}
}

// TestForeignRouteGoes: a foreign route that blocked a failover, deleted by
// hand, is replaced by faild's within reactLimit, and the status says so.
func TestForeignRouteGoes(t *testing.T) {
	t.Parallel()
	forEachFamily(t, 2, func(t *testing.T, f family, l *lab.Lab, b *budget) {
		n1, n2 := l.Node(1), l.Node(2)
		dst := f.addr(n2, lab.A) + f.bits
		_, err := n1.IP("route", "add", dst, "via", f.addr(n2, lab.B), "dev", lab.B.Iface(), "metric", "50")
		must(t, err)
		startAll(t, b, l, requestor(fast...))
		w := watchRoutes(t, n1)
		cut := time.Now()
		must(t, l.CutPort(lab.A, 2, lab.Both))
		waitEvent(b, n1, cut, fastLimit, "msg", "foreign-route", "dst", dst)
		if p := statusPath(t, l.Bin, n1, f.addr(n2, lab.A)); p["route_state"] != "blocked" || !strings.Contains(p["route"].(string), "metric 50") {
			t.Errorf("%v: status of the path %v; want blocked by the metric-50 route", n1, p)
		}
		if !n1.RoutesAre() {
			t.Fatalf("%v: faild route beside the foreign one", n1)
		}
		before := time.Now()
		_, err = n1.IP("route", "del", dst, "metric", "50")
		must(t, err)
		b.wait("the route watch sees the foreign route go", 2*time.Second, func() bool { _, ok := w.Foreign(before, false, f.addr(n2, lab.A)); return ok })
		gone, _ := w.Foreign(before, false, f.addr(n2, lab.A))
		route := f.over(n2)
		b.wait("faild's route after the foreign one went", 2*time.Second, func() bool { _, ok := w.Added(gone, route); return ok })
		at, _ := w.Added(gone, route)
		record(t, "route_after_foreign_gone", ms(at.Sub(gone)))
		if took := at.Sub(gone); took > reactLimit {
			t.Errorf("%v: faild's route %v after the foreign one went; want within %v", n1, ms(took), reactLimit)
		}
		// faild may log before the test's own watch hears of the deletion.
		waitEvent(b, n1, before, 2*time.Second, "msg", "foreign-route-gone", "dst", dst)
		if p := statusPath(t, l.Bin, n1, f.addr(n2, lab.A)); p["route_state"] != "installed" || !strings.Contains(p["route"].(string), "via "+f.addr(n2, lab.B)) {
			t.Errorf("%v: status of the path %v; want faild's route installed", n1, p)
		}
		stopAll(t, l)
	})
}

// TestAdminRouteWins: an administrator's host route added during a
// failover takes over: faild's route is gone within reactLimit, logged,
// and the status shows the destination blocked.
func TestAdminRouteWins(t *testing.T) {
	t.Parallel()
	forEachFamily(t, 3, func(t *testing.T, f family, l *lab.Lab, b *budget) {
		startAll(t, b, l, requestor(fast...))
		n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)
		w := watchRoutes(t, n1)
		cut := time.Now()
		must(t, l.CutPort(lab.A, 2, lab.Both))
		route := f.over(n2)
		b.wait("failover", fastLimit, func() bool { _, ok := w.Added(cut, route); return ok })
		dst := f.addr(n2, lab.A) + f.bits
		before := time.Now()
		_, err := n1.IP("route", "add", dst, "via", f.addr(n3, lab.B), "dev", lab.B.Iface(), "metric", "10")
		must(t, err)
		b.wait("the route watch sees the admin's route", 2*time.Second, func() bool { _, ok := w.Foreign(before, true, f.addr(n2, lab.A)); return ok })
		added, _ := w.Foreign(before, true, f.addr(n2, lab.A))
		b.wait("faild's route withdrawn", 2*time.Second, func() bool { _, ok := w.Removed(added, route); return ok })
		at, _ := w.Removed(added, route)
		record(t, "withdrawn_after_admin_route", ms(at.Sub(added)))
		if took := at.Sub(added); took > reactLimit {
			t.Errorf("%v: faild's route withdrawn %v after the admin's route came; want within %v", n1, ms(took), reactLimit)
		}
		e := waitEvent(b, n1, before, 2*time.Second, "msg", "foreign-route", "dst", dst)
		if !strings.Contains(e["removed"], f.addr(n2, lab.B)) || !strings.Contains(e["foreign"], "metric 10") {
			t.Errorf("%v: foreign-route line %v; want it to name what was removed and the admin's route", n1, e)
		}
		if p := statusPath(t, l.Bin, n1, f.addr(n2, lab.A)); p["route_state"] != "blocked" || !strings.Contains(p["route"].(string), f.addr(n3, lab.B)) {
			t.Errorf("%v: status of the path %v; want blocked by the admin's route", n1, p)
		}
		if out, _ := n1.IP(f.ipFlag, "route", "show", dst); !strings.Contains(out, "via "+f.addr(n3, lab.B)) {
			t.Errorf("%v: routes to %s: %q; want the admin's left alone", n1, dst, out)
		}
		stopAll(t, l)
	})
}

// TestReplacedRouteSwitchback: `ip route replace` over faild's route makes
// the destination someone else's; the switchback then names no route
// faild removed, and no hook runs for it.
func TestReplacedRouteSwitchback(t *testing.T) {
	t.Parallel()
	l, b := newLab(t, 3, 30*time.Second)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	hook := writeScript(t, dir, "hook", `echo "$FAILD_EVENT $FAILD_ACTION $FAILD_ROUTE" >> `+events+"\n")
	startAll(t, b, l, func(n *lab.Node) []string {
		if n.ID == 1 {
			return append(requestor(fast...)(n), "--on-change", hook)
		}
		return requestor(fast...)(n)
	})
	n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)
	cut := time.Now()
	must(t, l.CutPort(lab.A, 2, lab.Both))
	failedOver(t, b, cut, fastLimit, map[*lab.Node][]*lab.Node{n1: {n2}})
	b.wait("the failover's hook", 5*time.Second, func() bool { bs, _ := os.ReadFile(events); return strings.Contains(string(bs), "failover added") })
	dst := n2.Addr(lab.A) + "/32"
	replaced := time.Now()
	_, err := n1.IP("route", "replace", dst, "via", n3.Addr(lab.B), "dev", lab.B.Iface())
	must(t, err)
	waitEvent(b, n1, replaced, 2*time.Second, "msg", "foreign-route", "dst", dst)
	before, _ := os.ReadFile(events)
	heal := time.Now()
	must(t, l.Heal())
	sb := waitEvent(b, n1, heal, fastLimit, "msg", "switchback", "peer", n2.Addr(lab.A), "lan", "A")
	if sb["route"] != "none" {
		t.Errorf("%v: switchback %v; want route=none: faild's route was replaced, not removed by it", n1, sb)
	}
	time.Sleep(500 * time.Millisecond) // a hook would have run by now
	if after, _ := os.ReadFile(events); string(after) != string(before) {
		t.Errorf("%v: hooks after the replace: %q; want none", n1, strings.TrimPrefix(string(after), string(before)))
	}
	if out, _ := n1.IP("route", "show", dst); !strings.Contains(out, "via "+n3.Addr(lab.B)) {
		t.Errorf("%v: routes to %s: %q; want the replaced route left alone", n1, dst, out)
	}
	stopAll(t, l)
}

// TestSpoofedStranger: one INQ with a fresh node id, from an address on
// LAN A that no node has, announcing a LAN-B address nobody was heard from,
// moves no route, logs no failover naming one and runs no hook.
func TestSpoofedStranger(t *testing.T) {
	t.Parallel()
	l, b := newLab(t, 2, 30*time.Second)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	hook := writeScript(t, dir, "hook", `echo "$FAILD_EVENT $FAILD_ROUTE" >> `+events+"\n")
	startAll(t, b, l, func(n *lab.Node) []string { return append(requestor(fast...)(n), "--on-change", hook) })
	n1 := l.Node(1)
	f := newForger(t, l)
	p := proto.Packet{Type: proto.INQ, NodeID: 0xc0000232, BootID: 1, Seq: 1, Interval: 100 * time.Millisecond,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24"), netip.MustParsePrefix("198.51.100.50/24")}}
	raw, err := p.Append(nil)
	must(t, err)
	sent := time.Now()
	f.send("192.0.2.50", n1.Addr(lab.A), raw)
	waitEvent(b, n1, sent, 2*time.Second, "msg", "discovered", "peer", "192.0.2.50")
	time.Sleep(time.Second) // ten intervals: the stranger's paths have failed over
	for _, e := range since(n1, sent, "msg", "failover") {
		if e["route"] != "none" {
			t.Errorf("%v: %v; want no failover naming a route", n1, e)
		}
	}
	if !n1.RoutesAre() {
		rs, _ := n1.Routes()
		t.Errorf("%v: routes %v after one spoofed INQ; want none", n1, rs)
	}
	if bs, _ := os.ReadFile(events); len(bs) > 0 {
		t.Errorf("hooks ran: %q; want none", bs)
	}
	stopAll(t, l)
}

// TestRestartKeepsRoutes: a kill -9 and a restart at once, and a stop by
// SIGUSR2 (what systemctl restart sends) and a start, during a failover
// never take the routes away, in both families: the kernel's route watch
// sees no removal. SIGTERM then removes them all.
func TestRestartKeepsRoutes(t *testing.T) {
	t.Parallel()
	bin := sharedBin(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin, Family: lab.Dual})
	b := newBudget(t, 60*time.Second)
	startAll(t, b, l, requestor(fast...))
	n1, n2 := l.Node(1), l.Node(2)
	w := watchRoutes(t, n1)
	cut := time.Now()
	must(t, l.CutPort(lab.A, 2, lab.Both))
	want := []lab.Route{overB(n2), {Dst: n2.Addr6(lab.A), Via: n2.Addr6(lab.B), Dev: lab.B.Iface()}}
	b.wait("failover in both families", fastLimit, func() bool { _, ok := w.Added(cut, want...); return ok })
	for _, how := range []string{"kill -9", "SIGUSR2"} {
		from := time.Now()
		if how == "kill -9" {
			must(t, n1.Kill())
		} else {
			must(t, n1.Handover())
		}
		start := time.Now()
		must(t, n1.Start(requestor(fast...)(n1)...))
		waitEvent(b, n1, start, 2*time.Second, "msg", "start")
		time.Sleep(time.Second) // past detection and the adoption's end
		if cs := w.Changes(from); len(cs) != 0 {
			t.Errorf("%v: route changes across %s and a restart: %+v; want none", n1, how, cs)
		}
		if adopt := since(n1, start, "msg", "adopt"); len(adopt) != 2 {
			t.Errorf("%v: adopt lines after %s: %v; want one per route", n1, how, adopt)
		}
		if !n1.RoutesAre(want...) {
			rs, _ := n1.Routes()
			t.Errorf("%v: routes %v after %s and a restart; want %v", n1, rs, how, want)
		}
	}
	must(t, n1.Stop())
	if !n1.RoutesAre() {
		t.Errorf("%v: routes left after SIGTERM", n1)
	}
	must(t, n2.Stop())
}

// TestKillCycles: 20 times, kill -9 and restart node1 at a random moment
// while LAN A to node2 is cut or healed at random: once settled, node1 has
// exactly the route the network calls for, and a route that is wanted
// before and after a restart is never missing in between.
func TestKillCycles(t *testing.T) {
	t.Parallel()
	l, b := newLab(t, 2, 240*time.Second)
	startAll(t, b, l, requestor(fast...))
	n1, n2 := l.Node(1), l.Node(2)
	w := watchRoutes(t, n1)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	cutNow := false
	settle := 1500 * time.Millisecond // detection, -s good intervals, adoption, slack
	for i := range 20 {
		flip := rng.IntN(2) == 0
		if flip {
			cutNow = !cutNow
			if cutNow {
				must(t, l.CutPort(lab.A, 2, lab.Both))
			} else {
				must(t, l.Heal())
			}
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		from := time.Now()
		must(t, n1.Kill())
		must(t, n1.Start(requestor(fast...)(n1)...))
		time.Sleep(settle)
		want := []lab.Route{}
		if cutNow {
			want = append(want, overB(n2))
		}
		if !n1.RoutesAre(want...) {
			rs, _ := n1.Routes()
			t.Errorf("cycle %d (cut %v): routes %v once settled; want %v", i, cutNow, rs, want)
		}
		if cutNow && !flip {
			// Cut through the whole cycle, the route was in place before
			// the kill: it must never have gone.
			if _, gone := w.Removed(from, overB(n2)); gone {
				t.Errorf("cycle %d: the route went missing across the restart", i)
			}
		}
		if t.Failed() {
			break
		}
	}
	stopAll(t, l)
	_ = b
}
