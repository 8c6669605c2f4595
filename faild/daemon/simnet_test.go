package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
	"github.com/faild/faild/routes/minheap"
)

// This file is the world the simulated cluster lives in: a clock that
// jumps from event to event, a switch per LAN that can cut, drop, delay and
// duplicate frames per port and direction, and nodes whose daemons are
// driven step by step, each with an in-memory kernel. Nothing sleeps and
// nothing runs concurrently: one seed gives one history.

// sim is one simulated cluster.
type sim struct {
	now   time.Time
	queue simQueue
	seq   uint64
	// frames are delivered frames, for send to reuse: allocating and
	// copying each anew was a tenth of the run.
	frames []*simFrame
	rng    *rand.Rand
	lans   int
	v4     bool
	v6     bool
	nodes  []*simNode
	net    simFaults
	// lossSince is when each port's loss began (zero: none); disturbed
	// when each port last changed how it carries frames, or its node
	// started or stopped (see clean).
	lossSince, disturbed [routes.MaxLANs][9]time.Time
	trace                []string // what was done to the cluster, for a failure's report
	err                  error    // the first invariant that broke
	// faults counts the faults since the last heal; diag is the
	// diagnosis the last one calls for, when it calls for one that can
	// be told (see expectDiagnosis).
	faults int
	diag   simDiag
	// quiet is when the loss figures no longer remember loss that ended.
	quiet time.Time
	// lossHeld: the path (a node's, to a peer's address) is invalid for
	// its loss, as the node's log says.
	lossHeld map[simPathKey]bool
}

// simPathKey names a node's path by the peer's address on it.
type simPathKey struct {
	node int
	addr string
}

// simDiag is the diagnosis a fault calls for: kind on LAN lan, naming
// node (and peer), or the groups of a split; kind "" for none, "?" when
// it cannot be told.
type simDiag struct {
	kind       string
	lan        int
	node, peer int
	groups     [][]int
}

// simEvent is a function to run, or a frame to deliver (fn nil): frames
// are most of the events, and a closure each would be most of the garbage.
// Its time is in nanoseconds since simEpoch: the queue compares times
// more than it does anything else, and time.Time's comparisons cost
// several times an integer's.
type simEvent struct {
	at    int64
	seq   uint64
	fn    func()
	frame *simFrame
	to    *simNode
}

// simFrame is a frame on its way, shared by every node it goes to; refs
// counts the deliveries still queued, after which it is reused.
type simFrame struct {
	v6   bool
	lan  int
	src  netip.Addr
	b    []byte
	refs int
}

// simQueue is the event queue, a min-heap (routes/minheap) by time, then
// by the order the events were queued.
type simQueue []simEvent

func sooner(a, b simEvent) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *simQueue) push(e simEvent) { minheap.Push((*[]simEvent)(q), e, sooner) }

func (q *simQueue) pop() simEvent { return minheap.Pop((*[]simEvent)(q), sooner) }

// at runs fn at t (never before now).
func (s *sim) at(t time.Time, fn func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	s.queue.push(simEvent{at: int64(t.Sub(simEpoch)), seq: s.seq, fn: fn})
}

func (s *sim) after(d time.Duration, fn func()) { s.at(s.now.Add(d), fn) }

// run runs events until t or the first broken invariant.
func (s *sim) run(t time.Time) {
	end := int64(t.Sub(simEpoch))
	for s.err == nil && len(s.queue) > 0 && s.queue[0].at <= end {
		e := s.queue.pop()
		s.now = simEpoch.Add(time.Duration(e.at))
		if e.fn != nil {
			e.fn()
		} else {
			e.to.receive(e.frame)
			if e.frame.refs--; e.frame.refs == 0 {
				s.frames = append(s.frames, e.frame)
			}
		}
	}
	if s.err == nil && s.now.Before(t) {
		s.now = t
	}
}

// fail records the first broken invariant.
func (s *sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("at %v: %s", s.now.Sub(simEpoch), fmt.Sprintf(format, args...))
	}
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%8v  ", s.now.Sub(simEpoch))+fmt.Sprintf(format, args...))
}

