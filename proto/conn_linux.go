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

// reader holds the reader's batch: one header, source address, I/O
// vector and control buffer per message, built once and pointed at the
// caller's buffers on each read.
type reader struct {
	*batchCall
	iov  []unix.Iovec
	from []unix.RawSockaddrInet6 // large enough for either family
	oob  [][]byte
}

// writer is the writers' batch, under udpConn.mu.
type writer struct {
	*batchCall
	iov []unix.Iovec
	to  []unix.RawSockaddrInet6
}

func (u *udpConn) initBatches() error {
	rc, err := u.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("failed to reach the socket: %w", err)
	}
	u.rd = reader{batchCall: newBatchCall(rc, unix.SYS_RECVMMSG), iov: make([]unix.Iovec, BatchSize),
		from: make([]unix.RawSockaddrInet6, BatchSize), oob: make([][]byte, BatchSize)}
	for i := range u.rd.oob {
		u.rd.oob[i] = controlSpace(u.v6)
	}
	u.wr = writer{batchCall: newBatchCall(rc, unix.SYS_SENDMMSG), iov: make([]unix.Iovec, BatchSize),
		to: make([]unix.RawSockaddrInet6, BatchSize)}
	return nil
}

// ReadBatch implements Conn. Control messages that the kernel cut short
// (MSG_CTRUNC) are not trusted: the datagram comes without them.
func (u *udpConn) ReadBatch(ms []Message) (int, error) {
	r := &u.rd
	k := min(len(ms), len(r.hs))
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		h := &r.hs[i].hdr
		r.iov[i].Base = bufBase(ms[i].Buf)
		r.iov[i].SetLen(len(ms[i].Buf))
		h.Iov = &r.iov[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&r.from[i]))
		h.Namelen = uint32(unsafe.Sizeof(r.from[i]))
		h.Control = &r.oob[i][0]
		h.SetControllen(len(r.oob[i]))
		h.Flags = 0
	}
	n, err := r.run(k)
	if err != nil {
		return 0, err
	}
	for i := range n {
		m, h := &ms[i], &r.hs[i]
		m.N, m.IfIndex, m.Hops = int(h.n), 0, -1
		m.Addr = sockaddrPort(&r.from[i], h.hdr.Namelen)
		if h.hdr.Flags&msgCtrunc == 0 {
			parseControl(r.oob[i][:h.hdr.Controllen], u.v6, m)
		}
	}
	return n, nil
}

// WriteBatch implements Conn.
func (u *udpConn) WriteBatch(ms []Message) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w := &u.wr
	k := min(len(ms), len(w.hs))
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		m, h := &ms[i], &w.hs[i].hdr
		w.iov[i].Base = bufBase(m.Buf)
		w.iov[i].SetLen(len(m.Buf))
		h.Iov = &w.iov[i]
		h.SetIovlen(1)
		nl, err := putSockaddr(&w.to[i], m.Addr, u.v6)
		if err != nil && i == 0 {
			return 0, err
		}
		if err != nil {
			k = i // send those before it; the next call reports it
			break
		}
		h.Name, h.Namelen = (*byte)(unsafe.Pointer(&w.to[i])), nl
		oob := u.control(m.IfIndex, m.Src)
		h.Control, h.Controllen = nil, 0
		if len(oob) > 0 {
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
		h.Flags = 0
	}
	n, err := w.run(k)
	if err != nil {
		return 0, err // sendmmsg(2) fails only when its first message does
	}
	return n, nil
}

// batchCall is one recvmmsg or sendmmsg made when the socket is ready,
// waiting for it in the netpoller; see the top of this file for why raw.
// Its closure is made once, so that a call allocates nothing.
type batchCall struct {
	rc    syscall.RawConn
	trap  uintptr
	hs    []mmsghdr
	n     uintptr
	errno syscall.Errno
	io    func(fd uintptr) bool
}

func newBatchCall(rc syscall.RawConn, trap uintptr) *batchCall {
	c := &batchCall{rc: rc, trap: trap, hs: make([]mmsghdr, BatchSize)}
	c.io = c.call
	return c
}

// call is the system call itself; false asks the netpoller to wait.
func (c *batchCall) call(fd uintptr) bool {
	for {
		c.n, _, c.errno = syscall.RawSyscall6(c.trap, fd, uintptr(unsafe.Pointer(&c.hs[0])), uintptr(len(c.hs)), 0, 0, 0)
		if c.errno != unix.EINTR {
			return c.errno != unix.EAGAIN
		}
	}
}

// run makes the call over the first k headers.
func (c *batchCall) run(k int) (int, error) {
	all := c.hs
	c.hs = c.hs[:k]
	var err error
	if c.trap == unix.SYS_RECVMMSG {
		err = c.rc.Read(c.io)
	} else {
		err = c.rc.Write(c.io)
	}
	c.hs = all
	switch {
	case err != nil:
		return 0, err // the socket was closed
	case c.errno != 0:
		return 0, c.errno
	}
	return int(c.n), nil
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
