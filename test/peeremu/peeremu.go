// Package peeremu plays many faild peers from one process, for scale
// benchmarks: each fake peer has its own node id and its own address on
// each of two LANs, sends INQs at its interval and answers every INQ it
// hears with an ACK, all with the real wire format of package proto. It is
// a test tool, not part of the daemon, and runs inside a lab namespace.
package peeremu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/faild/faild/proto"
)

// LAN is one of the emulator's interfaces and the subnet its peers live in.
type LAN struct {
	Iface  string
	Prefix netip.Prefix // e.g. 192.0.2.0/24
}

// Config describes the crowd of fake peers.
type Config struct {
	Peers    int
	First    int // host number of the first fake peer in each subnet
	Interval time.Duration
	Port     int
	LANs     [2]LAN
}

// Stats counts what the emulator did.
type Stats struct {
	INQsSent, ACKsSent, INQsHeard, ACKsHeard, SendErrors atomic.Uint64
}

type peer struct {
	id    uint32
	addrs [2]netip.Addr
}

// Emulator is a running crowd of peers.
type Emulator struct {
	cfg   Config
	boot  uint32
	seq   atomic.Uint64 // the packets' sequence numbers; see fill
	peers []peer
	ids   map[uint32]bool
	ifidx [2]int
	bcast [2]netip.Addr
	pc    *ipv4.PacketConn
	conn  net.PacketConn
	// undo is the ip batch that removes the addresses New added.
	undo  string
	Stats Stats
}

// New checks cfg, adds every fake peer's address to the interfaces (as
// secondary addresses) and opens the shared socket.
func New(cfg Config) (*Emulator, error) {
	e := &Emulator{cfg: cfg, ids: map[uint32]bool{}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.boot = binary.BigEndian.Uint32(b[:])
	e.seq.Store(uint64(time.Now().UnixNano())) // rising across restarts, as faild's replay rule expects
	var batch, undo strings.Builder
	for l, lan := range cfg.LANs {
		if !lan.Prefix.Addr().Is4() || lan.Prefix.Bits() < 16 {
			return nil, fmt.Errorf("failed to set up LAN %s: want an IPv4 prefix of at least /16, got %s", lan.Iface, lan.Prefix)
		}
		if last := cfg.First + cfg.Peers; last > 1<<(32-lan.Prefix.Bits())-2 {
			return nil, fmt.Errorf("failed to set up LAN %s: %d peers from host %d do not fit in %s", lan.Iface, cfg.Peers, cfg.First, lan.Prefix)
		}
		ifi, err := net.InterfaceByName(lan.Iface)
		if err != nil {
			return nil, fmt.Errorf("failed to find interface %s: %w", lan.Iface, err)
		}
		e.ifidx[l] = ifi.Index
		e.bcast[l] = broadcast(lan.Prefix)
	}
	for i := range cfg.Peers {
		var p peer
		for l, lan := range cfg.LANs {
			p.addrs[l] = hostAddr(lan.Prefix, cfg.First+i)
			// replace, not add: a run that was killed leaves them behind.
			fmt.Fprintf(&batch, "addr replace %s/%d dev %s\n", p.addrs[l], lan.Prefix.Bits(), lan.Iface)
			fmt.Fprintf(&undo, "addr del %s/%d dev %s\n", p.addrs[l], lan.Prefix.Bits(), lan.Iface)
		}
		a := p.addrs[0].As4()
		p.id = binary.BigEndian.Uint32(a[:])
		e.ids[p.id] = true
		e.peers = append(e.peers, p)
	}
	if err := ipBatch(batch.String()); err != nil {
		return nil, fmt.Errorf("failed to add peer addresses: %w", err)
	}
	e.undo = undo.String()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
			if serr == nil {
				// Bursts of ACKs from every peer at once must not be lost here.
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 8<<20)
			}
		})
		return errors.Join(err, serr)
	}}
	c, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", cfg.Port))
	if err != nil {
		e.removeAddrs()
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	e.conn = c
	e.pc = ipv4.NewPacketConn(c)
	if err := e.pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		c.Close()
		e.removeAddrs()
		return nil, fmt.Errorf("failed to ask for packet info: %w", err)
	}
	if err := e.pc.SetTTL(255); err != nil {
		c.Close()
		e.removeAddrs()
		return nil, fmt.Errorf("failed to set TTL: %w", err)
	}
	return e, nil
}

