//go:build linux

package platform

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPreflight(t *testing.T) {
	dir := t.TempDir()
	procSys = dir
	defer func() { procSys = "/proc/sys" }()
	for name, v := range map[string]string{"all": "0", "eth0": "1", "eth1": "2", "eth2": "0"} {
		writeRPFilter(t, dir, name, v+"\n")
	}
	lan := func(name, addr string, noBrd bool) LAN {
		p := netip.MustParsePrefix(addr)
		return LAN{Name: name, Addr: p, Broadcast: broadcastOf(p), NoBroadcast: noBrd}
	}
	tests := []struct {
		name string
		lans []LAN
		want []string // one part of each warning, in order
	}{
		{"clean", []LAN{lan("eth1", "198.51.100.1/24", false), lan("eth2", "203.0.113.1/24", false)}, nil},
		{"strict rp_filter", []LAN{lan("eth0", "192.0.2.1/24", false), lan("eth1", "198.51.100.1/24", false)},
			[]string{"rp_filter is strict on eth0"}},
		{"shared subnet", []LAN{lan("eth1", "198.51.100.1/24", false), lan("eth2", "198.51.100.9/25", false)},
			[]string{"share a subnet"}},
		{"no broadcast", []LAN{lan("eth1", "198.51.100.1/24", true), lan("eth2", "203.0.113.1/24", false)},
			[]string{"eth1 has no broadcast address; INQs go to 198.51.100.255"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Preflight(tt.lans)
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q, want it to say %q", got[i], w)
				}
			}
		})
	}
	// "all" set to strict makes an interface strict unless its own value is
	// larger (loose).
	writeRPFilter(t, dir, "all", "1")
	if got := Preflight([]LAN{lan("eth2", "203.0.113.1/24", false)}); len(got) != 1 {
		t.Errorf("with all=1: %q, want one warning", got)
	}
}

// writeRPFilter writes an rp_filter value for an interface (or "all")
// under a fake /proc/sys.
func writeRPFilter(t *testing.T, procSys, iface, v string) {
	t.Helper()
	p := filepath.Join(procSys, "net/ipv4/conf", iface)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "rp_filter"), []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
}
