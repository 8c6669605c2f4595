package proto

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	testNode = 0xc0000201 // 192.0.2.1
	testBoot = 7
)

func newTestExchange(t testing.TB, v6 bool, lans ...LAN) *Exchange {
	t.Helper()
	x, err := NewExchange(Config{Port: 4117, Node: testNode, Boot: testBoot, Interval: time.Second, V6: v6, LANs: lans})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// testExchange is a node with IPv4 on two LANs: eth0 (index 2) on LAN A,
// eth1 (index 3) on LAN B.
func testExchange(t testing.TB) *Exchange {
	return newTestExchange(t, false,
		LAN{Name: "eth0", Index: 2, Addr: netip.MustParsePrefix("192.0.2.1/24"), Broadcast: netip.MustParseAddr("192.0.2.255")},
		LAN{Name: "eth1", Index: 3, Addr: netip.MustParsePrefix("198.51.100.1/24"), Broadcast: netip.MustParseAddr("198.51.100.255")})
}

// testExchange6 is a node with IPv6 on both LANs, as the lab's IPv6-only
// LANs have it, and a third LAN with IPv4 only.
func testExchange6(t testing.TB) *Exchange {
	return newTestExchange(t, true,
		LAN{Name: "eth0", Index: 2, Addr: netip.MustParsePrefix("2001:db8:a::1/64")},
		LAN{Name: "eth1", Index: 3, Addr: netip.MustParsePrefix("2001:db8:b::1/64")},
		LAN{Name: "eth2", Index: 4})
}

// arrived is a datagram as the Conn delivers it.
func arrived(b []byte, src string, ifIndex, hops int) Message {
	buf := make([]byte, MaxLen+1)
	n := copy(buf, b)
	return Message{Buf: buf, N: n, Addr: netip.AddrPortFrom(netip.MustParseAddr(src), 4117), IfIndex: ifIndex, Hops: hops}
}

func encoded(t testing.TB, p Packet) []byte {
	t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkCase is one packet offered to Exchange.check: accepted on lan, or
// dropped for drop.
type checkCase struct {
	name    string
	node    uint32
	boot    uint32
	ifIndex int
	hops    int
	src     string
	lan     int
	drop    int // -1: accepted
}

func runCheckCases(t *testing.T, x *Exchange, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{Type: INQ, NodeID: tt.node, BootID: tt.boot}
			m := arrived(nil, tt.src, tt.ifIndex, tt.hops)
			lan, from, drop := x.check(x.LANs(), &p, &m)
			if drop != tt.drop {
				t.Fatalf("check dropped for %d, want %d", drop, tt.drop)
			}
			if drop < 0 && (lan != tt.lan || from != netip.MustParseAddr(tt.src)) {
				t.Errorf("check = LAN %d from %v; want LAN %d from %s", lan, from, tt.lan, tt.src)
			}
			if (drop == DropTTL || drop == DropIface) && lan != -1 {
				t.Errorf("check = LAN %d for a packet it cannot place; want -1", lan)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	runCheckCases(t, testExchange(t), []checkCase{
		{"LAN A", 2, 1, 2, 255, "192.0.2.2", 0, -1},
		{"LAN B", 2, 1, 3, 255, "198.51.100.2", 1, -1},
		{"routed once", 2, 1, 2, 254, "192.0.2.2", 0, DropTTL},
		{"not a LAN interface", 2, 1, 9, 255, "192.0.2.2", 0, DropIface},
		{"source from another LAN's subnet", 2, 1, 2, 255, "198.51.100.2", 0, DropCross},
		{"LAN-B source on LAN A (cross-wired)", 2, 1, 3, 255, "192.0.2.2", 0, DropCross},
		{"source on no LAN", 2, 1, 2, 255, "203.0.113.9", 0, DropSubnet},
		{"our own broadcast", testNode, testBoot, 2, 255, "192.0.2.1", 0, DropSelf},
		{"someone else with our id", testNode, testBoot + 1, 2, 255, "192.0.2.5", 0, DropConflict},
	})
}

// TestCheck6 is TestCheck for the IPv6 exchange: the hop limit is held to
// 255 like the TTL, and link-local sources match no LAN.
func TestCheck6(t *testing.T) {
	runCheckCases(t, testExchange6(t), []checkCase{
		{"LAN A", 2, 1, 2, 255, "2001:db8:a::2", 0, -1},
		{"LAN B", 2, 1, 3, 255, "2001:db8:b::2", 1, -1},
		{"hop limit 254: routed once", 2, 1, 2, 254, "2001:db8:a::2", 0, DropTTL},
		{"hop limit 1: the multicast default", 2, 1, 2, 1, "2001:db8:a::2", 0, DropTTL},
		{"link-local source", 2, 1, 2, 255, "fe80::2", 0, DropSubnet},
		{"source from the other LAN", 2, 1, 2, 255, "2001:db8:b::2", 0, DropCross},
		{"an IPv4-only LAN", 2, 1, 4, 255, "2001:db8:c::2", 0, DropIface},
		{"not a LAN interface", 2, 1, 9, 255, "2001:db8:a::2", 0, DropIface},
		{"our own multicast", testNode, testBoot, 2, 255, "2001:db8:a::1", 0, DropSelf},
	})
}

func TestPeerAddrs(t *testing.T) {
	x := testExchange(t)
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.51.100.2/24"),
		netip.MustParsePrefix("203.0.113.2/24"), // a LAN we do not have
		netip.MustParsePrefix("192.0.2.2/24"),
	}}
	var h Heard
	x.peerAddrs(x.lans.Load(), &p, &peerState{}, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}
}

// TestPeerAddrs6: a peer's IPv6 entries land on our LANs by subnet; a
// link-local or foreign entry lands nowhere, and an IPv4 entry is not
// matched against IPv6 LANs.
func TestPeerAddrs6(t *testing.T) {
	x := testExchange6(t)
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("fe80::2/64"),
		netip.MustParsePrefix("2001:db8:b::2/64"),
		netip.MustParsePrefix("2001:db8:c::2/64"),
		netip.MustParsePrefix("192.0.2.2/24"),
		netip.MustParsePrefix("2001:db8:a::2/64"),
	}}
	var h Heard
	x.peerAddrs(x.lans.Load(), &p, &peerState{}, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("2001:db8:a::2"), netip.MustParseAddr("2001:db8:b::2")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}
}