func ipBatch(script string) error {
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// removeAddrs takes the fake peers' addresses off the interfaces again.
func (e *Emulator) removeAddrs() error {
	if e.undo == "" {
		return nil
	}
	if err := ipBatch(e.undo); err != nil {
		return fmt.Errorf("failed to remove peer addresses: %w", err)
	}
	e.undo = ""
	return nil
}

func hostAddr(p netip.Prefix, host int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) + uint32(host)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

func broadcast(p netip.Prefix) netip.Addr {
	return hostAddr(p, 1<<(32-p.Bits())-1)
}

// Run sends and answers until ctx ends. INQs are spread over the interval
// in ten slots, as independent peers would be; ACKs to an INQ go out at
// once, as every real peer would answer at once.
// Run removes the peers' addresses when it returns.
func (e *Emulator) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, e.removeAddrs()) }()
	defer e.conn.Close()
	go func() { <-ctx.Done(); _ = e.conn.SetReadDeadline(time.Now()) }()
	go e.send(ctx)
	buf := make([]byte, proto.MaxLen+1)
	var in, ack proto.Packet
	out := make([]byte, 0, proto.MaxLen)
	for {
		n, cm, src, err := e.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("failed to read: %w", err)
		}
		if cm == nil || in.Decode(buf[:n]) != nil || e.ids[in.NodeID] {
			continue
		}
		if in.Type == proto.ACK {
			e.Stats.ACKsHeard.Add(1)
			continue
		}
		e.Stats.INQsHeard.Add(1)
		l := e.lanOf(cm.IfIndex)
		ua, ok := src.(*net.UDPAddr)
		if l < 0 || !ok {
			continue
		}
		for i := range e.peers {
			e.fill(&ack, &e.peers[i], proto.ACK)
			ack.Echo = in.Seq
			out, _ = ack.Append(out[:0])
			e.write(out, l, e.peers[i].addrs[l], &net.UDPAddr{IP: ua.IP, Port: e.cfg.Port}, &e.Stats.ACKsSent)
		}
	}
}

func (e *Emulator) lanOf(ifindex int) int {
	for l, i := range e.ifidx {
		if i == ifindex {
			return l
		}
	}
	return -1
}

// fill makes p a packet of pe. Every packet takes the next number of one
// counter, as a real node's do (INQs and ACKs, on every LAN alike): faild's
// replay window drops a number it has seen from that peer.
func (e *Emulator) fill(p *proto.Packet, pe *peer, t proto.Type) {
	*p = proto.Packet{Type: t, NodeID: pe.id, BootID: e.boot, Seq: e.seq.Add(1), Interval: e.cfg.Interval, Addrs: p.Addrs[:0]}
	for l, lan := range e.cfg.LANs {
		p.Addrs = append(p.Addrs, netip.PrefixFrom(pe.addrs[l], lan.Prefix.Bits()))
	}
}

func (e *Emulator) write(b []byte, lan int, src netip.Addr, dst *net.UDPAddr, n *atomic.Uint64) {
	cm := &ipv4.ControlMessage{IfIndex: e.ifidx[lan], Src: src.AsSlice()}
	if _, err := e.pc.WriteTo(b, cm, dst); err != nil {
		e.Stats.SendErrors.Add(1)
		return
	}
	n.Add(1)
}

func (e *Emulator) send(ctx context.Context) {
	const slots = 10
	t := time.NewTicker(e.cfg.Interval / slots)
	defer t.Stop()
	var p proto.Packet
	out := make([]byte, 0, proto.MaxLen)
	for slot := 0; ; slot = (slot + 1) % slots {
		for i := slot; i < len(e.peers); i += slots {
			for l := range e.cfg.LANs {
				e.fill(&p, &e.peers[i], proto.INQ)
				out, _ = p.Append(out[:0])
				dst := &net.UDPAddr{IP: e.bcast[l].AsSlice(), Port: e.cfg.Port}
				e.write(out, l, e.peers[i].addrs[l], dst, &e.Stats.INQsSent)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
