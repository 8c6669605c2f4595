package proto

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// listenLoop opens a udpConn on a free port, closed when the test ends.
// Listen must work: only a system without IPv6 skips the IPv6 tests.
func listenLoop(tb testing.TB, v6 bool) *udpConn {
	tb.Helper()
	if v6 {
		probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			tb.Skipf("no IPv6 here: %v", err)
		}
		probe.Close()
	}
	c, err := Listen(0, v6)
	if err != nil {
		tb.Fatalf("Listen(0, v6=%v): %v", v6, err)
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
	// Write: one batch whose middle messages cannot go (port 0; the
	// other address family) reaches the client with the other two, and
	// WriteAll names the bad ones.
	src := netip.MustParseAddr(server)
	other := netip.MustParseAddr("::1")
	if v6 {
		other = netip.MustParseAddr("127.0.0.1")
	}
	out := []Message{
		{Buf: []byte("ack-1"), Addr: from, IfIndex: lo, Src: src},
		{Buf: []byte("lost"), Addr: netip.AddrPortFrom(from.Addr(), 0), IfIndex: lo, Src: src},
		{Buf: []byte("family"), Addr: netip.AddrPortFrom(other, from.Port()), IfIndex: lo},
		{Buf: []byte("ack-3"), Addr: from, IfIndex: lo, Src: src},
	}
	var failed []string
	WriteAll(u, out, func(m *Message, err error) { failed = append(failed, string(m.Buf)) })
	if !slices.Equal(failed, []string{"lost", "family"}) {
		t.Errorf("WriteAll failed %q, want [lost family]", failed)
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

// batchConn takes at most max messages a WriteBatch, as the UDP Conn
// takes BatchSize, and answers each batch as its script says: take
// writes the batch (max messages at most) and returns the count; the
// script may instead return a count and an error of its own.
type batchConn struct {
	Conn
	max    int
	script func(call int, ms []Message) (n int, err error) // nil: take all
	calls  int
	sent   []string
}

func (c *batchConn) WriteBatch(ms []Message) (int, error) {
	ms = ms[:min(len(ms), c.max)]
	c.calls++
	n := len(ms)
	var err error
	if c.script != nil {
		n, err = c.script(c.calls, ms)
	}
	for _, m := range ms[:max(n, 0)] {
		c.sent = append(c.sent, string(m.Buf))
	}
	return n, err
}

// TestWriteAllBatches: WriteAll goes on after a full batch that did not
// take everything (no message of it failed); a batch that writes nothing
// without saying why fails its first message and the rest go; a failure
// is reported with the Conn's own error; and a Conn that reports an error
// after writing the whole batch fails no message.
func TestWriteAllBatches(t *testing.T) {
	msgs := func(n int) []Message {
		ms := make([]Message, n)
		for i := range ms {
			ms[i].Buf = []byte(fmt.Sprint(i))
		}
		return ms
	}
	type failure struct {
		msg string
		err error
	}
	run := func(c *batchConn, ms []Message) []failure {
		var got []failure
		WriteAll(c, ms, func(m *Message, err error) { got = append(got, failure{string(m.Buf), err}) })
		return got
	}

	c := &batchConn{max: BatchSize}
	if got := run(c, msgs(2*BatchSize+5)); len(got) != 0 || len(c.sent) != 2*BatchSize+5 || c.calls != 3 {
		t.Errorf("%d messages, %d a batch: failed %v, sent %d in %d calls; want all sent in 3, none failed",
			2*BatchSize+5, BatchSize, got, len(c.sent), c.calls)
	}

	c = &batchConn{max: BatchSize, script: func(call int, ms []Message) (int, error) {
		if call == 1 {
			return 0, nil
		}
		return len(ms), nil
	}}
	got := run(c, msgs(3))
	if len(got) != 1 || got[0].msg != "0" || got[0].err == nil || len(c.sent) != 2 {
		t.Errorf("a batch that wrote nothing, no error: failed %v, sent %v; want message 0 failed, 1 and 2 sent", got, c.sent)
	}

	unreachable := errors.New("network is unreachable")
	c = &batchConn{max: BatchSize, script: func(call int, ms []Message) (int, error) {
		if call == 1 {
			return 1, unreachable
		}
		return len(ms), nil
	}}
	if got := run(c, msgs(3)); len(got) != 1 || got[0].msg != "1" || got[0].err != unreachable || len(c.sent) != 2 {
		t.Errorf("message 1 unreachable: failed %v, sent %v; want message 1 failed with the Conn's error, 0 and 2 sent", got, c.sent)
	}

	c = &batchConn{max: BatchSize, script: func(_ int, ms []Message) (int, error) { return len(ms), unreachable }}
	if got := run(c, msgs(3)); len(got) != 0 || len(c.sent) != 3 {
		t.Errorf("an error after the whole batch went: failed %v, sent %v; want none failed", got, c.sent)
	}
}

// TestReadBatchNoTTL: a datagram that comes without a TTL control message
// has Hops -1 (unknown, and so dropped as DropControl by the Receiver),
// not the TTL of the datagram read before it into the same Message.
func TestReadBatchNoTTL(t *testing.T) {
	u := listenLoop(t, false)
	c := loopClient(t, false)
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(u.c.LocalAddr().(*net.UDPAddr).Port))
	ms := []Message{{Buf: make([]byte, MaxLen+1)}}
	read := func() Message {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort([]byte("x"), dst); err != nil {
			t.Fatal(err)
		}
		_ = u.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := u.ReadBatch(ms); err != nil || n != 1 {
			t.Fatalf("ReadBatch = %d, %v", n, err)
		}
		return ms[0]
	}
	if m := read(); m.Hops != 255 {
		t.Fatalf("with the TTL asked for: hops %d, want 255", m.Hops)
	}
	if err := u.p4.SetControlMessage(ipv4.FlagTTL, false); err != nil {
		t.Fatal(err)
	}
	if m := read(); m.Hops != -1 || m.IfIndex == 0 {
		t.Errorf("without the TTL: hops %d, interface %d; want -1 and the interface still known", m.Hops, m.IfIndex)
	}
}

// TestControlCache: the packet info for an (interface, source) pair is
// marshalled once and reused, and the cache stays bounded however many
// pairs come and go.
func TestControlCache(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		u := listenLoop(t, v6)
		src := netip.MustParseAddr("192.0.2.1")
		if v6 {
			src = netip.MustParseAddr("2001:db8:a::1")
		}
		a := u.control(2, src)
		u.control(3, src)
		if b := u.control(2, src); len(a) == 0 || &a[0] != &b[0] {
			t.Errorf("v6=%v: the same pair marshalled twice", v6)
		}
		for i := range 200 {
			u.control(10+i, src)
			if len(u.oob) > 64 {
				t.Fatalf("v6=%v: %d pairs cached, want at most 64", v6, len(u.oob))
			}
		}
	}
}

// TestCloseEndsRead: Close ends a ReadBatch that waits for datagrams, with
// an error, as the receivers' shutdown relies on.
func TestCloseEndsRead(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			u := listenLoop(t, v6)
			ms := []Message{{Buf: make([]byte, MaxLen)}}
			done := make(chan error, 1)
			go func() {
				_, err := u.ReadBatch(ms)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond) // let it wait in the netpoller
			u.Close()
			select {
			case err := <-done:
				if err == nil {
					t.Error("ReadBatch returned no error after Close")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch still waits 5 s after Close")
			}
		})
	}
}