var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simFaults is the state of the switches: what each LAN does to frames.
type simFaults struct {
	lanDown [routes.MaxLANs]bool
	// Per LAN and node: the switch port's cuts and loss by direction (out
	// is from the node into the switch), and the node's carrier.
	cutOut, cutIn   [routes.MaxLANs][9]bool
	lossOut, lossIn [routes.MaxLANs][9]float64
	noCarrier       [routes.MaxLANs][9]bool
	// pairCut[lan][from][to] drops the frames from one node to another.
	pairCut [routes.MaxLANs][9][9]bool
	jitter  time.Duration // the most a frame waits beyond the base delay
	dup     float64       // chance a frame arrives twice
	gen     int           // counts heals, which end a flapping in progress
	// flapping is when the flapping of a port ends.
	flapping time.Time
}

// certain reports whether the routes the network calls for are certain:
// no LAN loses frames at random and no port flaps, so that what each path
// does follows from the faults alone.
func (f *simFaults) certain(now time.Time) bool {
	if now.Before(f.flapping) {
		return false
	}
	for l := range f.lossIn {
		for n := range f.lossIn[l] {
			if f.lossIn[l][n] > 0 || f.lossOut[l][n] > 0 {
				return false
			}
		}
	}
	return true
}

// deliverable reports whether frames from one node reach another on lan,
// loss aside.
func (f *simFaults) deliverable(from, to, lan int) bool {
	return !f.lanDown[lan] && !f.noCarrier[lan][from] && !f.noCarrier[lan][to] &&
		!f.cutOut[lan][from] && !f.cutIn[lan][to] && !f.pairCut[lan][from][to]
}

// lossy reports whether a LAN drops frames at random between two nodes.
func (f *simFaults) lossy(a, b, lan int) bool {
	return f.lossOut[lan][a] > 0 || f.lossIn[lan][a] > 0 || f.lossOut[lan][b] > 0 || f.lossIn[lan][b] > 0
}

// works reports whether a path carries frames both ways, and surely.
func (f *simFaults) works(a, b, lan int) bool {
	return f.deliverable(a, b, lan) && f.deliverable(b, a, lan) && !f.lossy(a, b, lan)
}

// Addresses: node n has 192.0.2.n, 198.51.100.n, 203.0.113.n on LANs A, B,
// C, and 2001:db8:a::n, :b::n, :c::n; its interface on LAN L is "eL" with
// index 2+L.
func simAddr(n, lan int, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(0xa + lan), 14: 0, 15: byte(n)})
	}
	nets := [][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}
	return netip.AddrFrom4([4]byte{nets[lan][0], nets[lan][1], nets[lan][2], byte(n)})
}

func simIndex(lan int) int { return 2 + lan }

// simNode is one node: its kernel, its interfaces and, while it runs, its
// daemon.
type simNode struct {
	s         *sim
	id        int
	cfg       Config
	kernel    *platform.Memory
	d         *Daemon   // nil while stopped
	started   time.Time // when d started
	conns     [2]*simConn
	log       *bytes.Buffer
	status    string // the last STATUS= the daemon sent
	wakeAt    time.Time
	wakeGen   uint64
	routeWait int // route changes on their way to the daemon
	// late6: the node's IPv6 addresses have not arrived yet (DAD or
	// SLAAC at boot), so its interfaces show only the IPv4 ones.
	late6 bool
	// changes are the kernel's changes to faild's routes during the
	// current step, to match the hooks against.
	changes []platform.RouteChange
	rbuf    []byte
	abuf    []byte
	replies [1]proto.Message // receive's ACK, kept so that it does not escape
	hs      []proto.Heard
	// routes, version and overridden are the kernel's at the last check
	// (see check); foreign: someone else's routes are among them.
	routes     []platform.KernelRoute
	version    int
	overridden int
	foreign    bool
	addrs      [routes.MaxLANs][2]netip.Addr
}

// addr is the node's address on a LAN, from addrs: send looks up one or
// two for every frame.
func (n *simNode) addr(lan int, v6 bool) netip.Addr { return n.addrs[lan][boolInt(v6)] }

// lan describes the node's interface on a LAN as the kernel would.
func (n *simNode) lan(l int) platform.LAN {
	pl := platform.LAN{Name: fmt.Sprintf("e%d", l), Index: simIndex(l), Up: !n.s.net.noCarrier[l][n.id]}
	if n.s.v4 {
		pl.Addr = netip.PrefixFrom(n.addr(l, false), 24)
		pl.Broadcast = simAddr(255, l, false)
	}
	if n.s.v6 && !n.late6 {
		pl.Addr6 = netip.PrefixFrom(n.addr(l, true), 64)
	}
	return pl
}

