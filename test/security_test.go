package test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/test/lab"
)

// labKey is the cluster key of the security scenarios; strangerKey is one
// the cluster does not have.
const (
	labKey      = "3f6c0a9e1d7b4c2a8e5f6a7b8c9d0e1f"
	strangerKey = "not the cluster key, but long enough"
)

// writeKey writes a key file faild accepts (mode 0600) and returns its path.
func writeKey(t *testing.T, keys ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "faild.key")
	if err := os.WriteFile(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// player sends hand-made faild packets from a lab node's namespace, as the
// node it claims to be. It plays a peer (with the key), a spoofer (without
// it) and a replayer (resending bytes it sent before).
type player struct {
	t     *testing.T
	from  *lab.Node
	conns [2]*net.UDPConn // by lab.LAN, bound to the node's address there
	mac   *proto.MAC      // nil: unsigned
	p     proto.Packet
}

// newPlayer opens one socket per LAN in from's namespace, sending with ttl,
// as node id claim (in dotted quad) announcing addrs.
func newPlayer(t *testing.T, from *lab.Node, claim string, key string, ttl int, addrs ...string) *player {
	t.Helper()
	pl := &player{t: t, from: from}
	if key != "" {
		mac, err := proto.NewMAC([][]byte{[]byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		pl.mac = mac
	}
	id := netip.MustParseAddr(claim).As4()
	pl.p = proto.Packet{Type: proto.INQ, NodeID: binary.BigEndian.Uint32(id[:]), BootID: uint32(time.Now().UnixNano()),
		Seq: uint64(time.Now().UnixNano()), Interval: interval, Auth: pl.mac != nil}
	for _, a := range addrs {
		pl.p.Addrs = append(pl.p.Addrs, netip.PrefixFrom(netip.MustParseAddr(a), 24))
	}
	err := from.Do(func() error {
		for _, lan := range lab.LANs {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(from.Addr(lan))})
			if err != nil {
				return err
			}
			pl.conns[lan] = c
			if err := ipv4.NewConn(c).SetTTL(ttl); err != nil {
				return err
			}
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range pl.conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if err != nil {
		t.Fatalf("player on %v: %v", from, err)
	}
	return pl
}

// inq sends a fresh INQ (next sequence number) to node to on lan and
// returns its bytes.
func (pl *player) inq(lan lab.LAN, to *lab.Node) []byte {
	pl.t.Helper()
	pl.p.Seq++
	b, err := pl.p.Append(nil)
	if err != nil {
		pl.t.Fatal(err)
	}
	if pl.mac != nil {
		if err := pl.mac.Sign(b); err != nil {
			pl.t.Fatal(err)
		}
	}
	pl.raw(lan, to, b)
	return b
}

// raw sends b as it is to node to's faild port on lan.
func (pl *player) raw(lan lab.LAN, to *lab.Node, b []byte) {
	pl.t.Helper()
	dst := &net.UDPAddr{IP: net.ParseIP(to.Addr(lan)), Port: 4117}
	if _, err := pl.conns[lan].WriteToUDP(b, dst); err != nil {
		pl.t.Fatalf("player send on LAN %v: %v", lan, err)
	}
}

// every calls fn each interval for d.
func every(d time.Duration, fn func()) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tk.C {
		fn()
	}
}

// stopDrops stops faild on n and returns the drop counters of its stop line.
func stopDrops(t *testing.T, n *lab.Node) map[string]int {
	t.Helper()
	if err := n.Stop(); err != nil {
		t.Errorf("%v: SIGTERM: %v", n, err)
	}
	stops := lab.Find(n.Events(), "msg", "stop")
	if len(stops) != 1 {
		t.Fatalf("%v: %d stop lines, want 1:\n%s", n, len(stops), n.Log())
	}
	drops := map[string]int{}
	for _, kv := range strings.Split(stops[0]["drops"], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			drops[k], _ = strconv.Atoi(v)
		}
	}
	t.Logf("%v: stop drops=%s", n, stops[0]["drops"])
	return drops
}

// discoveredID reports whether n has logged the discovery of the peer id.
func discoveredID(n *lab.Node, peer string) bool {
	return len(lab.Find(n.Events(), "msg", "discovered", "peer", peer)) > 0
}

// TestSpooferWithoutKey: nodes 1 and 2 run with a key; node 3's namespace
// is a stranger on both LANs without it. Its forged INQs (unsigned, or
// signed with another key), claiming a new node id or node 2's, neither
// create a route on node 1 nor remove the failover route it has while LAN
// A is cut between nodes 1 and 2; node 1 counts them by reason.
func TestSpooferWithoutKey(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 3, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2, n3 := l.Node(1), l.Node(2), l.Node(3)
	key := writeKey(t, labKey)
	for _, n := range []*lab.Node{n1, n2} {
		if err := n.Start(append(coreArgs, "--key-file", key)...); err != nil {
			t.Fatal(err)
		}
	}
	b.wait("nodes 1 and 2 discover each other", 5*time.Second, func() bool {
		return discoveredID(n1, n2.Addr(lab.A)) && discoveredID(n2, n1.Addr(lab.A))
	})

	// A made-up node 192.0.2.9 heard on LAN A only would get its LAN-B
	// address routed over LAN A, were it believed.
	ghost := newPlayer(t, n3, "192.0.2.9", "", 255, "192.0.2.3", "198.51.100.3")
	ghostKeyed := newPlayer(t, n3, "192.0.2.9", strangerKey, 255, "192.0.2.3", "198.51.100.3")
	every(10*interval, func() {
		ghost.inq(lab.A, n1)
		ghostKeyed.inq(lab.A, n1)
	})
	if discoveredID(n1, "192.0.2.9") {
		t.Errorf("node1 believed the forged node 192.0.2.9:\n%s", n1.Log())
	}
	noRoutes(t, n1)

	// Cut LAN A between 1 and 2: node 1 routes node 2's LAN-A address over
	// LAN B. Forged INQs claiming node 2 on LAN A must not switch it back.
	want := lab.Route{Dst: n2.Addr(lab.A), Via: n2.Addr(lab.B), Dev: lab.B.Iface()}
	cut := cutPair(t, l, 1, 2)
	b.wait("node1 fails over to node2", failoverLimit+2*time.Second, func() bool { return n1.RoutesAre(want) })
	fake2 := newPlayer(t, n3, n2.Addr(lab.A), "", 255, n2.Addr(lab.A), n2.Addr(lab.B))
	fake2Keyed := newPlayer(t, n3, n2.Addr(lab.A), strangerKey, 255, n2.Addr(lab.A), n2.Addr(lab.B))
	every(3*misses*interval, func() {
		fake2.inq(lab.A, n1)
		fake2Keyed.inq(lab.A, n1)
		if !n1.RoutesAre(want) {
			t.Fatalf("node1 lost its failover route %v under forged INQs", want)
		}
	})
	for _, e := range lab.Find(n1.Events(), "msg", "switchback") {
		if !e.Time().Before(cut) {
			t.Errorf("node1 switched back on forged INQs: %v", e)
		}
	}

	drops := stopDrops(t, n1)
	if drops["no-tag"] == 0 || drops["auth"] == 0 {
		t.Errorf("node1 drops %v; want no-tag and auth counted", drops)
	}
}

// TestReplayAndTTL: node 1 runs with a key; the test plays node 2 with the
// key, from node 2's namespace and addresses. While LAN A to node 2 is
// silent, node 1 routes node 2's LAN-A address over LAN B. Then a replay of
// node 2's earlier LAN-A packets, and fresh LAN-A packets sent with TTL 64,
// must both leave that route in place; fresh packets with TTL 255 (the
// control) switch it back, which shows the first two would have counted.
func TestReplayAndTTL(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2 := l.Node(1), l.Node(2)
	if err := n1.Start(append(coreArgs, "--key-file", writeKey(t, labKey))...); err != nil {
		t.Fatal(err)
	}
	peer := newPlayer(t, n2, n2.Addr(lab.A), labKey, 255, n2.Addr(lab.A), n2.Addr(lab.B))
	low := newPlayer(t, n2, n2.Addr(lab.A), labKey, 64, n2.Addr(lab.A), n2.Addr(lab.B))
	low.p.BootID = peer.p.BootID // the same node, one boot, sending with TTL 64
	// Capture only what node 1 hears: a packet it never got is, within the
	// window, as good as a late one, and would count once when replayed.
	b.wait("node1 listening", 5*time.Second, func() bool { return len(lab.Find(n1.Events(), "msg", "start")) > 0 })

	// The capture: what node 2 sends on LAN A while all is well.
	var capture [][]byte
	every(10*interval, func() {
		capture = append(capture, peer.inq(lab.A, n1))
		peer.inq(lab.B, n1)
	})
	if !discoveredID(n1, n2.Addr(lab.A)) {
		t.Fatalf("node1 did not discover the played node 2:\n%s", n1.Log())
	}
	noRoutes(t, n1)

	want := lab.Route{Dst: n2.Addr(lab.A), Via: n2.Addr(lab.B), Dev: lab.B.Iface()}
	silent := time.Now()
	b.wait("node1 fails over", failoverLimit+2*time.Second, func() bool {
		peer.inq(lab.B, n1)
		time.Sleep(interval)
		return n1.RoutesAre(want)
	})
	t.Logf("node1 failed over %v after LAN A went silent", ms(time.Since(silent)))

	steady := func(what string, lanA func(i int)) (sent int) {
		i := 0
		every(3*misses*interval, func() {
			peer.inq(lab.B, n1)
			lanA(i)
			i++
			if !n1.RoutesAre(want) {
				t.Fatalf("node1 lost its failover route %v to %s", want, what)
			}
		})
		return i
	}
	replayed := steady("a replay", func(i int) { peer.raw(lab.A, n1, capture[i%len(capture)]) })
	// Sequence numbers from a fresh counter, still below those the peer
	// has used, would be replays too; start above them so only TTL decides.
	low.p.Seq = peer.p.Seq + 1e6
	peer.p.Seq += 2e6
	steady("TTL 64 packets", func(int) { low.inq(lab.A, n1) })

	// Control: the same node's fresh LAN-A packets with TTL 255 count.
	heal := time.Now()
	b.wait("switchback on fresh packets (control)", 3*time.Second, func() bool {
		peer.inq(lab.A, n1)
		peer.inq(lab.B, n1)
		time.Sleep(interval)
		rs, err := n1.Routes()
		return err == nil && len(rs) == 0
	})
	t.Logf("control: switchback %v after fresh packets resumed", ms(time.Since(heal)))

	drops := stopDrops(t, n1)
	if drops["replay"] < replayed || drops["ttl"] == 0 {
		t.Errorf("node1 drops %v; want at least %d replay and some ttl", drops, replayed)
	}
	if drops["auth"] != 0 || drops["no-tag"] != 0 {
		t.Errorf("node1 drops %v; the played node 2 has the key, want no auth drops", drops)
	}
}
