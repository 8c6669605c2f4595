package daemon

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// The simulated cluster: 3 to 8 complete daemons in one process, on two or
// three simulated LANs, under random fault schedules drawn from a seed.
// Every step of every daemon is followed by the invariants (check); at set
// times after each change to the network, every node must hold exactly
// the routes the network calls for (expect). A failing seed is printed and
// replays exactly:
//
//	go test ./faild/daemon -run TestSimulatedCluster -sim.seed=N -v
//	make sim SEEDS=N   # more schedules
var (
	simSeeds = flag.Int("sim.seeds", 0, "schedules to run (0: $FAILD_SIM_SEEDS, else 2000, or 100 under the race detector)")
	simSeed  = flag.Uint64("sim.seed", 0, "replay this seed alone and print its trace")
	simFirst = flag.Uint64("sim.first", 1, "the first seed")
)

func TestSimulatedCluster(t *testing.T) {
	if *simSeed != 0 {
		s, err := runSchedule(*simSeed)
		t.Logf("seed %d:\n%s", *simSeed, s.report())
		if err != nil {
			t.Fatalf("seed %d: %v", *simSeed, err)
		}
		return
	}
	n := *simSeeds
	if n == 0 {
		n = 2000
		if raceEnabled {
			n = 100
		}
		if testing.Short() {
			n = 200
		}
		// For runs that cannot pass the flag to this package alone: make
		// cover tests several packages at once, and gremlins (make
		// mutate-daemon) runs go test itself.
		if v := os.Getenv("FAILD_SIM_SEEDS"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				t.Fatalf("FAILD_SIM_SEEDS=%q: want a number of schedules, 1 or more", v)
			}
		}
	}
	var (
		next   atomic.Uint64
		mu     sync.Mutex
		failed []string
		first  *sim
		wg     sync.WaitGroup
		events atomic.Int64
		vtime  atomic.Int64
	)
	// The schedules make garbage fast in a small heap: at the default
	// GOGC the collector's cycles cost half as much CPU again (150
	// schedules: 8.2 s against 5.6 at 400; 1600 gains 3 % more). On a
	// loaded machine a CPU profile of this test puts a fifth of its
	// samples on runtime.asyncPreempt whatever GOGC is: an artefact of
	// preemption (a loop of arithmetic that allocates nothing shows the
	// same there); GODEBUG=asyncpreemptoff=1 takes as much CPU and gives
	// a true profile.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	next.Store(*simFirst)
	last := *simFirst + uint64(n)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if seed >= last {
					return
				}
				s, err := runSchedule(seed)
				events.Add(int64(s.seq))
				vtime.Add(int64(s.now.Sub(simEpoch)))
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("seed %d: %v", seed, err))
					if first == nil {
						first = s
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d schedules in %v (%.0f a second), %d events, %v of simulated time",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), events.Load(), time.Duration(vtime.Load()).Round(time.Second))
	if len(failed) > 0 {
		slices.Sort(failed)
		t.Errorf("%d of %d schedules broke an invariant:\n%s\n\nthe first, replay with -sim.seed:\n%s",
			len(failed), n, strings.Join(failed[:min(len(failed), 20)], "\n"), first.report())
	}
}

// report is a failed schedule's story: the cluster, what was done to it,
// and every node's log.
func (s *sim) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes, %d LANs, ipv4 %v ipv6 %v; config %+v\n", len(s.nodes), s.lans, s.v4, s.v6, s.nodes[0].cfg)
	for _, n := range s.nodes {
		fmt.Fprintf(&b, "node%d requestor %v\n", n.id, n.cfg.Requestor)
	}
	b.WriteString("\nschedule:\n")
	for _, l := range s.trace {
		b.WriteString(l + "\n")
	}
	if s.err != nil {
		fmt.Fprintf(&b, "\nbroke: %v\n", s.err)
	}
	for _, n := range s.nodes {
		fmt.Fprintf(&b, "\nnode%d log:\n%s", n.id, n.log.String())
	}
	return b.String()
}

