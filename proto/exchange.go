package proto

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/faild/faild/routes"
)

// MaxLANs is the most LANs one node can watch.
const MaxLANs = routes.MaxLANs

// ttl is sent on every packet as the TTL (IPv4) or hop limit (IPv6) and
// required on every packet received (GTSM, RFC 5082, as BFD single-hop
// does): a packet that crossed a router arrives with less and cannot count
// as evidence of a LAN path.
const ttl = 255

// Group6 is the IPv6 multicast group INQs go to on every LAN: ff12::4117,
// link-local scope (2) with the transient flag (T=1) set. IANA assigns only
// permanent (T=0) groups, so a transient one cannot collide with a
// well-known ff02:: group; link-local scope keeps it off routers; 4117 is
// faild's default port. Every node joins it on each LAN interface that has
// an IPv6 address.
var Group6 = netip.MustParseAddr("ff12::4117")

// LAN is one of this node's LAN interfaces, as the exchange of one address
// family sees it. A LAN whose Addr is not valid lacks that family, and one
// whose interface is gone has Index 0: the exchange neither sends nor
// accepts packets there.
type LAN struct {
	Name      string // the interface, for logs
	Index     int    // the interface's index
	Addr      netip.Prefix
	Broadcast netip.Addr // where INQs go: the broadcast address, or Group6 for IPv6
	// Unicast replaces Broadcast with Peers (--peer): INQs go to each of
	// them by unicast, for networks that drop broadcast or multicast; with
	// no Peers, no INQs go out on the LAN.
	Unicast bool
	Peers   []netip.Addr
}

// up reports whether packets can go out on l: its interface exists and it
// has an address of the exchange's family.
func (l *LAN) up() bool { return l.Index > 0 && l.Addr.IsValid() }

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

// Drops counts dropped packets by reason, indexed like DropNames.
type Drops [numDrops]uint64

// crossLogEvery spaces the log lines about cross-wired LANs, per pair of
// LANs: a swapped cable sends every packet the wrong way.
const crossLogEvery = time.Minute

// Config describes this node to the exchange.
type Config struct {
	Port     int
	Node     uint32
	Boot     uint32
	Interval time.Duration // 0: responder only
	V6       bool          // the exchange's address family
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
	// moved) and of cross-wired LANs; nil discards them.
	Log *slog.Logger
}

// Exchange is this node's side of the INQ/ACK protocol for one address
// family: what its Receiver (the packets that arrive) and its Requestor
// (the INQs it sends) share. It does no I/O; the caller moves the
// datagrams through a Conn.
type Exchange struct {
	cfg   Config
	lans  atomic.Pointer[[]LAN] // the current LANs; replaced whole, never modified
	seq   atomic.Uint64         // the sequence number of every packet sent, INQ or ACK
	drops [numDrops]atomic.Uint64
}

// NewExchange checks cfg and returns the exchange it describes.
func NewExchange(cfg Config) (*Exchange, error) {
	if len(cfg.LANs) > MaxLANs {
		return nil, fmt.Errorf("proto: %d LANs, at most %d", len(cfg.LANs), MaxLANs)
	}
	if len(cfg.Keys) > 0 {
		if err := CheckKeys(cfg.Keys); err != nil {
			return nil, err
		}
	}
	x := &Exchange{cfg: cfg}
	x.storeLANs(cfg.LANs)
	// Start sequence numbers at the clock so that they grow across restarts
	// too: the replay rule (replay.go) relies on it.
	x.seq.Store(uint64(time.Now().UnixNano()))
	return x, nil
}

// SetLANs replaces the LANs' interfaces and addresses at run time, after an
// interface came back, was recreated or readdressed. There must be as many
// as at start, in the same order: LAN B stays LAN B. The caller must not
// modify lans after handing it over.
func (x *Exchange) SetLANs(lans []LAN) error {
	if len(lans) != len(x.cfg.LANs) {
		return fmt.Errorf("proto: %d LANs, the exchange has %d", len(lans), len(x.cfg.LANs))
	}
	x.storeLANs(lans)
	return nil
}

func (x *Exchange) storeLANs(lans []LAN) {
	lans = append([]LAN(nil), lans...)
	if x.cfg.V6 {
		for i := range lans {
			if !lans[i].Broadcast.IsValid() {
				lans[i].Broadcast = Group6
			}
		}
	}
	x.lans.Store(&lans)
}

// LANs returns the current LANs; the caller must not modify them.
func (x *Exchange) LANs() []LAN { return *x.lans.Load() }

// Drops returns how many packets were dropped for each reason.
func (x *Exchange) Drops() (out Drops) {
	for i := range x.drops {
		out[i] = x.drops[i].Load()
	}
	return out
}

// LANOf is the index of the LAN whose interface is ifIndex, -1 if none.
func (x *Exchange) LANOf(ifIndex int) int {
	for i, l := range x.LANs() {
		if l.Index == ifIndex && ifIndex > 0 {
			return i
		}
	}
	return -1
}

// newMAC returns a MAC for the exchange's family (nil without keys); each
// goroutine needs its own.
func (x *Exchange) newMAC() (*MAC, error) {
	if x.cfg.V6 {
		return NewMAC6(x.cfg.Keys)
	}
	return NewMAC(x.cfg.Keys)
}

