package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/faild/faild/test/lab"
)

// echoFlow is a TCP conversation from node1 to node2's LAN-A address: the
// client sends an 8-byte sequence number every 10 ms and the server
// echoes it. Unlike lab.Flow it keeps when each message was sent and when
// its echo came back, so that the first byte after a cut can be told
// from the longest gap.
type echoFlow struct {
	conn net.Conn
	ln   net.Listener
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	sent   []time.Time // by sequence number
	echoed []time.Time // by sequence number; zero until it came back
	err    error
}

// echoPort is the server's port, away from faild's 4117 and lab.Flow's.
const echoPort = 7900

func startEchoFlow(l *lab.Lab) (*echoFlow, error) {
	f := &echoFlow{stop: make(chan struct{})}
	addr := net.JoinHostPort(lab.A.Addr(2), strconv.Itoa(echoPort))
	if err := l.Node(2).Do(func() (err error) {
		f.ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() { <-f.stop; c.Close() }()
		_, _ = io.Copy(c, c)
	}()
	if err := l.Node(1).Do(func() (err error) {
		f.conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		f.ln.Close()
		close(f.stop)
		f.wg.Wait()
		return nil, fmt.Errorf("failed to connect to %s: %w", addr, err)
	}
	f.wg.Add(2)
	go f.send()
	go f.receive()
	return f, nil
}

func (f *echoFlow) send() {
	defer f.wg.Done()
	t := time.NewTicker(lab.FlowInterval)
	defer t.Stop()
	var msg [8]byte
	for seq := uint64(0); ; seq++ {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		binary.BigEndian.PutUint64(msg[:], seq)
		f.mu.Lock()
		f.sent = append(f.sent, time.Now())
		f.echoed = append(f.echoed, time.Time{})
		f.mu.Unlock()
		if _, err := f.conn.Write(msg[:]); err != nil {
			f.fail(err)
			return
		}
	}
}

func (f *echoFlow) receive() {
	defer f.wg.Done()
	var msg [8]byte
	for {
		if _, err := io.ReadFull(f.conn, msg[:]); err != nil {
			f.fail(err)
			return
		}
		now := time.Now()
		seq := binary.BigEndian.Uint64(msg[:])
		f.mu.Lock()
		if seq < uint64(len(f.echoed)) {
			f.echoed[seq] = now
		}
		f.mu.Unlock()
	}
}

func (f *echoFlow) fail(err error) {
	select {
	case <-f.stop:
		return // the end of the flow, not a failure
	default:
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// resumed reports whether a message sent at or after t has been echoed.
func (f *echoFlow) resumed(t time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.sent) - 1; i >= 0 && !f.sent[i].Before(t); i-- {
		if !f.echoed[i].IsZero() {
			return true
		}
	}
	return false
}

// across returns, for a cut at t: the time from t to the first echo of a
// message sent at or after t (the first byte after the cut), and the
// longest time between two echoes that arrived one after the other.
func (f *echoFlow) across(t time.Time) (first, gap time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last time.Time
	for i, s := range f.sent {
		e := f.echoed[i]
		if e.IsZero() {
			continue
		}
		if !last.IsZero() && e.Sub(last) > gap {
			gap = e.Sub(last)
		}
		last = e
		if !ok && !s.Before(t) {
			first, ok = e.Sub(t), true
		}
	}
	return first, gap, ok
}

// retransmits is how many segments the client's kernel has retransmitted
// so far (TCP_INFO), -1 if it cannot say.
func (f *echoFlow) retransmits() int {
	tc, ok := f.conn.(*net.TCPConn)
	if !ok {
		return -1
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int(info.Total_retrans)
		}
	})
	return n
}

func (f *echoFlow) close() error {
	close(f.stop)
	f.conn.Close()
	f.ln.Close()
	f.wg.Wait()
	return f.err
}

// tcpResume measures, against -t at -f 3, what a TCP flow across a pair
// cut on LAN A sees: the first byte after the cut and the longest gap,
// beside faild's detection at the two ends.
func tcpResume(l *lab.Lab, r *report, _ string) error {
	reps := envInt("BENCH_TCP", 5)
	ivs := envList("BENCH_TCP_INTERVALS", "0.2,0.1,0.066,0.05,0.033,0.02")
	r.f("\n## TCP resumption against -t (echo every 10 ms, node1 → node2's LAN-A address, pair cut on LAN A at the switch, -f 3 -s 3, %d cuts each)\n\n", reps)
	r.f("The cut is made in-process (nftables netlink, as in the side-by-side with bfdd) and timed at its return. Detection: the later of the two ends' host routes, the moment both directions of the flow have a way over LAN B. First byte: from the cut to the first echo of a message sent after it. Longest gap: between two echoes in a row. Linux retransmits a lost segment after its RTO, at least 200 ms (TCP_RTO_MIN), then after 400 ms more, and so on: a flow whose detection comes before the first retransmission loses no more than that 200 ms; one that misses it waits for the next.\n\n")
	r.f("| -t -f 3 | f × t | detection (both ends) ms med / max | first byte ms min / med / max | longest gap ms min / med / max | client retransmissions med / max | flows that did not resume |\n|---|---|---|---|---|---|---|\n")
	w1, w2, err := watchPair(l)
	if err != nil {
		return err
	}
	defer w1.close()
	defer w2.close()
	var pc cutter
	switch kind := os.Getenv("BENCH_TCP_CUT"); kind {
	case "", "pair":
		pc, err = newPairCut(l)
	case "host":
		pc, err = newHostCut(l)
	default:
		err = fmt.Errorf("bad BENCH_TCP_CUT %q: want pair or host", kind)
	}
	if err != nil {
		return err
	}
	defer pc.close()
	load0 := loadavg()
	for _, ivs := range ivs {
		iv := time.Duration(mustFloat(ivs) * float64(time.Second))
		if iv < 10*time.Millisecond {
			return fmt.Errorf("bad BENCH_TCP_INTERVALS entry %q", ivs)
		}
		if err := startAll(l, 2, "-r", "-t", ivs, "-f", "3", "-s", "3"); err != nil {
			return err
		}
		var det, first, gaps []time.Duration
		var rts []int
		var failures []string
		for range reps {
			fl, err := startEchoFlow(l)
			if err != nil {
				stopAll(l)
				return err
			}
			// Long enough for the RTT estimate to settle.
			time.Sleep(500*time.Millisecond + rand.N(100*time.Millisecond))
			w1.drain()
			w2.drain()
			rt0 := fl.retransmits()
			cut, _, err := pc.cut()
			if err != nil {
				fl.close()
				stopAll(l)
				return err
			}
			a1, ok1 := w1.wait(true, lab.A.Addr(2), 10*iv+2*time.Second)
			a2, ok2 := w2.wait(true, lab.A.Addr(1), 10*iv+2*time.Second)
			if ok1 && ok2 {
				det = append(det, max(a1.Sub(cut), a2.Sub(cut)))
			}
			deadline := time.Now().Add(10 * time.Second)
			for !fl.resumed(cut) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a few echoes after it
			if rt1 := fl.retransmits(); rt0 >= 0 && rt1 >= 0 {
				rts = append(rts, rt1-rt0)
			}
			ferr := fl.close()
			if fb, gap, ok := fl.across(cut); ok {
				first = append(first, fb)
				gaps = append(gaps, gap)
			} else {
				failures = append(failures, fmt.Sprintf("no echo within 10 s (%v)", ferr))
			}
			if _, _, err := pc.heal(); err != nil {
				stopAll(l)
				return err
			}
			w1.wait(false, lab.A.Addr(2), 10*iv+2*time.Second)
			w2.wait(false, lab.A.Addr(1), 10*iv+2*time.Second)
		}
		stopAll(l)
		d, fb, g := summarize(det), summarize(first), summarize(gaps)
		note := strconv.Itoa(len(failures))
		if len(failures) > 0 {
			note += ": " + strings.Join(failures, "; ")
		}
		slices.Sort(rts)
		rt := "-"
		if len(rts) > 0 {
			rt = fmt.Sprintf("%d / %d", rts[len(rts)/2], rts[len(rts)-1])
		}
		if len(first) > 0 {
			record(fmt.Sprintf("TCP at -t %s -f 3: first byte after the cut, median (longest gap)", ivs),
				fmt.Sprintf("%s ms (%s ms); detection %s ms, first retransmission ≥ 200 ms", ms(fb.med), ms(g.med), ms(d.med)))
		}
		r.f("| %s | %s ms | %s / %s | %s / %s / %s | %s / %s / %s | %s | %s |\n", ivs, ms(3*iv), ms(d.med), ms(d.max),
			ms(fb.min), ms(fb.med), ms(fb.max), ms(g.min), ms(g.med), ms(g.max), rt, note)
	}
	r.f("\nLoad average during the flows: %s at start, %s at end.\n", load0, loadavg())
	return nil
}
