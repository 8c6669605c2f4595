package main

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// TestFamilyLANs: each family's exchange sees the LANs in the same order,
// with the address of its family or none, and with --peer the listed peers
// on each LAN's subnet.
func TestFamilyLANs(t *testing.T) {
	lans := []platform.LAN{
		{Name: "eth0", Index: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255"), Addr6: pfx("2001:db8:a::1/64")},
		{Name: "eth1", Index: 3, Addr6: pfx("2001:db8:b::1/64")}, // IPv6 only
		{Name: "eth2", Index: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255")},
	}
	peers := []netip.Addr{addr("192.0.2.2"), addr("2001:db8:b::2"), addr("192.0.2.3"), addr("2001:db8:c::2")}
	tests := []struct {
		name  string
		v6    bool
		peers []netip.Addr
		want  []proto.LAN
	}{
		{"ipv4 broadcast", false, nil, []proto.LAN{
			{IfIndex: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255")},
			{IfIndex: 3},
			{IfIndex: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255")},
		}},
		{"ipv6 multicast", true, nil, []proto.LAN{
			{IfIndex: 2, Addr: pfx("2001:db8:a::1/64"), Broadcast: proto.Group6},
			{IfIndex: 3, Addr: pfx("2001:db8:b::1/64"), Broadcast: proto.Group6},
			{IfIndex: 4, Broadcast: proto.Group6},
		}},
		{"ipv4 peers by subnet", false, peers, []proto.LAN{
			{IfIndex: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255"), Unicast: true,
				Peers: []netip.Addr{addr("192.0.2.2"), addr("192.0.2.3")}},
			{IfIndex: 3, Unicast: true},
			{IfIndex: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255"), Unicast: true}, // none listed: silent
		}},
		{"ipv6 peers by subnet", true, peers, []proto.LAN{
			{IfIndex: 2, Addr: pfx("2001:db8:a::1/64"), Broadcast: proto.Group6, Unicast: true},
			{IfIndex: 3, Addr: pfx("2001:db8:b::1/64"), Broadcast: proto.Group6, Unicast: true, Peers: []netip.Addr{addr("2001:db8:b::2")}},
			{IfIndex: 4, Broadcast: proto.Group6, Unicast: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := familyLANs(lans, tt.v6, tt.peers)
			if !slices.EqualFunc(got, tt.want, func(a, b proto.LAN) bool {
				return a.IfIndex == b.IfIndex && a.Addr == b.Addr && a.Broadcast == b.Broadcast &&
					a.Unicast == b.Unicast && slices.Equal(a.Peers, b.Peers)
			}) {
				t.Errorf("familyLANs:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if onSomeLAN(addr("2001:db8:c::2"), lans) || !onSomeLAN(addr("2001:db8:b::2"), lans) {
		t.Error("onSomeLAN does not match peers to LANs by subnet")
	}
}

func TestDefaultNodeID(t *testing.T) {
	id, err := defaultNodeID(platform.LAN{Addr: pfx("192.0.2.1/24"), Addr6: pfx("2001:db8:a::1/64")})
	if err != nil || id != 0xc0000201 {
		t.Errorf("dual-stack LAN A: id %#x, %v; want its IPv4 address 0xc0000201", id, err)
	}
	a, err := defaultNodeID(platform.LAN{Addr6: pfx("2001:db8:a::1/64")})
	b, _ := defaultNodeID(platform.LAN{Addr6: pfx("2001:db8:a::1/64")})
	c, _ := defaultNodeID(platform.LAN{Addr6: pfx("2001:db8:a::2/64")})
	if err != nil || a != b || a == c || a == 0 {
		t.Errorf("IPv6-only LAN A: ids %#x %#x %#x, %v; want stable, distinct per address", a, b, c, err)
	}
	if _, err := defaultNodeID(platform.LAN{Name: "eth0"}); err == nil {
		t.Error("a LAN A without addresses gave a node id")
	}
}

// TestFamiliesObserve: evidence goes to the table of its own family, so an
// IPv6 path is judged by IPv6 packets alone and each family installs its
// own host routes.
func TestFamiliesObserve(t *testing.T) {
	cfg := routes.Config{LANs: 2, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3}
	fs := families{{name: "ipv4", table: routes.New(cfg)}, {name: "ipv6", v6: true, table: routes.New(cfg)}}
	now := time.Now()
	v4 := []netip.Addr{addr("192.0.2.2"), addr("198.51.100.2")}
	v6 := []netip.Addr{addr("2001:db8:a::2"), addr("2001:db8:b::2")}
	// Both families hear the peer on both LANs; then IPv6 goes quiet on
	// LAN A while IPv4 carries on.
	for i := range 10 {
		at := now.Add(time.Duration(i) * 100 * time.Millisecond)
		for lan := range 2 {
			fs.Observe(routes.Observation{Peer: 2, LAN: lan, Addrs: v4, Interval: cfg.Interval, At: at}, nil)
			if i < 2 || lan == 1 {
				fs.Observe(routes.Observation{Peer: 2, LAN: lan, Addrs: v6, Interval: cfg.Interval, At: at}, nil)
			}
		}
		fs.Expire(at, nil)
	}
	got := fs.Routes(nil)
	want := routes.Route{Dst: pfx("2001:db8:a::2/128"), Via: addr("2001:db8:b::2"), LAN: 1}
	if len(got) != 1 || got[0] != want {
		t.Errorf("routes %v; want only %v", got, want)
	}
	if _, ok := fs.NextDeadline(); !ok {
		t.Error("no next deadline with valid paths in both families")
	}
	n := 0
	fs.Paths(time.Now(), func(routes.PeerID, int, routes.Path, routes.Route) { n++ })
	if n != 4 {
		t.Errorf("%d paths, want 2 per family", n)
	}
}
