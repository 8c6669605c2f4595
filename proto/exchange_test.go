package proto

import (
	"bytes"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"
)

func testExchange() *Exchange {
	x := &Exchange{cfg: Config{Port: 4117, Node: 0xc0000201, Boot: 7, Interval: time.Second, LANs: []LAN{
		{Name: "eth0", IfIndex: 2, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		{Name: "eth1", IfIndex: 3, Addr: netip.MustParsePrefix("198.51.100.1/24")},
	}}}
	x.storeLANs(x.cfg.LANs)
	return x
}

// checkCase is one packet offered to Exchange.check: accepted on lan, or
// dropped for drop.
type checkCase struct {
	name string
	node uint32
	boot uint32
	cm   control
	src  string
	lan  int
	drop int // -1: accepted
}

func runCheckCases(t *testing.T, newX func() *Exchange, tests []checkCase) {
	t.Helper()
	udp := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 4117) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newX()
			p := Packet{Type: INQ, NodeID: tt.node, BootID: tt.boot}
			lan, from, ok := x.check(x.LANs(), &p, &tt.cm, udp(tt.src))
			drops := x.Drops()
			if tt.drop < 0 {
				if !ok || lan != tt.lan || from != netip.MustParseAddr(tt.src) {
					t.Errorf("check = %d, %v, %v; want LAN %d from %s", lan, from, ok, tt.lan, tt.src)
				}
				return
			}
			if ok || drops[tt.drop] != 1 {
				t.Errorf("check accepted it or counted %v, want one %s drop", drops, DropNames[tt.drop])
			}
		})
	}
}

func TestCheck(t *testing.T) {
	runCheckCases(t, testExchange, []checkCase{
		{"LAN A", 2, 1, control{hops: 255, ifIndex: 2}, "192.0.2.2", 0, -1},
		{"LAN B", 2, 1, control{hops: 255, ifIndex: 3}, "198.51.100.2", 1, -1},
		{"routed once", 2, 1, control{hops: 254, ifIndex: 2}, "192.0.2.2", 0, DropTTL},
		{"not a LAN interface", 2, 1, control{hops: 255, ifIndex: 9}, "192.0.2.2", 0, DropIface},
		{"source from another subnet", 2, 1, control{hops: 255, ifIndex: 2}, "198.51.100.2", 0, DropCross},
		{"LAN-B source on LAN A (cross-wired)", 2, 1, control{hops: 255, ifIndex: 3}, "192.0.2.2", 0, DropCross},
		{"our own broadcast", 0xc0000201, 7, control{hops: 255, ifIndex: 2}, "192.0.2.1", 0, DropSelf},
		{"someone else with our id", 0xc0000201, 8, control{hops: 255, ifIndex: 2}, "192.0.2.5", 0, DropConflict},
	})
}

// testExchange6 is a node with IPv6 on both LANs, as the lab's IPv6-only
// LANs have it.
func testExchange6() *Exchange {
	x := &Exchange{v6: true, cfg: Config{Port: 4117, Node: 0xc0000201, Boot: 7, Interval: time.Second, LANs: []LAN{
		{IfIndex: 2, Addr: netip.MustParsePrefix("2001:db8:a::1/64"), Broadcast: Group6},
		{IfIndex: 3, Addr: netip.MustParsePrefix("2001:db8:b::1/64"), Broadcast: Group6},
		{IfIndex: 4, Addr: netip.Prefix{}}, // a LAN with IPv4 only
	}}}
	x.storeLANs(x.cfg.LANs)
	return x
}

