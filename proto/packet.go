package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Packet layout, versions 1 and 2. All integers are big-endian.
//
//	offset size field
//	     0    4 magic "fald"
//	     4    1 version: 1, or 2 for an INQ that carries a view (below)
//	     5    1 type: 1 = INQ, 2 = ACK
//	     6    1 flags: bit 0 (FlagAuth) = a tag follows the address entries;
//	              bit 1 (FlagV2) = the sender reads version 2 (set in the
//	              version-1 packets of a node that does; implied by version
//	              2); the other bits are reserved, sent as 0, ignored on receipt
//	     7    1 number of address entries that follow the header (0..MaxAddrs)
//	     8    4 node id: stable identity of the sender (default: its LAN-A IPv4
//	              address, or a hash of its LAN-A IPv6 address on IPv6-only LANs)
//	    12    4 boot id: random per start, so a restarted peer is told apart
//	    16    8 sequence number, incremented for every INQ the sender sends
//	    24    8 echo: in an ACK, the sequence number of the INQ it answers; in
//	              an INQ, its number among the sender's INQs on that LAN,
//	              from 1, by which receivers count those lost (0 from a
//	              sender that does not number them)
//	    32    4 interval in microseconds at which the sender sends INQs (0: responder only)
//	    36    - address entries, one per LAN the sender has in the family of
//	              the packet: 1 family (4 or 6), 1 prefix length, 4 or 16
//	              address bytes. IPv6 packets carry global or unique-local
//	              addresses, never link-local ones (fe80::/64 is on every LAN)
//	     -    1 deaf count (0..MaxDeaf; always 0 in an ACK)
//	     -    - deaf list: 4-byte node ids of the peers the sender cannot hear
//	              on the LAN this INQ is sent on. A peer that finds itself
//	              listed knows its packets are lost on the way, even though
//	              it still hears the sender, and fails that path over too.
//
// Version 2 (INQs only) goes on with the sender's view: whom it hears on
// every one of its LANs, not only the one the INQ is sent on, so that any
// node can draw the cluster's reachability matrix.
//
//	offset size field
//	     -    2 view total: peers in the sender's whole view (0..65535)
//	     -    2 view offset: the place of this packet's first entry in the
//	              whole view, which is sorted by node id
//	     -    1 view count: entries in this packet (0..MaxView)
//	     -    - view entries, node ids strictly ascending, each a 4-byte
//	              node id and then ViewStateLen(n) bytes for the n address
//	              entries of the packet: 2 bits for each, the first entry in
//	              the top bits of the first byte: 00 the sender has no path
//	              to the peer on the LAN of that address entry (unknown),
//	              01 it hears the peer there (a packet of the peer's
//	              arrived within the path's detection time, evidence or
//	              not), 10 it does not, 11 it hears it but the path is
//	              lossy by its quality figures (routes.Table.Lossy). A
//	              view with more than MaxViewLANs address entries, or
//	              with entries past the total, is invalid
//
// A view larger than one INQ holds (senders keep an INQ within INQBudget
// bytes) goes out in windows that rotate over successive INQs: the whole
// view of P peers reaches every node within ceil(P / entries per INQ)
// intervals. A window covers the node ids from its first entry's to its
// last's (from zero when its offset is 0, and up to the top when it ends
// the view): a node whose id it covers but does not list is not known to
// the sender. The view is never evidence for a path by itself: it only
// says whether the sender hears the receiver, and so whether its INQ is.
//
// Both versions end the same way:
//
//   - 32 with FlagAuth only, last: HMAC-SHA256 over the family byte
//     (4 or 6) and every byte before the tag (flags byte
//     included, as sent), keyed with --key-file. The family
//     byte is the packet's address family, not sent: a packet
//     signed for IPv6 does not verify over IPv4, and the other
//     way round (see MAC)
//
// A version-1 node drops version-2 packets as malformed. So a node sends
// each INQ in version 2 and, while a peer it knows has not shown FlagV2,
// in version 1 too (see Requestor.INQs); it answers every INQ with a
// version-1 ACK with FlagV2. For its first 16 rounds, and one round in 16
// after, the version-1 INQ goes anyway: a version-1 responder speaks only
// when asked, and would not be known otherwise.
//
// Over IPv4, INQs go to each LAN's broadcast address; over IPv6 to the
// link-local group ff12::4117 (Group6), chosen transient (T=1) because IANA
// assigns only permanent groups, so no well-known ff02:: group can clash with
// it. With --peer they go by unicast to the listed peers instead. ACKs go by
// unicast to the INQ's source. Both families are sent with TTL or hop limit
// 255 and dropped with less.
//
// The tag sits at the end so that one pass of the MAC covers exactly the
// bytes before it (after the family byte), and a keyless decoder still
// finds every field in place.
const (
	HeaderLen = 36
	MaxAddrs  = 16
	MaxDeaf   = 255
	// Version is the first version, which every node reads; Version2 adds
	// the view to INQs.
	Version  = 1
	Version2 = 2
	// MaxView is the most view entries one INQ carries, MaxViewLANs the
	// most LANs (address entries) a view speaks of.
	MaxView     = 255
	MaxViewLANs = 8
	// INQBudget bounds the INQs a sender fills with its view: the IPv6
	// minimum MTU less the IPv6 and UDP headers, so that no INQ is
	// fragmented on any LAN. (The deaf list alone may go past it.)
	INQBudget  = 1280 - 40 - 8
	viewHdrLen = 2 + 2 + 1

	addr4Len = 2 + 4
	addr6Len = 2 + 16
	// TagLen is the size of the HMAC-SHA256 tag of an authenticated packet.
	TagLen = 32
	// MaxLen is the largest valid packet: the header, MaxAddrs IPv6 entries,
	// a full deaf list and a tag.
	MaxLen = HeaderLen + MaxAddrs*addr6Len + 1 + MaxDeaf*4 + viewHdrLen + MaxView*(4+2) + TagLen

	// FlagAuth in the flags byte says a TagLen-byte tag ends the packet.
	FlagAuth = 1 << 0
	// FlagV2 says the sender reads version 2.
	FlagV2   = 1 << 1
	flagsOff = 6
)

