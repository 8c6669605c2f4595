package proto

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// cmsg is one control message as the Linux kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// TestParseControl4 reads what the kernel delivers with an IPv4 datagram:
// IP_TTL, and IP_PKTINFO whose interface index comes first (struct
// in_pktinfo: ifindex, spec_dst, addr), in either order.
func TestParseControl4(t *testing.T) {
	ttl := binary.NativeEndian.AppendUint32(nil, 255)
	info := make([]byte, 12)
	binary.NativeEndian.PutUint32(info, 3)
	copy(info[4:], []byte{192, 0, 2, 1})
	copy(info[8:], []byte{192, 0, 2, 255})
	for _, b := range [][]byte{
		append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, info)...),
		append(cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, info), cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl)...),
	} {
		m := Message{Hops: -1}
		parseControl(b, false, &m)
		if m.IfIndex != 3 || m.Hops != 255 {
			t.Errorf("parseControl = interface %d, TTL %d; want 3, 255", m.IfIndex, m.Hops)
		}
	}
	m := Message{Hops: -1}
	parseControl(cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, info[:3]), false, &m)
	if m.IfIndex != 0 {
		t.Errorf("a truncated IP_PKTINFO gave interface %d", m.IfIndex)
	}
}

// TestParseControlAllocs: reading the control messages is on the
// per-packet path, for both families.
func TestParseControlAllocs(t *testing.T) {
	b6 := (&ipv6.ControlMessage{HopLimit: 255, IfIndex: 3}).Marshal()
	b4 := cmsg(unix.IPPROTO_IP, unix.IP_TTL, binary.NativeEndian.AppendUint32(nil, 255))
	var m Message
	if n := testing.AllocsPerRun(100, func() { parseControl(b6, true, &m); parseControl(b4, false, &m) }); n != 0 {
		t.Errorf("parseControl allocates %v times per packet", n)
	}
}
