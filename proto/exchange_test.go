package proto

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func testExchange() *Exchange {
	x := &Exchange{cfg: Config{Port: 4117, Node: 0xc0000201, Boot: 7, Interval: time.Second, LANs: []LAN{
		{Name: "eth0", IfIndex: 2, Addr: netip.MustParsePrefix("192.0.2.1/24")},
		{Name: "eth1", IfIndex: 3, Addr: netip.MustParsePrefix("198.51.100.1/24")},
	}}}
	lans := x.cfg.LANs
	x.lans.Store(&lans)
	return x
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
		{"source from a subnet of no LAN", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "203.0.113.2", 0, DropSubnet},
		{"LAN-B source on LAN A (cross-wired)", 2, 1, ipv4.ControlMessage{TTL: 255, IfIndex: 3}, "192.0.2.2", 0, DropCross},
		{"our own broadcast", 0xc0000201, 7, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "192.0.2.1", 0, DropSelf},
		{"someone else with our id", 0xc0000201, 8, ipv4.ControlMessage{TTL: 255, IfIndex: 2}, "192.0.2.5", 0, DropConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := testExchange()
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
		if _, _, ok := x.check(x.LANs(), &p, &ipv4.ControlMessage{TTL: 255, IfIndex: 3}, src); ok {
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
	x.check(x.LANs(), &p, &ipv4.ControlMessage{TTL: 255, IfIndex: 2}, netip.MustParseAddrPort("198.51.100.2:4117"))
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
	if lan, _, ok := x.check(x.LANs(), &p, &ipv4.ControlMessage{TTL: 255, IfIndex: 7}, src); !ok || lan != 1 {
		t.Errorf("check on the new index = %d, %v; want LAN B", lan, ok)
	}
	if _, _, ok := x.check(x.LANs(), &p, &ipv4.ControlMessage{TTL: 255, IfIndex: 3}, src); ok {
		t.Error("the old interface index still counts as LAN B")
	}
	lans = append([]LAN(nil), lans...)
	lans[1].Addr = netip.Prefix{}
	x.SetLANs(lans)
	if _, _, ok := x.check(x.LANs(), &p, &ipv4.ControlMessage{TTL: 255, IfIndex: 7}, src); ok {
		t.Error("a LAN without an address accepted a packet")
	}
	var out Packet
	x.packet(&out, INQ, nil)
	if len(out.Addrs) != 1 || out.Addrs[0] != x.LANs()[0].Addr {
		t.Errorf("announced %v; want only LAN A's address", out.Addrs)
	}
}
