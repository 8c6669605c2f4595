//go:build openbsd

package platform

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hostLayout is openbsdLayout with this CPU's byte order and long:
// addresses are padded to sizeof(long). The header's size is only what
// faild writes; what it reads starts at each message's rtm_hdrlen.
var hostLayout = func() rtLayout {
	l := openbsdLayout
	l.order = binary.NativeEndian
	l.hdrLen = unix.SizeofRtMsghdr
	l.align = int(unsafe.Sizeof(uintptr(0)))
	return l
}()

// Compile-time checks that rtmsg.go's layout is this kernel's, as
// x/sys/unix generated it from the headers: each index is 0 when the two
// agree, and out of range (a build error) when they do not.
var (
	_ = [1]struct{}{}[unix.SizeofRtMsghdr-(0x60)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Hdrlen)-(openbsdOffHdrlen)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Index)-(openbsdOffIndex)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Flags)-(openbsdOffFlags)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Addrs)-(openbsdOffAddrs)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Pid)-(openbsdOffPid)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Seq)-(openbsdOffSeq)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.RtMsghdr{}.Errno)-(openbsdOffErrno)]
	// struct if_msghdr of RTM_IFINFO.
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Flags)-(16)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Index)-(6)]
	_ = [1]struct{}{}[unsafe.Offsetof(unix.IfMsghdr{}.Data)+unsafe.Offsetof(unix.IfData{}.Link_state)-(24+3)]
	_ = [1]struct{}{}[unsafe.Sizeof(unix.IfData{}.Link_state)-1]
	// The constants rtmsg.go spells out.
	_ = [1]struct{}{}[unix.RTM_VERSION-(5)]
	_ = [1]struct{}{}[unix.RTM_IFINFO-(0xe)]
	_ = [1]struct{}{}[unix.RTF_PROTO1-(rtfProto1)]
	_ = [1]struct{}{}[unix.RTF_STATIC-(rtfStatic)]
	_ = [1]struct{}{}[unix.RTF_LLINFO-(0x400)]
	_ = [1]struct{}{}[unix.RTF_CLONED-(0x10000)]
	_ = [1]struct{}{}[unix.AF_LINK-(afLink)]
	_ = [1]struct{}{}[unix.AF_INET-(afInet)]
	_ = [1]struct{}{}[unix.RTA_NETMASK-(rtaNetmask)]
)
