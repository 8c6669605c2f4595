package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// fakeInterfaces answers lookups from a map, for tests.
type fakeInterfaces map[string]platform.LAN

func (f fakeInterfaces) Discover([]string) ([]platform.LAN, error) { return nil, nil }
func (f fakeInterfaces) Lookup(name string) (platform.LAN, error) {
	if l, ok := f[name]; ok {
		return l, nil
	}
	return platform.LAN{Name: name}, nil
}
func (f fakeInterfaces) WatchLinks(ctx context.Context, _ func(platform.LinkChange), _ func(error)) error {
	<-ctx.Done()
	return nil
}

// nullConn is a Conn that drops what it is given.
type nullConn struct{}

func (nullConn) ReadBatch([]proto.Message) (int, error)     { return 0, nil }
func (nullConn) WriteBatch(ms []proto.Message) (int, error) { return len(ms), nil }
func (nullConn) Join(int, netip.Addr) error                 { return nil }
func (nullConn) Close() error                               { return nil }

// TestRefreshLANs plays an interface recreated under faild: LAN B's eth1
// vanishes (its paths fail over at once), comes back with a new index and
// no address (still down), gets its address (the exchange takes the new
// index) and then a new one (readdressed).
func TestRefreshLANs(t *testing.T) {
	a := platform.LAN{Name: "eth0", Index: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255"), Up: true}
	b := platform.LAN{Name: "eth1", Index: 3, Addr: pfx("198.51.100.1/24"), Broadcast: addr("198.51.100.255"), Up: true}
	var logs bytes.Buffer
	ifs := fakeInterfaces{"eth0": a, "eth1": b}
	d, err := New(Config{Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Interfaces: []string{"eth0", "eth1"}},
		Deps{Log: slog.New(slog.NewTextHandler(&logs, nil)), Routes: platform.NewMemory(), Interfaces: ifs,
			Listen: func(int, bool) (proto.Conn, error) { return nullConn{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.begin(t0); err != nil {
		t.Fatal(err)
	}
	x := d.fams[0].x
	if !d.concerns(platform.LinkChange{Index: 2}) {
		t.Error("an address change on eth0 (an index, no name) does not concern LAN A")
	}
	d.fams[0].table.Observe(routes.Observation{Peer: 9, LAN: 1, Addrs: []netip.Addr{addr("192.0.2.9"), addr("198.51.100.9")}, At: t0}, nil)

	step := func(name string, set platform.LAN, wantMoved bool, wantKinds string, wantLog ...string) {
		t.Helper()
		logs.Reset()
		ifs["eth1"] = set
		if !d.concerns(platform.LinkChange{Index: set.Index, Name: set.Name}) && !d.concerns(platform.LinkChange{Index: 3}) {
			t.Errorf("%s: the change does not concern LAN B", name)
		}
		moved := d.refreshLANs(t0)
		var ks []string
		for _, e := range d.evs {
			ks = append(ks, e.Kind.String())
		}
		d.evs = d.evs[:0]
		if moved != wantMoved || strings.Join(ks, ",") != wantKinds {
			t.Errorf("%s: moved %v events %v; want %v [%s]", name, moved, ks, wantMoved, wantKinds)
		}
		for _, w := range wantLog {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("%s: log %q lacks %q", name, logs.String(), w)
			}
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("%s: an error logged: %q", name, logs.String())
		}
		if got := x.LANs()[1]; got.Index != set.Index || got.Addr != set.Addr {
			t.Errorf("%s: exchange has LAN B %+v; want index %d addr %v", name, got, set.Index, set.Addr)
		}
	}
	step("deleted", platform.LAN{Name: "eth1"}, true, "Failover",
		`msg=lan-changed lan=B dev=eth1 old="index 3 198.51.100.1/24 brd 198.51.100.255" new=gone`,
		`msg=carrier-lost lan=B dev=eth1 reason="interface gone"`)
	if d.concerns(platform.LinkChange{Index: 0}) {
		t.Error("a change of index 0 concerns the gone LAN B")
	}
	step("recreated without address", platform.LAN{Name: "eth1", Index: 7, Up: true}, true, "",
		`new="index 7 no address"`, "msg=carrier-restored")
	nb := b
	nb.Index = 7
	step("address back", nb, true, "", `new="index 7 198.51.100.1/24 brd 198.51.100.255"`)
	nb.Addr = pfx("198.51.100.11/24")
	step("readdressed", nb, true, "", `new="index 7 198.51.100.11/24`)
	step("no change", nb, false, "")
	lost := nb
	lost.Addr, lost.Broadcast = netip.Prefix{}, netip.Addr{}
	step("address removed", lost, true, "", "msg=lan-down lan=B dev=eth1")
	if d.concerns(platform.LinkChange{Index: 99, Name: "eth9"}) {
		t.Error("a change of another interface concerns the LANs")
	}
}

// TestRefreshLANsRejoins: an IPv6 LAN whose interface is recreated (a
// new index) has its socket join faild's group on the new interface, or
// its peers' INQs would no longer arrive.
func TestRefreshLANsRejoins(t *testing.T) {
	a := platform.LAN{Name: "eth0", Index: 2, Addr6: pfx("2001:db8:a::1/64"), Up: true}
	b := platform.LAN{Name: "eth1", Index: 3, Addr6: pfx("2001:db8:b::1/64"), Up: true}
	ifs := fakeInterfaces{"eth0": a, "eth1": b}
	conn := &joinConn{}
	d, err := New(Config{Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Interfaces: []string{"eth0", "eth1"}},
		Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Routes: platform.NewMemory(), Interfaces: ifs,
			Listen: func(int, bool) (proto.Conn, error) { return conn, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.begin(t0); err != nil {
		t.Fatal(err)
	}
	if want := []string{"2:ff12::4117", "3:ff12::4117"}; !slices.Equal(conn.joined, want) {
		t.Fatalf("joined %v at start, want %v", conn.joined, want)
	}
	conn.joined = nil
	b.Index = 7
	ifs["eth1"] = b
	d.refreshLANs(t0)
	if !slices.Contains(conn.joined, "7:ff12::4117") {
		t.Errorf("joined %v after eth1 came back as index 7; want ff12::4117 there", conn.joined)
	}
}

// TestLANAddrs: a LAN's addresses as status shows them.
func TestLANAddrs(t *testing.T) {
	for _, tt := range []struct {
		l    platform.LAN
		want string
	}{
		{platform.LAN{Addr: pfx("192.0.2.1/24"), Addr6: pfx("2001:db8:a::1/64")}, "192.0.2.1/24,2001:db8:a::1/64"},
		{platform.LAN{Addr6: pfx("2001:db8:a::1/64")}, "2001:db8:a::1/64"},
		{platform.LAN{Name: "eth1"}, "-"},
	} {
		if got := lanAddrs(tt.l); got != tt.want {
			t.Errorf("lanAddrs(%+v) = %q, want %q", tt.l, got, tt.want)
		}
	}
}

// TestFindLANs: named interfaces that are missing at start make a daemon
// that waits for them, not an error; a loopback interface is refused.
func TestFindLANs(t *testing.T) {
	a := platform.LAN{Name: "eth0", Index: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255"), Up: true}
	deps := Deps{Routes: platform.NewMemory(), Interfaces: fakeInterfaces{"eth0": a, "lo": {Name: "lo", Index: 1, Up: true, Loopback: true}}}
	d, err := New(Config{Interfaces: []string{"eth0", "eth1"}}, deps)
	if err != nil || len(d.lans) != 2 || d.lans[1].Index != 0 {
		t.Fatalf("eth1 missing: %v, LANs %+v; want a daemon with LAN B gone", err, d.lans)
	}
	if _, err := New(Config{Interfaces: []string{"eth0", "lo"}}, deps); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("-i lo: %v; want it refused as a loopback interface", err)
	}
	if _, err := New(Config{Interfaces: []string{"eth1", "eth0"}}, deps); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Errorf("LAN A missing: %v; want to be told to set --node-id", err)
	}
}
