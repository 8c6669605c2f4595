package lab

import (
	"fmt"
	"strconv"
)

// Host is a namespace on one LAN only, without faild: a stranger on that
// LAN (an attacker, say) whose packets reach the nodes there and who hears
// their broadcasts, but who has no way onto the other LAN.
type Host struct {
	// NS is the namespace name.
	NS string
	// LAN is the one LAN the host is on.
	LAN LAN
	// Addr is its address there: host number ID of the LAN's subnet.
	Addr string
	// ID is its host number, the last octet of Addr.
	ID int
}

func (h *Host) String() string { return "host" + strconv.Itoa(h.ID) }

// AddHost adds a host with address number id (above MaxNodes, at most 254)
// on lan: interface eth0 with lan.Addr(id)/24, plugged into that LAN's
// bridge only. Close removes it with the rest of the lab.
func (l *Lab) AddHost(lan LAN, id int) (*Host, error) {
	if !l.hasLAN(lan) {
		return nil, fmt.Errorf("failed to add host: bad LAN %v", lan)
	}
	if id <= MaxNodes || id > 254 {
		return nil, fmt.Errorf("failed to add host: host number %d, want %d..254 (below is for nodes)", id, MaxNodes+1)
	}
	h := &Host{NS: l.nsName("h" + strconv.Itoa(id)), LAN: lan, Addr: lan.Addr(id), ID: id}
	if err := l.addNS(h.NS); err != nil {
		return nil, err
	}
	if err := setSysctls(h.NS, map[string]string{
		"ipv6/conf/all/disable_ipv6":     "1",
		"ipv6/conf/default/disable_ipv6": "1",
	}); err != nil {
		return nil, err
	}
	port := lan.port(id)
	for _, s := range [][]string{
		{l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{l.sw, "link", "set", port, "master", lan.bridge(), "up"},
		{h.NS, "link", "set", "lo", "up"},
		{h.NS, "addr", "add", h.Addr + "/24", "brd", "+", "dev", "eth0"},
		{h.NS, "link", "set", "eth0", "up"},
	} {
		if err := ipIn(s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Do runs fn in the host's namespace, as Node.Do does.
func (h *Host) Do(fn func() error) error { return inNS(h.NS, fn) }
