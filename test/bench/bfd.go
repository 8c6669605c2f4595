package main

// The bfd section runs FRR's bfdd (with the zebra it needs) in lab node
// namespaces next to faild, so that faild's figures stand beside those of a
// trusted detector measured in the same run, with the same cuts. FRR runs
// only inside lab namespaces, from a temporary directory of its own:
// config, logs, pid files and sockets; /etc/frr and /var/run/frr are never
// used, so two instances cannot collide and the host's FRR, if any, is not
// touched.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faild/faild/test/lab"
)

// frrLibexec holds the FRR daemons in Debian's package.
const frrLibexec = "/usr/lib/frr"

// frrMissing says why the section cannot run here, "" when it can.
func frrMissing() string {
	for _, d := range []string{"zebra", "bfdd"} {
		if _, err := os.Stat(filepath.Join(frrLibexec, d)); err != nil {
			return fmt.Sprintf("FRR is not installed (%s/%s missing; make bench installs the Debian package frr when it can)", frrLibexec, d)
		}
	}
	if _, err := user.Lookup("frr"); err != nil {
		return "FRR's user frr does not exist"
	}
	return ""
}

// daemon is one FRR daemon run in the foreground in a node's namespace;
// "ip netns exec" execs in place, so the pid is the daemon's own.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startDaemon(n *lab.Node, dir, name string, args ...string) (*daemon, error) {
	argv := append([]string{"netns", "exec", n.NS, filepath.Join(frrLibexec, name)}, args...)
	cmd := exec.Command("ip", argv...)
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, fmt.Errorf("failed to create output file: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// SIGKILL should the bench die; lab.Close also kills whatever is left
	// in the namespaces.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s on %s: %w", name, n, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop ends the daemon (SIGTERM, then SIGKILL after 5 s) and removes the
// crash-log directory FRR keeps under /var/tmp/frr for each process.
func (d *daemon) stop() {
	if d == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	_ = os.RemoveAll(fmt.Sprintf("/var/tmp/frr/%s.%d", d.name, d.pid()))
}

// bfdEv is one session state change that bfdd logged.
type bfdEv struct {
	at   time.Time
	peer string
	up   bool
}

// stateChange matches bfdd's "debug bfd peer" line for a state change:
// 2026/11/22 01:29:53.801889 BFD: [SEY1D-NT8EQ] state-change: [mhop:no
// peer:192.0.2.2 local:192.0.2.1 vrf:default ifname:eth0] up -> down ...
var stateChange = regexp.MustCompile(`^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) BFD: \[[^]]*\] state-change: \[[^]]*peer:(\S+) [^]]*\] (\S+) -> (\S+)`)

// bfdLog follows a bfdd log file. The times are bfdd's own timestamps
// (log timestamp precision 6), taken when it changed the state, so how
// often the file is read does not matter for the figures.
type bfdLog struct {
	ch   chan bfdEv
	stop chan struct{}

	mu    sync.Mutex
	state map[string]bool // latest state per peer: up or not
}

func tailLog(path string) *bfdLog {
	b := &bfdLog{ch: make(chan bfdEv, 8192), stop: make(chan struct{}), state: map[string]bool{}}
	go func() {
		var off int64
		var part string
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
			}
			f, err := os.Open(path)
			if err != nil {
				continue // bfdd has not created it yet
			}
			_, _ = f.Seek(off, io.SeekStart)
			data, _ := io.ReadAll(f)
			f.Close()
			off += int64(len(data))
			lines := strings.Split(part+string(data), "\n")
			part = lines[len(lines)-1]
			for _, line := range lines[:len(lines)-1] {
				m := stateChange.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				at, err := time.ParseInLocation("2006/01/02 15:04:05.000000", m[1], time.Local)
				if err != nil {
					continue
				}
				e := bfdEv{at: at, peer: m[2], up: m[4] == "up"}
				b.mu.Lock()
				b.state[e.peer] = e.up
				b.mu.Unlock()
				b.ch <- e
			}
		}
	}()
	return b
}

func (b *bfdLog) close() { close(b.stop) }

func (b *bfdLog) drain() {
	for {
		select {
		case <-b.ch:
		default:
			return
		}
	}
}

// changesIn drains the changes read so far and counts those to down and
// to up logged from from until to.
func (b *bfdLog) changesIn(from, to time.Time) (downs, ups int) {
	for {
		select {
		case e := <-b.ch:
			if e.at.Before(from) || !e.at.Before(to) {
				continue
			}
			if e.up {
				ups++
			} else {
				downs++
			}
		default:
			return downs, ups
		}
	}
}

