// Package peeremu plays many faild peers from one process, for scale
// benchmarks: each fake peer has its own node id and its own address on
// each of two LANs, sends INQs at its interval and answers every INQ it
// hears with an ACK, all with the real wire format of package proto. It is
// a test tool, not part of the daemon, and runs inside a lab namespace.
//
// The LANs are both IPv4 (INQs to each LAN's broadcast address) or both
// IPv6 (INQs to proto.Group6, which the emulator joins on both
// interfaces). Packets go out in batches (sendmmsg) and come in in batches
// (recvmmsg): at thousands of peers one syscall per packet is what would
// keep the emulator from keeping up, not faild.
package peeremu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/faild/faild/proto"
)

// LAN is one of the emulator's interfaces and the subnet its peers live in.
type LAN struct {
	Iface  string
	Prefix netip.Prefix // e.g. 192.0.2.0/24 or 2001:db8:a::/64
}

// Config describes the crowd of fake peers.
type Config struct {
	Peers int
	// First is the host number of the first fake peer in each subnet (see
	// HostAddr; FirstV6 is a good one on /64s).
	First    int
	Interval time.Duration
	Port     int
	LANs     [2]LAN
}

// FirstV6 puts the fake peers at ::1:0:0:1, ::1:1:0:1 and so on in a /64,
// clear of the lab's own nodes (::1 to ::8).
const FirstV6 = 0x10000

// Stats counts what the emulator did.
type Stats struct {
	INQsSent, ACKsSent, INQsHeard, ACKsHeard, SendErrors atomic.Uint64
}

// String is the one-line form cmd/peeremu prints and test/bench parses.
func (s *Stats) String() string {
	return fmt.Sprintf("inq_sent=%d ack_sent=%d inq_heard=%d ack_heard=%d send_errors=%d",
		s.INQsSent.Load(), s.ACKsSent.Load(), s.INQsHeard.Load(), s.ACKsHeard.Load(), s.SendErrors.Load())
}

type peer struct {
	id    uint32
	addrs [2]netip.Addr
	oob   [2][]byte // packet info (interface, source address) per LAN, marshalled once
}

// batcher is what ipv4.PacketConn and ipv6.PacketConn both offer: their
// Message types are the same type.
type batcher interface {
	ReadBatch([]ipv4.Message, int) (int, error)
	WriteBatch([]ipv4.Message, int) (int, error)
}

// batchLen is the most packets one sendmmsg or recvmmsg carries.
const batchLen = 256

// Emulator is a running crowd of peers.
type Emulator struct {
	cfg   Config
	v6    bool
	boot  uint32
	seq   atomic.Uint64 // the packets' sequence numbers; see fill
	hears atomic.Uint32 // the node id of the last INQ heard, for the view
	peers []peer
	ids   map[uint32]bool
	ifidx [2]int
	group [2]*net.UDPAddr // where INQs go on each LAN: broadcast or Group6
	conn  *net.UDPConn
	bc    batcher
	// undo is the ip batch that removes the addresses New added.
	undo  string
	Stats Stats
}

