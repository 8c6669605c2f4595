package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// receiveBuffer is the socket's receive buffer. Every peer answers an INQ at
// once, so with hundreds of peers a burst of ACKs arrives together; the
// kernel's default (about 200 KiB) dropped thousands of them a minute in
// the lab at 240 peers and -t 0.1.
const receiveBuffer = 4 << 20

// MaxLANs is the most LANs one node can watch.
const MaxLANs = 8

// ttl is sent on every packet as the TTL (IPv4) or hop limit (IPv6) and
// required on every packet received (GTSM, RFC 5082, as BFD single-hop
// does): a packet that crossed a router arrives with less and cannot count
// as evidence of a LAN path.
const ttl = 255

// LAN is one of this node's LAN interfaces, as the exchange sees it. An
// exchange serves one address family; a LAN whose Addr is not valid lacks
// that family, and one whose interface is gone has IfIndex 0: the exchange
// neither sends nor accepts packets there.
type LAN struct {
	Name      string // the interface, for logs
	IfIndex   int
	Addr      netip.Prefix // our address on the LAN and its prefix
	Broadcast netip.Addr   // where INQs go: the broadcast address, or Group6 for IPv6
	// Unicast replaces Broadcast with Peers (--peer): INQs go to each of
	// them by unicast, for networks that drop broadcast or multicast; with
	// no Peers, no INQs go out on the LAN.
	Unicast bool
	Peers   []netip.Addr

	// info is the packet info (interface and source address) for
	// broadcast and multicast, uinfo the one for unicast, marshalled once
	// when the LAN is stored so that sending does not allocate. See Listen6
	// for why IPv6 needs two.
	info, uinfo []byte
}

// Heard is the fact a packet establishes: the peer spoke to us on LAN.
type Heard struct {
	LAN      int // index into the exchange's LANs
	Type     Type
	Node     uint32
	Boot     uint32
	Addrs    [MaxLANs]netip.Addr // the peer's address on each of our LANs
	Interval time.Duration       // the peer's INQ interval; 0 for a responder
	RTT      time.Duration       // for an ACK: the round trip of our INQ
	At       time.Time
}

// Drop reasons, one counter each.
const (
	DropDecode   = iota // malformed: short, bad magic, version, type, addresses
	DropTTL             // arrived with a TTL (IPv4) or hop limit (IPv6) below 255
	DropIface           // arrived on an interface that is not a LAN
	DropSubnet          // source not on the subnet of its arrival interface
	DropSelf            // our own broadcast looped back
	DropConflict        // another node uses our node id
	DropStaleACK        // an ACK that answers no INQ of ours
	DropNoTag           // no tag, and we have a key
	DropAuth            // a tag that does not verify, or one we cannot check (no key)
	DropReplay          // seen before, or older than the replay window (see replay.go)
	DropIDAddr          // a node id heard from another address than the one it is bound to
	DropPeers           // a new peer while the peer table is full
	DropCross           // source on the subnet of another of our LANs: cables swapped?
	DropControl         // control messages (arrival interface, TTL) missing or truncated
	numDrops
)

// DropNames names the drop counters for logs and status. New reasons go at
// the end.
var DropNames = [numDrops]string{"decode", "ttl", "iface", "subnet", "self", "conflict", "stale-ack",
	"no-tag", "auth", "replay", "id-addr", "peer-limit", "cross-wired", "control"}

// crossLogEvery spaces the log lines about cross-wired LANs, per pair of
// LANs: a swapped cable sends every packet the wrong way.
const crossLogEvery = time.Minute

// Config describes this node to the exchange.
type Config struct {
	Port     int
	Node     uint32
	Boot     uint32
	Interval time.Duration // 0: responder only
	// LANs in priority order: the number and order are fixed for the life
	// of the exchange, the interfaces and addresses may change (SetLANs).
	LANs []LAN
	// Keys, when set, authenticate every packet (see MAC): the first signs,
	// any verifies. Without keys, packets go unsigned and signed ones are
	// dropped, since they cannot be checked.
	Keys [][]byte
	// MaxPeers bounds the peer table (0: DefaultMaxPeers); Forget is how
	// long a silent peer keeps its place in it (0: DefaultForget).
	MaxPeers int
	Forget   time.Duration
	// Log receives the rare notices of the peer table (full, an id that
	// moved); nil discards them.
	Log *slog.Logger
}

