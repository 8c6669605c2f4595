package proto

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out: a Cmsghdr,
// the data, and padding to the next aligned header.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// pktinfo4 is a struct in_pktinfo: the interface index, then the local and
// the header destination addresses, each filled with bytes that no offset
// other than 0 could read as ifIndex.
func pktinfo4(ifIndex int32) []byte {
	b := make([]byte, unix.SizeofInet4Pktinfo)
	binary.NativeEndian.PutUint32(b, uint32(ifIndex))
	copy(b[4:], []byte{192, 0, 2, 1, 192, 0, 2, 255})
	return b
}

func int32Data(v int32) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(v))
}

// TestParseControl4 reads the interface and TTL back from the control
// messages the kernel delivers with an IPv4 packet (IP_TTL, IP_PKTINFO),
// in either order, and refuses them when one is missing.
func TestParseControl4(t *testing.T) {
	ttl := cmsg(unix.IPPROTO_IP, unix.IP_TTL, int32Data(254))
	info := cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo4(7))
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"TTL then pktinfo", cat(ttl, info), true},
		{"pktinfo then TTL", cat(info, ttl), true},
		{"no TTL", info, false},
		{"no pktinfo", ttl, false},
		{"IPv6 levels", cat(cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, int32Data(254)), cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, make([]byte, 20))), false},
		{"truncated pktinfo", cat(ttl, cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo4(7)[:3])), false},
		{"header cut short", cat(ttl, info)[:len(ttl)+4], false},
		// The kernel need not pad the last message: Len reaches the end.
		{"no padding after the last", cat(ttl, info)[:len(ttl)+unix.CmsgLen(unix.SizeofInet4Pktinfo)], true},
		// Messages of no interest are stepped over, whatever their size:
		// one without data, one that needs no padding.
		{"an empty message first", cat(cmsg(unix.IPPROTO_IP, unix.IP_TOS, nil), ttl, info), true},
		{"an aligned message first", cat(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), ttl, info), true},
	}
	for _, tt := range tests {
		m := Message{Hops: -1}
		parseControl(tt.b, false, &m)
		if ok := m.IfIndex != 0 && m.Hops >= 0; ok != tt.ok {
			t.Errorf("%s: parseControl read interface %d TTL %d, want both: %v", tt.name, m.IfIndex, m.Hops, tt.ok)
			continue
		}
		if tt.ok && (m.IfIndex != 7 || m.Hops != 254) {
			t.Errorf("%s: parseControl read interface %d TTL %d, want interface 7 TTL 254", tt.name, m.IfIndex, m.Hops)
		}
	}
}

// TestParseControlAllocs: reading the control messages is on the
// per-packet path, for both families.
func TestParseControlAllocs(t *testing.T) {
	b6 := (&ipv6.ControlMessage{HopLimit: 255, IfIndex: 3}).Marshal()
	b4 := cat(cmsg(unix.IPPROTO_IP, unix.IP_TTL, int32Data(255)), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pktinfo4(3)))
	var m Message
	if n := testing.AllocsPerRun(100, func() { parseControl(b6, true, &m); parseControl(b4, false, &m) }); n != 0 {
		t.Errorf("parseControl allocates %v times per packet", n)
	}
}

// TestReceiveBuffer: the socket gets receiveBuffer bytes to queue a burst
// of ACKs in: past net.core.rmem_max as root (SO_RCVBUFFORCE), up to it
// otherwise. Linux reports twice what was set.
func TestReceiveBuffer(t *testing.T) {
	got := rcvbuf(t, listenLoop(t, false), nil)
	want := receiveBuffer
	if os.Geteuid() != 0 {
		b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
		if err != nil {
			t.Skipf("not root, and no rmem_max: %v", err)
		}
		var max int
		fmt.Sscan(string(b), &max)
		want = min(want, max)
	}
	if got < 2*want {
		t.Errorf("SO_RCVBUF = %d, want %d (twice %d)", got, 2*want, want)
	}
}

// TestReceiveBufferForced: as root the buffer asked for is had in full
// even when it is larger than net.core.rmem_max (here twice it): the
// plain SO_RCVBUF, which rmem_max caps, is only the fallback.
func TestReceiveBufferForced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_RCVBUFFORCE needs root")
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max: %v", err)
	}
	var rmemMax int
	if _, err := fmt.Sscan(string(b), &rmemMax); err != nil {
		t.Fatalf("rmem_max %q: %v", b, err)
	}
	if rmemMax > 1<<27 {
		t.Skipf("rmem_max %d: too large to ask for twice it", rmemMax)
	}
	n := 2 * rmemMax
	got := rcvbuf(t, listenLoop(t, false), func(fd uintptr) { setReceiveBuffer(fd, n) })
	if got < 2*n {
		t.Errorf("SO_RCVBUF = %d after asking for %d, twice rmem_max; want %d (twice that)", got, n, 2*n)
	}
}

// rcvbuf is u's SO_RCVBUF after set (when not nil) has run on its socket.
func rcvbuf(t *testing.T, u *udpConn, set func(fd uintptr)) int {
	t.Helper()
	raw, err := u.c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		if set != nil {
			set(fd)
		}
		got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return got
}
