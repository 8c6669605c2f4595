package proto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv6"
)

// Group6 is the IPv6 multicast group INQs go to on every LAN: ff12::4117,
// link-local scope (2) with the transient flag (T=1) set. IANA assigns only
// permanent (T=0) groups, so a transient one cannot collide with a
// well-known ff02:: group; link-local scope keeps it off routers; 4117 is
// faild's default port. Every node joins it on each LAN interface that has
// an IPv6 address.
var Group6 = netip.MustParseAddr("ff12::4117")

// Listen6 binds the IPv6 exchange's socket on cfg.Port, beside the IPv4
// one (the socket is IPv6-only), and joins Group6 on every LAN that has an
// IPv6 address. LANs whose Broadcast is unset get Group6.
//
// Unicast packets (ACKs, INQs to --peer addresses) name only the outgoing
// interface and let the kernel choose the source: with a source address
// given as well, Linux no longer holds IPv6 routing to that interface, so
// after a failover the ACKs to a peer's LAN-A address would follow faild's
// own host route over LAN B. The kernel picks our address on the LAN, the
// one in the destination's prefix. Multicast INQs name the source, or the
// kernel would choose our link-local address for a link-local group.
func Listen6(cfg Config) (*Exchange, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { setReceiveBuffer(fd, receiveBuffer) })
	}}
	c, err := lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UDP port %d over IPv6: %w", cfg.Port, err)
	}
	x := newExchange(cfg, c, true)
	x.pc6 = ipv6.NewPacketConn(c)
	if err := setup6(x.pc6); err != nil {
		c.Close()
		return nil, err
	}
	if err := joinGroup6(x.pc6, x.LANs()); err != nil {
		c.Close()
		return nil, err
	}
	return x, nil
}

// setup6 sets the socket options of the IPv6 exchange: packet info and hop
// limit on receipt, hop limit 255 on every packet sent, and no copies of
// our own multicast.
func setup6(pc *ipv6.PacketConn) error {
	if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst|ipv6.FlagHopLimit, true); err != nil {
		return fmt.Errorf("failed to ask for packet info: %w", err)
	}
	if err := pc.SetHopLimit(ttl); err != nil {
		return fmt.Errorf("failed to set the hop limit: %w", err)
	}
	if err := pc.SetMulticastHopLimit(ttl); err != nil {
		return fmt.Errorf("failed to set the multicast hop limit: %w", err)
	}
	if err := pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("failed to turn off multicast loopback: %w", err)
	}
	return nil
}

// joinGroup6 makes the socket a member of each LAN's group on the LAN's
// interface; a membership the socket already holds is not an error, so
// it can run again after an interface came back or was recreated.
func joinGroup6(pc *ipv6.PacketConn, lans []LAN) error {
	for _, l := range lans {
		if !l.up() {
			continue
		}
		ifi, err := net.InterfaceByIndex(l.IfIndex)
		if err != nil {
			return fmt.Errorf("failed to find interface %d: %w", l.IfIndex, err)
		}
		if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: l.Broadcast.AsSlice()}); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("failed to join %s on %s: %w", l.Broadcast, ifi.Name, err)
		}
	}
	return nil
}
