package proto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Message is one datagram of a batch.
type Message struct {
	// Buf: on a read, the buffer to fill, of which N bytes were; on a
	// write, the whole payload.
	Buf []byte
	N   int
	// Addr: on a read, the source; on a write, the destination.
	Addr netip.AddrPort
	// IfIndex: on a read, the interface the datagram arrived on, 0 when
	// the kernel did not say; on a write, the interface it must leave by.
	IfIndex int
	// Src, on a write, is the source address to name, or the zero Addr to
	// let the kernel choose.
	Src netip.Addr
	// Hops, on a read, is the TTL (IPv4) or hop limit (IPv6) it arrived
	// with; -1 when the kernel did not say.
	Hops int
}

// Conn carries one address family's datagrams on every LAN, in batches. A
// Conn is safe for one reader and any number of writers at once; Close
// ends a blocked read with an error.
type Conn interface {
	// ReadBatch blocks until at least one datagram arrives, then fills
	// ms[:n] with as many as are waiting.
	ReadBatch(ms []Message) (n int, err error)
	// WriteBatch sends ms in order; n < len(ms) means ms[n] failed with
	// err (see WriteAll). Like sendmmsg(2), it may report n = -1 when the
	// first message failed.
	WriteBatch(ms []Message) (n int, err error)
	// Join makes the Conn a member of a multicast group on an interface;
	// being one already is no error.
	Join(ifIndex int, group netip.Addr) error
	Close() error
}

// WriteAll sends every message of ms through c, reporting each one that
// fails to failed and going on with the rest: one LAN whose link is down
// must not hold up the others.
func WriteAll(c Conn, ms []Message, failed func(m *Message, err error)) {
	for len(ms) > 0 {
		n, err := c.WriteBatch(ms)
		n = max(n, 0)
		if err == nil && n > 0 {
			ms = ms[n:]
			continue
		}
		if err == nil {
			err = errors.New("nothing written")
		}
		if n < len(ms) {
			failed(&ms[n], err)
			n++
		}
		ms = ms[n:]
	}
}

// receiveBuffer is the socket's receive buffer. Every peer answers an INQ at
// once, so with hundreds of peers a burst of ACKs arrives together; the
// kernel's default (about 200 KiB) dropped thousands of them a minute in
// the lab at 240 peers and -t 0.1.
const receiveBuffer = 4 << 20

// BatchSize is the most datagrams one ReadBatch or WriteBatch of the UDP
// Conn moves; on Linux that is one recvmmsg or sendmmsg system call.
const BatchSize = 64

// udpConn is the Conn of a UDP socket bound to faild's port on every
// address of one family. x/net sets the socket up; the batches move by
// recvmmsg and sendmmsg on Linux (conn_linux.go) and through x/net, one
// datagram a call, elsewhere (conn_others.go).
type udpConn struct {
	c  *net.UDPConn
	v6 bool
	p4 *ipv4.PacketConn
	p6 *ipv6.PacketConn

	rd batch // the reader's

	mu  sync.Mutex // guards what follows: the writers'
	wr  batch
	oob map[oobKey][]byte // marshalled packet info by (interface, source)
}

type oobKey struct {
	ifIndex int
	src     netip.Addr
}

var _ Conn = (*udpConn)(nil)

// Listen binds the UDP socket of one family on port, every address: IPv4
// with broadcast allowed and TTL 255, or IPv6-only (beside the IPv4 one)
// with hop limit 255 and no copies of our own multicast. Both report each
// datagram's arrival interface and TTL or hop limit.
func Listen(port int, v6 bool) (Conn, error) {
	network, addr := "udp4", fmt.Sprintf("0.0.0.0:%d", port)
	if v6 {
		network, addr = "udp6", fmt.Sprintf("[::]:%d", port)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if !v6 {
				serr = setBroadcast(fd)
			}
			setReceiveBuffer(fd, receiveBuffer)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UDP port %d (%s): %w", port, network, err)
	}
	u := &udpConn{c: pc.(*net.UDPConn), v6: v6, oob: make(map[oobKey][]byte)}
	if v6 {
		u.p6 = ipv6.NewPacketConn(u.c)
		err = setup6(u.p6)
	} else {
		u.p4 = ipv4.NewPacketConn(u.c)
		err = setup4(u.p4)
	}
	if err != nil {
		u.c.Close()
		return nil, err
	}
	if err := u.initBatches(); err != nil {
		u.c.Close()
		return nil, err
	}
	return u, nil
}

// controlSpace is the room for the control messages a read asks for.
func controlSpace(v6 bool) []byte {
	if v6 {
		return ipv6.NewControlMessage(ipv6.FlagInterface | ipv6.FlagDst | ipv6.FlagHopLimit)
	}
	return ipv4.NewControlMessage(ipv4.FlagInterface | ipv4.FlagDst | ipv4.FlagTTL)
}

func setup4(pc *ipv4.PacketConn) error {
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst|ipv4.FlagTTL, true); err != nil {
		return fmt.Errorf("failed to ask for packet info: %w", err)
	}
	if err := pc.SetTTL(ttl); err != nil {
		return fmt.Errorf("failed to set the TTL: %w", err)
	}
	return nil
}

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

// control returns the packet info that sends a datagram out of ifIndex
// from src, marshalled once per pair: a LAN's interface and address change
// rarely, and ControlMessage.Marshal allocates.
func (u *udpConn) control(ifIndex int, src netip.Addr) []byte {
	k := oobKey{ifIndex, src}
	if b, ok := u.oob[k]; ok {
		return b
	}
	if len(u.oob) >= 64 {
		clear(u.oob) // interfaces came and went; keep only what is in use
	}
	var b []byte
	if u.v6 {
		cm := ipv6.ControlMessage{IfIndex: ifIndex}
		if src.IsValid() {
			cm.Src = src.AsSlice()
		}
		b = cm.Marshal()
	} else {
		cm := ipv4.ControlMessage{IfIndex: ifIndex}
		if src.IsValid() {
			cm.Src = src.AsSlice()
		}
		b = cm.Marshal()
	}
	u.oob[k] = b
	return b
}

// Join implements Conn; over IPv4 there is nothing to join.
func (u *udpConn) Join(ifIndex int, group netip.Addr) error {
	if !u.v6 {
		return nil
	}
	ifi, err := net.InterfaceByIndex(ifIndex)
	if err != nil {
		return fmt.Errorf("failed to find interface %d: %w", ifIndex, err)
	}
	if err := u.p6.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("failed to join %s on %s: %w", group, ifi.Name, err)
	}
	return nil
}

// Close implements Conn.
func (u *udpConn) Close() error { return u.c.Close() }