// downs drains the changes read so far and counts those to down.
func (b *bfdLog) downs() int {
	n := 0
	for {
		select {
		case e := <-b.ch:
			if !e.up {
				n++
			}
		default:
			return n
		}
	}
}

// ups is how many peers' sessions are up now.
func (b *bfdLog) ups() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, up := range b.state {
		if up {
			n++
		}
	}
	return n
}

// wait returns the time of the next change to up (or away from up).
func (b *bfdLog) wait(up bool, timeout time.Duration) (time.Time, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e := <-b.ch:
			if e.up == up {
				return e.at, true
			}
		case <-t.C:
			return time.Time{}, false
		}
	}
}

// waitUps waits until n sessions are up.
func (b *bfdLog) waitUps(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for b.ups() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d BFD sessions up after %v", b.ups(), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// frrNode is zebra and bfdd in one node's namespace.
type frrNode struct {
	node  *lab.Node
	dir   string
	zebra *daemon
	bfdd  *daemon
	log   *bfdLog
	runs  int
}

// bfdSession is one single-hop session on LAN A (eth0).
type bfdSession struct{ peer, local string }

func newFRRNode(n *lab.Node, root string) (*frrNode, error) {
	dir := filepath.Join(root, n.String())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create FRR directory: %w", err)
	}
	if err := chownFRR(dir); err != nil {
		return nil, err
	}
	f := &frrNode{node: n, dir: dir}
	conf := filepath.Join(dir, "zebra.conf")
	if err := writeFRR(conf, fmt.Sprintf("log file %s/zebra.log\n", dir)); err != nil {
		return nil, err
	}
	var err error
	// -P 0: no TCP vty; the vty socket, zserv socket and pid file are
	// in our directory.
	f.zebra, err = startDaemon(n, dir, "zebra", "-f", conf, "-i", filepath.Join(dir, "zebra.pid"),
		"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0")
	if err != nil {
		return nil, err
	}
	if err := waitFile(filepath.Join(dir, "zserv.api"), 10*time.Second); err != nil {
		f.close()
		return nil, fmt.Errorf("zebra on %s: %w", n, err)
	}
	return f, nil
}

// startBFD (re)starts bfdd with these sessions at interval iv and
// multiplier 3; its log file is new for each start.
func (f *frrNode) startBFD(iv time.Duration, sessions []bfdSession) error {
	f.stopBFD()
	f.runs++
	logPath := filepath.Join(f.dir, fmt.Sprintf("bfdd.%d.log", f.runs))
	var c strings.Builder
	fmt.Fprintf(&c, "log file %s\nlog timestamp precision 6\ndebug bfd peer\nbfd\n", logPath)
	for _, s := range sessions {
		fmt.Fprintf(&c, " peer %s local-address %s interface eth0\n  receive-interval %d\n  transmit-interval %d\n  detect-multiplier 3\n !\n",
			s.peer, s.local, iv.Milliseconds(), iv.Milliseconds())
	}
	c.WriteString("!\n")
	conf := filepath.Join(f.dir, fmt.Sprintf("bfdd.%d.conf", f.runs))
	if err := writeFRR(conf, c.String()); err != nil {
		return err
	}
	f.log = tailLog(logPath)
	var err error
	f.bfdd, err = startDaemon(f.node, f.dir, "bfdd", "-f", conf, "-i", filepath.Join(f.dir, "bfdd.pid"),
		"-z", filepath.Join(f.dir, "zserv.api"), "--vty_socket", f.dir, "-P", "0",
		"--bfdctl", filepath.Join(f.dir, "bfdd.sock"))
	return err
}

func (f *frrNode) stopBFD() {
	if f.bfdd != nil {
		f.bfdd.stop()
		f.bfdd = nil
	}
	if f.log != nil {
		f.log.close()
		f.log = nil
	}
}

func (f *frrNode) close() {
	f.stopBFD()
	f.zebra.stop()
}

func chownFRR(path string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("failed to look up user frr: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("failed to hand %s to frr: %w", path, err)
	}
	return nil
}

// writeFRR writes a file the frr user (FRR drops root) can read.
func writeFRR(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return chownFRR(path)
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %v", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cpuNanos is the CPU time of all of pid's threads in ns (the first field
// of each task's schedstat), finer than the 10 ms ticks of /proc/pid/stat,
// which a daemon at well under 1% of a core needs.
func cpuNanos(pid int) (int64, error) {
	ns, _, err := schedStat(pid)
	return ns, err
}

// schedStat adds up the schedstat of pid's threads: the CPU time in ns and
// how many times a thread was put on a CPU (each one a wake-up or a
// preemption's return: what a context switch costs is paid that often).
func schedStat(pid int) (ns, slices int64, err error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, 0, fmt.Errorf("failed to list threads of %d: %v", pid, err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			n, _ := strconv.ParseInt(f[2], 10, 64)
			ns += v
			slices += n
		}
	}
	return ns, slices, nil
}

