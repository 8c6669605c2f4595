//go:build !linux

package proto

import (
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// parseControl reads the arrival interface and the TTL or hop limit of a
// datagram from its control messages into m; a field that is missing stays
// as it was (0, -1). Only the Linux version avoids allocating.
func parseControl(b []byte, v6 bool, m *Message) {
	if v6 {
		c := ipv6.ControlMessage{HopLimit: -1}
		if c.Parse(b) == nil {
			m.IfIndex, m.Hops = c.IfIndex, c.HopLimit
		}
		return
	}
	c := ipv4.ControlMessage{TTL: -1}
	if c.Parse(b) == nil {
		m.IfIndex, m.Hops = c.IfIndex, c.TTL
	}
}