// Exchange is this node's side of the INQ/ACK protocol for one address
// family, over one UDP socket shared by every LAN: Listen makes the IPv4
// one, Listen6 the IPv6 one. The socket reports each packet's arrival
// interface, and each reply leaves by the interface its INQ came in on.
type Exchange struct {
	cfg  Config
	lans atomic.Pointer[[]LAN] // the current LANs; replaced whole, never modified
	conn *net.UDPConn
	v6   bool
	pc6  *ipv6.PacketConn // IPv6 only: to join Group6 on interfaces that come later
	seq  atomic.Uint64

	mu    sync.Mutex
	sent  [MaxLANs][8]sentINQ // the last INQs sent on each LAN, for round trips
	nsent [MaxLANs]int

	drops [numDrops]atomic.Uint64
	deaf  atomic.Pointer[[MaxLANs][]uint32]
	// crossLogged holds, per (arrival LAN, source's LAN), when a
	// cross-wired packet was last logged, in Unix nanoseconds.
	crossLogged [MaxLANs][MaxLANs]atomic.Int64

	peers *peerTable // replay windows; the responder's alone
}

// SetDeaf publishes, per LAN, the node ids this node cannot hear there; the
// next INQ on each LAN carries its list. The caller must not modify lists
// after handing them over.
func (x *Exchange) SetDeaf(lists *[MaxLANs][]uint32) { x.deaf.Store(lists) }

// SetLANs replaces the LANs' interfaces and addresses at run time, after an
// interface came back, was recreated or readdressed. There must be as many
// as at Listen, in the same order: LAN B stays LAN B. The caller must not
// modify lans after handing it over.
func (x *Exchange) SetLANs(lans []LAN) error {
	if len(lans) != len(x.cfg.LANs) {
		return fmt.Errorf("failed to update LANs: %d LANs, the exchange has %d", len(lans), len(x.cfg.LANs))
	}
	x.storeLANs(lans)
	if x.v6 {
		// A recreated interface has left Group6 with its old self.
		return joinGroup6(x.pc6, x.LANs())
	}
	return nil
}

// storeLANs publishes lans, each with its packet info for sending.
func (x *Exchange) storeLANs(lans []LAN) {
	lans = append([]LAN(nil), lans...)
	for i := range lans {
		l := &lans[i]
		if x.v6 {
			if !l.Broadcast.IsValid() {
				l.Broadcast = Group6
			}
			l.info = (&ipv6.ControlMessage{IfIndex: l.IfIndex, Src: l.Addr.Addr().AsSlice()}).Marshal()
			l.uinfo = (&ipv6.ControlMessage{IfIndex: l.IfIndex}).Marshal()
			continue
		}
		l.info = (&ipv4.ControlMessage{IfIndex: l.IfIndex, Src: l.Addr.Addr().AsSlice()}).Marshal()
		l.uinfo = l.info
	}
	x.lans.Store(&lans)
}

// LANs returns the current LANs; the caller must not modify them.
func (x *Exchange) LANs() []LAN { return *x.lans.Load() }

// up reports whether packets can go out on l: its interface exists and it
// has an address of the exchange's family.
func (l LAN) up() bool { return l.IfIndex > 0 && l.Addr.IsValid() }

// control is what the exchange needs from a packet's control messages,
// for either family.
type control struct {
	ifIndex int // the interface it arrived on
	hops    int // its TTL or hop limit on arrival
}

// parseControl reads cm from a received packet's control messages without
// allocating; false when either field is missing.
func (x *Exchange) parseControl(b []byte, cm *control) bool {
	if x.v6 {
		return parseControl6(b, cm)
	}
	return parseControl4(b, cm)
}

// readControl reads cm from a received packet's control messages and the
// flags of its receipt. Without both fields, or when the kernel truncated
// the control messages (MSG_CTRUNC: the buffer was too small, so what is
// there cannot be trusted to be all), the packet cannot be checked: it is
// dropped and counted.
func (x *Exchange) readControl(b []byte, flags int, cm *control) bool {
	if flags&msgCtrunc != 0 || !x.parseControl(b, cm) {
		x.drops[DropControl].Add(1)
		return false
	}
	return true
}