// TestPeerAddrsSkipsOursAndSubnetEnds: an announced address becomes a route
// destination, so one of our own addresses (on any LAN) and the network
// and broadcast addresses of a LAN's subnet are skipped, and do not
// displace a good entry for the same LAN; the packet itself still counts.
func TestPeerAddrsSkipsOursAndSubnetEnds(t *testing.T) {
	x := newTestExchange(t, false,
		LAN{Name: "eth0", Index: 2, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		LAN{Name: "eth1", Index: 3, Addr: netip.MustParsePrefix("198.51.100.1/24")},
		LAN{Name: "eth2", Index: 4, Addr: netip.MustParsePrefix("203.0.113.0/31")})
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.2/24"),
		netip.MustParsePrefix("192.0.2.255/24"),  // LAN A's broadcast
		netip.MustParsePrefix("192.0.2.0/24"),    // LAN A's network
		netip.MustParsePrefix("198.51.100.1/24"), // our LAN-B address
		netip.MustParsePrefix("192.0.2.1/24"),    // our LAN-A address
		netip.MustParsePrefix("203.0.113.1/31"),  // a /31 has no network or broadcast address
	}}
	var h Heard
	x.peerAddrs(x.lans.Load(), &p, &peerState{}, &h)
	want := [MaxLANs]netip.Addr{netip.MustParseAddr("192.0.2.2"), {}, netip.MustParseAddr("203.0.113.1")}
	if h.Addrs != want {
		t.Errorf("Addrs = %v, want %v", h.Addrs, want)
	}

	x6 := testExchange6(t)
	p6 := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("2001:db8:a::2/64"),
		netip.MustParsePrefix("2001:db8:a::/64"),  // the subnet-router anycast address
		netip.MustParsePrefix("2001:db8:b::1/64"), // ours on LAN B
	}}
	var h6 Heard
	x6.peerAddrs(x6.lans.Load(), &p6, &peerState{}, &h6)
	want6 := [MaxLANs]netip.Addr{netip.MustParseAddr("2001:db8:a::2")}
	if h6.Addrs != want6 {
		t.Errorf("IPv6 Addrs = %v, want %v", h6.Addrs, want6)
	}
}

// TestPacketAnnouncesOwnFamily: an exchange announces only the addresses of
// its own family, and none for a LAN that lacks it.
func TestPacketAnnouncesOwnFamily(t *testing.T) {
	x := testExchange6(t)
	var p Packet
	x.packet(&p, INQ, nil)
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:a::1/64"), netip.MustParsePrefix("2001:db8:b::1/64")}
	if len(p.Addrs) != len(want) || p.Addrs[0] != want[0] || p.Addrs[1] != want[1] {
		t.Errorf("Addrs = %v, want %v", p.Addrs, want)
	}
}

