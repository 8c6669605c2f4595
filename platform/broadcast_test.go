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
