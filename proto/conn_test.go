package proto

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listenLoop opens a udpConn on a free port, closed when the test ends.
func listenLoop(tb testing.TB, v6 bool) *udpConn {
	tb.Helper()
	c, err := Listen(0, v6)
	if err != nil {
		tb.Skipf("cannot listen: %v", err)
	}
	u := c.(*udpConn)
	tb.Cleanup(func() { u.Close() })
	return u
}

// loopClient is a UDP socket on a loopback address that sends with TTL
// (hop limit) 255, as a peer does.
func loopClient(t *testing.T, v6 bool) *net.UDPConn {
	t.Helper()
	network, ip := "udp4", net.IPv4(127, 0, 0, 2)
	if v6 {
		network, ip = "udp6", net.IPv6loopback
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Skipf("no loopback for %s: %v", network, err)
	}
	t.Cleanup(func() { c.Close() })
	if v6 {
		err = ipv6.NewConn(c).SetHopLimit(255)
	} else {
		err = ipv4.NewConn(c).SetTTL(255)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConnBatches: a batch read gives each datagram with its source,
// interface and TTL, in order; a batch write whose middle message cannot
// go delivers the others and WriteAll names the one that failed.
func TestConnBatches(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			testConnBatches(t, listenLoop(t, v6), v6, lo.Index)
		})
	}
}

func testConnBatches(t *testing.T, u *udpConn, v6 bool, lo int) {
	c := loopClient(t, v6)
	server := "127.0.0.1"
	if v6 {
		server = "::1"
	}
	port := uint16(u.c.LocalAddr().(*net.UDPAddr).Port)
	dst := netip.AddrPortFrom(netip.MustParseAddr(server), port)
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	payloads := [][]byte{[]byte("one"), bytes.Repeat([]byte("b"), 300), []byte("three!")}
	for _, p := range payloads {
		if _, err := c.WriteToUDPAddrPort(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	// Read: all three, in order, with their source, interface and TTL.
	ms := make([]Message, 8)
	for i := range ms {
		ms[i].Buf = make([]byte, MaxLen+1)
	}
	var got []Message
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < len(payloads) && time.Now().Before(deadline) {
		_ = u.c.SetReadDeadline(deadline)
		n, err := u.ReadBatch(ms)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for _, m := range ms[:n] {
			m.Buf = append([]byte(nil), m.Buf[:m.N]...)
			got = append(got, m)
		}
	}
	if len(got) != len(payloads) {
		t.Fatalf("read %d datagrams, want %d", len(got), len(payloads))
	}
	for i, m := range got {
		if !bytes.Equal(m.Buf, payloads[i]) || m.N != len(payloads[i]) {
			t.Errorf("datagram %d: %q (N %d), want %q", i, m.Buf, m.N, payloads[i])
		}
		if m.Addr != from {
			t.Errorf("datagram %d: from %v, want %v", i, m.Addr, from)
		}
		if m.IfIndex != lo || m.Hops != 255 {
			t.Errorf("datagram %d: interface %d, hops %d; want %d, 255", i, m.IfIndex, m.Hops, lo)
		}
	}
	// Write: one batch whose middle message cannot go (port 0) reaches
	// the client with the other two, and WriteAll names the bad one.
	src := netip.MustParseAddr(server)
	out := []Message{
		{Buf: []byte("ack-1"), Addr: from, IfIndex: lo, Src: src},
		{Buf: []byte("lost"), Addr: netip.AddrPortFrom(from.Addr(), 0), IfIndex: lo, Src: src},
		{Buf: []byte("ack-3"), Addr: from, IfIndex: lo, Src: src},
	}
	var failed []string
	WriteAll(u, out, func(m *Message, err error) { failed = append(failed, string(m.Buf)) })
	if len(failed) != 1 || failed[0] != "lost" {
		t.Errorf("WriteAll failed %q, want just [lost]", failed)
	}
	buf := make([]byte, 64)
	for _, want := range []string{"ack-1", "ack-3"} {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, a, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("client read: %v", err)
		}
		if string(buf[:n]) != want || a.Addr() != src || a.Port() != port {
			t.Errorf("client got %q from %v, want %q from %v", buf[:n], a, want, netip.AddrPortFrom(src, port))
		}
	}
}