// TestCheck6 is TestCheck for the IPv6 exchange: the hop limit is held to
// 255 like the TTL, and link-local sources match no LAN.
func TestCheck6(t *testing.T) {
	runCheckCases(t, testExchange6, []checkCase{
		{"LAN A", 2, 1, control{hops: 255, ifIndex: 2}, "2001:db8:a::2", 0, -1},
		{"LAN B", 2, 1, control{hops: 255, ifIndex: 3}, "2001:db8:b::2", 1, -1},
		{"hop limit 254: routed once", 2, 1, control{hops: 254, ifIndex: 2}, "2001:db8:a::2", 0, DropTTL},
		{"hop limit 1: the multicast default", 2, 1, control{hops: 1, ifIndex: 2}, "2001:db8:a::2", 0, DropTTL},
		{"link-local source", 2, 1, control{hops: 255, ifIndex: 2}, "fe80::2", 0, DropSubnet},
		{"source from the other LAN", 2, 1, control{hops: 255, ifIndex: 2}, "2001:db8:b::2", 0, DropCross},
		{"an IPv4-only LAN", 2, 1, control{hops: 255, ifIndex: 4}, "2001:db8:c::2", 0, DropIface},
		{"not a LAN interface", 2, 1, control{hops: 255, ifIndex: 9}, "2001:db8:a::2", 0, DropIface},
		{"our own multicast", 0xc0000201, 7, control{hops: 255, ifIndex: 2}, "2001:db8:a::1", 0, DropSelf},
	})
}

// TestPeerAddrs6: a peer's IPv6 entries land on our LANs by subnet; a
// link-local or foreign entry lands nowhere, and an IPv4 entry is not
// matched against IPv6 LANs.
func TestPeerAddrs6(t *testing.T) {
	x := testExchange6()
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("fe80::2/64"),
		netip.MustParsePrefix("2001:db8:b::2/64"),
		netip.MustParsePrefix("2001:db8:c::2/64"),
		netip.MustParsePrefix("192.0.2.2/24"),
		netip.MustParsePrefix("2001:db8:a::2/64"),
	}}
	var h Heard
	x.peerAddrs(x.LANs(), &p, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("2001:db8:a::2"), netip.MustParseAddr("2001:db8:b::2")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}
}

// TestPacketAnnouncesOwnFamily: an exchange announces only the addresses of
// its own family, and none for a LAN that lacks it.
func TestPacketAnnouncesOwnFamily(t *testing.T) {
	x := testExchange6()
	var p Packet
	x.packet(&p, INQ, nil)
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:a::1/64"), netip.MustParsePrefix("2001:db8:b::1/64")}
	if len(p.Addrs) != len(want) || p.Addrs[0] != want[0] || p.Addrs[1] != want[1] {
		t.Errorf("Addrs = %v, want %v", p.Addrs, want)
	}
}

// TestParseControl6 builds the control messages the kernel delivers with
// an IPv6 packet and reads the interface and hop limit back.
func TestParseControl6(t *testing.T) {
	b := (&ipv6.ControlMessage{HopLimit: 255, IfIndex: 3, Dst: netip.MustParseAddr("ff12::4117").AsSlice()}).Marshal()
	var cm control
	if !parseControl6(b, &cm) || cm.hops != 255 || cm.ifIndex != 3 {
		t.Errorf("parseControl6 = %+v; want hops 255 on interface 3", cm)
	}
	only := (&ipv6.ControlMessage{IfIndex: 3}).Marshal()
	if parseControl6(only, &control{}) {
		t.Error("parseControl6 accepted control messages without a hop limit")
	}
	if parseControl4(b, &control{}) {
		t.Error("parseControl4 accepted IPv6 control messages")
	}
}

func TestPeerAddrs(t *testing.T) {
	x := testExchange()
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.51.100.2/24"),
		netip.MustParsePrefix("203.0.113.2/24"), // a LAN we do not have
		netip.MustParsePrefix("192.0.2.2/24"),
	}}
	var h Heard
	x.peerAddrs(x.LANs(), &p, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}
}

