//go:build !linux

package proto

import (
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// parseControl4 reads the arrival interface and TTL of an IPv4 packet from
// its control messages into cm; it reports false when either is missing.
// Only the Linux version avoids allocating.
func parseControl4(b []byte, cm *control) bool {
	m := ipv4.ControlMessage{TTL: -1}
	if m.Parse(b) != nil || m.IfIndex == 0 || m.TTL < 0 {
		return false
	}
	cm.ifIndex, cm.hops = m.IfIndex, m.TTL
	return true
}

// parseControl6 does the same for IPv6 and the hop limit.
func parseControl6(b []byte, cm *control) bool {
	m := ipv6.ControlMessage{HopLimit: -1}
	if m.Parse(b) != nil || m.IfIndex == 0 || m.HopLimit < 0 {
		return false
	}
	cm.ifIndex, cm.hops = m.IfIndex, m.HopLimit
	return true
}