// TestParseControl builds the control messages the kernel delivers with a
// packet of each family and reads the interface and TTL or hop limit back;
// what is missing stays unknown.
func TestParseControl(t *testing.T) {
	b4 := (&ipv4.ControlMessage{IfIndex: 3, Dst: netip.MustParseAddr("192.0.2.255").AsSlice()}).Marshal() // no TTL: Marshal leaves it out
	b6 := (&ipv6.ControlMessage{HopLimit: 254, IfIndex: 5, Dst: Group6.AsSlice()}).Marshal()
	for _, tt := range []struct {
		name          string
		b             []byte
		v6            bool
		ifIndex, hops int
	}{
		{"IPv4 without a TTL", b4, false, 3, -1},
		{"IPv6", b6, true, 5, 254},
		{"IPv6 without a hop limit", (&ipv6.ControlMessage{IfIndex: 3}).Marshal(), true, 3, -1},
		{"IPv4 read as IPv6", b4, true, 0, -1},
		{"IPv6 read as IPv4", b6, false, 0, -1},
		{"none", nil, false, 0, -1},
	} {
		m := Message{Hops: -1}
		parseControl(tt.b, tt.v6, &m)
		if m.IfIndex != tt.ifIndex || m.Hops != tt.hops {
			t.Errorf("%s: interface %d, hops %d; want %d, %d", tt.name, m.IfIndex, m.Hops, tt.ifIndex, tt.hops)
		}
	}
}

// TestAnswered: an ACK counts, with its INQ's number and round trip, only
// when it answers one of the latest INQs sent on its own LAN (a round's
// version-1 copy has the round's number); an echo of 0 or of a slot never
// filled matches nothing.
func TestAnswered(t *testing.T) {
	x := testExchange(t)
	q, err := x.NewRequestor()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 10 {
		q.nsent[1]++
		for c := range 2 { // a round's version-2 INQ and its version-1 copy: one number
			q.sent[1][q.nrec[1]%sentRing] = sentINQ{seq: uint64(100 + 2*i + c), n: q.nsent[1], at: t0.Add(time.Duration(i) * time.Second)}
			q.nrec[1]++
		}
	}
	for _, echo := range []uint64{118, 119} {
		if n, rtt, ok := q.Answered(1, echo, t0.Add(9*time.Second+time.Millisecond)); !ok || n != 10 || rtt != time.Millisecond {
			t.Errorf("the latest round's INQ %d: number %d, round trip %v, %v; want 10, 1ms", echo, n, rtt, ok)
		}
	}
	if n, at := q.Sent(1); n != 10 || !at.Equal(t0.Add(9*time.Second)) {
		t.Errorf("Sent = %d at %v, want 10 at 9s", n, at.Sub(t0))
	}
	q.sent[0][0] = sentINQ{seq: 200, n: 1, at: t0}
	if n, rtt, ok := q.Answered(0, 200, t0.Add(2*time.Millisecond)); !ok || n != 1 || rtt != 2*time.Millisecond {
		t.Errorf("the INQ on LAN A: number %d, round trip %v, %v; want 1, 2ms", n, rtt, ok)
	}
	for _, tt := range []struct {
		name string
		lan  int
		echo uint64
	}{
		{"an INQ of the ninth latest round", 1, 103},
		{"an INQ sent on another LAN", 0, 109},
		{"echo 0, never sent", 0, 0},
		{"no LAN", -1, 109},
		{"a LAN past the last", MaxLANs, 109},
	} {
		before := x.Drops()[DropStaleACK]
		if _, _, ok := q.Answered(tt.lan, tt.echo, t0.Add(10*time.Second)); ok || x.Drops()[DropStaleACK] != before+1 {
			t.Errorf("%s: accepted, or not counted stale", tt.name)
		}
	}
}