// New checks cfg, adds every fake peer's address to the interfaces (IPv4
// as secondary addresses, IPv6 without duplicate address detection, in one
// ip -batch) and opens the shared socket.
func New(cfg Config) (*Emulator, error) {
	e := &Emulator{cfg: cfg, ids: map[uint32]bool{}, v6: cfg.LANs[0].Prefix.Addr().Is6()}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.boot = binary.BigEndian.Uint32(b[:])
	e.seq.Store(uint64(time.Now().UnixNano())) // rising across restarts, as faild's replay rule expects
	if cfg.Peers < 1 || cfg.First < 1 {
		return nil, fmt.Errorf("failed to set up: want at least one peer from host 1 up, got %d from %d", cfg.Peers, cfg.First)
	}
	for l, lan := range cfg.LANs {
		if err := e.checkLAN(lan); err != nil {
			return nil, err
		}
		ifi, err := net.InterfaceByName(lan.Iface)
		if err != nil {
			return nil, fmt.Errorf("failed to find interface %s: %w", lan.Iface, err)
		}
		e.ifidx[l] = ifi.Index
		if e.v6 {
			e.group[l] = &net.UDPAddr{IP: proto.Group6.AsSlice(), Port: cfg.Port}
		} else {
			e.group[l] = &net.UDPAddr{IP: broadcast(lan.Prefix).AsSlice(), Port: cfg.Port}
		}
	}
	var batch strings.Builder
	var undo []string
	for i := range cfg.Peers {
		var p peer
		for l, lan := range cfg.LANs {
			p.addrs[l] = HostAddr(lan.Prefix, cfg.First+i)
			opt := ""
			if e.v6 {
				// nodad: usable at once; ten thousand addresses would
				// otherwise stay tentative while DAD probes for each.
				opt = " nodad"
				p.oob[l] = (&ipv6.ControlMessage{IfIndex: e.ifidx[l], Src: p.addrs[l].AsSlice()}).Marshal()
			} else {
				p.oob[l] = (&ipv4.ControlMessage{IfIndex: e.ifidx[l], Src: p.addrs[l].AsSlice()}).Marshal()
			}
			// replace, not add: a run that was killed leaves them behind.
			fmt.Fprintf(&batch, "addr replace %s/%d dev %s%s\n", p.addrs[l], lan.Prefix.Bits(), lan.Iface, opt)
			undo = append(undo, fmt.Sprintf("addr del %s/%d dev %s\n", p.addrs[l], lan.Prefix.Bits(), lan.Iface))
		}
		p.id = nodeID(p.addrs[0])
		if e.ids[p.id] {
			return nil, fmt.Errorf("failed to set up: two fake peers hash to node id %#x", p.id)
		}
		e.ids[p.id] = true
		e.peers = append(e.peers, p)
	}
	// From here on, undo is set before the batch runs: a batch that fails
	// half way has added some addresses, and removeAddrs takes off what it
	// finds (ip -force goes on past the ones that are missing).
	slices.Reverse(undo) // newest first: the kernel finds those quickest
	e.undo = strings.Join(undo, "")
	if err := ipBatch(batch.String()); err != nil {
		return nil, errors.Join(fmt.Errorf("failed to add peer addresses: %w", err), e.removeAddrs())
	}
	if err := e.listen(); err != nil {
		return nil, errors.Join(err, e.removeAddrs())
	}
	return e, nil
}

func (e *Emulator) checkLAN(lan LAN) error {
	p := lan.Prefix
	if p.Addr().Is6() != e.v6 {
		return fmt.Errorf("failed to set up LAN %s: both LANs must be of one family, got %s and %s", lan.Iface, e.cfg.LANs[0].Prefix, p)
	}
	var max uint64 // the highest host number
	if e.v6 {
		if p.Bits() != 64 {
			return fmt.Errorf("failed to set up LAN %s: want an IPv6 /64, got %s", lan.Iface, p)
		}
		max = 1<<32 - 1
	} else {
		if p.Bits() < 16 || p.Bits() > 30 {
			return fmt.Errorf("failed to set up LAN %s: want an IPv4 prefix of /16 to /30, got %s", lan.Iface, p)
		}
		max = uint64(1)<<(32-p.Bits()) - 2
	}
	if last := uint64(e.cfg.First + e.cfg.Peers); last > max {
		return fmt.Errorf("failed to set up LAN %s: %d peers from host %d do not fit in %s", lan.Iface, e.cfg.Peers, e.cfg.First, p)
	}
	return nil
}

// listen opens the one socket all fake peers share.
func (e *Emulator) listen() error {
	network, laddr := "udp4", fmt.Sprintf("0.0.0.0:%d", e.cfg.Port)
	if e.v6 {
		network, laddr = "udp6", fmt.Sprintf("[::]:%d", e.cfg.Port)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if !e.v6 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
			}
			for _, opt := range []int{syscall.SO_RCVBUFFORCE, syscall.SO_SNDBUFFORCE} {
				if serr == nil {
					// Bursts of ACKs from every peer at once must not be lost here.
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 32<<20)
				}
			}
		})
		return errors.Join(err, serr)
	}}
	c, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	e.conn = c.(*net.UDPConn)
	if err := e.setup(); err != nil {
		c.Close()
		return err
	}
	return nil
}

