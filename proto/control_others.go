//go:build !linux

package proto

import "golang.org/x/net/ipv4"

// parseControl reads the arrival interface and TTL of a packet from its
// control messages into cm; it reports false when either is missing. Only
// the Linux version avoids allocating.
func parseControl(b []byte, cm *ipv4.ControlMessage) bool {
	*cm = ipv4.ControlMessage{TTL: -1}
	if cm.Parse(b) != nil {
		return false
	}
	return cm.IfIndex != 0 && cm.TTL >= 0
}
