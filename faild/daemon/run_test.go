package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
)

// TestRun runs three whole daemons with Run, every goroutine of theirs,
// over an in-memory network under a fake clock (testing/synctest): a cut
// of LAN A between two of them moves both ends' routes and a heal moves
// them back, and a stop leaves nothing behind. Under the race detector it
// is the check of the ownership rule in the package doc.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := &chanNet{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var kernels []*platform.Memory
		var logs []*safeBuffer
		for id := 1; id <= 3; id++ {
			k := platform.NewMemory()
			kernels = append(kernels, k)
			var log safeBuffer
			logs = append(logs, &log)
			lans := []platform.LAN{
				{Name: "e0", Index: 2, Addr: netip.PrefixFrom(simAddr(id, 0, false), 24), Broadcast: simAddr(255, 0, false), Up: true},
				{Name: "e1", Index: 3, Addr: netip.PrefixFrom(simAddr(id, 1, false), 24), Broadcast: simAddr(255, 1, false), Up: true},
			}
			d, err := New(Config{Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Port: 4117,
				Interfaces: []string{"e0", "e1"}, MaxPeers: 256, DampMax: 16},
				Deps{Log: slog.New(slog.NewTextHandler(&log, nil)), Routes: k,
					Interfaces: fakeInterfaces{"e0": lans[0], "e1": lans[1]},
					Listen:     func(int, bool) (proto.Conn, error) { return net.conn(id), nil }})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.Run(ctx); err != nil {
					t.Errorf("node%d: Run = %v", id, err)
				}
			}()
		}
		time.Sleep(time.Second)
		for i, k := range kernels {
			if rs := k.Ours(); len(rs) != 0 {
				t.Errorf("node%d: routes %v on a healthy network", i+1, rs)
			}
		}
		net.cut(1, 2, 0, true)
		time.Sleep(time.Second)
		want1 := []platform.Route{{Dst: netip.MustParsePrefix("192.0.2.2/32"), Via: netip.MustParseAddr("198.51.100.2"), Dev: "e1", Index: 3}}
		want2 := []platform.Route{{Dst: netip.MustParsePrefix("192.0.2.1/32"), Via: netip.MustParseAddr("198.51.100.1"), Dev: "e1", Index: 3}}
		if got := kernels[0].Ours(); !slices.Equal(got, want1) {
			t.Errorf("node1 after the cut: %v, want %v", got, want1)
		}
		if got := kernels[1].Ours(); !slices.Equal(got, want2) {
			t.Errorf("node2 after the cut: %v, want %v", got, want2)
		}
		net.cut(1, 2, 0, false)
		time.Sleep(time.Second)
		for i, k := range kernels[:2] {
			if rs := k.Ours(); len(rs) != 0 {
				t.Errorf("node%d after the heal: %v", i+1, rs)
			}
		}
		net.cut(1, 2, 0, true)
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		for i, k := range kernels {
			if rs := k.Ours(); len(rs) != 0 {
				t.Errorf("node%d after stop: %v", i+1, rs)
			}
		}
		if t.Failed() {
			for i, l := range logs {
				t.Logf("node%d:\n%s", i+1, l.String())
			}
		}
	})
}

// chanNet is an in-memory network of two LANs for daemons that run with
// Run: each node's socket is a channel it reads from.
type chanNet struct {
	mu    sync.Mutex
	conns map[int]*chanConn
	cuts  map[[3]int]bool // (from, to, lan)
}

func (n *chanNet) conn(id int) *chanConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = map[int]*chanConn{}
	}
	c := &chanConn{n: n, id: id, in: make(chan chanFrame, 256), done: make(chan struct{})}
	n.conns[id] = c
	return c
}

// cut cuts or heals the path between two nodes on a LAN, both ways.
func (n *chanNet) cut(a, b, lan int, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cuts == nil {
		n.cuts = map[[3]int]bool{}
	}
	n.cuts[[3]int{a, b, lan}], n.cuts[[3]int{b, a, lan}] = cut, cut
}

type chanFrame struct {
	b   []byte
	src netip.Addr
	lan int
}

type chanConn struct {
	n    *chanNet
	id   int
	in   chan chanFrame
	once sync.Once
	done chan struct{}
}

func (c *chanConn) ReadBatch(ms []proto.Message) (int, error) {
	select {
	case f := <-c.in:
		ms[0].N = copy(ms[0].Buf, f.b)
		ms[0].Addr = netip.AddrPortFrom(f.src, 4117)
		ms[0].IfIndex, ms[0].Hops = 2+f.lan, 255
		return 1, nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *chanConn) WriteBatch(ms []proto.Message) (int, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	for _, m := range ms {
		lan := m.IfIndex - 2
		for id, to := range c.n.conns {
			dst := m.Addr.Addr()
			if id == c.id || c.n.cuts[[3]int{c.id, id, lan}] || dst != simAddr(255, lan, false) && dst != simAddr(id, lan, false) {
				continue
			}
			select {
			case to.in <- chanFrame{b: bytes.Clone(m.Buf), src: simAddr(c.id, lan, false), lan: lan}:
			default: // a full socket buffer drops, as the kernel's does
			}
		}
	}
	return len(ms), nil
}

func (c *chanConn) Join(int, netip.Addr) error { return nil }
func (c *chanConn) Close() error               { c.once.Do(func() { close(c.done) }); return nil }

// safeBuffer is a bytes.Buffer for a logger and a reader on two goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