var magic = [4]byte{'f', 'a', 'l', 'd'}

// Type says whether a packet asks (INQ) or answers (ACK).
type Type uint8

const (
	INQ Type = 1
	ACK Type = 2
)

func (t Type) String() string {
	switch t {
	case INQ:
		return "INQ"
	case ACK:
		return "ACK"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Sentinel errors, wrapped by Decode with detail; callers count drops by them.
var (
	ErrShort   = errors.New("packet too short")
	ErrMagic   = errors.New("bad magic")
	ErrVersion = errors.New("unsupported version")
	ErrType    = errors.New("unknown packet type")
	ErrAddrs   = errors.New("bad address list")
	ErrDeaf    = errors.New("bad deaf list")
	ErrTrailer = errors.New("trailing bytes")
	ErrView    = errors.New("bad view")
)

// ErrInterval is Append's error for an interval the wire's 32 bits of
// microseconds cannot carry.
var ErrInterval = errors.New("interval out of range")

// Packet is one decoded INQ or ACK.
type Packet struct {
	// Version is 1 or 2; the zero Packet encodes as version 1.
	Version  uint8
	Type     Type
	NodeID   uint32
	BootID   uint32
	Seq      uint64
	Echo     uint64
	Interval time.Duration
	// Addrs holds the sender's address on each of its LANs. Decode reuses the
	// slice's capacity so a long-lived Packet decodes without allocating.
	Addrs []netip.Prefix
	// Deaf lists the node ids the sender cannot hear on this LAN (INQ only).
	Deaf []uint32
	// Auth says the packet carries Tag. Decode does not check the tag (it
	// has no key); MAC.Verify does, on the raw bytes.
	Auth bool
	Tag  [TagLen]byte
	// V2: the sender reads version 2 (FlagV2, or the packet is version 2).
	V2 bool
	// The view of a version-2 INQ: View is the window of entries this
	// packet carries, at ViewOffset in the sender's whole view of
	// ViewTotal peers. Each entry's masks index the packet's address
	// entries.
	ViewTotal  int
	ViewOffset int
	View       []ViewEntry
}

// ViewEntry is what a sender says of one peer: bit i of Known is set when
// it has a path to the peer on LAN i, bit i of Heard when it hears the
// peer there, bit i of Lossy when the path there is lossy by the sender's
// measure (Lossy is a subset of Heard, Heard of Known). In a
// Packet, i indexes the packet's address entries; in a Heard, the
// receiver's LANs.
type ViewEntry struct {
	Node  uint32
	Known uint8
	Heard uint8
	Lossy uint8
}

// ViewStateLen is the size of an entry's states for n address entries.
func ViewStateLen(n int) int { return (2*n + 7) / 8 }

// version is the version p encodes as.
func (p *Packet) version() uint8 {
	if p.Version == 0 {
		return Version
	}
	return p.Version
}

// Lists reports whether id is on p's deaf list.
func (p *Packet) Lists(id uint32) bool {
	for _, d := range p.Deaf {
		if d == id {
			return true
		}
	}
	return false
}

// Append encodes p onto b and returns the extended slice.
func (p *Packet) Append(b []byte) ([]byte, error) {
	if p.Type != INQ && p.Type != ACK {
		return b, fmt.Errorf("proto: encode: %w: %d", ErrType, p.Type)
	}
	if len(p.Deaf) > MaxDeaf || (p.Type == ACK && len(p.Deaf) > 0) {
		return b, fmt.Errorf("proto: encode: %w: %d entries in a %v", ErrDeaf, len(p.Deaf), p.Type)
	}
	if len(p.Addrs) > MaxAddrs {
		return b, fmt.Errorf("proto: encode: %w: %d addresses, at most %d", ErrAddrs, len(p.Addrs), MaxAddrs)
	}
	us := p.Interval.Microseconds()
	if us < 0 || us > 1<<32-1 {
		return b, fmt.Errorf("proto: encode: %w: %v", ErrInterval, p.Interval)
	}
	v := p.version()
	if err := p.checkView(v); err != nil {
		return b, fmt.Errorf("proto: encode: %w", err)
	}
	b = append(b, magic[:]...)
	var flags byte
	if p.Auth {
		flags |= FlagAuth
	}
	if p.V2 && v == Version {
		flags |= FlagV2
	}
	b = append(b, v, byte(p.Type), flags, byte(len(p.Addrs)))
	b = binary.BigEndian.AppendUint32(b, p.NodeID)
	b = binary.BigEndian.AppendUint32(b, p.BootID)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint64(b, p.Echo)
	b = binary.BigEndian.AppendUint32(b, uint32(us))
	for _, a := range p.Addrs {
		if !a.IsValid() {
			return b, fmt.Errorf("proto: encode: %w: invalid prefix", ErrAddrs)
		}
		ip := a.Addr()
		if ip.Is4() {
			v := ip.As4()
			b = append(b, 4, byte(a.Bits()))
			b = append(b, v[:]...)
		} else {
			v := ip.As16()
			b = append(b, 6, byte(a.Bits()))
			b = append(b, v[:]...)
		}
	}
	b = append(b, byte(len(p.Deaf)))
	for _, id := range p.Deaf {
		b = binary.BigEndian.AppendUint32(b, id)
	}
	if v == Version2 {
		b = p.appendView(b)
	}
	if p.Auth {
		b = append(b, p.Tag[:]...)
	}
	return b, nil
}

// Decode parses b into p. It never panics; every failure wraps one of the
// sentinel errors above.
func (p *Packet) Decode(b []byte) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("proto: decode: %w: %d bytes, need %d", ErrShort, len(b), HeaderLen)
	}
	if [4]byte(b[0:4]) != magic {
		return fmt.Errorf("proto: decode: %w", ErrMagic)
	}
	v := b[4]
	if v != Version && v != Version2 {
		return fmt.Errorf("proto: decode: %w: %d", ErrVersion, v)
	}
	t := Type(b[5])
	if t != INQ && t != ACK {
		return fmt.Errorf("proto: decode: %w: %d", ErrType, b[5])
	}
	if v == Version2 && t != INQ {
		return fmt.Errorf("proto: decode: %w: version %d %v", ErrVersion, v, t)
	}
	n := int(b[7])
	if n > MaxAddrs {
		return fmt.Errorf("proto: decode: %w: %d entries, at most %d", ErrAddrs, n, MaxAddrs)
	}
	p.Version, p.Type = v, t
	p.NodeID = binary.BigEndian.Uint32(b[8:])
	p.BootID = binary.BigEndian.Uint32(b[12:])
	p.Seq = binary.BigEndian.Uint64(b[16:])
	p.Echo = binary.BigEndian.Uint64(b[24:])
	p.Interval = time.Duration(binary.BigEndian.Uint32(b[32:])) * time.Microsecond
	p.Addrs = p.Addrs[:0]
	p.Auth = b[flagsOff]&FlagAuth != 0
	p.V2 = v == Version2 || b[flagsOff]&FlagV2 != 0
	p.ViewTotal, p.ViewOffset, p.View = 0, 0, p.View[:0]
	rest := b[HeaderLen:]
	if p.Auth {
		if len(rest) < TagLen {
			return fmt.Errorf("proto: decode: %w: tag truncated", ErrShort)
		}
		p.Tag = [TagLen]byte(rest[len(rest)-TagLen:])
		rest = rest[:len(rest)-TagLen]
	} else {
		p.Tag = [TagLen]byte{}
	}
	for i := 0; i < n; i++ {
		if len(rest) < 2 {
			return fmt.Errorf("proto: decode: %w: entry %d truncated", ErrShort, i)
		}
		var (
			ip   netip.Addr
			size int
			max  int
		)
		switch rest[0] {
		case 4:
			size, max = addr4Len, 32
			if len(rest) >= size {
				ip = netip.AddrFrom4([4]byte(rest[2:6]))
			}
		case 6:
			size, max = addr6Len, 128
			if len(rest) >= size {
				ip = netip.AddrFrom16([16]byte(rest[2:18]))
			}
		default:
			return fmt.Errorf("proto: decode: %w: entry %d has family %d", ErrAddrs, i, rest[0])
		}
		if len(rest) < size {
			return fmt.Errorf("proto: decode: %w: entry %d truncated", ErrShort, i)
		}
		bits := int(rest[1])
		if bits > max {
			return fmt.Errorf("proto: decode: %w: entry %d has prefix length %d", ErrAddrs, i, bits)
		}
		p.Addrs = append(p.Addrs, netip.PrefixFrom(ip, bits))
		rest = rest[size:]
	}
	if len(rest) < 1 {
		return fmt.Errorf("proto: decode: %w: no deaf count", ErrShort)
	}
	nd := int(rest[0])
	rest = rest[1:]
	if t == ACK && nd > 0 {
		return fmt.Errorf("proto: decode: %w: %d entries in an ACK", ErrDeaf, nd)
	}
	if len(rest) < 4*nd {
		return fmt.Errorf("proto: decode: %w: deaf list of %d truncated", ErrShort, nd)
	}
	p.Deaf = p.Deaf[:0]
	for i := 0; i < nd; i++ {
		p.Deaf = append(p.Deaf, binary.BigEndian.Uint32(rest[4*i:]))
	}
	rest = rest[4*nd:]
	if v == Version2 {
		var err error
		if rest, err = p.decodeView(rest); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("proto: decode: %w: %d", ErrTrailer, len(rest))
	}
	return nil
}

