package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Packet layout, version 1. All integers are big-endian.
//
//	offset size field
//	     0    4 magic "fald"
//	     4    1 version (1)
//	     5    1 type: 1 = INQ, 2 = ACK
//	     6    1 flags: bit 0 (FlagAuth) = a tag follows the address entries;
//	              the other bits are reserved, sent as 0, ignored on receipt
//	     7    1 number of address entries that follow the header (0..MaxAddrs)
//	     8    4 node id: stable identity of the sender (default: its LAN-A IPv4
//	              address, or a hash of its LAN-A IPv6 address on IPv6-only LANs)
//	    12    4 boot id: random per start, so a restarted peer is told apart
//	    16    8 sequence number, incremented for every INQ the sender sends
//	    24    8 echo: in an ACK, the sequence number of the INQ it answers; 0 in an INQ
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
//	     -   32 with FlagAuth only, last: HMAC-SHA256 over the family byte
//	              (4 or 6) and every byte before the tag (flags byte
//	              included, as sent), keyed with --key-file. The family
//	              byte is the packet's address family, not sent: a packet
//	              signed for IPv6 does not verify over IPv4, and the other
//	              way round (see MAC)
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
	Version   = 1

	addr4Len = 2 + 4
	addr6Len = 2 + 16
	// TagLen is the size of the HMAC-SHA256 tag of an authenticated packet.
	TagLen = 32
	// MaxLen is the largest valid packet: the header, MaxAddrs IPv6 entries,
	// a full deaf list and a tag.
	MaxLen = HeaderLen + MaxAddrs*addr6Len + 1 + MaxDeaf*4 + TagLen

	// FlagAuth in the flags byte says a TagLen-byte tag ends the packet.
	FlagAuth = 1 << 0
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
)

// ErrInterval is Append's error for an interval the wire's 32 bits of
// microseconds cannot carry.
var ErrInterval = errors.New("interval out of range")

// Packet is one decoded INQ or ACK.
type Packet struct {
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
	b = append(b, magic[:]...)
	var flags byte
	if p.Auth {
		flags |= FlagAuth
	}
	b = append(b, Version, byte(p.Type), flags, byte(len(p.Addrs)))
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
	if b[4] != Version {
		return fmt.Errorf("proto: decode: %w: %d", ErrVersion, b[4])
	}
	t := Type(b[5])
	if t != INQ && t != ACK {
		return fmt.Errorf("proto: decode: %w: %d", ErrType, b[5])
	}
	n := int(b[7])
	if n > MaxAddrs {
		return fmt.Errorf("proto: decode: %w: %d entries, at most %d", ErrAddrs, n, MaxAddrs)
	}
	p.Type = t
	p.NodeID = binary.BigEndian.Uint32(b[8:])
	p.BootID = binary.BigEndian.Uint32(b[12:])
	p.Seq = binary.BigEndian.Uint64(b[16:])
	p.Echo = binary.BigEndian.Uint64(b[24:])
	p.Interval = time.Duration(binary.BigEndian.Uint32(b[32:])) * time.Microsecond
	p.Addrs = p.Addrs[:0]
	p.Auth = b[flagsOff]&FlagAuth != 0
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
	if len(rest) != 0 {
		return fmt.Errorf("proto: decode: %w: %d", ErrTrailer, len(rest))
	}
	return nil
}
