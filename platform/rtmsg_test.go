package platform

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// The byte layouts below are written out by hand, field by field, from
// each kernel's struct rt_msghdr and struct if_msghdr (FreeBSD 14
// sys/net/route.h and sys/net/if.h, OpenBSD 7.5 sys/net/route.h and
// sys/net/if.h, macOS 14 SDK net/route.h and net/if.h, NetBSD 10
// sys/net/route.h) for amd64 and arm64. They were not captured from a live
// kernel: the routing socket cannot be opened here. The same offsets are
// checked against golang.org/x/sys/unix at compile time in rtmsg_<os>.go,
// so a layout that disagrees with the headers does not build.

// unhex turns an annotated dump into bytes: everything after "|" on a line
// is a comment, "z<N>" stands for N zero bytes, and spaces are ignored.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "|")
		for _, f := range strings.Fields(line) {
			if n, ok := strings.CutPrefix(f, "z"); ok {
				var k int
				for _, c := range n {
					k = k*10 + int(c-'0')
				}
				b.WriteString(strings.Repeat("00", k))
				continue
			}
			b.WriteString(f)
		}
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatalf("bad test vector: %v", err)
	}
	return out
}

// sockaddr_in 192.0.2.2 and 198.51.100.2: sin_len 16, AF_INET, port 0,
// address, 8 zero bytes.
const (
	saDst = "10 02 0000 c0000202 z8 | sockaddr_in 192.0.2.2\n"
	saGw  = "10 02 0000 c6336402 z8 | sockaddr_in 198.51.100.2\n"
)

