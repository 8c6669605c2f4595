package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// TestRefreshLANs plays an interface recreated under faild: LAN B's eth1
// vanishes (its paths fail over at once), comes back with a new index and
// no address (still down), gets its address (the exchange takes the new
// index) and then a new one (readdressed).
func TestRefreshLANs(t *testing.T) {
	a := platform.LAN{Name: "eth0", Index: 2, Addr: netip.MustParsePrefix("192.0.2.1/24"), Broadcast: netip.MustParseAddr("192.0.2.255"), Up: true}
	b := platform.LAN{Name: "eth1", Index: 3, Addr: netip.MustParsePrefix("198.51.100.1/24"), Broadcast: netip.MustParseAddr("198.51.100.255"), Up: true}
	x, err := proto.Listen(proto.Config{Port: 0, Node: 1, Boot: 1, LANs: familyLANs([]platform.LAN{a, b}, false, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var logs bytes.Buffer
	now := map[string]platform.LAN{"eth0": a, "eth1": b}
	d := &daemon{
		log: slog.New(slog.NewTextHandler(&logs, nil)), lans: []platform.LAN{a, b}, names: []string{"eth0", "eth1"},
		fams: families{{name: "ipv4", x: x,
			table: routes.New(routes.Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3})}},
		lookup: func(name string) (platform.LAN, error) { return now[name], nil },
		opts:   &options{},
	}
	t0 := time.Now()
	d.fams.Observe(routes.Observation{Peer: 9, LAN: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("198.51.100.9")},
		At: t0}, nil)

	step := func(name string, set platform.LAN, wantMoved bool, wantKinds string, wantLog ...string) {
		t.Helper()
		logs.Reset()
		now["eth1"] = set
		if !d.concerns(platform.LinkChange{Index: set.Index, Name: set.Name}) && !d.concerns(platform.LinkChange{Index: 3}) {
			t.Errorf("%s: the change does not concern LAN B", name)
		}
		evs, moved := d.refreshLANs(t0, nil)
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind.String())
		}
		if moved != wantMoved || strings.Join(kinds, ",") != wantKinds {
			t.Errorf("%s: moved %v events %v; want %v [%s]", name, moved, kinds, wantMoved, wantKinds)
		}
		for _, w := range wantLog {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("%s: log %q lacks %q", name, logs.String(), w)
			}
		}
		if got := x.LANs()[1]; got.IfIndex != set.Index || got.Addr != set.Addr {
			t.Errorf("%s: exchange has LAN B %+v; want index %d addr %v", name, got, set.Index, set.Addr)
		}
	}
	step("deleted", platform.LAN{Name: "eth1"}, true, "Failover",
		`msg=lan-changed lan=B dev=eth1 old="index 3 198.51.100.1/24 brd 198.51.100.255" new=gone`,
		`msg=carrier-lost lan=B dev=eth1 reason="interface gone"`)
	step("recreated without address", platform.LAN{Name: "eth1", Index: 7, Up: true}, true, "",
		`new="index 7 no address"`, "msg=carrier-restored")
	nb := b
	nb.Index = 7
	step("address back", nb, true, "", `new="index 7 198.51.100.1/24 brd 198.51.100.255"`)
	nb.Addr = netip.MustParsePrefix("198.51.100.11/24")
	step("readdressed", nb, true, "", `new="index 7 198.51.100.11/24`)
	step("no change", nb, false, "")
	lost := nb
	lost.Addr, lost.Broadcast = netip.Prefix{}, netip.Addr{}
	step("address removed", lost, true, "", "msg=lan-down lan=B dev=eth1")
	if d.concerns(platform.LinkChange{Index: 99, Name: "eth9"}) {
		t.Error("a change of another interface concerns the LANs")
	}
}