// newSim builds a cluster from a seed: its size, LANs, families and
// settings, all nodes started.
func newSim(seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{now: simEpoch, rng: rng, lans: 2}
	if rng.IntN(5) == 0 {
		s.lans = 3
	}
	switch rng.IntN(5) {
	case 0:
		s.v6 = true
	case 1:
		s.v4, s.v6 = true, true
	default:
		s.v4 = true
	}
	s.net.jitter = time.Duration(rng.IntN(1500)) * time.Microsecond
	cfg := Config{Version: "sim", Interval: 100 * time.Millisecond, Misses: 2 + rng.IntN(4), Successes: 1 + rng.IntN(4),
		Port: 4117, MaxPeers: 256, DampMax: 16, HookTimeout: time.Second, OnChange: "sim-hook"}
	if rng.IntN(2) == 0 {
		cfg.DampWindow, cfg.DampMax = 3*time.Second, 1<<rng.IntN(3)
	}
	if rng.IntN(3) == 0 {
		// Loss judged, over a window short enough for the schedule's
		// phases: the switches' loss of 30 to 40 % must fail paths over,
		// and none may fail over for loss where there was none.
		cfg.MaxLoss, cfg.LossWindow = 0.10, 30
	} else if rng.IntN(2) == 0 {
		cfg.LossWindow = 30 // loss measured for the view's lossy paths, not judged
	}
	nodes := 3 + rng.IntN(6)
	for i := 1; i <= nodes; i++ {
		c := cfg
		c.Requestor = i <= 2 || rng.IntN(6) != 0
		s.addNode(c)
	}
	for _, n := range s.nodes {
		// Started a little apart, as real nodes are.
		s.after(time.Duration(rng.IntN(100))*time.Millisecond, n.start)
	}
	return s
}

// addNode adds a node, not started, with cfg on every LAN.
func (s *sim) addNode(cfg Config) *simNode {
	cfg.Interfaces = nil
	for l := range s.lans {
		cfg.Interfaces = append(cfg.Interfaces, fmt.Sprintf("e%d", l))
	}
	n := &simNode{s: s, id: len(s.nodes) + 1, cfg: cfg, kernel: platform.NewMemory(), log: &bytes.Buffer{},
		rbuf: make([]byte, proto.MaxLen+1), abuf: make([]byte, 0, proto.MaxLen), hs: make([]proto.Heard, 1)}
	for l := range s.lans {
		n.addrs[l] = [2]netip.Addr{simAddr(n.id, l, false), simAddr(n.id, l, true)}
	}
	n.watchKernel()
	s.nodes = append(s.nodes, n)
	return n
}

func (s *sim) cfg() Config { return s.nodes[0].cfg }

// window is the nodes' loss window in intervals.
func (s *sim) window() int {
	if c := s.cfg(); c.LossWindow > 0 {
		return c.LossWindow
	}
	return routes.DefaultWindow(s.cfg().MaxLoss)
}

// faultKind groups the faults by how soon the network must follow them.
type faultKind int

const (
	otherFault faultKind = iota
	cutBoth              // frames stop both ways (a pair, a port, a LAN, a carrier)
	cutOneWay            // frames stop one way
)

// settle is how long after a change to the network every node must have
// followed it. A cut both ways fails over at both ends within one
// detection time: f slots of one stream, or 2f−1 of two of which the
// later-phased sends its f-th after f intervals at most. A cut one way
// does at its near end; the far end follows once the near end's deaf list
// says so, a detection time later. Anything else: two detection times,
// the good intervals a switchback needs (damping included), and a start's
// discovery and adoption. With loss judged, also a loss window: paths the
// loss or flapping before held invalid clear it first. Slack of two
// intervals (three for the rest) covers the switch's jitter.
func (s *sim) settle(kind faultKind) time.Duration {
	c := s.cfg()
	damp := 1
	if c.DampWindow > 0 {
		damp = c.DampMax
	}
	n := 2*c.Misses + c.Successes*damp + 3
	switch kind {
	case cutBoth:
		n = c.Misses + 2
	case cutOneWay:
		n = 2*c.Misses + 3
	}
	if c.MaxLoss > 0 {
		n += c.LossWindow + c.Successes*damp
	}
	return time.Duration(n) * c.Interval
}