func TestRTT(t *testing.T) {
	x := testExchange()
	t0 := time.Now()
	for i := range 10 {
		x.sent[1][x.nsent[1]%8] = sentINQ{seq: uint64(100 + i), at: t0.Add(time.Duration(i) * time.Second)}
		x.nsent[1]++
	}
	if rtt, ok := x.rtt(1, 109, t0.Add(9*time.Second+time.Millisecond)); !ok || rtt != time.Millisecond {
		t.Errorf("rtt of the latest INQ = %v, %v", rtt, ok)
	}
	if _, ok := x.rtt(1, 101, t0.Add(10*time.Second)); ok {
		t.Error("an ACK for an INQ nine intervals old was accepted")
	}
	if _, ok := x.rtt(0, 109, t0.Add(10*time.Second)); ok {
		t.Error("an ACK for an INQ sent on another LAN was accepted")
	}
}

// TestParseControlAllocs: reading the control messages is on the
// per-packet path, for both families.
func TestParseControlAllocs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only the Linux parsers avoid allocating")
	}
	b6 := (&ipv6.ControlMessage{HopLimit: 255, IfIndex: 3}).Marshal()
	var cm control
	if n := testing.AllocsPerRun(100, func() { parseControl6(b6, &cm) }); n != 0 {
		t.Errorf("parseControl6 allocates %v times per packet", n)
	}
}

// TestCrossWired: a packet from LAN A's subnet arriving on LAN B's
// interface is dropped as cross-wired and logged once a minute per pair of
// LANs, naming both and the interface.
func TestCrossWired(t *testing.T) {
	var buf bytes.Buffer
	x := testExchange()
	x.cfg.Log = slog.New(slog.NewTextHandler(&buf, nil))
	p := Packet{Type: INQ, NodeID: 2, BootID: 1}
	src := netip.MustParseAddrPort("192.0.2.2:4117")
	for range 5 {
		if _, _, ok := x.check(x.LANs(), &p, &control{hops: 255, ifIndex: 3}, src); ok {
			t.Fatal("a LAN-A source on the LAN-B interface was accepted")
		}
	}
	if n := x.Drops()[DropCross]; n != 5 {
		t.Errorf("%d cross-wired drops, want 5", n)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "msg=cross-wired") ||
		!strings.Contains(lines[0], "packets for LAN A arrive on eth1 (LAN B): are the cables swapped?") {
		t.Errorf("log %q; want one cross-wired line naming LAN A, eth1 and LAN B", buf.String())
	}
	// The other direction is another pair, logged on its own.
	x.check(x.LANs(), &p, &control{hops: 255, ifIndex: 2}, netip.MustParseAddrPort("198.51.100.2:4117"))
	if n := strings.Count(buf.String(), "msg=cross-wired"); n != 2 {
		t.Errorf("%d cross-wired lines after the other direction, want 2", n)
	}
}

// TestSetLANs: a LAN recreated with a new interface index and address is
// where packets are taken from afterwards; the old index is no LAN, and a
// LAN without an address accepts nothing.
func TestSetLANs(t *testing.T) {
	x := testExchange()
	p := Packet{Type: INQ, NodeID: 2, BootID: 1}
	src := netip.MustParseAddrPort("203.0.113.2:4117")
	if err := x.SetLANs([]LAN{x.LANs()[0]}); err == nil {
		t.Error("SetLANs took one LAN for two")
	}
	lans := append([]LAN(nil), x.LANs()...)
	lans[1] = LAN{Name: "eth1", IfIndex: 7, Addr: netip.MustParsePrefix("203.0.113.1/24")}
	if err := x.SetLANs(lans); err != nil {
		t.Fatal(err)
	}
	if lan, _, ok := x.check(x.LANs(), &p, &control{hops: 255, ifIndex: 7}, src); !ok || lan != 1 {
		t.Errorf("check on the new index = %d, %v; want LAN B", lan, ok)
	}
	if _, _, ok := x.check(x.LANs(), &p, &control{hops: 255, ifIndex: 3}, src); ok {
		t.Error("the old interface index still counts as LAN B")
	}
	lans = append([]LAN(nil), lans...)
	lans[1].Addr = netip.Prefix{}
	x.SetLANs(lans)
	if _, _, ok := x.check(x.LANs(), &p, &control{hops: 255, ifIndex: 7}, src); ok {
		t.Error("a LAN without an address accepted a packet")
	}
	var out Packet
	x.packet(&out, INQ, nil)
	if len(out.Addrs) != 1 || out.Addrs[0] != x.LANs()[0].Addr {
		t.Errorf("announced %v; want only LAN A's address", out.Addrs)
	}
}

