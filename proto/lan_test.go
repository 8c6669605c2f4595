package proto

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLANGone: a LAN whose interface is gone (index 0) keeps its place and
// may keep its last address, but is not up: no INQ goes out on it, by
// broadcast or by unicast, no packet counts as arriving on it, and
// LANOf lays nothing at its door.
func TestLANGone(t *testing.T) {
	x := testExchange(t)
	lans := append([]LAN(nil), x.LANs()...)
	lans[0].Index = 0
	if err := x.SetLANs(lans); err != nil {
		t.Fatal(err)
	}
	q, err := x.NewRequestor()
	if err != nil {
		t.Fatal(err)
	}
	// A node's first rounds send a version-1 copy of each INQ too: all
	// of them go out of LAN B.
	onlyB := func(ms []Message) bool {
		return len(ms) > 0 && slices.Equal(ifIndexes(ms), slices.Repeat([]int{3}, len(ms)))
	}
	ms, err := q.INQs(time.Now(), Round{}, nil)
	if err != nil || !onlyB(ms) {
		t.Errorf("INQs with LAN A gone: out of %v, %v; want them on LAN B (index 3) only", ifIndexes(ms), err)
	}
	if lan := x.LANOf(0); lan != -1 {
		t.Errorf("LANOf(0) = %d with LAN A gone, want -1", lan)
	}
	p := Packet{Type: INQ, NodeID: 2, BootID: 1}
	m := arrived(nil, "192.0.2.2", 0, 255)
	if lan, _, drop := x.check(x.LANs(), &p, &m); drop != DropIface {
		t.Errorf("a packet on interface 0: LAN %d, drop %d; want iface (%d)", lan, drop, DropIface)
	}

	lans = append([]LAN(nil), lans...)
	lans[0].Unicast, lans[0].Peers = true, []netip.Addr{netip.MustParseAddr("192.0.2.2")}
	if err := x.SetLANs(lans); err != nil {
		t.Fatal(err)
	}
	if ms, _ := q.INQs(time.Now(), Round{}, nil); !onlyB(ms) {
		t.Errorf("INQs with LAN A gone and --peer on it: out of %v; want them on LAN B only", ifIndexes(ms))
	}
}

// TestLANOf: a send failure is logged against the LAN of the interface the
// message went out of, and against none for an interface no LAN has.
func TestLANOf(t *testing.T) {
	x := testExchange(t) // LAN A on index 2, LAN B on 3
	for ifIndex, want := range map[int]int{2: 0, 3: 1, 4: -1, 0: -1, -1: -1} {
		if got := x.LANOf(ifIndex); got != want {
			t.Errorf("LANOf(%d) = %d, want %d", ifIndex, got, want)
		}
	}
}

// TestNewExchangeLANs: an exchange takes up to MaxLANs LANs, and names
// the limit past it.
func TestNewExchangeLANs(t *testing.T) {
	lans := make([]LAN, MaxLANs+1)
	if _, err := NewExchange(Config{LANs: lans[:MaxLANs]}); err != nil {
		t.Errorf("%d LANs: %v", MaxLANs, err)
	}
	if _, err := NewExchange(Config{LANs: lans}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d", MaxLANs)) {
		t.Errorf("%d LANs: %v, want an error naming the limit", MaxLANs+1, err)
	}
}

// ifIndexes lists the interfaces messages go out of.
func ifIndexes(ms []Message) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.IfIndex)
	}
	return out
}

// TestSubnetEnd: the network address (IPv4 and IPv6) and the broadcast
// address (IPv4) of a subnet with two host bits or more are its ends; a
// /31 or /127 (RFC 3021 point-to-point) has none, and a host address is
// never one.
func TestSubnetEnd(t *testing.T) {
	for _, tt := range []struct {
		subnet, ip string
		want       bool
	}{
		{"192.0.2.0/30", "192.0.2.0", true},
		{"192.0.2.0/30", "192.0.2.3", true},
		{"192.0.2.0/30", "192.0.2.1", false},
		{"192.0.2.0/30", "192.0.2.2", false},
		{"192.0.2.1/24", "192.0.2.255", true}, // the subnet given by an address in it
		{"192.0.2.1/24", "192.0.2.0", true},
		{"192.0.2.1/24", "192.0.2.254", false},
		{"192.0.2.0/31", "192.0.2.0", false},
		{"192.0.2.0/31", "192.0.2.1", false},
		{"192.0.2.1/32", "192.0.2.1", false},
		{"2001:db8:a::1/64", "2001:db8:a::", true},
		{"2001:db8:a::1/64", "2001:db8:a:0:ffff:ffff:ffff:ffff", false}, // IPv6 has no broadcast
		{"2001:db8:a::/126", "2001:db8:a::", true},
		{"2001:db8:a::/127", "2001:db8:a::", false},
		{"2001:db8:a::/127", "2001:db8:a::1", false},
	} {
		if got := SubnetEnd(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("SubnetEnd(%s, %s) = %v, want %v", tt.subnet, tt.ip, got, tt.want)
		}
	}
}