// cpuParts is how many equal parts a CPU window is read in, for the
// spread of its figure.
const cpuParts = 4

// usage is a process's CPU over a window, in shares of one core: its own
// (the schedstat run time less softirqs, perfSampler.split), the own
// share in each part of the window (each part's run time scaled by the
// whole window's softirq share: perf's samples are not split by part),
// and the cells for the softirq part and for the part of own spent in the
// kernel.
type usage struct {
	own             float64
	parts           []float64
	softirq, kernel string
}

// cell is the own share with the lowest and highest of the parts.
func (u usage) cell() string {
	if len(u.parts) < 2 {
		return pct(u.own)
	}
	return fmt.Sprintf("%s (%s–%s)", pct(u.own), pct(slices.Min(u.parts)), pct(slices.Max(u.parts)))
}

// measureCPU measures pid's CPU per wall second over d, read in cpuParts
// parts and split by perf's samples, and the whole share of each of
// others over the same window; wakes is how often one of pid's threads
// was put on a CPU, per second. atEnd, if not nil, runs as the window
// ends, before perf's samples are read: what else the caller counts over
// the window ends there too.
func measureCPU(pid int, d time.Duration, dir string, atEnd func(), others ...int) (u usage, shares []float64, wakes float64, err error) {
	sm := samplePerf(pid, d, dir)
	defer func() {
		if err != nil {
			sm.split(0) // waits for perf and removes its file
		}
	}()
	t0 := time.Now()
	f0, w0, err := schedStat(pid)
	if err != nil {
		return u, nil, 0, err
	}
	o0 := make([]int64, len(others))
	for i, p := range others {
		if o0[i], err = cpuNanos(p); err != nil {
			return u, nil, 0, err
		}
	}
	var raws []float64
	t, f, w := t0, f0, w0
	for i := 1; i <= cpuParts; i++ {
		time.Sleep(time.Until(t0.Add(d * time.Duration(i) / cpuParts)))
		fi, wi, err := schedStat(pid)
		if err != nil {
			return u, nil, 0, err
		}
		ti := time.Now()
		raws = append(raws, float64(fi-f)/float64(ti.Sub(t)))
		t, f, w = ti, fi, wi
	}
	wall := t.Sub(t0)
	for i, p := range others {
		c, err := cpuNanos(p)
		if err != nil {
			return u, nil, 0, err
		}
		shares = append(shares, float64(c-o0[i])/float64(wall))
	}
	if atEnd != nil {
		atEnd()
	}
	raw := float64(f-f0) / float64(wall)
	u.own, u.softirq, u.kernel = sm.split(raw)
	scale := 1.0 // each part's own share of its run time: the whole window's
	if raw > 0 {
		scale = u.own / raw
	}
	for _, r := range raws {
		u.parts = append(u.parts, r*scale)
	}
	return u, shares, float64(w-w0) / wall.Seconds(), nil
}

// pct formats a share of one core.
func pct(s float64) string { return strconv.FormatFloat(s*100, 'f', 2, 64) + "%" }