// TestControlDrop: a packet whose control messages are missing, incomplete
// or truncated by the kernel (MSG_CTRUNC) is dropped and counted as
// "control", appended after the older reasons so their order holds.
func TestControlDrop(t *testing.T) {
	if DropNames[DropControl] != "control" || DropControl != numDrops-1 || DropNames[DropCross] != "cross-wired" {
		t.Errorf("DropNames = %q; want control appended after cross-wired", DropNames)
	}
	x := testExchange6()
	good := (&ipv6.ControlMessage{HopLimit: 255, IfIndex: 3}).Marshal()
	var cm control
	if !x.readControl(good, 0, &cm) || cm.hops != 255 || cm.ifIndex != 3 {
		t.Errorf("readControl of complete control messages = %+v, want hops 255 on interface 3", cm)
	}
	for _, tt := range []struct {
		name  string
		b     []byte
		flags int
	}{
		{"none", nil, 0},
		{"no hop limit", (&ipv6.ControlMessage{IfIndex: 3}).Marshal(), 0},
		{"truncated by the kernel", good, msgCtrunc},
	} {
		before := x.Drops()[DropControl]
		if x.readControl(tt.b, tt.flags, &control{}) || x.Drops()[DropControl] != before+1 {
			t.Errorf("%s: accepted or not counted (%d control drops before, %d after)", tt.name, before, x.Drops()[DropControl])
		}
	}
}

// TestPeerAddrsSkipsOursAndSubnetEnds: an announced address becomes a route
// destination, so one of our own addresses (on any LAN) and the network
// and broadcast addresses of a LAN's subnet are skipped, and do not
// displace a good entry for the same LAN; the packet itself still counts.
func TestPeerAddrsSkipsOursAndSubnetEnds(t *testing.T) {
	x := testExchange()
	lans := append([]LAN(nil), x.LANs()...)
	lans = append(lans, LAN{Name: "eth2", IfIndex: 4, Addr: netip.MustParsePrefix("203.0.113.0/31")})
	x.cfg.LANs = lans
	x.storeLANs(lans)
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.2/24"),
		netip.MustParsePrefix("192.0.2.255/24"),  // LAN A's broadcast
		netip.MustParsePrefix("192.0.2.0/24"),    // LAN A's network
		netip.MustParsePrefix("198.51.100.1/24"), // our LAN-B address
		netip.MustParsePrefix("192.0.2.1/24"),    // our LAN-A address
		netip.MustParsePrefix("203.0.113.1/31"),  // a /31 has no network or broadcast address
	}}
	var h Heard
	x.peerAddrs(x.LANs(), &p, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("192.0.2.2"), {}, netip.MustParseAddr("203.0.113.1")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}

	x6 := testExchange6()
	p6 := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("2001:db8:a::2/64"),
		netip.MustParsePrefix("2001:db8:a::/64"),  // the subnet-router anycast address
		netip.MustParsePrefix("2001:db8:b::1/64"), // ours on LAN B
	}}
	var h6 Heard
	x6.peerAddrs(x6.LANs(), &p6, &h6)
	want6 := [MaxLANs]netip.Addr{netip.MustParseAddr("2001:db8:a::2")}
	if h6.Addrs != want6 {
		t.Errorf("IPv6 Addrs = %v, want %v", h6.Addrs, want6)
	}
}
