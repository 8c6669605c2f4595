package daemon

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// findLANs finds the LANs at start. Named interfaces (-i) are looked up
// one by one: one that does not exist yet, or has no address yet, is a LAN
// that is down until it comes (at boot, a LAN's interface may come up
// after faild), not a reason to stop. Without names, discovery must find
// at least two.
func (d *Daemon) findLANs() ([]platform.LAN, error) {
	if len(d.cfg.Interfaces) == 0 {
		lans, err := d.deps.Interfaces.Discover(nil)
		switch {
		case err != nil:
			return nil, fmt.Errorf("failed to find LAN interfaces: %w", err)
		case len(lans) < 2:
			return nil, fmt.Errorf("failed to find LAN interfaces: need at least two, found %d (%s); name them with -i", len(lans), describe(lans))
		case len(lans) > proto.MaxLANs:
			return nil, fmt.Errorf("failed to find LAN interfaces: found %d, at most %d; name them with -i", len(lans), proto.MaxLANs)
		}
		return lans, nil
	}
	var lans []platform.LAN
	for _, name := range d.cfg.Interfaces {
		l, err := d.deps.Interfaces.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("failed to find LAN interfaces: %w", err)
		}
		if l.Loopback {
			return nil, configErrorf("invalid -i/--interface %s: a loopback interface, not a LAN", name)
		}
		lans = append(lans, l)
	}
	return lans, nil
}

// concerns reports whether an interface change may touch one of our LANs:
// it names one of their interfaces, or has the index one of them has now.
func (d *Daemon) concerns(c platform.LinkChange) bool {
	if c.Lost {
		return true
	}
	for i, l := range d.lans {
		if c.Index == l.Index && l.Index > 0 || c.Name != "" && c.Name == d.names[i] {
			return true
		}
	}
	return false
}

// refreshLANs looks every LAN's interface up again after the kernel changed
// one: an interface that lost its carrier, its address or its existence
// fails every path on its LAN over at once; one that came back, was
// recreated under the same name or readdressed is taken into use at once,
// by the exchanges and the routes alike. It reports whether any LAN moved
// to another index or address, or came up.
func (d *Daemon) refreshLANs(now time.Time) (moved bool) {
	for i, name := range d.names {
		nl, err := d.deps.Interfaces.Lookup(name)
		if err != nil {
			d.log.Warn("lan-lookup-failed", "lan", routes.LANName(i), "dev", name, "err", err)
			continue
		}
		ol := d.lans[i]
		d.lans[i] = nl
		if nl.Index != ol.Index || nl.Addr != ol.Addr || nl.Addr6 != ol.Addr6 || nl.Broadcast != ol.Broadcast {
			moved = true
			d.log.Warn("lan-changed", "lan", routes.LANName(i), "dev", name, "old", lanString(ol), "new", lanString(nl))
		}
		switch {
		case ol.Up && !nl.Up:
			reason := "no carrier"
			if nl.Index == 0 {
				reason = "interface gone"
			}
			d.log.Warn("carrier-lost", "lan", routes.LANName(i), "dev", name, "reason", reason, "action", "every path on this LAN is invalid now")
		case !ol.Up && nl.Up:
			d.log.Info("carrier-restored", "lan", routes.LANName(i), "dev", name)
		}
		if ol.Usable() && !nl.Usable() {
			if nl.Up {
				d.log.Warn("lan-down", "lan", routes.LANName(i), "dev", name, "reason", "no address",
					"action", "every path on this LAN is invalid until it has one")
			}
			for _, f := range d.fams {
				if f != nil {
					d.evs = f.table.LANDown(i, now, d.evs)
				}
			}
		}
	}
	if moved {
		d.setLANs(now)
	}
	return moved
}

// nodeID is --node-id, or else this node's IPv4 address on LAN A, or on an
// IPv6-only LAN A the 32-bit FNV-1a hash of its IPv6 address there, which
// is as stable as the address.
func nodeID(cfg Config, lans []platform.LAN) (uint32, error) {
	a := lans[0]
	switch {
	case cfg.NodeID != 0:
		return cfg.NodeID, nil
	case a.Addr.IsValid():
		b := a.Addr.Addr().As4()
		return binary.BigEndian.Uint32(b[:]), nil
	case a.Addr6.IsValid():
		h := fnv.New32a()
		b := a.Addr6.Addr().As16()
		h.Write(b[:])
		return h.Sum32(), nil
	}
	return 0, fmt.Errorf("failed to choose a node id: LAN A (%s) has no address (%s); set --node-id", a.Name, lanString(a))
}

// describe lists LANs for logs: "A=eth0:192.0.2.1/24 B=eth1:198.51.100.1/24",
// with both addresses of a dual-stack LAN comma-separated.
func describe(lans []platform.LAN) string {
	var parts []string
	for i, l := range lans {
		parts = append(parts, routes.LANName(i)+"="+l.Name+":"+lanAddrs(l))
	}
	return strings.Join(parts, " ")
}

// lanAddrs lists a LAN's addresses for logs and status: "192.0.2.1/24",
// "2001:db8:a::1/64" or both, comma-separated; "-" with none.
func lanAddrs(l platform.LAN) string {
	var s []string
	for _, p := range l.Prefixes() {
		s = append(s, p.String())
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// lanString shows a LAN's interface for lan-changed: "index 3
// 192.0.2.1/24 brd 192.0.2.255", or why it has none.
func lanString(l platform.LAN) string {
	switch {
	case l.Index == 0:
		return "gone"
	case !l.Addr.IsValid() && !l.Addr6.IsValid():
		return fmt.Sprintf("index %d no address", l.Index)
	case !l.Addr.IsValid():
		return fmt.Sprintf("index %d %s", l.Index, l.Addr6)
	case l.Addr6.IsValid():
		return fmt.Sprintf("index %d %s brd %s %s", l.Index, l.Addr, l.Broadcast, l.Addr6)
	}
	return fmt.Sprintf("index %d %s brd %s", l.Index, l.Addr, l.Broadcast)
}

// peerUnused warns of --peer addresses on no LAN's subnet.
func peerUnused(peers []netip.Addr, lans []platform.LAN) []netip.Addr {
	var out []netip.Addr
	for _, a := range peers {
		on := false
		for _, l := range lans {
			for _, p := range l.Prefixes() {
				on = on || p.Masked().Contains(a)
			}
		}
		if !on {
			out = append(out, a)
		}
	}
	return out
}