// diagnosed is how long after a fault every node must have diagnosed
// it: the detection at both ends (a one-way cut's far end a detection
// time after the near end), a round of INQs to carry the views, and
// diagStable evaluations an interval apart, with two intervals of slack.
func (s *sim) diagnosed() time.Duration {
	c := s.cfg()
	return time.Duration(2*c.Misses+3+1+diagStable+2) * c.Interval
}

// runSchedule runs the schedule of one seed and returns the cluster and
// the first invariant it broke.
func runSchedule(seed uint64) (*sim, error) {
	s := newSim(seed)
	s.run(s.now.Add(time.Second))
	s.expect("at start")
	phases := 4 + s.rng.IntN(5)
	for p := 0; p < phases && s.err == nil; p++ {
		kind := s.fault()
		start := s.now
		if s.net.flapping.After(start) {
			start = s.net.flapping
		}
		end := start.Add(s.settle(kind))
		s.run(end)
		if s.net.certain(s.now) {
			s.expect("after " + s.trace[len(s.trace)-1])
		}
		s.expectLoss("after " + s.trace[len(s.trace)-1])
		if at := start.Add(s.diagnosed()); at.After(s.now) {
			s.run(at)
		}
		if s.net.certain(s.now) {
			s.expectDiagnosis("after " + s.trace[len(s.trace)-1])
		}
		s.run(s.now.Add(time.Duration(s.rng.IntN(500)) * time.Millisecond))
	}
	if s.err == nil {
		s.healAll()
		// Flapping and loss may have damped paths to the most; a damped
		// path's penalty decays one step a window.
		s.run(s.now.Add(2 * s.settle(otherFault)))
		s.expect("after healing")
		s.expectDiagnosis("after healing")
	}
	for _, n := range s.nodes {
		if s.err == nil {
			n.stop("clean")
		}
	}
	return s, s.err
}

// fault does one random thing to the cluster and says what kind it was.
func (s *sim) fault() faultKind {
	n := 1 + s.rng.IntN(len(s.nodes))
	m := 1 + s.rng.IntN(len(s.nodes))
	for m == n {
		m = 1 + s.rng.IntN(len(s.nodes))
	}
	lan := s.rng.IntN(s.lans)
	f := &s.net
	s.faults++
	s.diag = simDiag{lan: lan, node: n, peer: m}
	switch k := s.rng.IntN(17); k {
	case 0, 1:
		f.pairCut[lan][n][m], f.pairCut[lan][m][n] = true, true
		s.disturb(lan, n, m)
		s.diag.kind = FaultPair
		s.logf("cut node%d-node%d on LAN %s", n, m, routes.LANName(lan))
		return cutBoth
	case 2:
		f.pairCut[lan][n][m] = true
		s.disturb(lan, n, m)
		s.diag.kind = FaultOneWay
		s.logf("cut node%d->node%d on LAN %s, one way", n, m, routes.LANName(lan))
		return cutOneWay
	case 3:
		f.cutOut[lan][n], f.cutIn[lan][n] = true, true
		s.disturb(lan, n)
		s.diag.kind = FaultNodeLink
		s.logf("cut node%d's port on LAN %s", n, routes.LANName(lan))
		return cutBoth
	case 14:
		return s.split(lan)
	case 4:
		s.disturb(lan, n)
		s.diag.kind = FaultNodeLink
		if s.rng.IntN(2) == 0 {
			f.cutIn[lan][n] = true
			s.logf("cut node%d's port on LAN %s, to the node", n, routes.LANName(lan))
		} else {
			f.cutOut[lan][n] = true
			s.logf("cut node%d's port on LAN %s, from the node", n, routes.LANName(lan))
		}
		return cutOneWay
	case 5:
		s.diag.kind = FaultNodeLink
		s.carrier(n, lan, false)
		return cutBoth
	case 6:
		s.diag.kind = FaultLANDown
		f.lanDown[lan] = true
		s.disturb(lan, s.ids()...)
		s.logf("LAN %s down", routes.LANName(lan))
		return cutBoth
	case 7:
		s.diag.kind = "?"
		p := float64(5+s.rng.IntN(36)) / 100
		f.lossIn[lan][n], f.lossOut[lan][n] = p, p
		s.disturb(lan, n)
		if s.lossSince[lan][n].IsZero() {
			s.lossSince[lan][n] = s.now
		}
		s.logf("loss %.0f%% at node%d's port on LAN %s", 100*p, n, routes.LANName(lan))
	case 8:
		s.diag.kind = "?" // a flapping port loses frames: lossy, or worse
		s.flap(n, lan)
	case 9, 10:
		how := []string{"crash", "handover", "clean"}[s.rng.IntN(3)]
		s.restart(n, how)
	case 11:
		if node := s.node(n); node.d != nil {
			s.logf("stop node%d for good", n)
			node.stop("clean")
		} else {
			s.logf("start node%d", n)
			node.start()
		}
	case 12:
		s.foreign(n, m)
	case 13:
		if s.rng.IntN(2) == 0 {
			f.dup = 0.2
			s.logf("the switches duplicate a frame in five")
		} else {
			f.jitter = 20 * time.Millisecond
			s.logf("the switches delay frames up to 20ms")
		}
	default:
		s.healAll()
	}
	return otherFault
}