// TestReceive follows packets through the whole receive path: an INQ is
// evidence (its number and boot id passed on) and answered out of its
// arrival interface, to its source, with our sequence in the echo; an INQ
// that lists us as deaf is answered but no evidence; an ACK is evidence
// with its echo and no answer; a replay is dropped.
func TestReceive(t *testing.T) {
	x := testExchange(t)
	r, err := x.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	peer := Packet{Type: INQ, NodeID: 0xc0000202, BootID: 1, Seq: 50, Echo: 7, Interval: 100 * time.Millisecond,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("198.51.100.2/24")}}
	now := time.Now()
	receive := func(p Packet, ifIndex int, src string) (Heard, bool, bool, Message) {
		m := arrived(encoded(t, p), src, ifIndex, 255)
		reply := Message{Buf: make([]byte, 0, MaxLen)}
		var h Heard
		ev, replied := r.Receive(&m, now, &h, &reply)
		return h, ev, replied, reply
	}

	h, ev, replied, reply := receive(peer, 3, "198.51.100.2")
	if !ev || h.LAN != 1 || h.Node != 0xc0000202 || h.Type != INQ || h.Interval != peer.Interval || h.Echo != 7 || h.Boot != 1 ||
		h.Addrs[0] != netip.MustParseAddr("192.0.2.2") || h.Addrs[1] != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("INQ on LAN B: evidence %v, heard %+v", ev, h)
	}
	var ack Packet
	if !replied || ack.Decode(reply.Buf) != nil || ack.Type != ACK || ack.Echo != 50 || ack.NodeID != testNode ||
		reply.IfIndex != 3 || reply.Addr != netip.MustParseAddrPort("198.51.100.2:4117") ||
		reply.Src != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("answer to the INQ: replied %v, %+v out of %d to %v from %v", replied, ack, reply.IfIndex, reply.Addr, reply.Src)
	}

	deaf := peer
	deaf.Seq, deaf.Deaf = 51, []uint32{7, testNode}
	if h, ev, replied, _ := receive(deaf, 3, "198.51.100.2"); !ev || !h.Deaf || !replied {
		t.Errorf("INQ listing us as deaf: heard %v (deaf %v), answered %v; want heard as deaf, answered", ev, h.Deaf, replied)
	}
	if h, _, _, _ := receive(peer2(peer, 53), 3, "198.51.100.2"); h.Deaf {
		t.Error("an INQ that does not list us counts as deaf")
	}

	a := peer
	a.Type, a.Seq, a.Echo = ACK, 52, 12345
	if h, ev, replied, _ := receive(a, 2, "192.0.2.2"); !ev || replied || h.Type != ACK || h.Echo != 12345 || h.LAN != 0 {
		t.Errorf("ACK on LAN A: evidence %v, answered %v, heard %+v", ev, replied, h)
	}

}

// TestReceiveReplay: with a key, a packet heard before is dropped as a
// replay and not answered.
func TestReceiveReplay(t *testing.T) {
	x, err := NewExchange(Config{Port: 4117, Node: testNode, Boot: testBoot, Interval: time.Second, Keys: [][]byte{testKey},
		LANs: testExchange(t).LANs()})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := x.NewReceiver()
	b := signed(t, [][]byte{testKey}, Packet{Type: INQ, NodeID: 0xc0000202, BootID: 1, Seq: 50, Interval: time.Second,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	for i, want := range []bool{true, false} {
		m := arrived(b, "192.0.2.2", 2, 255)
		heard, replied := r.Receive(&m, time.Now(), &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)})
		if heard != want || replied != want {
			t.Errorf("copy %d: heard %v, answered %v; want %v", i+1, heard, replied, want)
		}
	}
	if n := x.Drops()[DropReplay]; n != 1 {
		t.Errorf("%d replay drops, want 1", n)
	}
}

func peer2(p Packet, seq uint64) Packet {
	p.Seq, p.Deaf = seq, []uint32{7, 8}
	return p
}

// TestControlDrop: a datagram that came without its arrival interface or
// TTL (missing, or cut short by the kernel) is dropped and counted as
// "control", appended after the older reasons so their order holds.
func TestControlDrop(t *testing.T) {
	if DropNames[DropControl] != "control" || DropControl != numDrops-1 || DropNames[DropCross] != "cross-wired" {
		t.Errorf("DropNames = %q; want control appended after cross-wired", DropNames)
	}
	x := testExchange(t)
	r, _ := x.NewReceiver()
	b := encoded(t, Packet{Type: INQ, NodeID: 2, BootID: 1, Seq: 1})
	for _, m := range []Message{arrived(b, "192.0.2.2", 0, 255), arrived(b, "192.0.2.2", 2, -1)} {
		before := x.Drops()[DropControl]
		if ev, replied := r.Receive(&m, time.Now(), &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)}); ev || replied ||
			x.Drops()[DropControl] != before+1 {
			t.Errorf("interface %d, hops %d: accepted or not counted", m.IfIndex, m.Hops)
		}
	}
	// A TTL that is there, however low, is the TTL rule's to drop.
	m := arrived(b, "192.0.2.2", 2, 0)
	before := x.Drops()
	r.Receive(&m, time.Now(), &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)})
	if d := x.Drops(); d[DropTTL] != before[DropTTL]+1 || d[DropControl] != before[DropControl] {
		t.Errorf("TTL 0: drops %v, want one more ttl", d)
	}
}