func TestMarshalRoute(t *testing.T) {
	dst, gw := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2")
	tests := []struct {
		name  string
		l     rtLayout
		typ   uint8
		flags uint32
		gw    netip.Addr
		want  string
	}{
		{"freebsd add", freebsdLayout, rtmAdd, faildRouteFlags, gw, `
			b800 05 01  | msglen 184, RTM_VERSION 5, RTM_ADD
			0000 0000   | index, spare
			07880000    | flags UP|GATEWAY|HOST|STATIC|PROTO1
			03000000    | addrs DST|GATEWAY
			00000000    | pid: the kernel's to fill
			2a000000    | seq 42
			00000000 00000000 | errno, fmask
			z8          | u_long inits
			z112        | 14 u_long metrics
			` + saDst + saGw},
		{"freebsd get", freebsdLayout, rtmGet, rtfUp | rtfHost, netip.Addr{}, `
			a800 05 04  | msglen 168, RTM_GET
			0000 0000 05000000 01000000 | index, spare, flags UP|HOST, addrs DST
			z4 2a000000 z8 z8 z112      | pid, seq, errno, fmask, inits, metrics
			` + saDst},
		{"openbsd add", openbsdLayout, rtmAdd, faildRouteFlags, gw, `
			8000 05 01  | msglen 128, RTM_VERSION 5, RTM_ADD
			6000        | hdrlen 96
			0000 0000   | index, tableid 0 (the default routing table)
			00 00       | priority 0 (the kernel's static priority), mpls
			03000000    | addrs
			07880000    | flags
			00000000    | fmask
			00000000    | pid
			2a000000    | seq
			00000000 00000000 | errno, u_int inits
			z56         | metrics: 2 u_int64 and 10 u_int
			` + saDst + saGw},
		{"darwin delete", darwinLayout, rtmDelete, faildRouteFlags, gw, `
			7c00 05 02  | msglen 124, RTM_VERSION 5, RTM_DELETE
			0000 0000   | index, padding
			07880000 03000000 00000000 2a000000 | flags, addrs, pid, seq
			00000000 00000000 00000000 | errno, use, inits
			z56         | 14 u_int32 metrics
			` + saDst + saGw},
		{"netbsd add", netbsdLayout, rtmAdd, faildRouteFlags, gw, `
			9800 04 01  | msglen 152, RTM_VERSION 4, RTM_ADD
			0000 0000 07880000 03000000 00000000 2a000000 | index, pad, flags, addrs, pid, seq
			00000000 00000000 00000000 z4 | errno, use, inits, pad to 8
			z80         | 10 uint64 metrics
			` + saDst + saGw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.l.marshalRoute(tt.typ, tt.flags, 42, dst, tt.gw)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); string(got) != string(want) {
				t.Errorf("marshalRoute:\n got %x\nwant %x", got, want)
			}
			// And back: what faild writes, it reads the same.
			m, err := tt.l.parseRoute(got)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tt.typ || m.Flags != tt.flags || m.Seq != 42 || m.Dst != dst || m.Gw != tt.gw {
				t.Errorf("parseRoute(marshalRoute) = %+v", m)
			}
		})
	}
	if _, err := freebsdLayout.marshalRoute(rtmAdd, faildRouteFlags, 1, netip.MustParseAddr("2001:db8::1"), gw); err == nil {
		t.Error("marshalRoute accepted an IPv6 destination")
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		name string
		l    rtLayout
		in   string
		want rtMsg
	}{
		{"freebsd get reply with an interface", freebsdLayout, `
			d000 05 04   | msglen 208, RTM_GET
			0200 0000    | index 2
			47880000     | flags UP|GATEWAY|HOST|DONE|STATIC|PROTO1
			13000000     | addrs DST|GATEWAY|IFP
			d2040000     | pid 1234
			07000000     | seq 7
			z8 z8 z112   | errno, fmask, inits, metrics
			` + saDst + saGw + `
			11 12 0200 06 03 06 00 | sockaddr_dl of 17 bytes: index 2, ether, nlen 3, alen 6
			656d31 020000000001    | "em1", the MAC
			z7                     | padding to 24`,
			rtMsg{Type: rtmGet, Flags: 0x8847, Index: 2, Pid: 1234, Seq: 7,
				Dst: netip.MustParseAddr("192.0.2.2"), Gw: netip.MustParseAddr("198.51.100.2"), Mask: -1}},
		{"openbsd with a longer header", openbsdLayout, `
			9000 05 04 | msglen 144, RTM_GET
			6800       | hdrlen 104: a later kernel's larger header
			0300 0000 08 00 | index 3, tableid, priority 8 (static), mpls
			07000000   | addrs DST|GATEWAY|NETMASK
			03080000   | flags UP|GATEWAY|STATIC
			z4 z4 01000000 z4 z4 | fmask, pid, seq 1, errno, inits
			z56 z8     | metrics, the 8 bytes this faild does not know
			10 02 0000 c0000200 z8 | 192.0.2.0
			` + saGw + `
			07 00 0000 ffffff | netmask /24, trimmed to 7 bytes
			00                | padding to 8`,
			rtMsg{Type: rtmGet, Flags: 0x803, Index: 3, Seq: 1,
				Dst: netip.MustParseAddr("192.0.2.0"), Gw: netip.MustParseAddr("198.51.100.2"), Mask: 24}},
		{"darwin connected route, zero-length netmask", darwinLayout, `
			8400 05 04 | msglen 132
			0400 0000 01010000 07000000 | index 4, flags UP|CLONING, addrs DST|GATEWAY|NETMASK
			z4 z4 z4 z4 z4 z56 | pid, seq, errno, use, inits, metrics
			10 02 0000 00000000 z8 | 0.0.0.0
			14 12 0400 06 03 06 00 656e30 020000000004 z3 | sockaddr_dl en0, 20 bytes
			00 z3      | netmask 0.0.0.0: sa_len 0 still takes 4 bytes`,
			rtMsg{Type: rtmGet, Flags: 0x101, Index: 4,
				Dst: netip.MustParseAddr("0.0.0.0"), Mask: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.in)
			if n := int(tt.l.order.Uint16(b)); n != len(b) {
				t.Fatalf("bad test vector: msglen %d, %d bytes", n, len(b))
			}
			got, err := tt.l.parseRoute(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseRoute:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRouteErrors(t *testing.T) {
	good, _ := freebsdLayout.marshalRoute(rtmAdd, faildRouteFlags, 1,
		netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.2"))
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errShortMessage},
		{"header cut", good[:20], errShortMessage},
		{"address cut", good[:len(good)-4], errShortMessage},
		{"other version", append([]byte{good[0], good[1], 4}, good[3:]...), errBadVersion},
	} {
		if _, err := freebsdLayout.parseRoute(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
	// A sockaddr longer than what is left of the message.
	bad := append([]byte(nil), good...)
	bad[freebsdLayout.hdrLen+16] = 0x40
	if _, err := freebsdLayout.parseRoute(bad); !errors.Is(err, errShortMessage) {
		t.Errorf("long sockaddr: err %v", err)
	}
}

func TestMessages(t *testing.T) {
	a, _ := darwinLayout.marshalRoute(rtmGet, rtfUp, 1, netip.MustParseAddr("192.0.2.2"), netip.Addr{})
	b, _ := darwinLayout.marshalRoute(rtmAdd, faildRouteFlags, 2, netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("198.51.100.3"))
	ms, err := darwinLayout.messages(append(append([]byte(nil), a...), b...))
	if err != nil || len(ms) != 2 || string(ms[0]) != string(a) || string(ms[1]) != string(b) {
		t.Fatalf("messages = %d, %v", len(ms), err)
	}
	if _, err := darwinLayout.messages(append(append([]byte(nil), a...), b[:10]...)); !errors.Is(err, errShortMessage) {
		t.Errorf("cut dump: err %v", err)
	}
	if _, err := darwinLayout.messages([]byte{0, 0, 5, 4, 0, 0}); !errors.Is(err, errShortMessage) {
		t.Errorf("zero msglen: err %v", err)
	}
}

func TestMaskBits(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"05 02 0000 80", 1},
		{"07 ff 0000 ffffff", 24},
		{"08 02 0000 ffffffff", 32},
		{"10 02 0000 ffffff00 z8", 24},
		{"08 02 0000 ff00ff00", -1},
	} {
		if got := maskBits(unhex(t, tt.in)); got != tt.want {
			t.Errorf("maskBits(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseIfInfo(t *testing.T) {
	tests := []struct {
		name string
		l    rtLayout
		in   string
		want ifInfo
		ok   bool
	}{
		{"freebsd link up", freebsdLayout, `
			a800 05 0e | msglen 168, RTM_IFINFO
			00000000   | addrs
			43880000   | flags UP|BROADCAST|RUNNING|SIMPLEX|MULTICAST
			0200 0000  | index 2, spare
			06 00 06 12 02 00 00 00 | if_data: type ether, physical, addrlen, hdrlen, link_state UP
			z144       | the rest of if_data`,
			ifInfo{Index: 2, Flags: 0x8843, Carrier: true}, true},
		{"freebsd no carrier", freebsdLayout, `
			a800 05 0e 00000000 43880000 0200 0000
			06 00 06 12 01 00 00 00 | link_state DOWN
			z144`,
			ifInfo{Index: 2, Flags: 0x8843}, true},
		{"openbsd full duplex", openbsdLayout, `
			a800 05 0e | RTM_IFINFO
			1800 0300 0000 00 00 | hdrlen 24, index 3, tableid, pads
			10000000   | addrs IFP
			43880000   | flags
			00000000   | xflags
			06 06 0e 06 | if_data: type, addrlen, hdrlen, link_state FULL_DUPLEX
			z140`,
			ifInfo{Index: 3, Flags: 0x8843, Carrier: true}, true},
		{"openbsd admin down", openbsdLayout, `
			a800 05 0e 1800 0300 0000 00 00 10000000
			02880000 | flags BROADCAST|MULTICAST, not UP
			00000000 06 06 0e 06 z140`,
			ifInfo{Index: 3, Flags: 0x8802}, true},
		{"netbsd unknown state", netbsdLayout, `
			9800 04 14 | RTM_IFINFO is 0x14 on NetBSD
			00000000 43880000 0500 0000 | addrs, flags, index 5, pad
			06 06 0e 00 00000000 | if_data: type, addrlen, hdrlen, pad, int link_state UNKNOWN
			z128`,
			ifInfo{Index: 5, Flags: 0x8843, Carrier: true}, true},
		{"darwin not running", darwinLayout, `
			7000 05 0e 10000000
			03880000   | flags UP|BROADCAST|SIMPLEX|MULTICAST, no RUNNING
			0400       | index 4
			z98`,
			ifInfo{Index: 4, Flags: 0x8803}, true},
		{"not an RTM_IFINFO", freebsdLayout, "a800 05 0c z164", ifInfo{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.in)
			if n := int(tt.l.order.Uint16(b)); n != len(b) {
				t.Fatalf("bad test vector: msglen %d, %d bytes", n, len(b))
			}
			got, ok, err := tt.l.parseIfInfo(b)
			if err != nil || ok != tt.ok || got != tt.want {
				t.Errorf("parseIfInfo = %+v, %v, %v; want %+v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
	if _, _, err := freebsdLayout.parseIfInfo(unhex(t, "1400 05 0e z16")); !errors.Is(err, errShortMessage) {
		t.Errorf("short RTM_IFINFO: err %v", err)
	}
}

// TestRoutingMessageBounds: each length check takes a message of exactly
// the length it needs and refuses one a byte shorter.
func TestRoutingMessageBounds(t *testing.T) {
	l := &freebsdLayout
	msg := func(n int, typ uint8, addrs uint32) []byte {
		b := make([]byte, n)
		l.order.PutUint16(b, uint16(n))
		b[2], b[3] = l.version, typ
		if n >= l.offAddrs+4 {
			l.order.PutUint32(b[l.offAddrs:], addrs)
		}
		return b
	}
	if ms, err := l.messages(msg(4, rtmGet, 0)); err != nil || len(ms) != 1 {
		t.Errorf("messages of one 4-byte message: %d, %v; want it", len(ms), err)
	}
	if _, err := l.messages(msg(4, rtmGet, 0)[:3]); !errors.Is(err, errShortMessage) {
		t.Errorf("messages of 3 bytes: %v, want errShortMessage", err)
	}
	end := l.offErr + 4 // the header's last field, rtm_errno, ends here
	if _, err := l.header(msg(end, rtmGet, 0)); err != nil {
		t.Errorf("header of %d bytes: %v", end, err)
	}
	if _, err := l.header(msg(end-1, rtmGet, 0)); !errors.Is(err, errShortMessage) {
		t.Errorf("header of %d bytes: %v, want errShortMessage", end-1, err)
	}
	if _, err := l.header(msg(end, rtmGet, 0)[:end-1]); !errors.Is(err, errShortMessage) {
		t.Errorf("a msglen past the bytes: %v, want errShortMessage", err)
	}
	m, err := l.parseRoute(msg(l.hdrLen, rtmGet, 0))
	if err != nil || m.Dst.IsValid() || m.Mask != -1 {
		t.Errorf("a route message without addresses: %+v, %v", m, err)
	}
	if _, err := l.parseRoute(msg(l.hdrLen, rtmGet, rtaDst)); !errors.Is(err, errShortMessage) {
		t.Errorf("RTA_DST set and no address after the header: %v, want errShortMessage", err)
	}
	if a := inet4([]byte{8, afInet, 0, 0, 192, 0, 2, 2}); a != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("inet4 of an 8-byte sockaddr_in = %v", a)
	}
	if a := inet4([]byte{7, afInet, 0, 0, 192, 0, 2}); a.IsValid() {
		t.Errorf("inet4 of 7 bytes = %v, want none", a)
	}

	if _, ok, err := l.parseIfInfo(msg(4, rtmGet, 0)); ok || err != nil {
		t.Errorf("parseIfInfo of a 4-byte RTM_GET: %v, %v; want it passed by", ok, err)
	}
	// macOS has no link state: the message ends with the index, at 14.
	d := &darwinLayout
	ifm := unhex(t, "0e00 05 0e 00000000 43880000 0400")
	if info, ok, err := d.parseIfInfo(ifm); err != nil || !ok || info != (ifInfo{Index: 4, Flags: 0x8843, Carrier: true}) {
		t.Errorf("darwin RTM_IFINFO of 14 bytes: %+v, %v, %v", info, ok, err)
	}
	if _, _, err := d.parseIfInfo(ifm[:13]); !errors.Is(err, errShortMessage) {
		t.Errorf("darwin RTM_IFINFO of 13 bytes: %v, want errShortMessage", err)
	}
}

// TestLinkStates: each kernel's link states as carrier or none.
func TestLinkStates(t *testing.T) {
	for _, tt := range []struct {
		name string
		up   func(uint64) bool
		want []bool // for states 0, 1, 2, ...
	}{
		{"freebsd", linkUpFreeBSD, []bool{true, false, true}},
		{"openbsd", linkUpOpenBSD, []bool{true, false, false, false, true, true, true}},
	} {
		for s, want := range tt.want {
			if got := tt.up(uint64(s)); got != want {
				t.Errorf("%s: link state %d up = %v, want %v", tt.name, s, got, want)
			}
		}
	}
}