type sentINQ struct {
	seq uint64
	at  time.Time
}

// checkConfig is what Listen and Listen6 require of cfg.
func checkConfig(cfg *Config) error {
	if len(cfg.LANs) > MaxLANs {
		return fmt.Errorf("%d LANs, at most %d", len(cfg.LANs), MaxLANs)
	}
	if len(cfg.Keys) > 0 {
		return CheckKeys(cfg.Keys)
	}
	return nil
}

// newExchange wraps a bound socket.
func newExchange(cfg Config, c net.PacketConn, v6 bool) *Exchange {
	x := &Exchange{cfg: cfg, conn: c.(*net.UDPConn), v6: v6, peers: newPeerTable(&cfg)}
	x.storeLANs(cfg.LANs)
	// Start sequence numbers at the clock so that they grow across restarts
	// too: the replay rule (replay.go) relies on it.
	x.seq.Store(uint64(time.Now().UnixNano()))
	return x
}

// Listen binds the IPv4 exchange's socket on cfg.Port.
func Listen(cfg Config) (*Exchange, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setBroadcast(fd)
			if serr == nil {
				setReceiveBuffer(fd, receiveBuffer)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("failed to listen on UDP port %d: %w", cfg.Port, err)
	}
	x := newExchange(cfg, c, false)
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst|ipv4.FlagTTL, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("failed to ask for packet info: %w", err)
	}
	if err := pc.SetTTL(ttl); err != nil {
		c.Close()
		return nil, fmt.Errorf("failed to set TTL: %w", err)
	}
	return x, nil
}

// Close releases the socket.
func (x *Exchange) Close() error { return x.conn.Close() }

// Drops returns how many packets were dropped for each reason.
func (x *Exchange) Drops() (out [numDrops]uint64) {
	for i := range x.drops {
		out[i] = x.drops[i].Load()
	}
	return out
}

// newMAC returns a MAC for the exchange's family (nil without keys); each
// goroutine needs its own.
func (x *Exchange) newMAC() (*MAC, error) {
	if x.v6 {
		return NewMAC6(x.cfg.Keys)
	}
	return NewMAC(x.cfg.Keys)
}

// packet fills in what every packet of ours carries.
func (x *Exchange) packet(p *Packet, t Type, mac *MAC) {
	p.Auth = mac != nil
	p.Type = t
	p.NodeID = x.cfg.Node
	p.BootID = x.cfg.Boot
	p.Seq = x.seq.Add(1)
	p.Echo = 0
	p.Interval = x.cfg.Interval
	p.Deaf = p.Deaf[:0]
	p.Addrs = p.Addrs[:0]
	for _, l := range x.LANs() {
		if l.Addr.IsValid() {
			p.Addrs = append(p.Addrs, l.Addr)
		}
	}
}