// ids is every node's number.
func (s *sim) ids() []int {
	var ids []int
	for _, n := range s.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// disturb notes that the ports of nodes on lan changed how they carry
// frames now: for a while, loss on their paths may be real.
func (s *sim) disturb(lan int, nodes ...int) {
	for _, n := range nodes {
		s.disturbed[lan][n] = s.now
	}
}

// clean reports whether the path between nodes a and b on lan has had no
// fault for long enough that nothing on it can be loss: no fault now, and
// none within a loss window, a detection time and a switchback since.
func (s *sim) clean(a, b, lan int) bool {
	c := s.cfg()
	quiet := time.Duration(c.LossWindow+2*c.Misses+c.Successes*max(c.DampMax, 1)+5) * c.Interval
	for _, n := range []int{a, b} {
		if !s.disturbed[lan][n].IsZero() && s.now.Sub(s.disturbed[lan][n]) < quiet {
			return false
		}
	}
	return s.net.works(a, b, lan)
}

// expectLoss checks what judging loss must do at the end of a phase: a
// path losing at least three times --max-loss each way (30 % at 10 %) for
// longer than a loss window and two detection times, between nodes that
// ran all that while, is invalid at both ends. (Below that, a window of 50
// may or may not cross the threshold.) That no clean path fails over for
// loss is checked at every failover (simHandler).
func (s *sim) expectLoss(when string) {
	c := s.cfg()
	if c.MaxLoss <= 0 || s.err != nil {
		return
	}
	// Two windows: at 64 % lost round trips, runs of more than maxRun
	// misses (left out as outages) make a window fill a little slower.
	need := time.Duration(2*c.LossWindow+2*c.Misses+3) * c.Interval
	for _, n := range s.nodes {
		for _, m := range s.nodes {
			if n == m || n.d == nil || m.d == nil || !n.cfg.Requestor && !m.cfg.Requestor ||
				s.now.Sub(n.started) < need || s.now.Sub(m.started) < need {
				continue
			}
			for l := range s.lans {
				nm := 1 - (1-s.net.lossOut[l][n.id])*(1-s.net.lossIn[l][m.id])
				mn := 1 - (1-s.net.lossOut[l][m.id])*(1-s.net.lossIn[l][n.id])
				since := s.lossSince[l][n.id]
				if t := s.lossSince[l][m.id]; since.IsZero() || !t.IsZero() && t.Before(since) {
					since = t
				}
				if nm < 3*c.MaxLoss || mn < 3*c.MaxLoss || since.IsZero() || s.now.Sub(since) < need {
					continue
				}
				for _, v6 := range []bool{false, true} {
					if v6 && !s.v6 || !v6 && !s.v4 {
						continue
					}
					f := n.d.fams[boolInt(v6)]
					if f == nil {
						continue
					}
					if p, ok := f.table.Path(m.addr(l, v6)); ok && p.State != routes.Invalid {
						s.fail("node%d %s: its path to node%d on LAN %s loses %.0f%% and %.0f%% each way for %v, and is valid",
							n.id, when, m.id, routes.LANName(l), 100*nm, 100*mn, s.now.Sub(since))
						return
					}
				}
			}
		}
	}
}

func (s *sim) node(id int) *simNode { return s.nodes[id-1] }

// split cuts a LAN into two groups of at least two nodes that do not hear
// each other, as a failed link between two switches does.
func (s *sim) split(lan int) faultKind {
	ids := s.rng.Perm(len(s.nodes))
	if len(ids) < 4 {
		s.diag.kind = "?"
		s.logf("no split of LAN %s: too few nodes", routes.LANName(lan))
		return otherFault
	}
	cut := 2 + s.rng.IntN(len(ids)-3)
	var a, b []int
	for i, id := range ids {
		if i < cut {
			a = append(a, id+1)
		} else {
			b = append(b, id+1)
		}
	}
	for _, x := range a {
		for _, y := range b {
			s.net.pairCut[lan][x][y], s.net.pairCut[lan][y][x] = true, true
		}
	}
	slices.Sort(a)
	slices.Sort(b)
	s.disturb(lan, s.ids()...)
	s.diag.kind, s.diag.groups = FaultSplit, [][]int{a, b}
	s.logf("split LAN %s into %v and %v", routes.LANName(lan), a, b)
	return cutBoth
}

// expectDiagnosis checks every running node's diagnosis against the
// fault done to the cluster since the last heal, when it is the only one
// and every node is a requestor (a responder sends no view, and a
// one-way fault to it looks like a two-way one): the fault's kind on its
// LAN naming the right nodes, and no fault on any other LAN; and none
// at all when the fault was no fault of a LAN (a restart, a stop, an
// administrator's route, duplicated or delayed frames).
func (s *sim) expectDiagnosis(when string) {
	if s.err != nil || s.faults > 1 || s.diag.kind == "?" || s.now.Before(s.quiet) {
		return
	}
	for _, n := range s.nodes {
		if !n.cfg.Requestor || n.d == nil && s.diag.kind != "" {
			return
		}
	}
	id := func(n int) string { return routes.PeerID(s.node(n).d.node).String() }
	var want []Diagnosis
	if s.diag.kind != "" && s.faults == 1 {
		dg := Diagnosis{LAN: routes.LANName(s.diag.lan), Fault: s.diag.kind}
		switch s.diag.kind {
		case FaultNodeLink:
			dg.Node = id(s.diag.node)
		case FaultOneWay:
			dg.Node, dg.Peer = id(s.diag.node), id(s.diag.peer)
		case FaultPair:
			a, b := s.node(s.diag.node).d.node, s.node(s.diag.peer).d.node
			dg.Node, dg.Peer = routes.PeerID(min(a, b)).String(), routes.PeerID(max(a, b)).String()
		case FaultSplit:
			var groups [][]routes.PeerID
			for _, g := range s.diag.groups {
				var ids []routes.PeerID
				for _, n := range g {
					ids = append(ids, routes.PeerID(s.node(n).d.node))
				}
				slices.Sort(ids)
				groups = append(groups, ids)
			}
			slices.SortFunc(groups, func(a, b []routes.PeerID) int { return cmp.Compare(a[0], b[0]) })
			var parts []string
			for _, g := range groups {
				var names []string
				for _, id := range g {
					names = append(names, shortID(id))
				}
				parts = append(parts, "{"+strings.Join(names, ",")+"}")
			}
			dg.Groups = strings.Join(parts, " ")
		}
		want = append(want, dg)
	}
	for _, n := range s.nodes {
		if n.d == nil {
			continue
		}
		got := n.d.diagnoses()
		ok := len(got) == len(want)
		for i := range got {
			ok = ok && got[i].key() == want[i].key() && got[i].LAN == want[i].LAN
		}
		if !ok {
			s.fail("node%d %s: diagnosis %+v, want %+v", n.id, when, got, want)
			return
		}
	}
}

// carrier pulls or plugs a node's cable on a LAN; the node hears of it
// from its kernel at once.
func (s *sim) carrier(id, lan int, up bool) {
	s.net.noCarrier[lan][id] = !up
	s.disturb(lan, id)
	s.logf("node%d's carrier on LAN %s %v", id, routes.LANName(lan), map[bool]string{true: "up", false: "down"}[up])
	n := s.node(id)
	s.after(100*time.Microsecond, func() {
		if d := n.d; d != nil {
			n.step(func() { d.onLink(platform.LinkChange{Index: simIndex(lan), Name: fmt.Sprintf("e%d", lan)}, s.now) })
		}
	})
}

// flap cuts and heals a node's port on a LAN again and again for a while.
func (s *sim) flap(id, lan int) {
	period := time.Duration(50+s.rng.IntN(400)) * time.Millisecond
	times := 4 + s.rng.IntN(8)
	s.logf("flap node%d's port on LAN %s, %d times every %v", id, routes.LANName(lan), times, period)
	gen := s.net.gen
	s.net.flapping = s.now.Add(time.Duration(times) * period)
	for i := range 2 * times {
		s.after(time.Duration(i)*period/2, func() {
			if s.net.gen == gen { // not healed since
				s.net.cutIn[lan][id], s.net.cutOut[lan][id] = i%2 == 0, i%2 == 0
				s.disturb(lan, id)
			}
		})
	}
}

// restart stops a node's daemon and starts a new one: after a crash, by
// SIGUSR2 (the routes kept, as systemctl restart does), or cleanly. After
// a crash or a handover, no route the network still calls for may go
// missing on the way.
func (s *sim) restart(id int, how string) {
	n := s.node(id)
	if n.d == nil {
		s.logf("start node%d", id)
		n.start()
		return
	}
	s.logf("restart node%d (%s)", id, how)
	before := n.kernel.Ours()
	n.stop(how)
	// Restarted within half a detection time, as systemd does, so that
	// no peer takes the node for gone meanwhile. (A longer outage is a
	// stop and a start.)
	gap := time.Duration(0)
	if how == "crash" {
		gap = time.Duration(s.rng.Int64N(int64(time.Duration(n.cfg.Misses) * n.cfg.Interval / 2)))
	}
	s.after(gap, func() {
		n.start()
		// Frames delayed past the grace of a slot (routes: 5 ms at
		// most) make an INQ lost in the gap and the late answer to the
		// next two missed slots: a peer may then rightly take the node
		// for gone.
		if how == "clean" || !s.net.certain(s.now) || s.net.jitter > 5*time.Millisecond {
			return
		}
		want, phase := s.expected(n), len(s.trace)
		cancel := n.kernel.Subscribe(func(c platform.RouteChange) {
			if len(s.trace) != phase {
				return // the network changed since: the routes may with it
			}
			if c.Deleted && c.Route.Ours && slices.Contains(want, c.Route.Route) && slices.Contains(before, c.Route.Route) {
				s.fail("node%d: the route %v, wanted before and after the restart, went missing", id, c.Route.Route)
			}
		})
		s.after(s.settle(otherFault), cancel)
	})
}

// foreign has an administrator add a host route on node n to m's address
// on a LAN, or take one such route away again.
func (s *sim) foreign(n, m int) {
	node := s.node(n)
	for _, r := range mustRoutes(node.kernel) {
		if !r.Ours {
			node.kernel.DeleteForeign(r.Dst, r.Metric)
			s.logf("node%d: ip route del %v", n, r)
			return
		}
	}
	v6 := s.v6 && (!s.v4 || s.rng.IntN(2) == 0)
	via := s.rng.IntN(s.lans)
	r := platform.KernelRoute{Route: platform.Route{Dst: netip.PrefixFrom(simAddr(m, 0, v6), simAddr(m, 0, v6).BitLen()),
		Via: simAddr(m, via, v6), Dev: fmt.Sprintf("e%d", via), Index: simIndex(via)}, Proto: 4, Metric: 10 * s.rng.IntN(6)}
	if err := node.kernel.AddForeign(r); err == nil {
		s.logf("node%d: ip route add %v", n, r)
	}
}

// healAll undoes every fault and starts every node that is stopped.
func (s *sim) healAll() {
	s.logf("heal everything")
	if s.diag.kind == "?" || s.faults > 1 {
		// Loss that ended shows in the loss figures for a window, and
		// its diagnosis for the rounds that views take to travel and
		// the evaluations a change needs.
		s.quiet = s.now.Add(time.Duration(s.window()+diagStable+2) * s.cfg().Interval)
	}
	s.faults, s.diag = 0, simDiag{}
	lost := s.net.noCarrier
	s.net = simFaults{gen: s.net.gen + 1}
	s.lossSince = [routes.MaxLANs][9]time.Time{}
	for l := range s.lans {
		s.disturb(l, s.ids()...)
	}
	for l := range s.lans {
		for id := range lost[l] {
			if lost[l][id] {
				s.carrier(id, l, true)
			}
		}
	}
	for _, n := range s.nodes {
		if n.d == nil {
			n.start()
		}
	}
}

func mustRoutes(m *platform.Memory) []platform.KernelRoute {
	rs, _ := m.Routes()
	return rs
}

// expected is the routes the network calls for on node n: for every peer
// it can know (one of the two is a requestor) and every LAN where the path
// to it does not carry frames both ways, a host route via the first LAN
// in priority order that does, unless someone else's route holds the
// destination.
func (s *sim) expected(n *simNode) []platform.Route {
	var out []platform.Route
	foreign := map[netip.Prefix]bool{}
	for _, r := range mustRoutes(n.kernel) {
		if !r.Ours {
			foreign[r.Dst] = true
		}
	}
	for _, p := range s.nodes {
		if p == n || p.d == nil || !n.cfg.Requestor && !p.cfg.Requestor {
			continue
		}
		for _, v6 := range []bool{false, true} {
			if v6 && !s.v6 || !v6 && !s.v4 {
				continue
			}
			for l := range s.lans {
				if s.net.works(n.id, p.id, l) {
					continue
				}
				for m := range s.lans {
					if m == l || !s.net.works(n.id, p.id, m) {
						continue
					}
					dst := netip.PrefixFrom(p.addr(l, v6), p.addr(l, v6).BitLen())
					if !foreign[dst] {
						out = append(out, platform.Route{Dst: dst, Via: p.addr(m, v6), Dev: fmt.Sprintf("e%d", m), Index: simIndex(m)})
					}
					break
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b platform.Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return out
}

// expect checks that every running node holds exactly the routes the
// network calls for, and reports them as the kernel holds them.
func (s *sim) expect(when string) {
	for _, n := range s.nodes {
		if s.err != nil || n.d == nil {
			continue
		}
		want, got := s.expected(n), n.kernel.Ours()
		if !slices.Equal(want, got) {
			s.fail("node%d %s: routes %v, want %v", n.id, when, got, want)
			return
		}
		st := n.d.snapshot(s.now)
		held := map[string]bool{}
		for _, r := range n.kernel.Ours() {
			held[r.String()] = true
		}
		down := 0
		for _, p := range st.Paths {
			if p.State != "valid" {
				down++
			}
			if p.RouteState == "installed" && !held[p.Route] {
				s.fail("node%d %s: status shows route %s, the kernel has %v", n.id, when, p.Route, got)
				return
			}
			delete(held, p.Route)
		}
		if len(held) > 0 {
			s.fail("node%d %s: the kernel holds %v, the status does not show it", n.id, when, held)
			return
		}
		if down != st.PathsDown || n.status != (Summary{st.Peers, len(st.Paths), st.PathsDown, simUnusable(st.LANs)}).String() {
			s.fail("node%d %s: status says %d peers, %d of %d paths down, counts %d down; STATUS=%q", n.id, when,
				st.Peers, st.PathsDown, len(st.Paths), down, n.status)
			return
		}
	}
}

// simUnusable is Summary.Unusable as the status report's LANs tell it.
func simUnusable(lans []StatusLAN) string {
	var out []string
	for _, l := range lans {
		if l.State != "up" {
			out = append(out, l.Dev+" "+l.State)
		}
	}
	return strings.Join(out, ", ")
}

// check is the invariants after every step of a node's daemon: no route
// over a LAN whose path is invalid, none for a path that is valid and
// heard, none beside someone else's route to the same destination (once
// the daemon has heard of it), none of anyone else's replaced, and
// systemd's status line the status report's. The kernel's routes are
// read again only when its version moved: every change to them counts
// one (the replacing of someone else's route too), and a step changes
// them far less often than it changes nothing.
func (n *simNode) check() {
	s := n.s
	var bad string
	changed := false
	if v := n.kernel.Version(); v != n.version {
		n.version, changed = v, true
		n.routes = n.kernel.AppendRoutes(n.routes[:0])
		n.overridden = n.kernel.Overridden()
		n.foreign = slices.ContainsFunc(n.routes, func(r platform.KernelRoute) bool { return !r.Ours })
	}
	for _, r := range n.routes {
		if !r.Ours || bad != "" {
			continue
		}
		f := n.d.fams[familyOf(r.Dst.Addr())]
		switch {
		case f == nil:
			bad = fmt.Sprintf("route %v of a family it does not run", r)
		case r.Index-2 < 0 || r.Index-2 >= s.lans || !f.x.LANs()[r.Index-2].Addr.Contains(r.Via):
			bad = fmt.Sprintf("route %v leaves by an interface whose LAN is not its gateway's", r)
		default:
			if p, ok := f.table.Path(r.Via); ok && p.State == routes.Invalid {
				bad = fmt.Sprintf("route %v goes over a LAN whose path is invalid", r)
			} else if p, ok := f.table.Path(r.Dst.Addr()); ok && p.State == routes.Valid && p.Heard {
				bad = fmt.Sprintf("route %v while the path it replaces is valid", r)
			}
		}
		if bad == "" && n.routeWait == 0 && n.foreign && slices.ContainsFunc(n.routes, func(o platform.KernelRoute) bool { return !o.Ours && o.Dst == r.Dst }) {
			bad = fmt.Sprintf("route %v beside someone else's to the same destination", r)
		}
	}
	if bad != "" {
		s.fail("node%d: %s", n.id, bad)
		return
	}
	if n.overridden > 0 {
		s.fail("node%d: replaced someone else's route", n.id)
		return
	}
	if changed {
		if sum := n.d.summary().String(); n.status != sum {
			s.fail("node%d: STATUS=%q, the summary is %q", n.id, n.status, sum)
		}
	}
}

// checkHooks matches the hooks the step queued with the changes it made
// to faild's routes in the kernel: one hook for each, with what was done.
func (n *simNode) checkHooks() {
	var hooked []string
	for {
		select {
		case ev := <-n.d.hooks.queue:
			env := map[string]string{}
			for _, kv := range ev.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			hooked = append(hooked, env["FAILD_ACTION"]+" "+env["FAILD_ROUTE"])
			continue
		default:
		}
		break
	}
	var changed []string
	for _, c := range n.changes {
		action := "added"
		switch {
		case c.Deleted:
			action = "removed"
		case slices.ContainsFunc(hooked, func(h string) bool { return h == "replaced "+c.Route.Route.String() }):
			action = "replaced"
		}
		changed = append(changed, action+" "+c.Route.Route.String())
	}
	slices.Sort(hooked)
	slices.Sort(changed)
	if !slices.Equal(hooked, changed) {
		n.s.fail("node%d: hooks %q for the kernel's changes %q", n.id, hooked, changed)
	}
}
