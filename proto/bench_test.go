package proto

import (
	"context"
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

// inqs encodes one INQ from each of n peers, as they arrive on LAN A.
func inqs(tb testing.TB, n int) (pkts [][]byte, srcs []netip.AddrPort) {
	tb.Helper()
	for i := range n {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i%240)})
		b := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i%240)})
		p := Packet{Type: INQ, NodeID: uint32(0x0a000000 + i), BootID: 1, Seq: 1, Interval: time.Second,
			Addrs: []netip.Prefix{netip.PrefixFrom(a, 24), netip.PrefixFrom(b, 24)}}
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
// without the socket calls: decode, the acceptance checks, the peer's
// addresses, the evidence update in the path table (what the decide loop
// does with it) and the encoding of the ACK. The steady state must not
// allocate: at -t 0.01 with many peers this runs tens of thousands of times
// a second.
func BenchmarkPerPacket(b *testing.B) {
	x := testExchange()
	tbl := routes.New(routes.Config{LANs: 2, Interval: time.Second, Misses: 3, Successes: 3})
	pkts, srcs := inqs(b, benchPeers)
	cm := &control{hops: 255, ifIndex: 2}
	var (
		in, ack Packet
		h       Heard
		evs     []routes.Event
	)
	out := make([]byte, 0, MaxLen)
	now := time.Now()
	step := func(i int) {
		now = now.Add(time.Second / benchPeers) // every peer once a second
		if err := in.Decode(pkts[i%benchPeers]); err != nil {
			b.Fatal(err)
		}
		lan, from, ok := x.check(x.LANs(), &in, cm, srcs[i%benchPeers])
		if !ok {
			b.Fatal("packet dropped")
		}
		h = Heard{LAN: lan, Type: in.Type, Node: in.NodeID, Boot: in.BootID, Interval: in.Interval, At: now}
		x.peerAddrs(x.LANs(), &in, &h)
		h.Addrs[lan] = from
		evs = tbl.Observe(routes.Observation{Peer: routes.PeerID(h.Node), LAN: h.LAN, Addrs: h.Addrs[:2],
			Interval: h.Interval, RTT: h.RTT, At: h.At}, evs[:0])
		x.packet(&ack, ACK, nil) // unauthenticated: the MAC has its own benchmark
		ack.Echo = in.Seq
		var err error
		if out, err = ack.Append(out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	// Warm up: discover every peer, grow the slices; that allocates once.
	for i := range 2 * benchPeers {
		step(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		step(i)
	}
}

// BenchmarkExchangeLoopback is the whole responder path through real
// sockets on the loopback interface: a client sends an INQ with TTL 255 and
// waits for the ACK. The client side uses the allocation-free UDP calls, so
// allocs/op is what the exchange's own socket handling costs per INQ.
func BenchmarkExchangeLoopback(b *testing.B) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Skipf("no loopback interface: %v", err)
	}
	lanA := LAN{IfIndex: lo.Index, Addr: netip.MustParsePrefix("127.0.0.1/8"), Broadcast: netip.MustParseAddr("127.255.255.255")}
	x, err := Listen(Config{Port: 0, Node: 1, Boot: 1, Interval: time.Second, LANs: []LAN{lanA}})
	if err != nil {
		b.Skipf("cannot listen: %v", err)
	}
	defer x.Close()
	port := x.conn.LocalAddr().(*net.UDPAddr).Port
	// ACKs go to the INQ's source address at the configured port, which
	// the exchange has already bound; point that port at the client, set
	// before the responder starts.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		b.Skipf("cannot bind client: %v", err)
	}
	defer c.Close()
	x.cfg.Port = c.LocalAddr().(*net.UDPAddr).Port
	if err := ipv4.NewConn(c).SetTTL(255); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = x.Responder(ctx, func(*Heard) {}, func(int, error) {})
	}()
	defer func() { cancel(); <-done }()

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
			b.Fatalf("no ACK: %v", err)
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
