//go:build netbsd

package platform

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hostLayout is netbsdLayout in this CPU's byte order: NetBSD aligns the
// header and the addresses to 8 bytes on every CPU.
var hostLayout = func() rtLayout {
	l := netbsdLayout
	l.order = binary.NativeEndian
	l.hdrLen = unix.SizeofRtMsghdr
	l.align = 8
	return l
}()

// Compile-time checks that rtmsg.go's layout is this kernel's, as
// x/sys/unix generated it from the headers: each index is 0 when the two
// agree, and out of range (a build error) when they do not.
var (
	_ = [1]struct{}{}[unix.SizeofRtMsghdr-(0x78)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Index)-(classicOffIndex)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Flags)-(classicOffFlags)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Addrs)-(classicOffAddrs)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Pid)-(classicOffPid)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Seq)-(classicOffSeq)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Errno)-(classicOffErrno)]
	// struct if_msghdr of RTM_IFINFO.
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Flags)-(8)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Index)-(12)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Data)+unsafe.Offsetof(unix.IfData{}.Link_state)-(16+4)]
	_ = [1]struct{}{}[unsafe.Sizeof(unix.IfData{}.Link_state)-4]
	// The constants rtmsg.go spells out.
	_ = [1]struct{}{}[unix.RTM_VERSION-(4)]
	_ = [1]struct{}{}[unix.RTM_IFINFO-(0x14)]
	_ = [1]struct{}{}[unix.RTF_PROTO1-(rtfProto1)]
	_ = [1]struct{}{}[unix.RTF_STATIC-(rtfStatic)]
	_ = [1]struct{}{}[unix.RTF_LLINFO-(0x400)]
	_ = [1]struct{}{}[unix.RTF_CLONED-(0x2000)]
	_ = [1]struct{}{}[unix.AF_LINK-(afLink)]
	_ = [1]struct{}{}[unix.AF_INET-(afInet)]
	_ = [1]struct{}{}[unix.RTA_NETMASK-(rtaNetmask)]
)
