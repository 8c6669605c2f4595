package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux a batch is one recvmmsg or sendmmsg, made here rather than
// through x/net's ReadBatch and WriteBatch for one reason, measured in the
// scale bench: x/net calls them through syscall.Syscall, and every such
// call enters the Go scheduler's system-call state. The first one after an
// idle spell wakes the runtime's sysmon thread from its deep sleep, which
// then polls every 20 µs for a millisecond or more; and with one P
// (faild's default GOMAXPROCS) sysmon takes the P away from a sendmmsg
// that runs longer than a tick (one that delivers a burst of ACKs into a
// veth), starting a second thread and handing the P back afterwards
// (golang/go#18236). At 1,000 peers on -t 1 that was three of every four
// of faild's thread wake-ups and about 40 % of its CPU. The socket is
// non-blocking, so the calls never block: made as raw system calls they
// leave the scheduler alone, and the goroutine still waits for the socket
// in the netpoller (syscall.RawConn) like any other. The source addresses
// are decoded in place, so a batch allocates nothing either.

// mmsghdr is struct mmsghdr: a msghdr and the byte count the kernel fills.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is one direction's recvmmsg or sendmmsg: a header, I/O vector
// and socket address per message (the sources a read fills, or the
// destinations of a write), and for reads a control buffer, built and
// linked once; each call points them at the caller's messages.
type batch struct {
	hs    []mmsghdr
	iov   []unix.Iovec
	addrs []unix.RawSockaddrInet6 // large enough for either family
	oob   [][]byte                // a read's
	trap  uintptr
	wait  func(func(fd uintptr) bool) error // the RawConn's Read or Write
	k     int                               // the headers the call under way passes
	n     uintptr
	errno syscall.Errno
	io    func(fd uintptr) bool // call, made once so that a batch allocates nothing
}

func newBatch(trap uintptr, wait func(func(fd uintptr) bool) error, oob func() []byte) batch {
	b := batch{hs: make([]mmsghdr, BatchSize), iov: make([]unix.Iovec, BatchSize),
		addrs: make([]unix.RawSockaddrInet6, BatchSize), trap: trap, wait: wait}
	for i := range b.hs {
		h := &b.hs[i].hdr
		h.Iov = &b.iov[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.addrs[i]))
		if oob != nil {
			b.oob = append(b.oob, oob())
			h.Control = &b.oob[i][0]
		}
	}
	return b
}

func (u *udpConn) initBatches() error {
	rc, err := u.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("failed to reach the socket: %w", err)
	}
	u.rd = newBatch(unix.SYS_RECVMMSG, rc.Read, func() []byte { return controlSpace(u.v6) })
	u.wr = newBatch(unix.SYS_SENDMMSG, rc.Write, nil)
	u.rd.io, u.wr.io = u.rd.call, u.wr.call
	return nil
}

// point sets message i's I/O vector to buf.
func (b *batch) point(i int, buf []byte) {
	b.iov[i].Base = bufBase(buf)
	b.iov[i].SetLen(len(buf))
}

// ReadBatch implements Conn. Control messages that the kernel cut short
// (MSG_CTRUNC) are not trusted: the datagram comes without them.
func (u *udpConn) ReadBatch(ms []Message) (int, error) {
	r := &u.rd
	k := min(len(ms), len(r.hs))
	for i := range k {
		h := &r.hs[i].hdr
		r.point(i, ms[i].Buf)
		h.Namelen = uint32(unsafe.Sizeof(r.addrs[i]))
		h.SetControllen(len(r.oob[i]))
		h.Flags = 0
	}
	n, err := r.run(k)
	for i := range n {
		m, h := &ms[i], &r.hs[i]
		m.N, m.IfIndex, m.Hops = int(h.n), 0, -1
		m.Addr = sockaddrPort(&r.addrs[i], h.hdr.Namelen)
		if h.hdr.Flags&msgCtrunc == 0 {
			parseControl(r.oob[i][:h.hdr.Controllen], u.v6, m)
		}
	}
	return n, err
}

// WriteBatch implements Conn.
func (u *udpConn) WriteBatch(ms []Message) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w := &u.wr
	k := min(len(ms), len(w.hs))
	for i := range k {
		m, h := &ms[i], &w.hs[i].hdr
		nl, err := putSockaddr(&w.addrs[i], m.Addr, u.v6)
		if err != nil && i == 0 {
			return 0, err
		}
		if err != nil {
			k = i // send those before it; the next call reports it
			break
		}
		w.point(i, m.Buf)
		h.Namelen = nl
		oob := u.control(m.IfIndex, m.Src)
		h.Control, h.Controllen = nil, 0
		if len(oob) > 0 {
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
	}
	return w.run(k) // sendmmsg(2) fails only when its first message does
}

// call is the system call over the first k headers, made when the socket
// is ready; false asks the netpoller to wait. See the top of this file
// for why raw.
func (b *batch) call(fd uintptr) bool {
	for {
		b.n, _, b.errno = syscall.RawSyscall6(b.trap, fd, uintptr(unsafe.Pointer(&b.hs[0])), uintptr(b.k), 0, 0, 0)
		if b.errno != unix.EINTR {
			return b.errno != unix.EAGAIN
		}
	}
}

// run makes the call over the first k headers; none is no call.
func (b *batch) run(k int) (int, error) {
	if k == 0 {
		return 0, nil
	}
	b.k = k
	switch err := b.wait(b.io); {
	case err != nil:
		return 0, err // the socket was closed
	case b.errno != 0:
		return 0, b.errno
	}
	return int(b.n), nil
}

// bufBase is the address the kernel reads from or writes to: a zero-length
// buffer still needs one, and gets a byte of its own.
func bufBase(b []byte) *byte {
	if cap(b) == 0 {
		return new(byte)
	}
	return &b[:1][0]
}

// sockaddrPort decodes a source address the kernel wrote: struct
// sockaddr_in or sockaddr_in6, the port in network order.
func sockaddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch {
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPort{}
}

// errFamily is a destination the socket's family cannot reach.
var errFamily = errors.New("destination of the other address family")

// putSockaddr writes a destination as struct sockaddr_in or sockaddr_in6
// and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) (uint32, error) {
	a := ap.Addr()
	if !a.IsValid() || a.Is4() == v6 {
		return 0, fmt.Errorf("%w: %v", errFamily, ap)
	}
	*sa = unix.RawSockaddrInet6{}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	if v6 {
		sa.Family, sa.Addr = unix.AF_INET6, a.As16()
		return unix.SizeofSockaddrInet6, nil
	}
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	sa4.Family, sa4.Addr = unix.AF_INET, a.As4()
	return unix.SizeofSockaddrInet4, nil
}
