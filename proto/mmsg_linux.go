package proto

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsg moves the UDP Conn's batches with recvmmsg and sendmmsg of its own
// instead of x/net's, for two measured reasons (BENCHMARKS.md, Scale):
//
//   - x/net enters each call through syscall.Syscall, which tells the Go
//     scheduler; a call made while every P was idle wakes the runtime's
//     monitor thread (sysmon), which then polls every 20 µs for as long
//     as anything runs. In the lab that was half of faild's wake-ups, and
//     a wake-up there costs 25–40 µs of CPU. The socket is non-blocking,
//     so neither call can block, and RawSyscall6 is what such a call may
//     use.
//   - x/net's ReadBatch allocates each datagram's source address (a
//     *net.UDPAddr and its IP): two allocations a packet, and the GC work
//     they make.
//
// The socket setup (control messages, TTL, groups) stays x/net's.
type mmsg struct {
	rc syscall.RawConn
	v6 bool

	// The reader's.
	rh   []unix.Mmsghdr
	riov []unix.Iovec
	rsa  []unix.RawSockaddrInet6 // room for either family's address
	roob [][]byte

	// The writers', under udpConn.mu.
	wh   []unix.Mmsghdr
	wiov []unix.Iovec
	wsa  []unix.RawSockaddrInet6

	// The calls, made once: a closure made per call would allocate. Each
	// takes its count in and leaves its result in a call of its own.
	recv, send func(fd uintptr) bool
	rcall      call
	wcall      call
}

// call is one system call's arguments and result.
type call struct {
	hdrs  *unix.Mmsghdr
	k, n  int
	errno syscall.Errno
}

// do makes the call; it reports false when the socket would block, which
// tells the RawConn to wait for it.
func (c *call) do(trap, fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(c.hdrs)), uintptr(c.k), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		c.n, c.errno = int(r), e
		return e != unix.EAGAIN
	}
}

func newMmsg(c *net.UDPConn, v6 bool, oob func() []byte) (*mmsg, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	m := &mmsg{rc: rc, v6: v6,
		rh: make([]unix.Mmsghdr, BatchSize), riov: make([]unix.Iovec, BatchSize),
		rsa: make([]unix.RawSockaddrInet6, BatchSize), roob: make([][]byte, BatchSize),
		wh: make([]unix.Mmsghdr, BatchSize), wiov: make([]unix.Iovec, BatchSize),
		wsa: make([]unix.RawSockaddrInet6, BatchSize)}
	for i := range m.rh {
		m.roob[i] = oob()
		h := &m.rh[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.rsa[i]))
		h.Iov = &m.riov[i]
		h.SetIovlen(1)
		h.Control = &m.roob[i][0]
	}
	for i := range m.wh {
		h := &m.wh[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.wsa[i]))
		h.Iov = &m.wiov[i]
		h.SetIovlen(1)
	}
	m.rcall.hdrs, m.wcall.hdrs = &m.rh[0], &m.wh[0]
	m.recv = func(fd uintptr) bool { return m.rcall.do(unix.SYS_RECVMMSG, fd) }
	m.send = func(fd uintptr) bool { return m.wcall.do(unix.SYS_SENDMMSG, fd) }
	return m, nil
}

// read is ReadBatch on Linux.
func (m *mmsg) read(ms []Message) (int, error) {
	k := min(len(ms), len(m.rh))
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		m.riov[i].Base = &ms[i].Buf[0]
		m.riov[i].SetLen(len(ms[i].Buf))
		h := &m.rh[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(len(m.roob[i]))
		h.Flags = 0
	}
	m.rcall.k = k
	err := m.rc.Read(m.recv)
	n := m.rcall.n
	if err == nil && m.rcall.errno != 0 {
		err = m.rcall.errno
	}
	if err != nil {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: err}
	}
	for i := range n {
		ms[i].N, ms[i].IfIndex, ms[i].Hops = int(m.rh[i].Len), 0, -1
		ms[i].Addr = m.source(i)
		h := &m.rh[i].Hdr
		if h.Flags&unix.MSG_CTRUNC == 0 {
			parseControl(m.roob[i][:h.Controllen], m.v6, &ms[i])
		}
	}
	return n, nil
}

// source is the address datagram i came from.
func (m *mmsg) source(i int) netip.AddrPort {
	sa := &m.rsa[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port(s4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			// Only link-local sources have a zone; no LAN subnet holds
			// them, so this rare allocation never meets evidence.
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port(sa.Port))
	}
	return netip.AddrPort{}
}

// port reads a sockaddr's port, which is in network byte order.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}

// setPort writes a sockaddr's port in network byte order.
func setPort(dst *uint16, p uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(dst))[:], p)
}

// write is WriteBatch on Linux; the caller holds udpConn.mu, and ctl[i]
// is ms[i]'s marshalled packet info.
func (m *mmsg) write(ms []Message, ctl [][]byte) (int, error) {
	k := min(len(ms), len(m.wh), len(ctl))
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		msg := &ms[i]
		sa := &m.wsa[i]
		h := &m.wh[i].Hdr
		if m.v6 {
			*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: msg.Addr.Addr().As16()}
			setPort(&sa.Port, msg.Addr.Port())
			h.Namelen = unix.SizeofSockaddrInet6
		} else {
			s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
			*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: msg.Addr.Addr().Unmap().As4()}
			setPort(&s4.Port, msg.Addr.Port())
			h.Namelen = unix.SizeofSockaddrInet4
		}
		if len(msg.Buf) > 0 {
			m.wiov[i].Base = &msg.Buf[0]
		} else {
			m.wiov[i].Base = nil
		}
		m.wiov[i].SetLen(len(msg.Buf))
		if b := ctl[i]; len(b) > 0 {
			h.Control = &b[0]
			h.SetControllen(len(b))
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
	}
	m.wcall.k = k
	err := m.rc.Write(m.send)
	n := m.wcall.n
	if err == nil && m.wcall.errno != 0 {
		err = m.wcall.errno
	}
	if err != nil {
		// sendmmsg reports the first message's error as -1, a later
		// one's by sending fewer; see Conn.WriteBatch.
		return -1, &net.OpError{Op: "sendmmsg", Net: "udp", Err: err}
	}
	return n, nil
}