// simInterfaces is a node's platform.Interfaces.
type simInterfaces struct{ n *simNode }

func (i simInterfaces) Discover([]string) ([]platform.LAN, error) {
	var lans []platform.LAN
	for l := range i.n.s.lans {
		lans = append(lans, i.n.lan(l))
	}
	return lans, nil
}

func (i simInterfaces) Lookup(name string) (platform.LAN, error) {
	for l := range i.n.s.lans {
		if name == fmt.Sprintf("e%d", l) {
			return i.n.lan(l), nil
		}
	}
	return platform.LAN{Name: name}, nil
}

func (i simInterfaces) WatchLinks(ctx context.Context, _ func(platform.LinkChange), _ func(error)) error {
	<-ctx.Done()
	return nil
}

// simConn is a node's socket of one family: what it writes goes to the
// switch; the simulation delivers what arrives, multicast only on the
// interfaces where the socket joined the group, as the kernel does.
type simConn struct {
	n      *simNode
	v6     bool
	closed bool
	joined [routes.MaxLANs]bool // Group6, by LAN
}

func (c *simConn) ReadBatch([]proto.Message) (int, error) { return 0, net.ErrClosed }

// WriteBatch fails a frame for a LAN where the node has no carrier, as
// the kernel does, the way sendmmsg reports it: the count sent before it,
// or -1 for the first.
func (c *simConn) WriteBatch(ms []proto.Message) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	for i := range ms {
		if lan := ms[i].IfIndex - 2; lan >= 0 && lan < c.n.s.lans && c.n.s.net.noCarrier[lan][c.n.id] {
			if i == 0 {
				i = -1
			}
			return i, syscall.ENETDOWN
		}
		c.n.s.send(c.n, c.v6, &ms[i])
	}
	return len(ms), nil
}

// Join fails, as net.InterfaceByIndex does, for an interface the node
// does not have.
func (c *simConn) Join(ifIndex int, group netip.Addr) error {
	lan := ifIndex - simIndex(0)
	if lan < 0 || lan >= c.n.s.lans || group != proto.Group6 || !c.v6 {
		return fmt.Errorf("sim: cannot join %v on interface %d", group, ifIndex)
	}
	c.joined[lan] = true
	return nil
}

func (c *simConn) Close() error { c.closed = true; return nil }

// send puts a frame on the LAN of the interface it leaves by; every node it
// is for gets it after the switch's delay, unless a fault eats it.
func (s *sim) send(from *simNode, v6 bool, m *proto.Message) {
	lan := m.IfIndex - 2
	if lan < 0 || lan >= s.lans {
		return
	}
	dst := m.Addr.Addr()
	bcast := dst == simAddr(255, lan, false) || dst == proto.Group6
	var f *simFrame
	for _, to := range s.nodes {
		if to == from || to.d == nil {
			continue
		}
		if !bcast && dst != to.addr(lan, v6) {
			continue
		}
		if dst == proto.Group6 && !to.conns[1].joined[lan] {
			continue
		}
		if !s.net.deliverable(from.id, to.id, lan) {
			continue
		}
		if p := 1 - (1-s.net.lossOut[lan][from.id])*(1-s.net.lossIn[lan][to.id]); p > 0 && s.rng.Float64() < p {
			continue
		}
		copies := 1
		if s.net.dup > 0 && s.rng.Float64() < s.net.dup {
			copies = 2
		}
		if f == nil {
			f = s.frame()
			f.v6, f.lan, f.src, f.b = v6, lan, from.addr(lan, v6), append(f.b[:0], m.Buf...)
		}
		now := int64(s.now.Sub(simEpoch))
		for range copies {
			delay := 50*time.Microsecond + time.Duration(s.rng.Int64N(int64(s.net.jitter)+1))
			s.seq++
			f.refs++
			s.queue.push(simEvent{at: now + int64(delay), seq: s.seq, frame: f, to: to})
		}
	}
}

