package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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

// TestProtoLANs: each family's exchange sees the LANs in the same order,
// with the address of its family or none, and with --peer the listed peers
// on each LAN's subnet.
func TestProtoLANs(t *testing.T) {
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
			{Index: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255")},
			{Index: 3},
			{Index: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255")},
		}},
		{"ipv6 multicast", true, nil, []proto.LAN{
			{Index: 2, Addr: pfx("2001:db8:a::1/64"), Broadcast: proto.Group6},
			{Index: 3, Addr: pfx("2001:db8:b::1/64"), Broadcast: proto.Group6},
			{Index: 4, Broadcast: proto.Group6},
		}},
		{"ipv4 peers by subnet", false, peers, []proto.LAN{
			{Index: 2, Addr: pfx("192.0.2.1/24"), Broadcast: addr("192.0.2.255"), Unicast: true,
				Peers: []netip.Addr{addr("192.0.2.2"), addr("192.0.2.3")}},
			{Index: 3, Unicast: true},
			{Index: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255"), Unicast: true}, // none listed: silent
		}},
		{"ipv6 peers by subnet", true, peers, []proto.LAN{
			{Index: 2, Addr: pfx("2001:db8:a::1/64"), Broadcast: proto.Group6, Unicast: true},
			{Index: 3, Addr: pfx("2001:db8:b::1/64"), Broadcast: proto.Group6, Unicast: true, Peers: []netip.Addr{addr("2001:db8:b::2")}},
			{Index: 4, Broadcast: proto.Group6, Unicast: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protoLANs(lans, tt.v6, tt.peers)
			if !slices.EqualFunc(got, tt.want, func(a, b proto.LAN) bool {
				return a.Index == b.Index && a.Addr == b.Addr && a.Broadcast == b.Broadcast &&
					a.Unicast == b.Unicast && slices.Equal(a.Peers, b.Peers)
			}) {
				t.Errorf("protoLANs:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := peerUnused([]netip.Addr{addr("2001:db8:c::2"), addr("2001:db8:b::2")}, lans); !slices.Equal(got, []netip.Addr{addr("2001:db8:c::2")}) {
		t.Errorf("peerUnused = %v; want the peer on no LAN's subnet", got)
	}
}

// TestNodeID: --node-id if given, else LAN A's IPv4 address, else a hash
// of its IPv6 address that is stable and differs between addresses.
func TestNodeID(t *testing.T) {
	id := func(a platform.LAN, node uint32) (uint32, error) {
		return nodeID(Config{NodeID: node}, []platform.LAN{a})
	}
	if got, err := id(platform.LAN{Addr: pfx("192.0.2.1/24")}, 0xc0000209); err != nil || got != 0xc0000209 {
		t.Errorf("--node-id: %#x, %v", got, err)
	}
	got, err := id(platform.LAN{Addr: pfx("192.0.2.1/24"), Addr6: pfx("2001:db8:a::1/64")}, 0)
	if err != nil || got != 0xc0000201 {
		t.Errorf("dual-stack LAN A: id %#x, %v; want its IPv4 address 0xc0000201", got, err)
	}
	a, err := id(platform.LAN{Addr6: pfx("2001:db8:a::1/64")}, 0)
	b, _ := id(platform.LAN{Addr6: pfx("2001:db8:a::1/64")}, 0)
	c, _ := id(platform.LAN{Addr6: pfx("2001:db8:a::2/64")}, 0)
	if err != nil || a != b || a == c || a == 0 {
		t.Errorf("IPv6-only LAN A: ids %#x %#x %#x, %v; want stable, distinct per address", a, b, c, err)
	}
	if _, err := id(platform.LAN{Name: "eth0"}, 0); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Errorf("a LAN A without addresses: %v; want an error pointing at --node-id", err)
	}
}

// TestCheckPeers: a --peer that is the network or broadcast address of a
// LAN's subnet, or one of our own addresses, is a configuration error.
func TestCheckPeers(t *testing.T) {
	lans := []platform.LAN{{Name: "eth0", Addr: pfx("192.0.2.1/24")}, {Name: "eth1", Addr6: pfx("2001:db8:b::1/64")}}
	for _, tt := range []struct {
		peer string
		ok   bool
	}{
		{"192.0.2.2", true}, {"2001:db8:b::2", true}, {"203.0.113.1", true},
		{"192.0.2.255", false}, {"192.0.2.0", false}, {"192.0.2.1", false}, {"2001:db8:b::", false},
	} {
		err := checkPeers([]netip.Addr{addr(tt.peer)}, lans)
		var ce *ConfigError
		if (err == nil) != tt.ok || err != nil && (!strings.Contains(err.Error(), "invalid --peer "+tt.peer+": ") || !errors.As(err, &ce)) {
			t.Errorf("--peer %s: %v, want ok %v", tt.peer, err, tt.ok)
		}
	}
}

func TestForgetAfter(t *testing.T) {
	for _, tt := range []struct {
		misses   int
		interval time.Duration
		want     time.Duration
	}{
		{3, 100 * time.Millisecond, time.Minute},
		{3, 10 * time.Second, 300 * time.Second},
	} {
		d := &Daemon{cfg: Config{Misses: tt.misses, Interval: tt.interval}}
		if got := d.forgetAfter(); got != tt.want {
			t.Errorf("forgetAfter(-f %d -t %v) = %v, want %v", tt.misses, tt.interval, got, tt.want)
		}
	}
}

// joinConn records the groups it joins, and fails for one interface.
type joinConn struct {
	nullConn
	fail   int
	joined []string
}

func (c *joinConn) Join(ifIndex int, group netip.Addr) error {
	if ifIndex == c.fail {
		return errors.New("no such interface")
	}
	c.joined = append(c.joined, fmt.Sprintf("%d:%v", ifIndex, group))
	return nil
}

// TestJoinGroups: an IPv6 exchange joins faild's group on every LAN that
// has an interface and an IPv6 address, and no other; the first failure
// is returned. An IPv4 exchange joins nothing.
func TestJoinGroups(t *testing.T) {
	lans := []platform.LAN{
		{Name: "eth0", Index: 2, Addr6: pfx("2001:db8:a::1/64")},
		{Name: "eth1", Index: 0, Addr6: pfx("2001:db8:b::1/64")}, // gone, with its last address
		{Name: "eth2", Index: 4, Addr: pfx("203.0.113.1/24"), Broadcast: addr("203.0.113.255")},
		{Name: "eth3", Index: 5, Addr6: pfx("2001:db8:d::1/64")},
	}
	exchange := func(v6 bool) *proto.Exchange {
		x, err := proto.NewExchange(proto.Config{V6: v6, LANs: protoLANs(lans, v6, nil)})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	c := &joinConn{}
	if err := joinGroups(c, exchange(true)); err != nil || !slices.Equal(c.joined, []string{"2:ff12::4117", "5:ff12::4117"}) {
		t.Errorf("IPv6: joined %v, %v; want ff12::4117 on interfaces 2 and 5", c.joined, err)
	}
	c = &joinConn{}
	if err := joinGroups(c, exchange(false)); err != nil || len(c.joined) != 0 {
		t.Errorf("IPv4: joined %v, %v; want nothing", c.joined, err)
	}
	c = &joinConn{fail: 2}
	if err := joinGroups(c, exchange(true)); err == nil {
		t.Errorf("a join that fails: joined %v and no error", c.joined)
	}
}

// TestLossWindowDefault: the tables' loss window is --loss-window, or
// routes' default for --max-loss when it is not set.
func TestLossWindowDefault(t *testing.T) {
	d := &Daemon{cfg: Config{MaxLoss: 0.02}}
	if got, want := d.lossWindow(), routes.DefaultWindow(0.02); got != want {
		t.Errorf("lossWindow() unset = %d, want the default %d", got, want)
	}
	d.cfg.LossWindow = 50
	if got := d.lossWindow(); got != 50 {
		t.Errorf("lossWindow() with --loss-window 50 = %d", got)
	}
}
