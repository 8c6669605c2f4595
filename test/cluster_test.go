package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/faild/daemon"
	"github.com/faild/faild/test/lab"
)

// diagLimit bounds the time from a fault's detection (the first failover
// it causes) to its diagnosis on a node: 2 x -f x -t, and room for a
// loaded 2-core machine. The diagnosis needs the views to say the paths
// are not heard (at detection), one round of INQs to carry them, and two
// evaluations an interval apart.
const diagLimit = 2*misses*interval + 700*time.Millisecond

// diagWindow is TestDiagnosis's --loss-window: the paths' loss figures,
// which make a path lossy in the view, span 50 of each stream's packets.
const diagWindow = 50

// lossyLimit bounds a lossy port's diagnosis from the start of the loss:
// at p lost past a threshold of 10 %, a full window crosses it after
// about diagWindow x 10 / p intervals (25 at 20 %); a whole window
// bounds that.
const lossyLimit = diagWindow*interval + diagLimit

// TestDiagnosis injects each kind of fault the diagnosis names into five
// nodes whose LAN A is two switches ({1,2} and {3,4,5}, joined by a
// trunk): every node must log the right diagnosis within diagLimit of
// the first failover (lossy: lossyLimit of the loss), "faild status"
// must show it on top, the metrics must carry it, and after the heal
// every node must log it cleared.
func TestDiagnosis(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 5, Bin: bin, SplitA: 2})
	b := newBudget(t, 240*time.Second)
	for _, n := range l.Nodes {
		if err := n.Start(append(coreArgs, "--metrics-listen", "127.0.0.1:9117", "--loss-window", fmt.Sprint(diagWindow))...); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range l.Nodes {
		for _, p := range l.Nodes {
			if p != n {
				waitDiscovered(b, n, p)
			}
		}
	}
	healthy(t, b, bin, l)
	if out, code := runStatus(t, bin, l.Node(1), "--cluster"); code != 0 || !strings.Contains(out, "diagnosis: none") {
		t.Fatalf("faild status --cluster before any fault: exit %d\n%s", code, out)
	}
	// An operator follows node 2's events all along.
	var watched strings.Builder
	watch := exec.Command(bin, "status", "--watch", "--status-socket", l.Node(2).StatusSocket())
	watch.Stdout = &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		watch.Process.Signal(os.Interrupt)
		if err := watch.Wait(); err != nil {
			t.Errorf("faild status --watch after SIGINT: %v; want exit 0", err)
		}
		events := lab.ParseLog(watched.String())
		for _, kv := range [][]string{{"msg", "failover"}, {"msg", "diagnosis", "fault", "split"}, {"msg", "diagnosis", "fault", "none"}} {
			if len(lab.Find(events, kv...)) == 0 {
				t.Errorf("faild status --watch did not show %v:\n%s", kv, watched.String())
			}
		}
	}()
	id := func(n int) string { return lab.A.Addr(n) }
	kinds := []struct {
		name   string
		inject func() error
		want   []string // the diagnosis line's keys and values
		lossy  bool
	}{
		{"node-link", func() error { return l.CutPort(lab.A, 3, lab.Both) }, []string{"fault", "node-link", "node", id(3)}, false},
		{"split", l.CutTrunk, []string{"fault", "split", "groups", "{.1,.2} {.3,.4,.5}"}, false},
		{"one-way", func() error { return l.CutOneWay(lab.A, 3, 4) }, []string{"fault", "one-way", "node", id(3), "peer", id(4)}, false},
		{"pair", func() error { return l.CutPair(lab.A, 4, 5) }, []string{"fault", "pair", "node", id(4), "peer", id(5)}, false},
		{"lan-down", func() error { return l.LANDown(lab.A) }, []string{"fault", "lan-down"}, false},
		// 20 %: the paths' figures are per direction, and node 4's
		// paths lose 20 % each way (10 % would sit at the threshold).
		{"lossy", func() error { return l.Loss(lab.A, 4, 20) }, []string{"fault", "lossy", "node", id(4)}, true},
		{"several", func() error {
			if err := l.CutPort(lab.A, 1, lab.Both); err != nil {
				return err
			}
			return l.CutPort(lab.A, 5, lab.Both)
		}, []string{"fault", "several"}, false},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			b := newBudget(t, 40*time.Second)
			mark := time.Now()
			if err := k.inject(); err != nil {
				t.Fatal(err)
			}
			since := func(n *lab.Node, kv ...string) []lab.Event {
				var out []lab.Event
				for _, e := range lab.Find(n.Events(), kv...) {
					if !e.Time().Before(mark) {
						out = append(out, e)
					}
				}
				return out
			}
			want := append([]string{"msg", "diagnosis", "lan", "A"}, k.want...)
			b.wait("every node's diagnosis "+strings.Join(k.want, " "), 20*time.Second, func() bool {
				for _, n := range l.Nodes {
					if len(since(n, want...)) == 0 {
						return false
					}
				}
				return true
			})
			from, limit := mark, lossyLimit
			if !k.lossy {
				from, limit = time.Time{}, diagLimit
				for _, n := range l.Nodes {
					for _, e := range since(n, "msg", "failover") {
						if from.IsZero() || e.Time().Before(from) {
							from = e.Time()
						}
					}
				}
				if from.IsZero() {
					t.Fatal("diagnosed, but no node failed a path over")
				}
			}
			var took []string
			for _, n := range l.Nodes {
				d := since(n, want...)[0].Time().Sub(from)
				took = append(took, fmt.Sprintf("%s %v", n, ms(d)))
				if d > limit {
					t.Errorf("%s diagnosed %v after the detection, limit %v", n, ms(d), limit)
				}
			}
			t.Logf("diagnosis after the detection: %s", strings.Join(took, ", "))
			out, _ := runStatus(t, bin, l.Node(2))
			if !strings.HasPrefix(out, "diagnosis: LAN A "+k.want[1]) {
				t.Errorf("faild status does not show the diagnosis on top:\n%s", out)
			}
			if k.name == "node-link" {
				cl, _ := runStatus(t, bin, l.Node(1), "--cluster")
				t.Logf("faild status --cluster on node1:\n%s", cl)
				metricsHave(t, l.Node(1), `faild_diagnosis{lan="A",fault="node-link",node="`+id(3)+`"`)
			}
			heal := time.Now()
			if err := l.Heal(); err != nil {
				t.Fatal(err)
			}
			b.wait("every node's diagnosis cleared", 20*time.Second, func() bool {
				for _, n := range l.Nodes {
					cleared := false
					for _, e := range lab.Find(n.Events(), "msg", "diagnosis", "lan", "A", "fault", "none") {
						cleared = cleared || !e.Time().Before(heal)
					}
					if !cleared {
						return false
					}
				}
				return true
			})
			healthy(t, b, bin, l)
		})
	}
}