// frame is a frame to fill: one delivered already, or a new one.
func (s *sim) frame() *simFrame {
	if n := len(s.frames); n > 0 {
		f := s.frames[n-1]
		s.frames = s.frames[:n-1]
		return f
	}
	return &simFrame{b: make([]byte, 0, proto.MaxLen)}
}

// receive hands a frame that arrived on the node's interface to its
// daemon, as the receiver goroutine would.
func (n *simNode) receive(fr *simFrame) {
	if n.d == nil {
		return
	}
	v6 := fr.v6
	f := n.d.fams[boolInt(v6)]
	if f == nil {
		return
	}
	m := proto.Message{Buf: n.rbuf, N: copy(n.rbuf, fr.b), Addr: netip.AddrPortFrom(fr.src, uint16(n.cfg.Port)), IfIndex: simIndex(fr.lan), Hops: 255}
	reply := &n.replies[0]
	*reply = proto.Message{Buf: n.abuf[:0]}
	n.hs = n.hs[:1]
	heard, replied := f.rx.Receive(&m, n.s.now, &n.hs[0], reply)
	if replied {
		proto.WriteAll(n.conns[boolInt(v6)], n.replies[:], ignoreSendError)
	}
	if heard {
		n.step(func() { n.d.onHeard(f, n.hs, n.s.now) })
	}
}

func ignoreSendError(*proto.Message, error) {}

// step runs one step of the daemon and then checks it: every step ends
// with the invariants and the next wake-up scheduled.
func (n *simNode) step(fn func()) {
	n.changes = n.changes[:0]
	fn()
	if n.d == nil {
		return
	}
	n.checkHooks()
	n.check()
	n.schedule()
}

// schedule arranges the daemon's next wake-up.
func (n *simNode) schedule() {
	next := n.d.next()
	if next.Equal(n.wakeAt) {
		return
	}
	n.wakeAt = next
	n.wakeGen++
	gen, d := n.wakeGen, n.d
	n.s.at(next, func() {
		if gen == n.wakeGen && d == n.d {
			n.wakeAt = time.Time{}
			n.step(func() { n.d.wake(n.s.now) })
		}
	})
}

// routeDelay is how long the kernel takes to tell a subscriber of a route
// change.
const routeDelay = 500 * time.Microsecond

// start runs a new daemon on the node: New, then the start of Run
// (sockets, the kernel's table read, adoption).
func (n *simNode) start() {
	logger := slog.New(simHandler{s: n.s, w: n.log, node: n.id})
	n.conns = [2]*simConn{{n: n}, {n: n, v6: true}}
	deps := Deps{Log: logger, Routes: n.kernel, Interfaces: simInterfaces{n},
		Listen: func(_ int, v6 bool) (proto.Conn, error) { return n.conns[boolInt(v6)], nil },
		Notify: func(state string) error {
			for _, line := range strings.Split(state, "\n") {
				if v, ok := strings.CutPrefix(line, "STATUS="); ok {
					n.status = v
				}
			}
			return nil
		}}
	d, err := New(n.cfg, deps)
	if err != nil {
		n.s.fail("node %d: New: %v", n.id, err)
		return
	}
	n.d, n.started = d, n.s.now
	for l := range n.s.lans {
		n.s.disturb(l, n.id)
	}
	n.wakeAt = time.Time{}
	n.step(func() {
		if err := d.begin(n.s.now); err != nil {
			n.s.fail("node %d: start: %v", n.id, err)
		}
	})
	// The route watch's first news, once it has subscribed: read it all.
	n.routeWait++
	n.s.after(routeDelay, func() {
		n.routeWait--
		if n.d == d {
			n.step(func() { d.onRoute(platform.RouteChange{Lost: true}, n.s.now) })
		}
	})
}

// stop ends the node's daemon: cleanly (its routes removed), by SIGUSR2
// (kept for the next start), or by a crash (nothing done).
func (n *simNode) stop(how string) {
	if n.d == nil {
		return
	}
	switch how {
	case "clean":
		if err := n.d.end(n.s.now); err != nil {
			n.s.fail("node %d: stop: %v", n.id, err)
		}
		if rs := n.kernel.Ours(); len(rs) > 0 {
			n.s.fail("node %d: routes %v left after a clean stop", n.id, rs)
		}
	case "handover":
		n.d.keep = true
		n.d.end(n.s.now)
	}
	for _, c := range n.conns {
		c.Close()
	}
	n.d = nil
	n.wakeGen++
	for l := range n.s.lans {
		n.s.disturb(l, n.id)
	}
}