// checkView checks that p's view fits its version and the format.
func (p *Packet) checkView(v uint8) error {
	if v != Version && v != Version2 {
		return fmt.Errorf("%w: %d", ErrVersion, v)
	}
	if v == Version {
		if p.ViewTotal != 0 || p.ViewOffset != 0 || len(p.View) != 0 {
			return fmt.Errorf("%w: a view in a version-1 packet", ErrView)
		}
		return nil
	}
	switch {
	case p.Type != INQ:
		return fmt.Errorf("%w: version %d %v", ErrVersion, v, p.Type)
	case len(p.View) > MaxView:
		return fmt.Errorf("%w: %d entries, at most %d", ErrView, len(p.View), MaxView)
	case p.ViewTotal < 0 || p.ViewTotal > 0xffff || p.ViewOffset < 0 || p.ViewOffset+len(p.View) > p.ViewTotal:
		return fmt.Errorf("%w: entries %d to %d of %d", ErrView, p.ViewOffset, p.ViewOffset+len(p.View), p.ViewTotal)
	case len(p.View) > 0 && (len(p.Addrs) == 0 || len(p.Addrs) > MaxViewLANs):
		return fmt.Errorf("%w: %d address entries, need 1 to %d", ErrView, len(p.Addrs), MaxViewLANs)
	}
	all := uint8(1<<len(p.Addrs) - 1)
	for i, e := range p.View {
		switch {
		case i > 0 && e.Node <= p.View[i-1].Node:
			return fmt.Errorf("%w: node ids not ascending at entry %d", ErrView, i)
		case e.Known&^all != 0 || e.Heard&^e.Known != 0 || e.Lossy&^e.Heard != 0:
			return fmt.Errorf("%w: entry %d has states for LANs it has no address entry for", ErrView, i)
		}
	}
	return nil
}