// bfd is the section: detection and recovery, idle CPU and false downs,
// faild and bfdd side by side.
func bfd(l *lab.Lab, r *report, dir string) error {
	r.f("\n## Side by side with FRR bfdd (single-hop BFD on LAN A between node1 and node2)\n\n")
	if why := frrMissing(); why != "" {
		r.f("Skipped: %s.\n", why)
		fmt.Fprintf(os.Stderr, "bench: bfd skipped: %s\n", why)
		return nil
	}
	version := strings.TrimSpace(strings.SplitN(cmdOut(filepath.Join(frrLibexec, "bfdd"), "--version"), "\n", 2)[0])
	r.f("%s, zebra + bfdd in each node's namespace, sessions between the nodes' LAN-A addresses (receive = transmit interval, detect-multiplier 3, no echo). faild runs at the same time on the same nodes, so both see the same cuts.\n", version)
	root, err := os.MkdirTemp("", "faildbench-frr-")
	if err != nil {
		return fmt.Errorf("failed to create FRR directory: %w", err)
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil {
		return fmt.Errorf("failed to open FRR directory to frr: %w", err)
	}
	var nodes []*frrNode
	defer func() {
		for _, f := range nodes {
			f.close()
		}
	}()
	for i := 1; i <= 2; i++ {
		f, err := newFRRNode(l.Node(i), root)
		if err != nil {
			return err
		}
		nodes = append(nodes, f)
	}
	var errs []error
	parts := map[string]bool{}
	for _, p := range envList("BENCH_BFD_PARTS", "cuts,cpu,loss") {
		parts[p] = true
	}
	if parts["cuts"] {
		if err := bfdCuts(l, r, nodes); err != nil {
			errs = append(errs, err)
		}
	}
	if parts["cpu"] {
		if err := bfdCPU(l, r, nodes, dir); err != nil {
			errs = append(errs, err)
		}
	}
	if parts["loss"] {
		if err := bfdLoss(l, r, nodes); err != nil {
			errs = append(errs, err)
		}
	}
	r.f("%s", bfdNotes)
	return errors.Join(errs...)
}

// startPair starts bfdd on two nodes with one session between their LAN-A
// addresses at iv and waits for it to be up on both.
func startPair(nodes []*frrNode, iv time.Duration) error {
	if len(nodes) != 2 {
		return fmt.Errorf("failed to start a BFD pair: %d nodes", len(nodes))
	}
	for i, f := range nodes {
		s := bfdSession{peer: lab.A.Addr(nodes[1-i].node.ID), local: lab.A.Addr(f.node.ID)}
		if err := f.startBFD(iv, []bfdSession{s}); err != nil {
			return err
		}
	}
	for _, f := range nodes {
		if err := f.log.waitUps(1, 15*time.Second); err != nil {
			return fmt.Errorf("bfdd on %s: %w", f.node, err)
		}
	}
	return nil
}

// cutKinds are the cuts of the side-by-side, by BENCH_BFD_KINDS name.
var cutKinds = []struct {
	name, what string
	open       func(*lab.Lab) (cutter, error)
}{
	{"pair", "pair cut at the switch (node1 ↔ node2 on LAN A, both ways; carrier up)", func(l *lab.Lab) (cutter, error) { return newPairCut(l) }},
	{"host", "full-port cut at node2 (netdev ingress + egress drop on its eth0; carrier up)", func(l *lab.Lab) (cutter, error) { return newHostCut(l) }},
	{"port", "bridge port down (node2's LAN-A switch port set down; node2 loses carrier)", func(l *lab.Lab) (cutter, error) { return newPortDown(l) }},
}

// bfdCuts cuts LAN A between node1 and node2, in each way of cutKinds,
// with faild and bfdd running on both, and times on each end cut → faild
// route in / session down and heal → faild route gone / session up.
func bfdCuts(l *lab.Lab, r *report, nodes []*frrNode) error {
	// Both detections spread over about one interval from cut to cut (see
	// the notes), so a median of few cuts wanders by several per cent.
	cuts := envInt("BENCH_BFD_CUTS", 32)
	kinds := map[string]bool{}
	for _, k := range envList("BENCH_BFD_KINDS", "pair,host,port") {
		kinds[k] = true
	}
	r.f("\n### Detection and recovery (%d cuts per kind and setting; each end gives one sample a cut)\n\n", cuts)
	r.f("Each cut is one netlink transaction from the bench process (nftables through github.com/google/nftables, the port through netlink), timed at its return; its median length is in the last column. Detection: cut → faild's host route in the kernel (netlink) / bfdd's session down (its log). Recovery: heal → faild's route removed (-s 3) / session up again. Ratio: faild's median to bfdd's.\n\n")
	for _, k := range cutKinds {
		if kinds[k.name] {
			r.f("- **%s**: %s\n", k.name, k.what)
		}
	}
	r.f("\n| cut | interval × 3 | end | faild detection ms min / med / p95 / max (n) | bfdd detection ms min / med / p95 / max (n) | ratio | faild recovery ms med / max (n) | bfdd recovery ms med / max (n) | early faild / bfdd | call ms |\n|---|---|---|---|---|---|---|---|---|---|\n")
	w1, w2, err := watchPair(l)
	if err != nil {
		return err
	}
	defer w1.close()
	defer w2.close()
	ws := []*watcher{w1, w2}
	load0 := loadavg()
	for _, k := range cutKinds {
		if !kinds[k.name] {
			continue
		}
		c, err := k.open(l)
		if err != nil {
			return fmt.Errorf("%s cut: %w", k.name, err)
		}
		err = bfdCutKind(l, r, nodes, ws, k.name, c, cuts)
		c.close()
		if err != nil {
			return fmt.Errorf("%s cut: %w", k.name, err)
		}
	}
	r.f("\nEnd: node1 is the far end of the host and port cuts (it keeps its link and sees node2 fall silent), node2 the cut one. n: samples; fewer than the cuts means a detection or recovery did not come within 10 intervals + 3 s. Early: changes logged before the call that made the cut or heal they were waited for began (left out of the figures); a stall of the shared machine long enough to fail both LANs, not the cut, makes them. A change while the call ran counts as 0 ms: faild on the cut node of a port cut follows its carrier loss within a millisecond. Load average during the cuts: %s at start, %s at end.\n", load0, loadavg())
	return nil
}

// bfdCutKind runs one kind of cut at each interval of BENCH_BFD_INTERVALS
// and writes a row per interval and end.
func bfdCutKind(l *lab.Lab, r *report, nodes []*frrNode, ws []*watcher, kind string, c cutter, cuts int) error {
	for _, ivs := range envList("BENCH_BFD_INTERVALS", "0.1,0.3") {
		iv := time.Duration(mustFloat(ivs) * float64(time.Second))
		if iv < 10*time.Millisecond {
			return fmt.Errorf("failed to parse interval %q", ivs)
		}
		if err := startAll(l, 2, "-r", "-t", ivs, "-f", "3", "-s", "3"); err != nil {
			return err
		}
		if err := startPair(nodes, iv); err != nil {
			stopAll(l)
			return err
		}
		var fDet, fRec, bDet, bRec [2][]time.Duration
		var calls []time.Duration
		timeout := 10*iv + 3*time.Second
		early := map[string]int{}
		// sample waits for the next change at or after ref, the end of
		// the call that took call to make the cut or heal; a change
		// while the call ran (faild follows a carrier loss within a
		// millisecond) counts as 0. A change from before it (a stall of
		// the shared machine can fail both LANs at once, and faild then
		// withdraws its route) is counted apart, not taken as a time,
		// and the wait goes on.
		sample := func(s *[]time.Duration, who string, ref time.Time, call time.Duration, next func(time.Duration) (time.Time, bool)) {
			deadline := time.Now().Add(timeout)
			for {
				at, ok := next(time.Until(deadline))
				if !ok {
					return
				}
				if at.Before(ref.Add(-call)) {
					early[who]++
					continue
				}
				*s = append(*s, max(at.Sub(ref), 0))
				return
			}
		}
		for range cuts {
			// BFD starts a session at slow timers and speeds up by a
			// poll sequence after it is up; give it time to settle.
			time.Sleep(time.Second + 3*iv + rand.N(iv))
			for _, f := range nodes {
				if err := f.log.waitUps(1, 10*time.Second); err != nil {
					stopAll(l)
					return fmt.Errorf("bfdd on %s before a cut: %w", f.node, err)
				}
			}
			for i := range 2 {
				ws[i].drain()
				nodes[i].log.drain()
			}
			cut, call, err := c.cut()
			if err != nil {
				stopAll(l)
				return err
			}
			calls = append(calls, call)
			for i := range 2 {
				w, b, dst := ws[i], nodes[i].log, lab.A.Addr(2-i)
				sample(&fDet[i], "faild", cut, call, func(t time.Duration) (time.Time, bool) { return w.wait(true, dst, t) })
				sample(&bDet[i], "bfdd", cut, call, func(t time.Duration) (time.Time, bool) { return b.wait(false, t) })
			}
			time.Sleep(rand.N(iv))
			heal, hcall, err := c.heal()
			if err != nil {
				stopAll(l)
				return err
			}
			for i := range 2 {
				w, b, dst := ws[i], nodes[i].log, lab.A.Addr(2-i)
				sample(&fRec[i], "faild", heal, hcall, func(t time.Duration) (time.Time, bool) { return w.wait(false, dst, t) })
				sample(&bRec[i], "bfdd", heal, hcall, func(t time.Duration) (time.Time, bool) { return b.wait(true, t) })
			}
		}
		stopAll(l)
		for _, f := range nodes {
			f.stopBFD()
		}
		for i := range 2 {
			fd, bd := summarize(fDet[i]), summarize(bDet[i])
			ratio := "-"
			if len(fDet[i]) > 0 && len(bDet[i]) > 0 && bd.med > 0 {
				ratio = fmt.Sprintf("%.2f (means %.2f)", float64(fd.med)/float64(bd.med), float64(mean(fDet[i]))/float64(mean(bDet[i])))
			}
			fr, br := summarize(fRec[i]), summarize(bRec[i])
			if ratio != "-" {
				q := float64(fd.med) / float64(bd.med)
				aim(fmt.Sprintf("detection, %s cut, %v × 3, node%d: faild's median over bfdd's", kind, iv, i+1), "≤ 0.95",
					fmt.Sprintf("%.2f (%s ms against %s ms)", q, ms(fd.med), ms(bd.med)), q <= 0.95)
			}
			r.f("| %s | %v × 3 | node%d | %s (%d) | %s (%d) | %s | %s / %s (%d) | %s / %s (%d) | %d / %d | %.2f |\n",
				kind, iv, i+1, fd.ms(), len(fDet[i]), bd.ms(), len(bDet[i]), ratio,
				ms(fr.med), ms(fr.max), len(fRec[i]), ms(br.med), ms(br.max), len(bRec[i]),
				early["faild"], early["bfdd"], float64(summarize(calls).med)/1e6)
		}
	}
	return nil
}

// bfdCPU measures idle CPU: bfdd (and zebra) with 1 and 50 sessions at
// 100 ms, faild with 1 real peer and with 50 emulated peers at -t 0.1.
func bfdCPU(l *lab.Lab, r *report, nodes []*frrNode, dir string) error {
	d := time.Duration(envInt("BENCH_BFD_CPU_SECS", 10)) * time.Second
	many := envInt("BENCH_BFD_SESSIONS", 50)
	if many < 1 || many > 50 {
		return fmt.Errorf("failed to run the CPU test: BENCH_BFD_SESSIONS=%d, want 1..50", many)
	}
	r.f("\n### Idle CPU at 100 ms × 3 (node1's processes, %v window after 2 s of warm-up; %% of one core)\n\n", d)
	r.f("| who | peers | own CPU (lowest–highest of %d parts) | of it in the kernel | softirq on its threads | wake-ups/s | zebra's CPU | downs or failovers in the window |\n|---|---|---|---|---|---|---|---|\n", cpuParts)
	failovers := func() int { return len(lab.Find(l.Node(1).Events(), "msg", "failover")) }
	const iv = 100 * time.Millisecond
	// One session.
	if err := startPair(nodes, iv); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	nodes[0].log.drain()
	downs := 0
	countDowns := func() { downs = nodes[0].log.downs() }
	u, zebra, wakes, err := measureCPU(nodes[0].bfdd.pid(), d, dir, countDowns, nodes[0].zebra.pid())
	if err != nil {
		return err
	}
	r.f("| bfdd | 1 session | %s | %s | %s | %.0f | %s | %d |\n", u.cell(), u.kernel, u.softirq, wakes, pct(zebra[0]), downs)
	// Many sessions: a single-hop session is keyed by peer address and
	// interface, so each side needs its own address per session: node1
	// gets 192.0.2.100+k, node2 192.0.2.200+k as secondary addresses.
	var s1, s2 []bfdSession
	for k := range many {
		a1, a2 := fmt.Sprintf("192.0.2.%d", 100+k), fmt.Sprintf("192.0.2.%d", 200+k)
		s1 = append(s1, bfdSession{peer: a2, local: a1})
		s2 = append(s2, bfdSession{peer: a1, local: a2})
	}
	addrs := func(op string) error {
		var errs []error
		for _, s := range s1 {
			if _, err := l.Node(1).IP("addr", op, s.local+"/24", "dev", "eth0"); err != nil {
				errs = append(errs, err)
			}
		}
		for _, s := range s2 {
			if _, err := l.Node(2).IP("addr", op, s.local+"/24", "dev", "eth0"); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	err = addrs("add")
	defer func() { _ = addrs("del") }()
	if err != nil {
		return err
	}
	if err := nodes[0].startBFD(iv, s1); err != nil {
		return err
	}
	if err := nodes[1].startBFD(iv, s2); err != nil {
		return err
	}
	for _, f := range nodes {
		if err := f.log.waitUps(many, 20*time.Second); err != nil {
			return fmt.Errorf("bfdd on %s: %w", f.node, err)
		}
	}
	time.Sleep(2 * time.Second)
	nodes[0].log.drain()
	u, zebra, wakes, err = measureCPU(nodes[0].bfdd.pid(), d, dir, countDowns, nodes[0].zebra.pid())
	if err != nil {
		return err
	}
	bfdMany := u.own
	r.f("| bfdd | %d sessions (LAN A) | %s | %s | %s | %.0f | %s | %d |\n", many, u.cell(), u.kernel, u.softirq, wakes, pct(zebra[0]), downs)
	for _, f := range nodes {
		f.stopBFD()
	}
	if err := addrs("del"); err != nil {
		return err
	}
	// faild with one real peer, then with emulated ones.
	if err := startAll(l, 2, "-r", "-t", "0.1", "-f", "3", "-s", "3"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	fo0 := failovers()
	var fo int
	u, _, wakes, err = measureCPU(l.Node(1).Pid(), d, dir, func() { fo = failovers() - fo0 })
	stopAll(l)
	if err != nil {
		return err
	}
	r.f("| faild -t 0.1 | 1 peer (LANs A and B) | %s | %s | %s | %.0f | | %d |\n", u.cell(), u.kernel, u.softirq, wakes, fo)
	emu := filepath.Join(dir, "peeremu")
	if b, err := exec.Command("go", "build", "-o", emu, "./test/peeremu/cmd/peeremu").CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build peeremu: %w: %s", err, b)
	}
	var ratios []string
	for _, procs := range []string{"", "2"} {
		u, wakes, fo, err := faildEmulated(l, emu, dir, many, procs, d, failovers)
		if err != nil {
			return err
		}
		share := u.own
		who := "faild -t 0.1"
		if procs != "" {
			who += ", GOMAXPROCS=" + procs
		}
		r.f("| %s | %d peers (peeremu, LANs A and B) | %s | %s | %s | %.0f | | %d |\n", who, many, u.cell(), u.kernel, u.softirq, wakes, fo)
		if bfdMany > 0 {
			ratios = append(ratios, fmt.Sprintf("%.2f× (%s)", share/bfdMany, who))
			aim(fmt.Sprintf("CPU, %d peers at -t 0.1 (%s) against bfdd's %d sessions at 100 ms", many, who, many),
				"≤ 0.10× bfdd's", fmt.Sprintf("%.2f× (%s against %s)", share/bfdMany, pctOf(share), pctOf(bfdMany)), share <= 0.1*bfdMany)
		}
	}
	if len(ratios) > 0 {
		r.f("\nfaild with %d peers on two LANs uses %s the CPU of bfdd with %d sessions on one LAN (target: 0.1×).\n", many, strings.Join(ratios, " and "), many)
	}
	return nil
}

// faildEmulated runs faild on node1 at -t 0.1 against peers emulated
// peers (GOMAXPROCS=procs unless empty) and measures its CPU over d
// (measureCPU): its usage, wake-ups per second and failovers.
func faildEmulated(l *lab.Lab, emu, dir string, peers int, procs string, d time.Duration, failovers func() int) (usage, float64, int, error) {
	if err := startProcs(l.Node(1), procs, undamped("-r", "-t", "0.1", "-f", "3", "-s", "3")...); err != nil {
		return usage{}, 0, 0, err
	}
	defer stopAll(l)
	e, err := startEmulator(l, emu, peers, "0.1")
	if err != nil {
		return usage{}, 0, 0, err
	}
	defer e.stop()
	deadline := time.Now().Add(15 * time.Second)
	for len(lab.Find(l.Node(1).Events(), "msg", "discovered")) < peers && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	fo0 := failovers()
	var fo int
	u, _, wakes, err := measureCPU(l.Node(1).Pid(), d, dir, func() { fo = failovers() - fo0 })
	if err != nil {
		return usage{}, 0, 0, err
	}
	return u, wakes, fo, nil
}

// bfdLoss counts faild's failovers and bfdd's session downs over the same
// periods of random loss on node2's LAN-A port, at 100 ms × 3.
func bfdLoss(l *lab.Lab, r *report, nodes []*frrNode) error {
	d := time.Duration(envInt("BENCH_BFD_LOSS_SECS", 15)) * time.Second
	const iv = 100 * time.Millisecond
	r.f("\n### False downs under random loss (Loss on node2's LAN-A port, both directions, 100 ms × 3, %v per setting, both running at once)\n\n", d)
	r.f("Counted on both nodes: faild's failover events for the LAN-A path, bfdd's up → down changes. Per simulated hour: per path (or session), 3,600 intervals.\n\n")
	r.f("| loss | faild failovers (node1 + node2) | per hour | bfdd downs (node1 + node2) | per hour |\n|---|---|---|---|---|\n")
	if err := startAll(l, 2, "-r", "-t", "0.1", "-f", "3", "-s", "3"); err != nil {
		return err
	}
	defer stopAll(l)
	if err := startPair(nodes, iv); err != nil {
		return err
	}
	load0 := loadavg()
	defer func() { r.f("\nLoad average during the loss runs: %s at start, %s at end.\n", load0, loadavg()) }()
	hours := func(n int, span time.Duration) float64 { return float64(n) / 2 / (float64(span) / float64(iv) / 3600) }
	for _, ps := range envList("BENCH_BFD_LOSS", "0,10,20,30") {
		p, _ := strconv.Atoi(ps)
		if _, err := flush(l); err != nil {
			return err
		}
		for _, f := range nodes {
			if err := f.log.waitUps(1, 15*time.Second); err != nil {
				return fmt.Errorf("bfdd on %s: %w", f.node, err)
			}
		}
		time.Sleep(time.Second)
		for _, f := range nodes {
			f.log.drain()
		}
		if err := l.Loss(lab.A, 2, p); err != nil {
			return err
		}
		start := time.Now()
		time.Sleep(d)
		end := time.Now()
		fo, downs := 0, 0
		for i := 1; i <= 2; i++ {
			for _, e := range lab.Find(l.Node(i).Events(), "msg", "failover") {
				if t := e.Time(); !t.Before(start) && t.Before(end) {
					fo++
				}
			}
		}
		for _, f := range nodes {
			d, _ := f.log.changesIn(start, end)
			downs += d
		}
		span := end.Sub(start)
		r.f("| %d%% | %d | %.1f | %d | %.1f |\n", p, fo, hours(fo, span), downs, hours(downs, span))
		if p > 0 {
			aim(fmt.Sprintf("false failovers at %d%% loss, 100 ms × 3, %v, both nodes", p, span.Round(time.Second)), "≤ bfdd's downs",
				fmt.Sprintf("faild %d, bfdd %d", fo, downs), fo <= downs)
		}
	}
	_, err := flush(l)
	return err
}

// bfdNotes say how the section is timed; the same every run.
const bfdNotes = `
How this section is timed and what it means:

- **Clock.** Cut and heal times are when the netlink call that made them returned, for faild and bfdd alike (one cut serves both); the calls take a millisecond or two (last column). faild's times are when netlink reports its route; bfdd's are bfdd's own log timestamps (log timestamp precision 6, "debug bfd peer" state-change lines), written as it changes the state, read back from the log file; both use the host's wall clock. Polling "show bfd peers json" was not used: one vtysh call takes about 40 ms.
- **Cut kinds.** A pair cut leaves node2's other peers (none run here) and its carrier alone. The host cut drops every frame at node2's own eth0, so node2 hears no one and no one hears it, with the carrier up: both ends detect by missed packets. The port cut takes node2's carrier away: faild on node2 sees its link go down (netlink) and fails over at once; node1 keeps its link and detects by missed packets.
- **Spread.** faild takes a path down at the 2f−1st slot of its two evidence streams (ACKs to its INQs, the peer's INQs) since the last evidence: at -f 3 between two and three intervals after the cut, where in that interval depending on where the cut falls between the two streams' phases. The requestors place their INQs evenly over the interval by node id (routes/phase.go), so the pair here sends half an interval apart: 2 to 2.5 intervals after the cut, 2.25 on average (2.5 if they were in phase, as nodes started together are before placement). bfdd's session goes down 3 intervals after the last packet, which came up to one jittered interval (75–100 %) before the cut: about 2.1 to 3 intervals, 2.56 on average. So the ratio to expect is about 0.9 (faild adds the 5 ms grace and its route write). The median of 32 cuts moves by about 2.5 % (one standard deviation of the ratio) from run to run, so one row in ten may come out 4 % off; the ratio of the means beside it moves less.
- **What is detected.** bfdd declares a session down; it installs no route (nothing here makes routing follow it), so its figures leave out the route write that faild's include.
- **Recovery.** faild removes its route after -s 3 good intervals. bfdd needs the three-way handshake (Down → Init → Up), and a session that is not up transmits at most once a second (RFC 5880 §6.8.3; FRR's slow timer), so its recovery is the wait for the first packet after the heal, anywhere in about 0–2 s, plus a few ms of handshake: its spread, not its median, is the figure to compare.
- **CPU** is the sum of the schedstat run time of the process's threads (ns), not USER_HZ ticks. Own CPU, its spread and the kernel's part of it are as in the scale section (see the notes at the end). bfdd's 50 sessions run between 50 secondary addresses on each node (192.0.2.100–149 on node1, 192.0.2.200–249 on node2), because bfdd keys a single-hop session by peer address and interface; faild's 50 peers are peeremu's, each on both LANs, so faild does twice the work of that many one-LAN sessions.
- **Loss** is applied to node2's LAN-A switch port in both directions (lab Loss), so each packet between the nodes is lost with p once. A false down of one end usually brings the other end down too (it hears Down), and both are counted. The 0% row is the control: downs there come from the machine (a stalled process misses its deadlines), not from loss, and the same stalls add to the other rows.
`
