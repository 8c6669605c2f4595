//go:build !linux

package proto

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// batch holds one direction's messages for x/net, which moves one
// datagram a call on these systems (ipv6.Message is the same type), and
// a write's destinations.
type batch struct {
	ms  []ipv4.Message
	dst []net.UDPAddr
}

func (u *udpConn) initBatches() error {
	u.rd.ms = make([]ipv4.Message, BatchSize)
	for i := range u.rd.ms {
		u.rd.ms[i].Buffers = make([][]byte, 1)
		u.rd.ms[i].OOB = controlSpace(u.v6)
	}
	u.wr.ms = make([]ipv4.Message, BatchSize)
	u.wr.dst = make([]net.UDPAddr, BatchSize)
	for i := range u.wr.ms {
		u.wr.ms[i].Buffers = make([][]byte, 1)
		u.wr.dst[i].IP = make(net.IP, 0, net.IPv6len)
	}
	return nil
}

// ReadBatch implements Conn. Control messages that the kernel cut short
// (MSG_CTRUNC) are not trusted: the datagram comes without them.
func (u *udpConn) ReadBatch(ms []Message) (int, error) {
	rd := u.rd.ms[:min(len(ms), len(u.rd.ms))]
	for i := range rd {
		rd[i].Buffers[0] = ms[i].Buf
		rd[i].OOB = rd[i].OOB[:cap(rd[i].OOB)]
	}
	var n int
	var err error
	if u.v6 {
		n, err = u.p6.ReadBatch(rd, 0)
	} else {
		n, err = u.p4.ReadBatch(rd, 0)
	}
	for i := range n {
		m, r := &ms[i], &rd[i]
		m.N, m.IfIndex, m.Hops = r.N, 0, -1
		m.Addr = netip.AddrPort{}
		if a, ok := r.Addr.(*net.UDPAddr); ok {
			m.Addr = a.AddrPort()
		}
		if r.Flags&msgCtrunc == 0 {
			parseControl(r.OOB[:r.NN], u.v6, m)
		}
	}
	return n, err
}

// WriteBatch implements Conn.
func (u *udpConn) WriteBatch(ms []Message) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	wr := u.wr.ms[:min(len(ms), len(u.wr.ms))]
	for i := range wr {
		m := &ms[i]
		d := &u.wr.dst[i]
		if m.Addr.Addr().Is4() {
			a := m.Addr.Addr().As4()
			d.IP = append(d.IP[:0], a[:]...)
		} else {
			a := m.Addr.Addr().As16()
			d.IP = append(d.IP[:0], a[:]...)
		}
		d.Port = int(m.Addr.Port())
		wr[i].Buffers[0] = m.Buf
		wr[i].Addr = d
		wr[i].OOB = u.control(m.IfIndex, m.Src)
	}
	if u.v6 {
		return u.p6.WriteBatch(wr, 0)
	}
	return u.p4.WriteBatch(wr, 0)
}