// watchKernel delivers the node's kernel changes to its daemon, as the
// route subscription does, and keeps them for the hook check.
func (n *simNode) watchKernel() {
	n.kernel.Subscribe(func(c platform.RouteChange) {
		if c.Route.Ours {
			n.changes = append(n.changes, c)
		}
		n.routeWait++
		n.s.after(routeDelay, func() {
			n.routeWait--
			if d := n.d; d != nil {
				n.step(func() { d.onRoute(c, n.s.now) })
			}
		})
	})
}

// simHandler logs a node's lines with the simulation's time.
type simHandler struct {
	s     *sim
	w     *bytes.Buffer
	node  int
	attrs []slog.Attr
}

func (h simHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h simHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		// The simulated kernel, sockets and hooks never fail: an error
		// line is a false alarm to an operator.
		h.s.fail("node %d logged an error: %s", h.node, r.Message)
	}
	if h.w.Len() > 1<<20 {
		return nil // enough for a report
	}
	b := h.w.AvailableBuffer()
	b = append(b, h.s.now.Sub(simEpoch).String()...)
	b = append(b, " node"...)
	b = strconv.AppendInt(b, int64(h.node), 10)
	b = append(b, ' ')
	b = append(b, r.Level.String()...)
	b = append(b, " msg="...)
	b = append(b, r.Message...)
	switch r.Message {
	case "failover":
		h.failover(r)
		h.heldForLoss(r)
	case "held":
		h.heldForLoss(r)
	case "switchback":
		h.switchback(r)
	case "start":
		for k := range h.s.lossHeld {
			if k.node == h.node {
				delete(h.s.lossHeld, k) // a new run judges its paths anew
			}
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ' ')
		b = append(b, a.Key...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, a.Value.String())
		return true
	})
	b = append(b, '\n')
	h.w.Write(b)
	return nil
}

// attr is the value of a log line's attribute key, "" without it.
func attr(r slog.Record, key string) (v string) {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// failover checks a failover line: none for loss, delay or the peer's word
// on a path whose network has been clean for long enough.
func (h simHandler) failover(r slog.Record) {
	// peer: its address on lan, whose last byte is its number
	reason, peer, lan := attr(r, "reason"), attr(r, "addr"), attr(r, "lan")
	if reason != "loss" && reason != "rtt" && reason != "peer" {
		return
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || len(lan) != 1 {
		h.s.fail("node%d: failover line with peer %q lan %q", h.node, peer, lan)
		return
	}
	m := int(a.As16()[15])
	if l := int(lan[0] - 'A'); h.s.clean(h.node, m, l) {
		h.s.fail("node%d: its path to node%d on LAN %s failed over for %s, with no fault on it", h.node, m, lan, reason)
	}
}

// heldForLoss notes whether a failover or held line leaves its path
// invalid for its loss.
func (h simHandler) heldForLoss(r slog.Record) {
	reason, addr := attr(r, "reason"), attr(r, "addr")
	if h.s.lossHeld == nil {
		h.s.lossHeld = map[simPathKey]bool{}
	}
	h.s.lossHeld[simPathKey{h.node, addr}] = reason == "loss"
}

// switchback checks the hysteresis of --max-loss: a path invalid for its
// loss switches back only with its loss over the window below half the
// threshold (the line's figure, shown to 0.1 %).
func (h simHandler) switchback(r slog.Record) {
	addr, loss := attr(r, "addr"), attr(r, "loss")
	k := simPathKey{h.node, addr}
	if !h.s.lossHeld[k] {
		return
	}
	delete(h.s.lossHeld, k)
	pct, err := strconv.ParseFloat(strings.TrimSuffix(loss, "%"), 64)
	if half := 50 * h.s.cfg().MaxLoss; err != nil || pct > half+0.05 {
		h.s.fail("node%d: its path to %s, invalid for loss, switched back with loss=%q over the window, not below %.1f%%", h.node, addr, loss, half)
	}
}

func (h simHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(h.attrs, as...)
	return h
}
func (h simHandler) WithGroup(string) slog.Handler { return h }
