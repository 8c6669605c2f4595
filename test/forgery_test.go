package test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/test/lab"
)

// forger is a stranger on LAN A only (a lab.Host): it hears the nodes'
// broadcast INQs on faild's port and sends hand-made UDP packets with any
// source address it likes, through a raw socket.
type forger struct {
	t   *testing.T
	h   *lab.Host
	rx  *net.UDPConn
	raw *ipv4.RawConn
}

func newForger(t *testing.T, l *lab.Lab) *forger {
	t.Helper()
	h, err := l.AddHost(lab.A, 200)
	must(t, err)
	f := &forger{t: t, h: h}
	must(t, h.Do(func() (err error) {
		if f.rx, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 4117}); err != nil {
			return err
		}
		c, err := net.ListenPacket("ip4:udp", "0.0.0.0")
		if err != nil {
			return err
		}
		f.raw, err = ipv4.NewRawConn(c)
		return err
	}))
	t.Cleanup(func() {
		f.rx.Close()
		f.raw.Close()
	})
	return f
}

// sniff returns the next INQ of node id heard from src, decoded, and its
// bytes as sent.
func (f *forger) sniff(id uint32, src string, timeout time.Duration) (proto.Packet, []byte) {
	f.t.Helper()
	buf := make([]byte, proto.MaxLen+1)
	deadline := time.Now().Add(timeout)
	for {
		must(f.t, f.rx.SetReadDeadline(deadline))
		n, from, err := f.rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			f.t.Fatalf("%v: no INQ of %s heard: %v", f.h, src, err)
		}
		var p proto.Packet
		if p.Decode(buf[:n]) == nil && p.Type == proto.INQ && p.NodeID == id && from.Addr().String() == src {
			return p, append([]byte(nil), buf[:n]...)
		}
	}
}

// send writes payload as a UDP datagram from src to dst:4117 with TTL 255.
func (f *forger) send(src, dst string, payload []byte) {
	f.t.Helper()
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], 4117)
	binary.BigEndian.PutUint16(udp[2:], 4117)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	binary.BigEndian.PutUint16(udp[6:], udpChecksum(s, d, udp))
	h := &ipv4.Header{Version: 4, Len: ipv4.HeaderLen, TotalLen: ipv4.HeaderLen + len(udp), TTL: 255,
		Protocol: 17, Src: s[:], Dst: d[:]}
	if err := f.raw.WriteTo(h, udp, nil); err != nil {
		f.t.Fatalf("%v: failed to send the forgery: %v", f.h, err)
	}
}

// udpChecksum is the UDP checksum of seg (its checksum field zero) over
// the IPv4 pseudo-header.
func udpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += 17 + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if c := ^uint16(sum); c != 0 {
		return c
	}
	return 0xffff
}

// forgedJump is one forged packet as the attacker builds it from a sniffed
// INQ of node 2.
type forgedJump struct {
	name string
	make func(p proto.Packet, raw []byte) [][]byte
	own  bool // sent from the stranger's own address, not node 2's
}

// jump is the forgery of issue 15: node 2's INQ, its sequence number
// pushed ahead, with the boot id given by boot; n packets in a row, each
// confirming the one before.
func jump(boot func(uint32) uint32, ahead uint64, n int) func(proto.Packet, []byte) [][]byte {
	return func(p proto.Packet, _ []byte) [][]byte {
		p.Auth = false
		p.BootID = boot(p.BootID)
		p.Seq += ahead
		var out [][]byte
		for range n {
			b, err := p.Append(nil)
			if err != nil {
				panic(err)
			}
			out = append(out, b)
			p.Seq++
		}
		return out
	}
}

func sameBoot(b uint32) uint32  { return b }
func otherBoot(b uint32) uint32 { return b ^ 0x5a5a5a5a }
func thirdBoot(b uint32) uint32 { return b ^ 0xa5a5a5a5 }

// TestForgedJump is finding 1 of issue 15. Nodes 1 and 2 run on both
// LANs, with and without a key; a stranger on LAN A only sniffs node 2's
// broadcast INQs and sends node 1 forgeries from node 2's address with
// TTL 255, each made from a fresh INQ: its sequence number 10^12 ahead;
// the same again as two packets in a row (the second confirms the
// first); both under a new boot id; and the captured bytes as they were
// (with a key also the signed bytes with the sequence number changed); and
// node 2's next INQ from the stranger's own address.
// No key must not make them more than an impersonation of node 2 on LAN
// A, which adds evidence but takes none away: node 1 must not fail over
// on either LAN, never call node 2 unreachable, and drop none of node 2's
// real packets. With a key every forgery must be dropped and counted.
// Were node 1 fooled, the test measures how long it takes to recover.
func TestForgedJump(t *testing.T) {
	t.Parallel()
	forgeries := []forgedJump{
		{"jump", jump(sameBoot, 1e12, 1), false},
		{"jump, confirmed", jump(sameBoot, 2e12, 2), false},
		{"new boot, jump", jump(otherBoot, 3e12, 1), false},
		{"new boot, jump, confirmed", jump(thirdBoot, 4e12, 2), false},
		{"replay", func(_ proto.Packet, raw []byte) [][]byte { return [][]byte{raw} }, false},
		{"node 2's next INQ, from the stranger's own address", jump(sameBoot, 1, 1), true},
	}
	for _, keyed := range []bool{false, true} {
		name := "no key"
		if keyed {
			name = "key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fs := forgeries
			if keyed {
				fs = append(fs, forgedJump{"tampered", func(p proto.Packet, raw []byte) [][]byte {
					b := append([]byte(nil), raw...)
					binary.BigEndian.PutUint64(b[16:], p.Seq+1e12)
					return [][]byte{b}
				}, false})
			}
			forgedJumpScenario(t, keyed, fs)
		})
	}
}

