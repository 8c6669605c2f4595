package platform

import (
	"net/netip"
	"testing"
)

func TestBroadcastOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1/24":    "192.0.2.255",
		"198.51.100.9/25": "198.51.100.127",
		"203.0.113.7/32":  "203.0.113.7",
		"192.0.2.1/0":     "255.255.255.255",
	} {
		if got := broadcastOf(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcastOf(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestQualifies(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		lan  LAN
		ok   bool
		v4   bool
	}{
		{"IPv4 with broadcast", LAN{Addr: p("192.0.2.1/24"), Broadcast: netip.MustParseAddr("192.0.2.255")}, true, true},
		{"IPv4 /32 tunnel", LAN{Addr: p("203.0.113.7/32"), Broadcast: netip.MustParseAddr("203.0.113.7"), NoBroadcast: true}, false, false},
		{"tunnel with IPv6", LAN{Addr: p("203.0.113.7/32"), NoBroadcast: true, Addr6: p("2001:db8:a::1/64")}, true, false},
		{"IPv6 only", LAN{Addr6: p("2001:db8:a::1/64")}, true, false},
	}
	for _, tt := range tests {
		got, ok := qualifies(tt.lan)
		if ok != tt.ok || got.Addr.IsValid() != tt.v4 {
			t.Errorf("%s: qualifies = %v (IPv4 kept %v), want %v (%v)", tt.name, ok, got.Addr.IsValid(), tt.ok, tt.v4)
		}
	}
}