// setup sets what faild requires of received packets, TTL or hop limit 255
// (multicast too), asks for the arrival interface, and over IPv6 joins
// Group6 on both LANs without hearing its own INQs.
func (e *Emulator) setup() error {
	if !e.v6 {
		pc := ipv4.NewPacketConn(e.conn)
		e.bc = pc
		if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
			return fmt.Errorf("failed to ask for packet info: %w", err)
		}
		if err := pc.SetTTL(255); err != nil {
			return fmt.Errorf("failed to set TTL: %w", err)
		}
		return nil
	}
	pc := ipv6.NewPacketConn(e.conn)
	e.bc = pc
	if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
		return fmt.Errorf("failed to ask for packet info: %w", err)
	}
	if err := pc.SetHopLimit(255); err != nil {
		return fmt.Errorf("failed to set the hop limit: %w", err)
	}
	if err := pc.SetMulticastHopLimit(255); err != nil {
		return fmt.Errorf("failed to set the multicast hop limit: %w", err)
	}
	if err := pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("failed to turn off multicast loopback: %w", err)
	}
	for l, lan := range e.cfg.LANs {
		ifi, err := net.InterfaceByIndex(e.ifidx[l])
		if err != nil {
			return fmt.Errorf("failed to find interface %s: %w", lan.Iface, err)
		}
		if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: proto.Group6.AsSlice()}); err != nil {
			return fmt.Errorf("failed to join %s on %s: %w", proto.Group6, lan.Iface, err)
		}
	}
	return nil
}

func ipBatch(script string) error {
	cmd := exec.Command("ip", "-force", "-batch", "-")
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

// HostAddr is fake peer host's address in subnet p. IPv4: host numbers
// above the subnet's first address. IPv6 (a /64): host in bits 32 to 63,
// the low 32 bits 1, so 2001:db8:a::1:N:0:1 for host 0x10000+N. Every
// address then has the same solicited-node group: one membership, not
// thousands, which the kernel keeps in a list it scans on every join,
// making 5,000 addresses take ten seconds to add instead of a third of one.
func HostAddr(p netip.Prefix, host int) netip.Addr {
	if p.Addr().Is4() {
		a := p.Masked().Addr().As4()
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(host))
		return netip.AddrFrom4(a)
	}
	a := p.Masked().Addr().As16()
	binary.BigEndian.PutUint64(a[8:], binary.BigEndian.Uint64(a[8:])+uint64(host)<<32+1)
	return netip.AddrFrom16(a)
}

func broadcast(p netip.Prefix) netip.Addr {
	return HostAddr(p, 1<<(32-p.Bits())-1)
}

// nodeID is a fake peer's node id: its LAN-A IPv4 address, as faild's
// default, or over IPv6 a hash of its LAN-A address (New refuses a
// collision).
func nodeID(a netip.Addr) uint32 {
	if a.Is4() {
		v := a.As4()
		return binary.BigEndian.Uint32(v[:])
	}
	h := fnv.New32a()
	v := a.As16()
	h.Write(v[:])
	return h.Sum32()
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
	in := make([]ipv4.Message, 64)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, proto.MaxLen+1)}
		if e.v6 {
			in[i].OOB = ipv6.NewControlMessage(ipv6.FlagInterface | ipv6.FlagDst)
		} else {
			in[i].OOB = ipv4.NewControlMessage(ipv4.FlagInterface | ipv4.FlagDst)
		}
	}
	oobLen := len(in[0].OOB)
	w := e.newWriter()
	var p proto.Packet
	for {
		for i := range in {
			in[i].OOB = in[i].OOB[:oobLen]
		}
		n, err := e.bc.ReadBatch(in, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("failed to read: %w", err)
		}
		for _, m := range in[:n] {
			if p.Decode(m.Buffers[0][:m.N]) != nil || e.ids[p.NodeID] {
				continue
			}
			if p.Type == proto.ACK {
				e.Stats.ACKsHeard.Add(1)
				continue
			}
			e.Stats.INQsHeard.Add(1)
			e.hears.Store(p.NodeID)
			l := e.lanOf(e.ifIndex(m.OOB[:m.NN]))
			ua, ok := m.Addr.(*net.UDPAddr)
			if l < 0 || !ok {
				continue
			}
			dst := &net.UDPAddr{IP: ua.IP, Port: e.cfg.Port}
			for i := range e.peers {
				w.add(&e.peers[i], proto.ACK, p.Seq, l, dst)
			}
			w.flush(&e.Stats.ACKsSent)
		}
	}
}