// TestCrossWired: a packet from LAN A's subnet arriving on LAN B's
// interface is dropped as cross-wired and logged once a minute per pair of
// LANs, naming both and the interface.
func TestCrossWired(t *testing.T) {
	var buf bytes.Buffer
	x, _ := NewExchange(Config{Port: 4117, Node: testNode, Boot: testBoot, LANs: testExchange(t).LANs(),
		Log: slog.New(slog.NewTextHandler(&buf, nil))})
	r, _ := x.NewReceiver()
	b := encoded(t, Packet{Type: INQ, NodeID: 2, BootID: 1, Seq: 1})
	now := time.Now()
	for range 5 {
		m := arrived(b, "192.0.2.2", 3, 255)
		if ev, _ := r.Receive(&m, now, &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)}); ev {
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
	// The other direction is another pair, logged on its own; a minute
	// later the first pair is logged again.
	m := arrived(b, "198.51.100.2", 2, 255)
	r.Receive(&m, now, &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)})
	m = arrived(b, "192.0.2.2", 3, 255)
	r.Receive(&m, now.Add(crossLogEvery), &Heard{}, &Message{Buf: make([]byte, 0, MaxLen)})
	if n := strings.Count(buf.String(), "msg=cross-wired"); n != 3 {
		t.Errorf("%d cross-wired lines after the other direction and a minute, want 3", n)
	}
}

// TestSetLANs: a LAN recreated with a new interface index and address is
// where packets are taken from afterwards; the old index is no LAN, and a
// LAN without an address accepts nothing and is not announced.
func TestSetLANs(t *testing.T) {
	x := testExchange(t)
	p := Packet{Type: INQ, NodeID: 2, BootID: 1}
	if err := x.SetLANs([]LAN{x.LANs()[0]}); err == nil {
		t.Error("SetLANs took one LAN for two")
	}
	lans := append([]LAN(nil), x.LANs()...)
	lans[1] = LAN{Name: "eth1", Index: 7, Addr: netip.MustParsePrefix("203.0.113.1/24")}
	if err := x.SetLANs(lans); err != nil {
		t.Fatal(err)
	}
	on := func(ifIndex int) (int, int) {
		m := arrived(nil, "203.0.113.2", ifIndex, 255)
		lan, _, drop := x.check(x.LANs(), &p, &m)
		return lan, drop
	}
	if lan, drop := on(7); drop >= 0 || lan != 1 {
		t.Errorf("check on the new index = LAN %d, drop %d; want LAN B", lan, drop)
	}
	if _, drop := on(3); drop != DropIface {
		t.Errorf("the old interface index: drop %d, want iface", drop)
	}
	lans = append([]LAN(nil), lans...)
	lans[1].Addr = netip.Prefix{}
	x.SetLANs(lans)
	if _, drop := on(7); drop != DropIface {
		t.Errorf("a LAN without an address: drop %d, want iface", drop)
	}
	var out Packet
	x.packet(&out, INQ, nil)
	if len(out.Addrs) != 1 || out.Addrs[0] != x.LANs()[0].Addr {
		t.Errorf("announced %v; want only LAN A's address", out.Addrs)
	}
}