// packet fills in what every packet of ours carries.
func (x *Exchange) packet(p *Packet, t Type, mac *MAC) {
	p.Auth = mac != nil
	p.Version, p.V2 = Version, true
	p.ViewTotal, p.ViewOffset, p.View = 0, 0, p.View[:0]
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

// encode appends p, signed when mac is set, to b.
func encode(p *Packet, mac *MAC, b []byte) ([]byte, error) {
	b, err := p.Append(b)
	if err == nil && mac != nil {
		err = mac.Sign(b)
	}
	return b, err
}

// source is the address a packet to dst names as its source on l. Over
// IPv4 every packet names our address on the LAN. Over IPv6 only multicast
// does (else the kernel would pick our link-local address for the
// link-local group); unicast names none, because with a source given Linux
// no longer holds IPv6 routing to the named interface, and after a
// failover the ACKs to a peer's LAN-A address would follow faild's own host
// route over LAN B. The kernel then picks our address in the destination's
// prefix.
func (x *Exchange) source(l *LAN, dst netip.Addr) netip.Addr {
	if x.cfg.V6 && !dst.IsMulticast() {
		return netip.Addr{}
	}
	return l.Addr.Addr()
}

// message addresses b to dst:port out of l's interface. Naming the
// interface matters: once faild has routed a peer's LAN-A address over LAN
// B, only this keeps ACKs to that address on LAN A.
func (x *Exchange) message(b []byte, l *LAN, dst netip.Addr) Message {
	return Message{Buf: b, Addr: netip.AddrPortFrom(dst, uint16(x.cfg.Port)), IfIndex: l.Index, Src: x.source(l, dst)}
}

// check applies the rules every received packet must pass. It returns the
// index of the LAN among lans the packet arrived on (-1 if none), its
// source address, and the reason to drop it, or -1 when it passes.
func (x *Exchange) check(lans []LAN, p *Packet, m *Message) (lan int, from netip.Addr, drop int) {
	if m.Hops != ttl {
		return -1, from, DropTTL
	}
	lan = -1
	for i := range lans {
		if lans[i].up() && lans[i].Index == m.IfIndex {
			lan = i
			break
		}
	}
	if lan < 0 {
		return -1, from, DropIface
	}
	from = m.Addr.Addr().Unmap()
	switch {
	case !lans[lan].Addr.Contains(from): // Contains ignores the prefix's host bits
		return lan, from, foreignSource(lans, lan, from)
	case p.NodeID == x.cfg.Node && p.BootID == x.cfg.Boot:
		return lan, from, DropSelf
	case p.NodeID == x.cfg.Node:
		return lan, from, DropConflict
	}
	return lan, from, -1
}

// foreignSource is the drop reason for a packet from outside the subnet of
// the LAN it arrived on: cross-wired when the source is on the subnet of
// another of our LANs, which is what LANs whose cables are swapped (or
// bridged together) look like, else subnet.
func foreignSource(lans []LAN, arrived int, from netip.Addr) int {
	if otherSubnet(lans, arrived, from) >= 0 {
		return DropCross
	}
	return DropSubnet
}

// otherSubnet is the LAN other than arrived whose subnet holds from, -1
// for none.
func otherSubnet(lans []LAN, arrived int, from netip.Addr) int {
	for i, l := range lans {
		if i != arrived && l.Addr.IsValid() && l.Addr.Masked().Contains(from) {
			return i
		}
	}
	return -1
}

// peerAddrs places each address the peer announced on the LAN of ours whose
// subnet holds it. An announced address becomes the destination of a route
// faild installs, so one that is ours (on any LAN), or the network or
// broadcast address of the LAN's subnet, is skipped: no peer (nor, without
// a key, anyone on the LAN) may have us route those over another LAN. The
// packet still counts; the entry is just not placed.
//
// The placing depends on our LANs and the entries alone, and a peer's
// entries mostly stay as they were: st, the peer's state, keeps it for
// the LANs at lans (which are replaced whole, never modified), with the
// LAN of each entry for learnView.
func (x *Exchange) peerAddrs(lans *[]LAN, p *Packet, st *peerState, h *Heard) {
	if st.placedFor != lans || !slices.Equal(st.placedFrom, p.Addrs) {
		st.placed, st.lanOf, st.turned = [MaxLANs]netip.Addr{}, [MaxViewLANs]int8{}, nil
		for j, a := range p.Addrs {
			ip := a.Addr()
			lanOf, place := int8(-1), !ours(*lans, ip)
			for i, l := range *lans {
				if !l.Addr.Contains(ip) {
					continue
				}
				if lanOf < 0 {
					lanOf = int8(i)
				}
				if place && !SubnetEnd(l.Addr, ip) {
					st.placed[i] = ip
				}
			}
			if j < MaxViewLANs {
				st.lanOf[j] = lanOf
			}
		}
		st.placedFor, st.placedFrom = lans, append(st.placedFrom[:0], p.Addrs...)
	}
	h.Addrs = st.placed
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

// SubnetEnd reports whether ip, inside subnet, is its network address (for
// IPv6 the subnet-router anycast address) or, for IPv4, its broadcast
// address. Subnets with fewer than two host bits (/31 and /32, /127 and
// /128) have neither: every address in them is a host's.
func SubnetEnd(subnet netip.Prefix, ip netip.Addr) bool {
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
