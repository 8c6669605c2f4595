package proto

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func testExchange() *Exchange {
	return &Exchange{cfg: Config{Port: 4117, Node: 0xc0000201, Boot: 7, Interval: time.Second, LANs: []LAN{
		{IfIndex: 2, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		{IfIndex: 3, Addr: netip.MustParsePrefix("198.51.100.1/24")},
	}}}
}

func TestCheck(t *testing.T) {
	udp := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 4117) }
	tests := []struct {
		name string
		node uint32
		boot uint32
		cm   ipv4.ControlMessage
		src  string
		lan  int
		drop int // -1: accepted
	}{
		{"LAN A", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "192.0.2.2", 0, -1},
		{"LAN B", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 3}, "198.51.100.2", 1, -1},
		{"routed once", 2, 1, ipv4.ControlMessage{TTL: 254, IfIndex: 2}, "192.0.2.2", 0, DropTTL},
		{"not a LAN interface", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 9}, "192.0.2.2", 0, DropIface},
		{"source from another subnet", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "198.51.100.2", 0, DropSubnet},
		{"LAN-B source on LAN A (cross-wired)", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 3}, "192.0.2.2", 0, DropSubnet},
		{"our own broadcast", 0xc0000201, 7, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "192.0.2.1", 0, DropSelf},
		{"someone else with our id", 0xc0000201, 8, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "192.0.2.5", 0, DropConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := testExchange()
			p := Packet{Type: INQ, NodeID: tt.node, BootID: tt.boot}
			lan, from, ok := x.check(&p, &tt.cm, udp(tt.src))
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

func TestPeerAddrs(t *testing.T) {
	x := testExchange()
	p := Packet{Addrs: []netip.Prefix{
		netip.MustParsePrefix("198.51.100.2/24"),
		netip.MustParsePrefix("203.0.113.2/24"), // a LAN we do not have
		netip.MustParsePrefix("192.0.2.2/24"),
	}}
	var h Heard
	x.peerAddrs(&p, &h)
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