func forgedJumpScenario(t *testing.T, keyed bool, fs []forgedJump) {
	l, b := newLab(t, 2, 60*time.Second)
	args := append([]string{"-r"}, fast...)
	if keyed {
		args = append(args, "--key-file", writeKey(t, labKey))
	}
	startAll(t, b, l, func(*lab.Node) []string { return args })
	n1, n2 := l.Node(1), l.Node(2)
	f := newForger(t, l)
	id := netip.MustParseAddr(n2.Addr(lab.A)).As4()
	node2 := binary.BigEndian.Uint32(id[:])

	// Let both nodes settle, then forge from what node 2 sends.
	time.Sleep(5 * interval)
	start := time.Now()
	for i, fj := range fs {
		p, raw := f.sniff(node2, n2.Addr(lab.A), 2*time.Second)
		src := n2.Addr(lab.A)
		if fj.own {
			src = f.h.Addr
		}
		for _, b := range fj.make(p, raw) {
			f.send(src, n1.Addr(lab.A), b)
		}
		t.Logf("forgery %d (%s) sent, from node 2's INQ seq %d boot %08x", i+1, fj.name, p.Seq, p.BootID)
		time.Sleep(10 * interval)
	}
	// Ten detection times after the last one.
	time.Sleep(10 * misses * interval)
	healthy := func() bool {
		_, code := runStatus(t, l.Bin, n1)
		return code == 0 && n1.RoutesAre() && n2.RoutesAre()
	}
	ok := healthy()

	bad := func(n *lab.Node) (failovers map[string]int, unreachable int) {
		failovers = map[string]int{}
		for _, e := range since(n, start, "msg", "failover") {
			failovers[e["lan"]]++
		}
		return failovers, len(since(n, start, "msg", "unreachable"))
	}
	fo, un := bad(n1)
	fooled := !ok || len(fo) > 0 || un > 0
	var harm string
	if fooled {
		// Fooled: measure the harm before failing, bounded.
		err := errors.New("not yet")
		for end := time.Now().Add(90 * time.Second); err != nil && time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			if healthy() {
				err = nil
			}
		}
		fo, un = bad(n1)
		harm = fmt.Sprintf("node1: failovers by LAN %v, unreachable %d", fo, un)
		if err != nil {
			harm += "; not healthy 90 s after the first forgery"
		} else {
			harm += fmt.Sprintf("; healthy again %v after the first forgery", ms(time.Since(start)))
		}
	}
	fo2, un2 := bad(n2)
	if len(fo2) > 0 || un2 > 0 {
		t.Errorf("node2: failovers by LAN %v, unreachable %d after forgeries sent to node 1", fo2, un2)
	}

	drops1 := stopDrops(t, n1)
	drops2 := stopDrops(t, n2)
	record(t, "node1_drops", fmtDrops(drops1))
	if fooled {
		t.Errorf("forged packets from LAN A did more than impersonate node 2: %s; node 2's packets dropped as replays %d", harm, drops1["replay"])
	}
	if keyed {
		// Each forgery dropped for what it is, and nothing else.
		want := map[string]int{"no-tag": 7, "replay": 1, "auth": 1}
		for k, v := range want {
			if drops1[k] != v {
				t.Errorf("node1 drops %s=%d, want %d (drops %v)", k, drops1[k], v, drops1)
			}
		}
		return
	}
	// Without a key node 1 takes the forgeries from node 2's address as
	// node 2's packets (an impersonation: it answers them, and node 2 gets
	// ACKs for INQs it never sent), and drops none of node 2's real ones;
	// the one from the stranger's own address it drops, bound as node 2's
	// id is to node 2's address.
	if drops1["replay"] != 0 || drops1["id-addr"] != 1 {
		t.Errorf("node1 drops %v; want no replay (node 2's real packets) and id-addr=1 (the stranger's claim from its own address)", drops1)
	}
	if drops2["stale-ack"] == 0 {
		t.Errorf("node2 drops %v: no stale ACK, so node 1 never took a forgery as node 2's INQ (the test did not attack)", drops2)
	}
}

func fmtDrops(d map[string]int) string {
	var parts []string
	for k, v := range d {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	return strings.Join(parts, ",")
}