// appendView encodes p's view, which checkView passed.
func (p *Packet) appendView(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(p.ViewTotal))
	b = binary.BigEndian.AppendUint16(b, uint16(p.ViewOffset))
	b = append(b, byte(len(p.View)))
	n := len(p.Addrs)
	for _, e := range p.View {
		b = binary.BigEndian.AppendUint32(b, e.Node)
		var st [2]byte
		for i := range n {
			var s byte
			switch {
			case e.Lossy&(1<<i) != 0:
				s = 3
			case e.Heard&(1<<i) != 0:
				s = 1
			case e.Known&(1<<i) != 0:
				s = 2
			}
			st[i/4] |= s << (6 - 2*(i%4))
		}
		b = append(b, st[:ViewStateLen(n)]...)
	}
	return b
}

// decodeView parses the view of a version-2 INQ from rest and returns
// what follows it.
func (p *Packet) decodeView(rest []byte) ([]byte, error) {
	if len(rest) < viewHdrLen {
		return rest, fmt.Errorf("proto: decode: %w: view header truncated", ErrShort)
	}
	p.ViewTotal = int(binary.BigEndian.Uint16(rest))
	p.ViewOffset = int(binary.BigEndian.Uint16(rest[2:]))
	nv := int(rest[4])
	rest = rest[viewHdrLen:]
	n := len(p.Addrs)
	if nv > 0 && (n == 0 || n > MaxViewLANs) {
		return rest, fmt.Errorf("proto: decode: %w: %d address entries, need 1 to %d", ErrView, n, MaxViewLANs)
	}
	size := 4 + ViewStateLen(n)
	if len(rest) < nv*size {
		return rest, fmt.Errorf("proto: decode: %w: view of %d truncated", ErrShort, nv)
	}
	for i := range nv {
		e := rest[i*size:]
		v := ViewEntry{Node: binary.BigEndian.Uint32(e)}
		st := e[4:size]
		for j := range 4 * len(st) {
			s := st[j/4] >> (6 - 2*(j%4)) & 3
			switch {
			case s == 0:
			case j >= n:
				return rest, fmt.Errorf("proto: decode: %w: entry %d has state %d for address entry %d", ErrView, i, s, j)
			case s == 1:
				v.Known |= 1 << j
				v.Heard |= 1 << j
			case s == 3:
				v.Known |= 1 << j
				v.Heard |= 1 << j
				v.Lossy |= 1 << j
			default:
				v.Known |= 1 << j
			}
		}
		p.View = append(p.View, v)
	}
	if err := p.checkView(Version2); err != nil {
		return rest, fmt.Errorf("proto: decode: %w", err)
	}
	return rest[nv*size:], nil
}