// healthy waits until every node has every path valid and no diagnosis.
func healthy(t *testing.T, b *budget, bin string, l *lab.Lab) {
	t.Helper()
	for _, n := range l.Nodes {
		b.wait(n.String()+" healthy", 20*time.Second, func() bool {
			s, _, err := daemon.FetchStatus(n.StatusSocket())
			return err == nil && s.Healthy() && len(s.Diagnosis) == 0
		})
	}
}

// metricsHave scrapes a node's metrics endpoint from inside its
// namespace and checks that a line starts with prefix.
func metricsHave(t *testing.T, n *lab.Node, prefix string) {
	t.Helper()
	var text string
	err := n.Do(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:9117", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: faild\r\n\r\n")
		b, err := io.ReadAll(c)
		text = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("scrape %s: %v", n, err)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return
		}
	}
	t.Errorf("%s's metrics have no line %s...:\n%s", n, prefix, text)
}

// TestRestartBehindOneWay: node 1's frames reach node 2 on no LAN (LAN A
// drops them one way, LAN B both ways), and node 2 restarts, so it does
// not know node 1 at all. Its INQs on LAN A reach node 1 and cannot list
// node 1 as a peer it does not hear; before version 2 node 1 took them
// as evidence, called LAN A good again and routed node 2's LAN-B address
// over it. Now node 2's view does not say it hears node 1, so node 1
// keeps node 2 unreachable and routes nothing.
func TestRestartBehindOneWay(t *testing.T) {
	bin := lab.BuildForTest(t)
	l := lab.ForTest(t, lab.Options{Nodes: 2, Bin: bin})
	b := newBudget(t, 60*time.Second)
	n1, n2 := l.Node(1), l.Node(2)
	for _, n := range l.Nodes {
		if err := n.Start(coreArgs...); err != nil {
			t.Fatal(err)
		}
	}
	waitDiscovered(b, n1, n2)
	waitDiscovered(b, n2, n1)
	if err := l.CutOneWay(lab.A, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := l.CutPair(lab.B, 1, 2); err != nil {
		t.Fatal(err)
	}
	b.wait("node1 calls node2 unreachable", 10*time.Second, func() bool {
		return len(lab.Find(n1.Events(), "msg", "unreachable", "peer", n2.Addr(lab.A))) > 0
	})
	if err := n2.Stop(); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	if err := n2.Start(coreArgs...); err != nil {
		t.Fatal(err)
	}
	// Ten detection times: long enough for -s 3 good intervals many
	// times over.
	time.Sleep(10 * misses * interval)
	for _, e := range n1.Events() {
		if e.Time().After(restart) && (e.Msg() == "reachable" || e.Msg() == "switchback" || e.Msg() == "reroute") {
			t.Errorf("node1 after node2's restart: %v", e)
		}
	}
	if rs, err := n1.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("node1 routes %v (%v); want none: no LAN carries its frames to node2", rs, err)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	b.wait("node1 hears node2 again", 10*time.Second, func() bool {
		return len(lab.Find(n1.Events(), "msg", "reachable", "peer", n2.Addr(lab.A))) > 0
	})
}

// lastVersion1 is the last commit whose faild speaks version 1 only.
const lastVersion1 = "d5b5516"

// TestMixedVersions upgrades a cluster of three nodes (node 2 a
// responder) one node at a time from a faild that speaks version 1 only
// (built from lastVersion1): at
// every step a cut on LAN A between an old and a new node fails over at
// both ends and switches back after the heal, the old nodes drop the new
// ones' version-2 INQs as malformed without harm, and once every node is
// new the matrix holds every node's view.
func TestMixedVersions(t *testing.T) {
	bin := lab.BuildForTest(t)
	old := buildOld(t)
	l := lab.ForTest(t, lab.Options{Nodes: 3, Bin: bin})
	b := newBudget(t, 120*time.Second)
	start := func(n *lab.Node, binary string) {
		t.Helper()
		if n.Running() {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		l.Bin = binary
		defer func() { l.Bin = bin }()
		args := coreArgs
		if n.ID == 2 {
			// A responder judges by INQs alone: the new nodes must send
			// it version 1.
			args = slices.DeleteFunc(slices.Clone(coreArgs), func(a string) bool { return a == "-r" })
		}
		if err := n.Start(args...); err != nil {
			t.Fatal(err)
		}
	}
	start(l.Node(1), old)
	start(l.Node(2), old)
	start(l.Node(3), bin)
	cutHeal := func(a, c int) {
		t.Helper()
		na, nc := l.Node(a), l.Node(c)
		mark := time.Now()
		if err := l.CutPair(lab.A, a, c); err != nil {
			t.Fatal(err)
		}
		for _, p := range [][2]*lab.Node{{na, nc}, {nc, na}} {
			b.wait(fmt.Sprintf("%s fails %s over", p[0], p[1]), 10*time.Second, func() bool {
				for _, e := range lab.Find(p[0].Events(), "msg", "failover", "peer", p[1].Addr(lab.A), "lan", "A") {
					if e.Time().After(mark) {
						return true
					}
				}
				return false
			})
		}
		mark = time.Now()
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
		for _, p := range [][2]*lab.Node{{na, nc}, {nc, na}} {
			b.wait(fmt.Sprintf("%s switches %s back", p[0], p[1]), 10*time.Second, func() bool {
				for _, e := range lab.Find(p[0].Events(), "msg", "switchback", "peer", p[1].Addr(lab.A), "lan", "A") {
					if e.Time().After(mark) {
						return true
					}
				}
				return false
			})
		}
	}
	for _, n := range l.Nodes {
		for _, p := range l.Nodes {
			if p != n && !(n.ID == 2 && p.ID == 2) {
				waitDiscovered(b, n, p)
			}
		}
	}
	cutHeal(1, 3) // old and new
	if out, _ := runStatus(t, bin, l.Node(1)); !strings.Contains(out, "decode=") || strings.Contains(out, "decode=0 ") {
		t.Errorf("the old node1 did not drop the new node3's version-2 INQs:\n%s", out)
	}
	start(l.Node(1), bin) // node2 is the last old one
	waitDiscovered(b, l.Node(1), l.Node(2))
	cutHeal(1, 2) // new and old
	cutHeal(1, 3) // new and new, with an old node on the LAN
	start(l.Node(2), bin)
	b.wait("node3 holds every requestor's view", 10*time.Second, func() bool {
		c, _, err := daemon.FetchCluster(l.Node(3).StatusSocket())
		if err != nil || len(c.LANs) == 0 {
			return false
		}
		fresh := 0
		for _, r := range c.LANs[0].Rows {
			if r.Fresh {
				fresh++
			}
		}
		return fresh == 2 // node 2 is a responder: it sends no INQs, so no view
	})
	cutHeal(2, 3)
}

// buildOld builds faild as of lastVersion1 from this repository's history.
func buildOld(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	arch := exec.Command("sh", "-c", fmt.Sprintf("git archive %s | tar -x -C %s", lastVersion1, dir))
	arch.Dir = ".."
	if out, err := arch.CombinedOutput(); err != nil {
		t.Fatalf("failed to check out faild %s (the test needs the repository's history): %v\n%s", lastVersion1, err, out)
	}
	bin := filepath.Join(t.TempDir(), "faild-"+lastVersion1)
	build := exec.Command("go", "build", "-o", bin, "./faild")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build faild %s: %v\n%s", lastVersion1, err, out)
	}
	return bin
}
