//go:build linux

package platform

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPickAddr6(t *testing.T) {
	addr := func(s string, flags int) netlink.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return netlink.Addr{IPNet: n, Flags: flags}
	}
	tests := []struct {
		name  string
		addrs []netlink.Addr
		want  string // "" for none
	}{
		{"none", nil, ""},
		{"link-local only", []netlink.Addr{addr("fe80::1/64", 0)}, ""},
		{"global after link-local", []netlink.Addr{addr("fe80::1/64", 0), addr("2001:db8:a::1/64", 0)}, "2001:db8:a::1/64"},
		{"unique-local", []netlink.Addr{addr("fd00:1::1/64", 0)}, "fd00:1::1/64"},
		{"tentative skipped", []netlink.Addr{addr("2001:db8:a::1/64", unix.IFA_F_TENTATIVE), addr("2001:db8:a::2/64", 0)}, "2001:db8:a::2/64"},
		{"dad failed skipped", []netlink.Addr{addr("2001:db8:a::1/64", unix.IFA_F_DADFAILED)}, ""},
		{"preferred over deprecated", []netlink.Addr{addr("2001:db8:a::1/64", unix.IFA_F_DEPRECATED), addr("2001:db8:a::2/64", 0)}, "2001:db8:a::2/64"},
		{"deprecated if nothing else", []netlink.Addr{addr("2001:db8:a::1/64", unix.IFA_F_DEPRECATED)}, "2001:db8:a::1/64"},
		{"loopback and multicast", []netlink.Addr{addr("::1/128", 0), addr("ff02::1/128", 0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickAddr6(tt.addrs)
			var want netip.Prefix
			if tt.want != "" {
				want = netip.MustParsePrefix(tt.want)
			}
			if got != want {
				t.Errorf("pickAddr6 = %v, want %v", got, want)
			}
		})
	}
}