// ifIndex reads the arrival interface out of a received packet's control
// messages; 0 if there is none.
func (e *Emulator) ifIndex(oob []byte) int {
	if e.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil {
			return 0
		}
		return cm.IfIndex
	}
	var cm ipv4.ControlMessage
	if cm.Parse(oob) != nil {
		return 0
	}
	return cm.IfIndex
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
// replay window drops a number it has seen from that peer. The fake peers
// read version 2, as faild does, so faild sends them no version-1 copies;
// an INQ carries the peer's view once the emulator has heard the node it
// plays against: that node, heard on both LANs (the fake peers do not hear
// one another).
func (e *Emulator) fill(p *proto.Packet, pe *peer, t proto.Type) {
	*p = proto.Packet{Type: t, NodeID: pe.id, BootID: e.boot, Seq: e.seq.Add(1), Interval: e.cfg.Interval,
		V2: true, Addrs: p.Addrs[:0], View: p.View[:0]}
	for l, lan := range e.cfg.LANs {
		p.Addrs = append(p.Addrs, netip.PrefixFrom(pe.addrs[l], lan.Prefix.Bits()))
	}
	if id := e.hears.Load(); t == proto.INQ && id != 0 {
		p.Version, p.ViewTotal = proto.Version2, 1
		p.View = append(p.View, proto.ViewEntry{Node: id, Known: 0b11, Heard: 0b11})
	}
}

// writer gathers packets into one sendmmsg batch; one per goroutine.
type writer struct {
	e    *Emulator
	ms   []ipv4.Message
	bufs [][]byte
	n    int
	p    proto.Packet
}

func (e *Emulator) newWriter() *writer {
	w := &writer{e: e, ms: make([]ipv4.Message, batchLen), bufs: make([][]byte, batchLen)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, 0, proto.MaxLen)
		w.ms[i].Buffers = [][]byte{nil}
	}
	return w
}

// add queues one packet of pe on LAN l to dst (echo: the INQ an ACK answers).
func (w *writer) add(pe *peer, t proto.Type, echo uint64, l int, dst *net.UDPAddr) {
	w.e.fill(&w.p, pe, t)
	w.p.Echo = echo
	b, err := w.p.Append(w.bufs[w.n][:0])
	if err != nil {
		w.e.Stats.SendErrors.Add(1)
		return
	}
	w.bufs[w.n] = b
	m := &w.ms[w.n]
	m.Buffers[0], m.OOB, m.Addr = b, pe.oob[l], dst
	w.n++
	if w.n == len(w.ms) {
		w.flush(nil)
	}
}

// flush sends what is queued and counts it in sent (nil: the counter of
// the packets' type). A packet the kernel refuses is counted as an error
// and skipped.
func (w *writer) flush(sent *atomic.Uint64) {
	if sent == nil {
		sent = &w.e.Stats.INQsSent
		if w.p.Type == proto.ACK {
			sent = &w.e.Stats.ACKsSent
		}
	}
	for i := 0; i < w.n; {
		n, err := w.e.bc.WriteBatch(w.ms[i:w.n], 0)
		if n > 0 {
			sent.Add(uint64(n))
			i += n
		}
		if err != nil {
			w.e.Stats.SendErrors.Add(1)
			i++
		}
	}
	w.n = 0
}

// send sends each slot's INQs when the slot is due by the clock, not by
// ticks: a ticker drops the ticks a busy process misses, and an emulator
// short of CPU would quietly send fewer INQs than its peers owe.
func (e *Emulator) send(ctx context.Context) {
	const slots = 10
	step := e.cfg.Interval / slots
	t := time.NewTicker(step)
	defer t.Stop()
	w := e.newWriter()
	start := time.Now()
	for done := int64(0); ; {
		for due := int64(time.Since(start)/step) + 1; done < due; done++ {
			slot := int(done % slots)
			for i := slot; i < len(e.peers); i += slots {
				for l := range e.cfg.LANs {
					w.add(&e.peers[i], proto.INQ, 0, l, e.group[l])
				}
			}
			w.flush(&e.Stats.INQsSent)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