// TestINQs: one INQ a LAN that can send, to its broadcast address from our
// address there, with the LAN's own deaf list; with --peer, the same INQ by
// unicast to each listed peer on the LAN, none on a LAN with no one to ask;
// over IPv6 multicast names its source and unicast leaves it to the
// kernel.
func TestINQs(t *testing.T) {
	x := testExchange(t)
	q, _ := x.NewRequestor()
	q.round = v1Every // past the first rounds, whose version-1 INQs TestViewRotates covers
	deaf := func(lan int, _ time.Time) []uint32 { return []uint32{uint32(100 + lan)} }
	ms, err := q.INQs(time.Now(), Round{Deaf: deaf}, nil)
	if err != nil || len(ms) != 2 {
		t.Fatalf("INQs = %d messages, %v; want one per LAN", len(ms), err)
	}
	for i, m := range ms {
		l := x.LANs()[i]
		var p Packet
		if p.Decode(m.Buf) != nil || p.Type != INQ || p.Echo != 1 || len(p.Deaf) != 1 || p.Deaf[0] != uint32(100+i) ||
			m.Addr != netip.AddrPortFrom(l.Broadcast, 4117) || m.IfIndex != l.Index || m.Src != l.Addr.Addr() {
			t.Errorf("INQ %d: %+v to %v out of %d from %v", i, p, m.Addr, m.IfIndex, m.Src)
		}
	}

	lans := append([]LAN(nil), x.LANs()...)
	lans[0].Unicast, lans[0].Peers = true, []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}
	lans[1].Unicast = true
	x.SetLANs(lans)
	ms, _ = q.INQs(time.Now(), Round{}, nil)
	if len(ms) != 2 || ms[0].Addr.Addr() != lans[0].Peers[0] || ms[1].Addr.Addr() != lans[0].Peers[1] || ms[0].IfIndex != 2 {
		t.Errorf("unicast INQs = %+v; want one to each LAN-A peer and none on LAN B", ms)
	}
	// Each INQ carries its number on its LAN: the copies of one to each
	// peer the same, and a LAN that sent none skips no number.
	for i, m := range ms {
		var p Packet
		if p.Decode(m.Buf) != nil || p.Echo != 2 {
			t.Errorf("unicast INQ %d: number %d, want 2", i, p.Echo)
		}
	}
	// A version-1 copy carries its round's number.
	x.SetLANs(testExchange(t).LANs())
	ms, _ = q.INQs(time.Now(), Round{V1: true}, nil)
	want := []struct {
		version uint8
		n       uint64
	}{{Version2, 3}, {Version, 3}, {Version2, 2}, {Version, 2}}
	if len(ms) != len(want) {
		t.Fatalf("INQs with V1 = %d messages, want %d", len(ms), len(want))
	}
	for i, m := range ms {
		var p Packet
		if p.Decode(m.Buf) != nil || p.Version != want[i].version || p.Echo != want[i].n {
			t.Errorf("INQ %d: version %d number %d, want %+v", i, p.Version, p.Echo, want[i])
		}
	}

	x6 := testExchange6(t)
	q6, _ := x6.NewRequestor()
	q6.round = v1Every
	ms, _ = q6.INQs(time.Now(), Round{}, nil)
	if len(ms) != 2 || ms[0].Addr.Addr() != Group6 || ms[0].Src != netip.MustParseAddr("2001:db8:a::1") {
		t.Errorf("IPv6 INQs = %+v; want two to %v naming our address", ms, Group6)
	}
	r6, _ := x6.NewReceiver()
	m := arrived(encoded(t, Packet{Type: INQ, NodeID: 2, BootID: 1, Seq: 1}), "2001:db8:a::2", 2, 255)
	reply := Message{Buf: make([]byte, 0, MaxLen)}
	if _, replied := r6.Receive(&m, time.Now(), &Heard{}, &reply); !replied || reply.Src.IsValid() || reply.IfIndex != 2 {
		t.Errorf("IPv6 ACK: answered %v from %v out of %d; want no source named, out of 2", replied, reply.Src, reply.IfIndex)
	}
}

// failingConn fails the writes to one address and records the rest.
type failingConn struct {
	Conn
	bad  netip.AddrPort
	sent []netip.AddrPort
}

func (c *failingConn) WriteBatch(ms []Message) (int, error) {
	for i, m := range ms {
		if m.Addr == c.bad {
			if i == 0 {
				i = -1 // as sendmmsg reports a first message that failed
			}
			return i, errors.New("network is unreachable")
		}
		c.sent = append(c.sent, m.Addr)
	}
	return len(ms), nil
}

// TestWriteAll: a message that cannot be sent is reported and the rest go
// all the same.
func TestWriteAll(t *testing.T) {
	a := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	c := &failingConn{bad: a("192.0.2.255:4117")}
	var failed []netip.AddrPort
	for _, ms := range [][]Message{
		{{Addr: a("198.51.100.2:4117")}, {Addr: c.bad}, {Addr: a("198.51.100.3:4117")}},
		{{Addr: c.bad}, {Addr: a("198.51.100.2:4117")}, {Addr: a("198.51.100.3:4117")}},
	} {
		failed, c.sent = nil, nil
		WriteAll(c, ms, func(m *Message, err error) { failed = append(failed, m.Addr) })
		if len(failed) != 1 || failed[0] != c.bad || len(c.sent) != 2 {
			t.Errorf("failed %v, sent %v; want the one bad address failed and both others sent", failed, c.sent)
		}
	}
}
