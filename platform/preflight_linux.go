//go:build linux

package platform

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procSys is where sysctls are read; tests point it elsewhere.
var procSys = "/proc/sys"

// rpFilterWarnings warns of strict reverse-path filtering on a LAN
// interface. After a failover a peer's packets for this node's LAN-A
// address arrive over LAN B; until both ends have moved, strict filtering
// drops them. The kernel applies the larger of "all" and the interface's
// own value.
func rpFilterWarnings(lans []LAN) []string {
	all := readSysctl("net/ipv4/conf/all/rp_filter")
	var warns []string
	for _, l := range lans {
		if v := max(all, readSysctl("net/ipv4/conf/"+l.Name+"/rp_filter")); v == 1 {
			warns = append(warns, fmt.Sprintf(
				"rp_filter is strict on %s: traffic that fails over to this LAN can be dropped; set it loose with: sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.%s.rp_filter=2",
				l.Name, l.Name))
		}
	}
	return warns
}

// readSysctl returns the integer value of a sysctl, or 0 if it cannot be read.
func readSysctl(name string) int {
	b, err := os.ReadFile(procSys + "/" + name)
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return v
}
