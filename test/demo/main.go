// Command demo shows faild at work in the namespace lab, in about half a
// minute: three nodes on two LANs, LAN A cut between two of them, the
// failover, the heal, the switchback, a clean stop. Run it as root from the
// module: go run ./test/demo
//
// It exits non-zero if any step does not happen within its deadline, so it
// doubles as a smoke test. Everything it creates is removed at the end, on
// failure and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faild/faild/test/lab"
)

func main() {
	bin := flag.String("bin", "", "faild binary to run (default: build it from this module)")
	pause := flag.Duration("pause", 3*time.Second, "pause between steps, to read along")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, *bin, *pause)
	stop()
	if err != nil {
		say("FAILED: %v", err)
		os.Exit(1)
	}
	say("done")
}

// out serialises the narration and the log tail.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf("\n==> "+format+"\n", args...)
}

func show(prefix, text string) {
	outMu.Lock()
	defer outMu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Printf("%s%s\n", prefix, line)
	}
}

func run(ctx context.Context, bin string, pause time.Duration) (err error) {
	if err := lab.CheckEnv(); err != nil {
		return err
	}
	if bin == "" {
		dir, err := os.MkdirTemp("", "faild-demo-")
		if err != nil {
			return fmt.Errorf("failed to create build directory: %w", err)
		}
		defer os.RemoveAll(dir)
		say("building faild")
		if bin, err = lab.Build(dir); err != nil {
			return err
		}
	}

	say("building the lab: a switch namespace with two bridges, LAN A (192.0.2.0/24) and LAN B\n" +
		"    (198.51.100.0/24), and three node namespaces; node N has eth0 = 192.0.2.N on LAN A\n" +
		"    and eth1 = 198.51.100.N on LAN B")
	l, err := lab.New(lab.Options{Nodes: 3, Bin: bin})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		} else {
			say("removed the lab (namespaces %s*)", l.Prefix())
		}
	}()
	n1, n2 := l.Node(1), l.Node(2)

	args := []string{"-r", "-t", "0.1", "-f", "3", "-s", "3"}
	say("starting faild %s on every node: an INQ on each LAN every 100 ms; a path is invalid\n"+
		"    after 3 silent intervals and valid again after 3 good ones. node1's log follows.", strings.Join(args, " "))
	for _, n := range l.Nodes {
		if err := n.Start(args...); err != nil {
			return err
		}
	}
	tailDone := tail(n1, "    node1 | ")
	defer tailDone()

	if _, err := step(ctx, "every node discovers its two peers", 5*time.Second, func() bool {
		for _, n := range l.Nodes {
			if len(lab.Find(n.Events(), "msg", "discovered")) < 2 {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	flow, err := l.StartFlow("tcp", 1, n2.Addr(lab.A))
	if err != nil {
		return err
	}
	say("a TCP echo flow runs from node1 to node2's LAN-A address %s, a message every 10 ms", n2.Addr(lab.A))
	if err := sleep(ctx, pause); err != nil {
		return err
	}

	say("cutting LAN A between node1 and node2 at the switch (both stay connected to node3 and to LAN B)")
	if err := l.CutPair(lab.A, 1, 2); err != nil {
		return err
	}
	routed := func(n, peer *lab.Node) bool {
		return n.RoutesAre(lab.Route{Dst: peer.Addr(lab.A), Via: peer.Addr(lab.B), Dev: lab.B.Iface()})
	}
	took, err := step(ctx, "node1 and node2 route each other's LAN-A address over LAN B", 3*time.Second, func() bool {
		return routed(n1, n2) && routed(n2, n1)
	})
	if err != nil {
		return err
	}
	say("failover after %v", took.Round(time.Millisecond))
	if err := sleep(ctx, 300*time.Millisecond); err != nil { // let the flow show it survived
		return err
	}
	say("the TCP flow meanwhile: %v", flow.Stats())
	showRoutes(n1, n2)
	if err := sleep(ctx, pause); err != nil {
		return err
	}

	say("healing the switch")
	if err := l.Heal(); err != nil {
		return err
	}
	took, err = step(ctx, "node1 and node2 switch back to LAN A", 3*time.Second, func() bool {
		return !routed(n1, n2) && !routed(n2, n1)
	})
	if err != nil {
		return err
	}
	say("switchback after %v", took.Round(time.Millisecond))
	showRoutes(n1, n2)
	say("the TCP flow from start to end: %v", flow.Stop())
	if err := sleep(ctx, pause); err != nil {
		return err
	}

	say("stopping faild on every node with SIGTERM; it removes its routes and exits 0")
	for _, n := range l.Nodes {
		if err := n.Stop(); err != nil {
			return fmt.Errorf("%v: %w", n, err)
		}
		if rs, err := n.Routes(); err != nil || len(rs) > 0 {
			return fmt.Errorf("%v: faild routes left after stop: %v %v", n, rs, err)
		}
	}
	tailDone()
	say("every faild exited 0 and left no route with proto 157")
	return nil
}

// step announces what should happen and waits for it, up to d.
func step(ctx context.Context, what string, d time.Duration, cond func() bool) (time.Duration, error) {
	say("waiting up to %v: %s", d, what)
	start := time.Now()
	deadline := start.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("did not happen within %v: %s", d, what)
		}
		if err := sleep(ctx, lab.PollInterval); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return errors.New("interrupted")
	case <-time.After(d):
		return nil
	}
}

func showRoutes(nodes ...*lab.Node) {
	for _, n := range nodes {
		out, err := n.IP("-4", "route", "show")
		if err != nil {
			out = err.Error()
		}
		say("%s: ip route", n)
		show("    "+n.String()+"$ ", out)
	}
}

// tail prints what n's log gains, line by line, until the returned function
// is called; that prints the rest and may be called more than once.
func tail(n *lab.Node, prefix string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var off int64
		var partial string
		flush := func() {
			f, err := os.Open(n.LogPath())
			if err != nil {
				return
			}
			defer f.Close()
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return
			}
			b, _ := io.ReadAll(f)
			off += int64(len(b))
			text := partial + string(b)
			i := strings.LastIndexByte(text, '\n')
			if i < 0 {
				partial = text
				return
			}
			partial = text[i+1:]
			show(prefix, text[:i])
		}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				flush()
				return
			case <-t.C:
				flush()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}
