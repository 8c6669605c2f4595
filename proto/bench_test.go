package proto

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/faild/faild/routes"
)

// benchPeers is how many distinct peers the per-packet benchmarks rotate
// through, so that the path table's map and heap work at a realistic size.
const benchPeers = 1000

// inqs encodes one INQ from each of n peers, as they arrive on LAN A;
// with view, in version 2 with a view of eight nodes, us among them.
func inqs(tb testing.TB, n int, view bool) (pkts [][]byte, srcs []netip.AddrPort) {
	tb.Helper()
	for i := range n {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i%240)})
		b := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i%240)})
		p := Packet{Type: INQ, NodeID: uint32(0x0a000000 + i), BootID: 1, Seq: 1, Interval: time.Second,
			Addrs: []netip.Prefix{netip.PrefixFrom(a, 24), netip.PrefixFrom(b, 24)}}
		if view {
			p.Version, p.V2 = Version2, true
			for j := range 8 {
				p.View = append(p.View, ViewEntry{Node: testNode + uint32(j), Known: 3, Heard: 3})
			}
			p.ViewTotal = len(p.View)
		}
		buf, err := p.Append(nil)
		if err != nil {
			tb.Fatal(err)
		}
		pkts = append(pkts, buf)
		srcs = append(srcs, netip.AddrPortFrom(a, 4117))
	}
	return pkts, srcs
}

// BenchmarkPerPacket is the work faild does for every INQ it receives,
// without the socket calls: the receive path (decode, the acceptance and
// replay checks, the peer's addresses, the ACK), and the evidence update in
// the path table that the decide loop then does with it. The steady state
// must not allocate: at -t 0.01 with many peers this runs tens of thousands
// of times a second.
func BenchmarkPerPacket(b *testing.B) { benchPerPacket(b, false, nil) }

// BenchmarkPerPacketView is BenchmarkPerPacket for version-2 INQs, each
// with a view that stays as it was: it is taken in without allocating,
// and each window is handed on once an interval as the View turned
// before.
func BenchmarkPerPacketView(b *testing.B) { benchPerPacket(b, true, nil) }

// benchPerPacket runs the per-packet work, with before (if not nil) run
// ahead of each packet.
func benchPerPacket(b *testing.B, view bool, before func()) {
	x, err := NewExchange(Config{Port: 4117, Node: testNode, Boot: testBoot, Interval: time.Second,
		LANs: testExchange(b).LANs(), MaxPeers: 2 * benchPeers})
	if err != nil {
		b.Fatal(err)
	}
	r, err := x.NewReceiver()
	if err != nil {
		b.Fatal(err)
	}
	tbl := routes.New(routes.Config{LANs: 2, Interval: time.Second, Misses: 3, Successes: 3})
	pkts, srcs := inqs(b, benchPeers, view)
	ms := make([]Message, benchPeers)
	for i := range ms {
		ms[i] = Message{Buf: make([]byte, MaxLen+1), Addr: srcs[i], IfIndex: 2, Hops: 255}
	}
	reply := Message{Buf: make([]byte, 0, MaxLen)}
	var (
		h   Heard
		evs []routes.Event
	)
	now := time.Now()
	seq := uint64(1)
	step := func(i int) {
		now = now.Add(time.Second / benchPeers) // every peer once a second
		m := &ms[i%benchPeers]
		if i%benchPeers == 0 {
			seq++
		}
		binary.BigEndian.PutUint64(pkts[i%benchPeers][16:], seq) // a fresh sequence number
		m.N = copy(m.Buf, pkts[i%benchPeers])
		reply.Buf = reply.Buf[:0]
		if ev, replied := r.Receive(m, now, &h, &reply); !ev || !replied {
			b.Fatalf("packet %d dropped: %v", i, x.Drops())
		}
		evs = tbl.Observe(routes.Observation{Peer: h.Node, LAN: h.LAN, Addrs: h.Addrs[:2],
			Interval: h.Interval, At: h.At}, evs[:0])
	}
	// Warm up: discover every peer, grow the slices; that allocates once.
	for i := range 2 * benchPeers {
		step(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if before != nil {
			before()
		}
		step(i)
	}
}

// BenchmarkServeLoopback is the whole responder path through real sockets
// on the loopback interface: a client sends an INQ with TTL 255 and waits
// for the ACK, which Serve reads in a batch and answers. The client side
// uses the allocation-free UDP calls, so allocs/op is what the receive
// path's own socket handling costs per INQ.
func BenchmarkServeLoopback(b *testing.B) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Skipf("no loopback interface: %v", err)
	}
	benchServeLoopback(b, listenLoop(b, false), lo.Index)
}

func benchServeLoopback(b *testing.B, conn *udpConn, lo int) {
	port := conn.c.LocalAddr().(*net.UDPAddr).Port
	// ACKs go to the INQ's source address at the configured port; point
	// that port at the client.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		b.Skipf("cannot bind client: %v", err)
	}
	defer c.Close()
	x, err := NewExchange(Config{Port: c.LocalAddr().(*net.UDPAddr).Port, Node: 1, Boot: 1, Interval: time.Second,
		LANs: []LAN{{Name: "lo", Index: lo, Addr: netip.MustParsePrefix("127.0.0.1/8"), Broadcast: netip.MustParseAddr("127.255.255.255")}}})
	if err != nil {
		b.Fatal(err)
	}
	r, _ := x.NewReceiver()
	if err := ipv4.NewConn(c).SetTTL(255); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(conn, func([]Heard) {}, func(int, error) {}) }()
	defer func() { conn.Close(); <-done }()

	p := Packet{Type: INQ, NodeID: 2, BootID: 1, Interval: time.Second,
		Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/8")}}
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	buf := make([]byte, 0, MaxLen)
	rbuf := make([]byte, MaxLen+1)
	rt := func() {
		p.Seq++
		buf, _ = p.Append(buf[:0])
		if _, err := c.WriteToUDPAddrPort(buf, dst); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := c.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatalf("no ACK: %v (drops %v)", err, x.Drops())
		}
	}
	for range 100 {
		rt()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rt()
	}
}