// Requestor sends an INQ on every LAN now and then once each interval, until
// ctx ends. A LAN that cannot send (its link is down, say) is reported
// through onErr and tried again next interval.
func (x *Exchange) Requestor(ctx context.Context, onErr func(lan int, err error)) error {
	t := time.NewTicker(x.cfg.Interval)
	defer t.Stop()
	var p Packet
	buf := make([]byte, 0, MaxLen)
	mac, err := x.newMAC() // this goroutine's own HMAC state
	if err != nil {
		return err
	}
	for {
		deaf := x.deaf.Load()
		for i, l := range x.LANs() {
			if !l.up() {
				continue // gone, or without an address of this family
			}
			x.packet(&p, INQ, mac)
			if deaf != nil {
				p.Deaf = deaf[i][:min(len(deaf[i]), MaxDeaf)]
			}
			b, err := p.Append(buf[:0])
			if err == nil && mac != nil {
				err = mac.Sign(b)
			}
			if err == nil {
				now := time.Now()
				x.mu.Lock()
				x.sent[i][x.nsent[i]%8] = sentINQ{seq: p.Seq, at: now}
				x.nsent[i]++
				x.mu.Unlock()
				err = x.sendINQ(b, &l)
			}
			if err != nil {
				onErr(i, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sendINQ writes an INQ to the LAN's broadcast address or group, or with
// --peer to each listed peer on it; the first error is returned after
// every peer was tried.
func (x *Exchange) sendINQ(b []byte, l *LAN) error {
	if !l.Unicast {
		return x.send(b, l.Broadcast, l)
	}
	var first error
	for _, dst := range l.Peers {
		if err := x.send(b, dst, l); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// send writes b to dst:port out of l's interface. Naming the interface
// matters: once faild has routed a peer's LAN-A address over LAN B, only
// this keeps ACKs to that address on LAN A.
func (x *Exchange) send(b []byte, dst netip.Addr, l *LAN) error {
	oob := l.uinfo
	if dst.IsMulticast() {
		oob = l.info
	}
	_, _, err := x.conn.WriteMsgUDPAddrPort(b, oob, netip.AddrPortFrom(dst, uint16(x.cfg.Port)))
	return err
}

// Responder reads packets until ctx ends: it answers every INQ with an ACK
// on the LAN it came from and reports every packet that is evidence to
// heard, which must not block. Bad packets are counted and skipped, never
// fatal.
func (x *Exchange) Responder(ctx context.Context, heard func(*Heard), onErr func(lan int, err error)) error {
	stop := context.AfterFunc(ctx, func() { x.conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, MaxLen+1)
	out := make([]byte, 0, MaxLen)
	mac, err := x.newMAC() // this goroutine's own HMAC state
	if err != nil {
		return err
	}
	if x.peers == nil {
		x.peers = newPeerTable(&x.cfg)
	}
	var oob []byte
	if x.v6 {
		oob = ipv6.NewControlMessage(ipv6.FlagInterface | ipv6.FlagDst | ipv6.FlagHopLimit)
	} else {
		oob = ipv4.NewControlMessage(ipv4.FlagInterface | ipv4.FlagDst | ipv4.FlagTTL)
	}
	var in, ack Packet
	var h Heard
	var cm control
	for {
		// ReadMsgUDPAddrPort and parseControl do not allocate, unlike
		// ipv4.PacketConn.ReadFrom: this loop runs for every packet.
		n, oobn, flags, src, err := x.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("failed to read: %w", err)
		}
		now := time.Now()
		if !x.readControl(oob[:oobn], flags, &cm) {
			continue
		}
		if in.Decode(buf[:n]) != nil {
			x.drops[DropDecode].Add(1)
			continue
		}
		if r := x.authenticate(mac, &in, buf[:n]); r >= 0 {
			x.drops[r].Add(1)
			continue
		}
		lans := x.LANs()
		lan, from, ok := x.check(lans, &in, &cm, src)
		if !ok {
			continue
		}
		if r := x.peers.admit(&in, lan, from, now); r >= 0 {
			x.drops[r].Add(1)
			continue
		}
		h = Heard{LAN: lan, Type: in.Type, Node: in.NodeID, Boot: in.BootID, Interval: in.Interval, At: now}
		x.peerAddrs(lans, &in, &h)
		h.Addrs[lan] = from // where it really came from is where ACKs go
		if in.Type == INQ {
			x.packet(&ack, ACK, mac)
			ack.Echo = in.Seq
			b, err := ack.Append(out[:0])
			if err == nil && mac != nil {
				err = mac.Sign(b)
			}
			if err == nil {
				err = x.send(b, h.Addrs[lan], &lans[lan])
			}
			if err != nil {
				onErr(lan, err)
			}
			// An INQ whose sender cannot hear us is answered (our ACKs are
			// how it finds the path again) but is no evidence: the path is
			// broken in our direction, so it must fail over here too.
			if in.Lists(x.cfg.Node) {
				continue
			}
		} else {
			rtt, ok := x.rtt(lan, in.Echo, now)
			if !ok {
				x.drops[DropStaleACK].Add(1)
				continue
			}
			h.RTT = rtt
		}
		heard(&h)
	}
}

// authenticate returns the drop reason for a decoded packet whose tag is
// missing or wrong, or -1. Without a key, a signed packet is dropped too:
// it comes from a node configured with a key that we cannot check.
func (x *Exchange) authenticate(mac *MAC, p *Packet, b []byte) int {
	switch {
	case mac == nil && p.Auth:
		return DropAuth
	case mac == nil:
		return -1
	case !p.Auth:
		return DropNoTag
	case mac.Verify(b) != nil:
		return DropAuth
	}
	return -1
}

// check applies the rules every received packet must pass and returns the
// index of the LAN among lans it arrived on and its source address.
func (x *Exchange) check(lans []LAN, p *Packet, cm *control, src netip.AddrPort) (lan int, from netip.Addr, ok bool) {
	if cm.hops != ttl {
		x.drops[DropTTL].Add(1)
		return 0, from, false
	}
	lan = -1
	for i, l := range lans {
		if l.up() && l.IfIndex == cm.ifIndex {
			lan = i
			break
		}
	}
	if lan < 0 {
		x.drops[DropIface].Add(1)
		return 0, from, false
	}
	from = src.Addr().Unmap()
	if !lans[lan].Addr.Masked().Contains(from) {
		x.drops[x.foreignSource(lans, lan, from)].Add(1)
		return 0, from, false
	}
	if p.NodeID == x.cfg.Node {
		if p.BootID == x.cfg.Boot {
			x.drops[DropSelf].Add(1)
		} else {
			x.drops[DropConflict].Add(1)
		}
		return 0, from, false
	}
	return lan, from, true
}

// foreignSource is the drop reason for a packet from outside the subnet of
// the LAN it arrived on: cross-wired when the source is on the subnet of
// another of our LANs, which is what LANs whose cables are swapped (or
// bridged together) look like; logged at most once a minute per pair.
// faild does not act on it: the operator must look.
func (x *Exchange) foreignSource(lans []LAN, arrived int, from netip.Addr) int {
	for i, l := range lans {
		if i == arrived || !l.Addr.IsValid() || !l.Addr.Masked().Contains(from) {
			continue
		}
		if x.cfg.Log != nil {
			now := time.Now().UnixNano()
			last := &x.crossLogged[arrived][i]
			if t := last.Load(); (t == 0 || now-t >= int64(crossLogEvery)) && last.CompareAndSwap(t, now) {
				x.cfg.Log.Warn("cross-wired", "lan", lanName(arrived), "dev", lans[arrived].Name,
					"from", from.String(), "from_lan", lanName(i),
					"detail", fmt.Sprintf("packets for LAN %s arrive on %s (LAN %s): are the cables swapped? Dropped; logged once a minute",
						lanName(i), lans[arrived].Name, lanName(arrived)))
			}
		}
		return DropCross
	}
	return DropSubnet
}

// peerAddrs places each address the peer announced on the LAN of ours whose
// subnet holds it. An announced address becomes the destination of a route
// faild installs, so one that is ours (on any LAN), or the network or
// broadcast address of the LAN's subnet, is skipped: no peer (nor, without
// a key, anyone on the LAN) may have us route those over another LAN. The
// packet still counts; the entry is just not placed.
func (x *Exchange) peerAddrs(lans []LAN, p *Packet, h *Heard) {
	for _, a := range p.Addrs {
		ip := a.Addr()
		if ours(lans, ip) {
			continue
		}
		for i, l := range lans {
			if l.Addr.IsValid() && l.Addr.Masked().Contains(ip) && !subnetEnd(l.Addr, ip) {
				h.Addrs[i] = ip
			}
		}
	}
}

// ours reports whether ip is our address on one of lans.
func ours(lans []LAN, ip netip.Addr) bool {
	for _, l := range lans {
		if l.Addr.IsValid() && l.Addr.Addr() == ip {
			return true
		}
	}
	return false
}

// subnetEnd reports whether ip, inside subnet, is its network address (for
// IPv6 the subnet-router anycast address) or, for IPv4, its broadcast
// address. Subnets with fewer than two host bits (/31 and /32, /127 and
// /128) have neither: every address in them is a host's.
func subnetEnd(subnet netip.Prefix, ip netip.Addr) bool {
	host := ip.BitLen() - subnet.Bits()
	if host < 2 {
		return false
	}
	if ip == subnet.Masked().Addr() {
		return true
	}
	if !ip.Is4() {
		return false
	}
	v := ip.As4()
	ones := uint32(1)<<host - 1
	return binary.BigEndian.Uint32(v[:])&ones == ones
}

// rtt finds the INQ an ACK answers among the recent ones sent on lan.
func (x *Exchange) rtt(lan int, echo uint64, now time.Time) (time.Duration, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.sent[lan] {
		if s.seq == echo && !s.at.IsZero() {
			return now.Sub(s.at), true
		}
	}
	return 0, false
}
