// Command bench measures faild on the namespace lab with the real binary
// and writes the figures as a Markdown table (make bench, as root): failover
// and switchback latency, carrier loss, TCP resumption, footprint, scale
// with a peer emulator, false failovers under random loss, bfdd side by
// side and gray failures (loss with and without --max-loss). It records
// figures; it passes or fails nothing. Counts come from BENCH_* variables
// so that a quick run is possible (see envInt below and BENCHMARKS.md).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/faild/faild/test/lab"
	"github.com/faild/faild/test/peeremu"
)

// protoFaild is the route protocol faild marks its routes with.
const protoFaild = 157

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}

// report collects the Markdown output.
type report struct{ b strings.Builder }

func (r *report) f(format string, args ...any) {
	fmt.Fprintf(&r.b, format, args...)
	fmt.Printf(format, args...)
}

func main() {
	stop := lab.CleanupOnSignal()
	code := 0
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		code = 1
	}
	stop()
	os.Exit(code)
}

func run() error {
	if err := lab.CheckEnv(); err != nil {
		return err
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = "BENCHMARKS.md"
	}
	only := map[string]bool{}
	for _, s := range envList("BENCH_ONLY", "micro,failover,carrier,tcp,footprint,scale,loss,bfd,gray") {
		only[s] = true
	}
	dir, err := os.MkdirTemp("", "faildbench-")
	if err != nil {
		return fmt.Errorf("failed to create work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bin, err := lab.Build(dir)
	if err != nil {
		return err
	}
	l, err := lab.New(lab.Options{Nodes: 4, Bin: bin, Dir: dir})
	if err != nil {
		return err
	}
	defer l.Close()

	r := &report{}
	start := time.Now()
	load0 := loadavg()
	var body report
	sections := []struct {
		name string
		fn   func(*lab.Lab, *report, string) error
	}{
		{"micro", micro}, {"failover", failover}, {"carrier", carrier}, {"tcp", tcpResume},
		{"footprint", footprint}, {"scale", scale}, {"loss", loss}, {"bfd", bfd}, {"gray", gray},
	}
	var errs []error
	for _, s := range sections {
		if !only[s.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", s.name)
		t0 := time.Now()
		if err := s.fn(l, &body, dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			body.f("\n**%s failed:** %v\n", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s took %v\n", s.name, time.Since(t0).Round(time.Second))
		for _, n := range l.Nodes {
			if n.Running() {
				_ = n.Stop()
			}
		}
		_ = l.Heal()
	}
	r.f("# faild benchmarks\n\nWritten by `make bench` (test/bench); figures of the latest run. They are records, not pass/fail tests.\n\n")
	r.f("| | |\n|---|---|\n")
	r.f("| date | %s |\n", start.UTC().Format("2006-01-02 15:04 UTC"))
	r.f("| machine | %d CPUs (`nproc`), %s |\n", runtime.NumCPU(), cpuModel())
	r.f("| kernel | %s |\n", strings.TrimSpace(cmdOut("uname", "-r")))
	r.f("| virtualisation | %s |\n", virtualisation())
	r.f("| Go | %s |\n", strings.TrimSpace(cmdOut("go", "version")))
	r.f("| load average | %s at start, %s at end; run took %v |\n", load0, loadavg(), time.Since(start).Round(time.Second))
	if n := os.Getenv("BENCH_LOAD_NOTE"); n != "" {
		r.f("| load note | %s |\n", n)
	}
	r.f("%s", body.b.String())
	writeGoals(r)
	r.f("%s", notes)
	if err := os.WriteFile(out, []byte(r.b.String()), 0o644); err != nil {
		errs = append(errs, fmt.Errorf("failed to write %s: %w", out, err))
	}
	errs = append(errs, l.Close())
	return errors.Join(errs...)
}

func cmdOut(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return string(b)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// virtualisation says whether the kernel runs under a hypervisor (which,
// when the boot log still says), and whether it isolates its page tables,
// and with PCID or without: what makes system calls dear (see
// BenchmarkNullSyscall).
func virtualisation() string {
	flags := map[string]bool{}
	for _, f := range strings.Fields(cpuinfo("flags")) {
		flags[f] = true
	}
	what := "no hypervisor flag"
	if flags["hypervisor"] {
		what = "under a hypervisor"
		if m := regexp.MustCompile(`Hypervisor detected: (\S+)`).FindStringSubmatch(cmdOut("dmesg")); m != nil {
			what += " (" + m[1] + ")"
		}
	}
	meltdown, err := os.ReadFile("/sys/devices/system/cpu/vulnerabilities/meltdown")
	if err != nil {
		return what + "; page-table isolation not known"
	}
	pti := strings.TrimSpace(string(meltdown)) // "Mitigation: PTI" when on
	if strings.Contains(pti, "PTI") {
		pcid := "without PCID"
		if flags["pcid"] {
			pcid = "with PCID"
		}
		pti += ", " + pcid
	}
	return what + "; meltdown: " + pti
}

func cpuModel() string {
	if m := cpuinfo("model name"); m != "" {
		return m
	}
	return "unknown CPU"
}

// cpuinfo is the value of the first line of /proc/cpuinfo with key, or "".
func cpuinfo(key string) string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// micro runs the Go micro-benchmarks of the per-packet path.
func micro(_ *lab.Lab, r *report, _ string) error {
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", "./proto/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to run micro-benchmarks: %w: %s", err, out)
	}
	r.f("\n## Per-packet path (go test -bench ./proto/)\n\n| benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|\n")
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && strings.HasPrefix(f[0], "Benchmark") {
			r.f("| %s | %s | %s | %s |\n", f[0], f[2], f[4], f[6])
			if strings.HasPrefix(f[0], "BenchmarkPerPacket") {
				aim("allocations per packet, "+strings.TrimPrefix(f[0], "Benchmark"), "0", f[6]+" allocs/op", f[6] == "0")
			}
		}
	}
	r.f("\nPerPacket: decode + checks + path-table evidence update (routes.Table.Observe) + ACK encode, 1000 peers, in memory. ServeLoopback: one INQ/ACK round trip through Serve and a real socket on lo, client included, in batches (recvmmsg and sendmmsg, made as raw system calls: see proto/conn_linux.go). NullSyscall: getppid, what entering and leaving the kernel costs here; PerPacketAfterSyscall: PerPacket with one before each packet, whose excess over the two apart is the user-space work slowed by the caches and TLB the kernel left behind. Both say what this machine does to the CPU figures of the lab sections.\n")
	return nil
}

// routeEv is one change to a faild route in a node, as netlink reported it.
type routeEv struct {
	at  time.Time
	add bool
	dst netip.Addr
}

// watcher follows faild's routes in one node's namespace through a
// netlink route subscription: it sees a route the moment the kernel has it.
type watcher struct {
	ch   chan routeEv
	done chan struct{}
}

// watchPair watches nodes 1 and 2, the two ends of the bench's cuts.
func watchPair(l *lab.Lab) (w1, w2 *watcher, err error) {
	if w1, err = watch(l.Node(1).NS); err != nil {
		return nil, nil, err
	}
	if w2, err = watch(l.Node(2).NS); err != nil {
		w1.close()
		return nil, nil, err
	}
	return w1, w2, nil
}

func watch(ns string) (*watcher, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("failed to open namespace %s: %w", ns, err)
	}
	defer h.Close()
	up := make(chan netlink.RouteUpdate, 8192)
	w := &watcher{ch: make(chan routeEv, 8192), done: make(chan struct{})}
	// A big socket buffer: a thousand routes arrive in one burst when a
	// LAN dies for every peer at once.
	err = netlink.RouteSubscribeWithOptions(up, w.done, netlink.RouteSubscribeOptions{Namespace: &h,
		ReceiveBufferSize: 16 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case <-w.done: // closing the subscription ends its receive with an error
			default:
				fmt.Fprintf(os.Stderr, "bench: route subscription in %s: %v\n", ns, err)
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("failed to subscribe to routes in %s: %w", ns, err)
	}
	go func() {
		for u := range up {
			now := time.Now()
			if u.Route.Protocol != protoFaild || u.Route.Dst == nil {
				continue
			}
			a, _ := netip.AddrFromSlice(u.Route.Dst.IP)
			w.ch <- routeEv{at: now, add: u.Type == syscall.RTM_NEWROUTE, dst: a.Unmap()}
		}
	}()
	return w, nil
}

func (w *watcher) close() { close(w.done) }

func (w *watcher) drain() {
	for {
		select {
		case <-w.ch:
		default:
			return
		}
	}
}

// wait returns when dst was added (add) or removed, or false at timeout.
func (w *watcher) wait(add bool, dst string, timeout time.Duration) (time.Time, bool) {
	want := netip.MustParseAddr(dst)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e := <-w.ch:
			if e.add == add && e.dst == want {
				return e.at, true
			}
		case <-t.C:
			return time.Time{}, false
		}
	}
}

// waitN returns when n distinct routes were added (or removed), with the
// time of the last, or how many came by the timeout.
func (w *watcher) waitN(add bool, n int, timeout time.Duration) (time.Time, int) {
	seen := map[netip.Addr]bool{}
	var last time.Time
	t := time.NewTimer(timeout)
	defer t.Stop()
	for len(seen) < n {
		select {
		case e := <-w.ch:
			if e.add == add && !seen[e.dst] {
				seen[e.dst] = true
				last = e.at
			}
		case <-t.C:
			return last, len(seen)
		}
	}
	return last, len(seen)
}

// flush heals the switch's injected rules in one nft call, which is
// quicker than lab.Heal's link commands and what a cut's end should be.
func flush(l *lab.Lab) (time.Time, error) {
	out, err := exec.Command("ip", "netns", "exec", l.Switch(), "nft", "flush", "chain", "bridge", "faildlab", "forward").CombinedOutput()
	if err != nil {
		return time.Time{}, fmt.Errorf("failed to flush rules: %w: %s", err, out)
	}
	return time.Now(), nil
}

// startAll runs faild with args on nodes 1..n and waits until each has
// discovered the others.
// undamped is how the bench starts faild: with anti-flap damping off. The
// bench cuts the same path again and again within seconds, which damping
// rightly takes for flapping, and switchbacks would then measure the
// damping (up to 16 times -s intervals), not detection; damping has its
// own lab test (TestDampedFlapping).
func undamped(args ...string) []string {
	return append(args, "--damp-window", "0")
}

func startAll(l *lab.Lab, n int, args ...string) error {
	for i := 1; i <= n; i++ {
		if err := l.Node(i).Start(undamped(args...)...); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; i <= n; i++ {
		for len(lab.Find(l.Node(i).Events(), "msg", "discovered")) < n-1 {
			if time.Now().After(deadline) {
				return fmt.Errorf("node%d did not discover its peers in 10s", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func stopAll(l *lab.Lab) {
	for _, n := range l.Nodes {
		if n.Running() {
			_ = n.Stop()
		}
	}
}

// stats is min / median / p95 / max of a sample.
type stats struct{ min, med, p95, max time.Duration }

func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(math.Ceil(p*float64(len(s))))-1] }
	return stats{s[0], q(0.5), q(0.95), s[len(s)-1]}
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(len(d), 1))
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

// ms is min / med / p95 / max in ms.
func (s stats) ms() string {
	return fmt.Sprintf("%s / %s / %s / %s", ms(s.min), ms(s.med), ms(s.p95), ms(s.max))
}

func (s stats) cells(theory time.Duration) string {
	ratio := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/float64(theory), 'f', 2, 64) }
	return fmt.Sprintf("%s / %s / %s / %s | %s / %s / %s / %s", ms(s.min), ms(s.med), ms(s.p95), ms(s.max),
		ratio(s.min), ratio(s.med), ratio(s.p95), ratio(s.max))
}

// failover cuts LAN A between nodes 1 and 2 at the switch and measures, on
// both nodes, cut → host route in the kernel and heal → route gone.
func failover(l *lab.Lab, r *report, _ string) error {
	r.f("\n## Failover and switchback (CutPair on LAN A at the switch, -f 3 -s 3, 2 nodes)\n\n")
	r.f("Time from the nft cut being in force to the host route appearing in the kernel (netlink route subscription in the node's namespace), both ends of the cut counted, so each cut gives two samples. Switchback: from the nft flush to the route's removal. Ratio: to interval × 3.\n\n")
	r.f("| -t | cuts | failover ms min / med / p95 / max | ratio | switchback ms min / med / p95 / max | ratio | nft call ms (med) |\n|---|---|---|---|---|---|---|\n")
	w1, w2, err := watchPair(l)
	if err != nil {
		return err
	}
	defer w1.close()
	defer w2.close()
	for _, ivs := range envList("BENCH_INTERVALS", "1,0.1,0.02,0.01") {
		iv, err := time.ParseDuration(ivs + "s")
		if err != nil {
			return fmt.Errorf("failed to parse interval %q: %w", ivs, err)
		}
		cuts := envInt("BENCH_CUTS", 20)
		if iv >= time.Second {
			cuts = envInt("BENCH_CUTS_SLOW", 4)
		}
		if err := startAll(l, 2, "-r", "-t", ivs, "-f", "3", "-s", "3"); err != nil {
			return err
		}
		var fo, sb, calls []time.Duration
		for range cuts {
			time.Sleep(3*iv + rand.N(iv))
			w1.drain()
			w2.drain()
			before := time.Now()
			if err := l.CutPair(lab.A, 1, 2); err != nil {
				return err
			}
			cut := time.Now()
			calls = append(calls, cut.Sub(before))
			for _, c := range []struct {
				w   *watcher
				dst string
			}{{w1, lab.A.Addr(2)}, {w2, lab.A.Addr(1)}} {
				if at, ok := c.w.wait(true, c.dst, 10*iv+2*time.Second); ok {
					fo = append(fo, at.Sub(cut))
				}
			}
			time.Sleep(rand.N(iv))
			heal, err := flush(l)
			if err != nil {
				return err
			}
			for _, c := range []struct {
				w   *watcher
				dst string
			}{{w1, lab.A.Addr(2)}, {w2, lab.A.Addr(1)}} {
				if at, ok := c.w.wait(false, c.dst, 10*iv+2*time.Second); ok {
					sb = append(sb, at.Sub(heal))
				}
			}
		}
		stopAll(l)
		theory := 3 * iv
		r.f("| %s | %d (%d+%d samples) | %s | %s | %s |\n", ivs, cuts, len(fo), len(sb), summarize(fo).cells(theory), summarize(sb).cells(theory), ms(summarize(calls).med))
	}
	return nil
}

// carrier sets node 2's LAN-A interface down and measures until each end
// has its host route.
func carrier(l *lab.Lab, r *report, _ string) error {
	reps := envInt("BENCH_CARRIER", 10)
	r.f("\n## Carrier-loss failover (LinkDown of node2's eth0, -t 0.1 -f 3, %d times)\n\n", reps)
	w1, w2, err := watchPair(l)
	if err != nil {
		return err
	}
	defer w1.close()
	defer w2.close()
	if err := startAll(l, 2, "-r", "-t", "0.1", "-f", "3", "-s", "3"); err != nil {
		return err
	}
	var d1, d2 []time.Duration
	for range reps {
		time.Sleep(400*time.Millisecond + rand.N(100*time.Millisecond))
		w1.drain()
		w2.drain()
		if err := l.LinkDown(lab.A, 2); err != nil {
			return err
		}
		down := time.Now()
		if at, ok := w2.wait(true, lab.A.Addr(1), 3*time.Second); ok {
			d2 = append(d2, at.Sub(down))
		}
		if at, ok := w1.wait(true, lab.A.Addr(2), 3*time.Second); ok {
			d1 = append(d1, at.Sub(down))
		}
		if err := l.LinkUp(lab.A, 2); err != nil {
			return err
		}
		w1.wait(false, lab.A.Addr(2), 3*time.Second)
		w2.wait(false, lab.A.Addr(1), 3*time.Second)
	}
	stopAll(l)
	r.f("| node | samples | ms min / med / p95 / max | ratio to 300 ms |\n|---|---|---|---|\n")
	r.f("| node2 (its own link went down) | %d | %s |\n", len(d2), summarize(d2).cells(300*time.Millisecond))
	r.f("| node1 (peer's link went down) | %d | %s |\n", len(d1), summarize(d1).cells(300*time.Millisecond))
	r.f("\nnode2 sees its own link go down through a netlink link subscription and fails every path on that LAN over at once; node1, whose link stays up, detects the loss by missed evidence like any cut.\n")
	return nil
}

func mustFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// footprint: binary sizes, start-up time to the first INQ, idle RSS.
func footprint(l *lab.Lab, r *report, dir string) error {
	r.f("\n## Footprint\n\n| what | value |\n|---|---|\n")
	for _, arch := range []string{"amd64", "arm64", "arm"} {
		out := filepath.Join(dir, "faild-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./faild")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to build for %s: %w: %s", arch, err, b)
		}
		fi, err := os.Stat(out)
		if err != nil {
			return err
		}
		r.f("| binary linux/%s (CGO off, -s -w, static) | %.2f MiB (%d bytes) |\n", arch, float64(fi.Size())/(1<<20), fi.Size())
	}
	// Start-up: from exec to the first INQ heard by a listener on node2.
	var ups []time.Duration
	var pc net.PacketConn
	if err := inNS(l.Node(2).NS, func() (err error) {
		pc, err = net.ListenPacket("udp4", "0.0.0.0:4117")
		return err
	}); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	for range envInt("BENCH_STARTS", 5) {
		t0 := time.Now()
		if err := l.Node(1).Start(undamped("-r", "-t", "1")...); err != nil {
			pc.Close()
			return err
		}
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := pc.ReadFrom(buf); err == nil {
			ups = append(ups, time.Since(t0))
		}
		_ = l.Node(1).Stop()
		time.Sleep(100 * time.Millisecond)
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				break
			}
		}
	}
	pc.Close()
	s := summarize(ups)
	r.f("| start-up to first INQ on the wire (exec via ip netns exec → packet at a listener on LAN A or B), %d starts | min %s / med %s / max %s ms |\n", len(ups), ms(s.min), ms(s.med), ms(s.max))
	if err := startAll(l, 4, "-r", "-t", "1", "-f", "3", "-s", "3"); err != nil {
		return err
	}
	time.Sleep(time.Duration(envInt("BENCH_IDLE_SECS", 10)) * time.Second)
	st := procStatus(l.Node(1).Pid())
	r.f("| RSS at idle, 3 peers, -t 1, after %ds (VmRSS / VmHWM) | %s / %s |\n", envInt("BENCH_IDLE_SECS", 10), st["VmRSS"], st["VmHWM"])
	stopAll(l)
	return nil
}

// inNS runs fn on a thread in namespace ns; sockets it opens stay there.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("failed to open namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("failed to enter namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func procStatus(pid int) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// udpRcvbufErrors reads the UDP receive-buffer drop counter of a namespace.
func udpRcvbufErrors(n *lab.Node) int64 {
	out, err := n.Exec("cat", "/proc/net/snmp")
	if err != nil {
		return -1
	}
	var head []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return -1
}

// emulator is a running peeremu in node2's namespace.
type emulator struct {
	cmd   *exec.Cmd
	out   *strings.Builder
	stats chan string // the counter lines it prints on SIGUSR1
	done  chan struct{}
}

func startEmulator(l *lab.Lab, bin string, peers int, iv string, args ...string) (*emulator, error) {
	argv := append([]string{"netns", "exec", l.Node(2).NS, bin, "-n", strconv.Itoa(peers), "-t", iv + "s"}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start peeremu: %w", err)
	}
	e := &emulator{cmd: cmd, out: &strings.Builder{}, stats: make(chan string, 4), done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			switch t := sc.Text(); {
			case t == "ready":
				ready <- true
			case strings.HasPrefix(t, "inq_sent="):
				select {
				case e.stats <- t:
				default:
				}
			}
			e.out.WriteString(sc.Text())
		}
		_ = cmd.Wait()
		close(e.done)
	}()
	select {
	case <-ready:
		return e, nil
	case <-e.done:
		return nil, fmt.Errorf("peeremu exited: %s", errb.String())
	case <-time.After(30 * time.Second):
		e.stop()
		return nil, errors.New("peeremu not ready in 30s")
	}
}

// counters asks the emulator for its counters (SIGUSR1) and parses them.
func (e *emulator) counters() (map[string]int64, error) {
	if err := e.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return nil, fmt.Errorf("failed to signal peeremu: %w", err)
	}
	select {
	case line := <-e.stats:
		m := map[string]int64{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k], _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return m, nil
	case <-e.done:
		return nil, errors.New("peeremu exited")
	case <-time.After(5 * time.Second):
		return nil, errors.New("peeremu did not print its counters in 5s")
	}
}

func (e *emulator) stop() string {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(20 * time.Second): // 10,000 addresses to remove
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	return e.out.String()
}

// pinNeighbours gives node1 permanent neighbour entries for every fake
// peer address, pointing at node2's MAC on each LAN. The kernel's
// neighbour table is shared by every namespace and holds at most
// gc_thresh3 (1024 by default) entries that may be garbage-collected;
// 1,000 peers on two LANs need 2,000, and that sysctl is the host's, not
// the lab's. Permanent entries are exempt from the limit.
func pinNeighbours(l *lab.Lab, peers int) error {
	var b strings.Builder
	for _, lan := range lab.LANs {
		mac, err := l.Node(2).Exec("cat", "/sys/class/net/"+lan.Iface()+"/address")
		if err != nil {
			return err
		}
		pfx := netip.MustParsePrefix(l.Node(2).Addr6(lan) + "/64")
		for i := range peers {
			a := peeremu.HostAddr(pfx, peeremu.FirstV6+i)
			fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", a, strings.TrimSpace(mac), lan.Iface())
		}
	}
	cmd := exec.Command("ip", "-n", l.Node(1).NS, "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to add neighbour entries: %w: %s", err, out)
	}
	return nil
}

// scale runs one faild on node1 of a lab of its own with IPv6-only LANs
// (/64s hold any crowd) against the peer emulator on node2.
func scale(main *lab.Lab, r *report, dir string) error {
	emu := filepath.Join(dir, "peeremu")
	if b, err := exec.Command("go", "build", "-o", emu, "./test/peeremu/cmd/peeremu").CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build peeremu: %w: %s", err, b)
	}
	ldir := filepath.Join(dir, "scale6")
	if err := os.Mkdir(ldir, 0o755); err != nil {
		return err
	}
	l, err := lab.New(lab.Options{Family: lab.IPv6, Nodes: 2, Bin: main.Bin, Dir: ldir})
	if err != nil {
		return err
	}
	defer l.Close()
	secsN := envInt("BENCH_SCALE_SECS", 8)
	cutAt := envInt("BENCH_SCALE_CUT", 1000)
	type setting struct {
		iv    string
		peers int
		procs string // GOMAXPROCS for faild, "" for the default
	}
	var rows []setting
	most := 0
	for _, rs := range envList("BENCH_SCALE_ROWS", "1/100,1/1000,1/5000,0.1/50,0.1/100,0.1/1000,0.05/50,0.01/50,1/1000/2,0.1/50/2") {
		f := strings.Split(rs, "/")
		n, err := strconv.Atoi(f[min(1, len(f)-1)])
		if len(f) < 2 || len(f) > 3 || err != nil || n < 1 || mustFloat(f[0]) < 0.01 {
			return fmt.Errorf("bad BENCH_SCALE_ROWS entry %q: want interval/peers[/GOMAXPROCS], such as 0.1/50", rs)
		}
		row := setting{iv: f[0], peers: n}
		if len(f) == 3 {
			if p, err := strconv.Atoi(f[2]); err != nil || p < 1 {
				return fmt.Errorf("bad BENCH_SCALE_ROWS entry %q: GOMAXPROCS must be a positive number", rs)
			}
			row.procs = f[2]
		}
		rows = append(rows, row)
		most = max(most, n)
	}
	if err := pinNeighbours(l, most); err != nil {
		return err
	}
	r.f("\n## Scale (one faild on node1, peeremu on node2 playing N peers on both LANs, IPv6-only LANs, -f 3 -s 3 --max-peers 6000)\n\n")
	r.f("The LANs are 2001:db8:a::/64 and 2001:db8:b::/64; each fake peer has its own node id and one address per LAN (2001:db8:a::1:N:0:1, 2001:db8:b::1:N:0:1), sends INQs to ff12::4117 on both, spread over the interval in ten slots, and answers each of faild's INQs at once. ")
	r.f("CPU: the schedstat run time of all threads per wall second over %d s after discovery and 2 s of warm-up, for faild and for the emulator. faild's own CPU is that run time less the share of it spent in softirqs on its threads (perf samples of faild's threads at 1999 Hz with kernel call chains, same window): the veth runs the switch's and the emulator's receiving in a softirq inside faild's sendmmsg, and this kernel, without IRQ time accounting, charges it to faild (see the notes). Wake-ups: how often one of faild's threads was put on a CPU, per second (schedstat). Peak RSS: faild's VmHWM at the end. ", secsN)
	r.f("Emulator sent: its INQs against peers × 2 LANs × window / interval, and its ACKs against faild's INQs it heard × peers; ACKs back: faild's ACKs the emulator heard against the INQs it sent. A row whose emulator sent less than 95%% of what it owed measures a lighter load than its label: its faild figures are withheld. Load average during the rows: in the last column.\n\n")
	r.f("| -t | peers | faild's own CPU (%% of one core; lowest–highest of %d parts) | of it in the kernel | softirq on faild's threads | wake-ups/s | faild peak RSS | false failovers | faild UDP rcvbuf drops | emulator CPU | emulator sent INQs / ACKs | ACKs back | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", cpuParts)
	w1, err := watch(l.Node(1).NS)
	if err != nil {
		return err
	}
	defer w1.close()
	var downs []string
	for _, s := range rows {
		row, err := scaleRow(l, emu, s.iv, s.peers, s.procs, secsN, w1, s.peers == cutAt && s.procs == "", &downs)
		if err != nil {
			return err
		}
		r.f("%s | %s |\n", row, loadavg())
	}
	r.f("\nLAN A dies for every peer at once (LANDown at the switch) with %d peers: time from the nft rule to the last of the peers' /128 routes in the kernel (netlink route subscription), and from faild's last failover log line to that route.\n\n", cutAt)
	r.f("| -t | peers | routes in | last route after the cut | last route after the last failover log line |\n|---|---|---|---|---|\n")
	for _, d := range downs {
		r.f("%s\n", d)
	}
	return nil
}

// scaleRow measures one setting and returns its table row; with cut, it
// then takes LAN A down and appends the failover row to downs.
func scaleRow(l *lab.Lab, emu, iv string, peers int, procs string, secsN int, w1 *watcher, cut bool, downs *[]string) (string, error) {
	defer func() { _ = l.Heal() }()
	n1 := l.Node(1)
	if err := startProcs(n1, procs, undamped("-r", "-t", iv, "-f", "3", "-s", "3", "--max-peers", "6000")...); err != nil {
		return "", err
	}
	defer func() { _ = n1.Stop() }()
	e, err := startEmulator(l, emu, peers, iv, "-6")
	if err != nil {
		return fmt.Sprintf("| %s | %d | not measured: %v | | | | | | | | |", iv, peers, err), nil
	}
	defer e.stop()
	deadline := time.Now().Add(30 * time.Second)
	found := 0
	for found < peers && time.Now().Before(deadline) { // one event per peer
		time.Sleep(250 * time.Millisecond)
		found = len(lab.Find(n1.Events(), "msg", "discovered"))
	}
	// A faild that cannot discover the crowd in time is measured all the
	// same (its CPU is the figure that says why), and the row says so.
	label := strconv.Itoa(peers)
	if procs != "" {
		label += ", GOMAXPROCS=" + procs
	}
	if found < peers {
		label += fmt.Sprintf(" (faild had discovered only %d after 30 s)", found)
		cut = false
	}
	time.Sleep(2 * time.Second)
	pid, epid := n1.Pid(), e.cmd.Process.Pid
	drops0 := udpRcvbufErrors(n1)
	fo0 := len(lab.Find(n1.Events(), "msg", "failover"))
	c0, err := e.counters()
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	var (
		c1    map[string]int64
		cerr  error
		wall  time.Duration
		fo    int
		drops int64
	)
	u, emuShare, wakes, err := measureCPU(pid, time.Duration(secsN)*time.Second, l.Dir, func() {
		c1, cerr = e.counters()
		wall = time.Since(t0)
		fo = len(lab.Find(n1.Events(), "msg", "failover")) - fo0
		drops = udpRcvbufErrors(n1) - drops0
	}, epid)
	if err = errors.Join(err, cerr); err != nil {
		return "", err
	}
	cpu := u.own
	hwm := procStatus(pid)["VmHWM"]
	d := func(k string) float64 { return float64(c1[k] - c0[k]) }
	dueINQ := float64(peers) * 2 * wall.Seconds() / mustFloat(iv)
	dueACK := d("inq_heard") * float64(peers)
	inqPct, ackPct := 100*d("inq_sent")/dueINQ, 100*d("ack_sent")/max(dueACK, 1)
	backPct := 100 * d("ack_heard") / max(d("inq_sent"), 1)
	emuCells := fmt.Sprintf("%s | %.0f%% / %.0f%% | %.0f%%", pct(emuShare[0]), inqPct, ackPct, backPct)
	if errs := d("send_errors"); errs > 0 {
		emuCells += fmt.Sprintf(" (%.0f send errors)", errs)
	}
	scaleGoal(iv, peers, procs, cpu, inqPct >= 95 && ackPct >= 95)
	if inqPct < 95 || ackPct < 95 {
		return fmt.Sprintf("| %s | %s | not measured: the emulator did not keep up | | | | | | | %s", iv, label, emuCells), nil
	}
	row := fmt.Sprintf("| %s | %s | %s | %s | %s | %.0f | %s | %d | %d | %s", iv, label, u.cell(), u.kernel, u.softirq, wakes, hwm, fo, drops, emuCells)
	if cut {
		*downs = append(*downs, lanDownAll(l, w1, iv, peers))
	}
	return row, nil
}

// scaleGoal records a scale row that has a target in issue 16.
func scaleGoal(iv string, peers int, procs string, cpu float64, kept bool) {
	what := fmt.Sprintf("CPU, %d peers at -t %s", peers, iv)
	if procs != "" {
		what += ", GOMAXPROCS=" + procs
	}
	got := pctOf(cpu)
	if !kept {
		got = "not measured: the emulator did not keep up"
	}
	switch {
	case iv == "1" && peers == 1000:
		aim(what, "< 2% of a core", got, kept && cpu < 0.02)
	case iv == "1" && peers == 5000:
		aim(what, "< 10% of a core", got, kept && cpu < 0.10)
	case iv == "0.01" && peers == 50:
		record(what, got)
	}
}

// startProcs starts faild on n with GOMAXPROCS=procs in its environment
// (none: as the bench's own). lab.Node.Start hands faild the bench's
// environment, which the runtime read only at the bench's own start.
func startProcs(n *lab.Node, procs string, args ...string) error {
	if procs == "" {
		return n.Start(args...)
	}
	old, had := os.LookupEnv("GOMAXPROCS")
	os.Setenv("GOMAXPROCS", procs)
	defer func() {
		if had {
			os.Setenv("GOMAXPROCS", old)
		} else {
			os.Unsetenv("GOMAXPROCS")
		}
	}()
	return n.Start(args...)
}

// lanDownAll takes LAN A down for everyone and times the last route in.
func lanDownAll(l *lab.Lab, w *watcher, iv string, peers int) string {
	time.Sleep(time.Second)
	w.drain()
	failovers := func() []lab.Event { return lab.Find(l.Node(1).Events(), "msg", "failover", "lan", "A") }
	before := len(failovers()) // a false failover earlier in the row is not the cut's
	if err := l.LANDown(lab.A); err != nil {
		return fmt.Sprintf("| %s | %d | failed: %v | | |", iv, peers, err)
	}
	cut := time.Now()
	last, n := w.waitN(true, peers, 10*time.Second+time.Duration(mustFloat(iv)*6*float64(time.Second)))
	if n == 0 {
		return fmt.Sprintf("| %s | %d | 0 | no route came in | |", iv, peers)
	}
	// faild logs a failover after its route is written: wait for the
	// lines, or the last one would be missing from the log read.
	var fos []lab.Event
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if fs := failovers(); len(fs) >= before {
			if fos = fs[before:]; len(fos) >= n {
				break
			}
		}
	}
	var lastLog time.Time
	for _, e := range fos {
		if t := e.Time(); t.After(lastLog) {
			lastLog = t
		}
	}
	afterLog := "no failover logged"
	if !lastLog.IsZero() {
		afterLog = ms(last.Sub(lastLog)) + " ms"
	}
	if len(fos) < n {
		afterLog += fmt.Sprintf(" (%d failovers logged for %d routes)", len(fos), n)
	}
	return fmt.Sprintf("| %s | %d | %d | %s ms | %s |", iv, peers, n, ms(last.Sub(cut)), afterLog)
}

// loss counts failovers under random loss on node2's LAN-A port, next to
// what independent losses predict.
func loss(l *lab.Lab, r *report, _ string) error {
	d := time.Duration(envInt("BENCH_LOSS_SECS", 12)) * time.Second
	ivs := os.Getenv("BENCH_LOSS_INTERVAL")
	if ivs == "" {
		ivs = "0.01"
	}
	iv := time.Duration(mustFloat(ivs) * float64(time.Second))
	intervals := float64(d) / float64(iv)
	r.f("\n## False failovers under random loss (Loss on node2's LAN-A port, both directions, -t %s, %v per setting)\n\n", ivs, d)
	r.f("A simulated hour is 3,600 intervals (one hour at -t 1); %v at -t %s is %.2f of them. Counted: failover events on both nodes for the path over LAN A, per path.\n\n", d, ivs, intervals/3600)
	r.f("Model: each interval a path expects the ACK to our INQ (lost with a = 1−(1−p)², INQ or ACK) and the peer's own INQ (lost with p), at independent phases, so their slots alternate. A failover needs 2f−1 slots in a row missed after one that came: a run that starts with an ACK slot has f of those and f−1 INQ slots, (1−p)·a^f·p^(f−1), one that starts with an INQ slot (1−a)·p^f·a^(f−1); their sum per interval, times 3,600 per simulated hour; time spent invalid is ignored, and so is the peer's failover moving ours (its INQs then list us and count for nothing).\n\n")
	r.f("| loss | -f | failovers (node1 + node2) | per path per simulated hour | predicted |\n|---|---|---|---|---|\n")
	for _, f := range []int{3, 5} {
		if err := startAll(l, 2, "-r", "-t", ivs, "-f", strconv.Itoa(f), "-s", "3"); err != nil {
			return err
		}
		for _, ps := range envList("BENCH_LOSS", "10,20,30") {
			p, _ := strconv.Atoi(ps)
			if _, err := flush(l); err != nil {
				return err
			}
			time.Sleep(500 * time.Millisecond)
			if err := l.Loss(lab.A, 2, p); err != nil {
				return err
			}
			start := time.Now()
			time.Sleep(d)
			end := time.Now()
			count := 0
			for i := 1; i <= 2; i++ {
				for _, e := range lab.Find(l.Node(i).Events(), "msg", "failover") {
					if t := e.Time(); !t.Before(start) && t.Before(end) {
						count++
					}
				}
			}
			pred := 3600 * missedRate(float64(p)/100, f)
			perHour := float64(count) / 2 / (float64(end.Sub(start)) / float64(iv) / 3600)
			r.f("| %d%% | %d | %d | %.2f | %.3g |\n", p, f, count, perHour, pred)
		}
		stopAll(l)
	}
	return nil
}

// missedRate is how often per interval random loss p (each way) fails a
// path with both streams over for missed packets at -f f: 2f−1 expected
// packets in a row missed after one that came, the streams' slots taking
// turns (the loss section's model).
func missedRate(p float64, f int) float64 {
	a := 1 - (1-p)*(1-p) // an ACK slot: the INQ or its ACK lost
	return (1-p)*math.Pow(a, float64(f))*math.Pow(p, float64(f-1)) + (1-a)*math.Pow(p, float64(f))*math.Pow(a, float64(f-1))
}

// notes explain the tables; they are the same every run.
const notes = `
## Reading the figures

- **Failover below interval × misses.** A path with both streams (two requestors) fails once 2f−1 of its expected packets in a row, ACKs to our INQs and the peer's INQs together, have not come, each a grace of min(t/4, 5 ms) after it was due (routes/detect.go): the requestors place their INQs half an interval apart (two of them; n of them 1/n apart, routes/phase.go), so detection measured from the cut lies between (f−1)·t and (f−0.5)·t, at a median of about (f−0.75)·t, plus the route write. With one stream it is f of that stream's packets, between (f−1)·t and f·t.
- **Damping off.** Every faild in the bench runs with --damp-window 0: the bench cuts the same path again within seconds, which damping (default 30 s window) takes for flapping, so with it on the switchbacks would measure the damping, up to 16 × -s intervals, not detection. Damping has its own lab test, TestDampedFlapping.
- **Switchback and -s.** A path has two sources of evidence (ACKs to our INQs and the peer's own INQs), at different phases; routes.Table counts evidence as a new good interval only three quarters of an interval or more after the last one counted, so -s goods span at least (s−1)·0.75·t after the first evidence that follows the heal.
- **Clock reference.** Cut and heal times are taken when the nft command has returned, when the rule is certainly in force; the kernel commits it somewhat earlier, during the call, whose median length is in the last column. The true latencies lie between the figures and the figures plus that.
- **Carrier loss** on a node's own interface is seen at once through netlink (node2's row); the peer across the switch still detects it by missed evidence.
- **Scale** runs on a lab of its own with IPv6-only LANs (/64s), since the main lab's /24s hold at most 240 fake peers. UDP rcvbuf drops are the kernel's count (Udp RcvbufErrors) in faild's namespace during the CPU window: each INQ is answered by every fake peer at once, a burst that faild's socket buffer does not always hold. node1 gets a permanent neighbour entry for every fake address: the kernel's neighbour table is shared by all namespaces and caps collectable entries at gc_thresh3 (1024 by default, a host setting the lab does not change), fewer than 1,000 peers on two LANs need; a real host with that many neighbours must raise it. faild and the emulator share the machine's CPUs, so the emulator's load weighs on faild's figures at the larger crowds.
- **Own CPU and softirqs.** A veth hands each frame to the other end on the sending thread: the bridge and the receiving namespace's stack (here the emulator's, with its thousands of addresses) run in a softirq inside faild's sendmmsg. A kernel built with IRQ time accounting (CONFIG_IRQ_TIME_ACCOUNTING) keeps softirq time out of a task's run time; this machine's kernel is built without it and charges that work to faild. The CPU columns therefore give faild's own share, the schedstat run time less the share of perf's samples of faild's threads that fell in a softirq, with that part in a column of its own; their sum is the whole schedstat figure. Of the own share, the samples whose innermost frame is in the kernel (system calls, scheduling, faults) give the kernel's part, in the column beside it; the rest is user space. The own figure is read in four parts of its window, and the lowest and highest of them stand beside it, each part's run time taken less the whole window's softirq share. Sampling costs faild only while it runs; tracing every softirq instead added a third to faild's figure at 5,000 peers. The same is done for bfdd and faild beside each other.
- **GOMAXPROCS=2 rows** run faild with GOMAXPROCS=2 in its environment, the rest as shipped (faild sets GOMAXPROCS=1 unless the environment says otherwise). With more than one P, the Go scheduler wakes a second thread for each hand-over from a receiver to the decide loop; the wake-ups column shows what that costs.
- **Quick runs:** BENCH_ONLY (sections: micro, failover, carrier, tcp, footprint, scale, loss, bfd, gray), BENCH_INTERVALS, BENCH_CUTS, BENCH_CUTS_SLOW, BENCH_CARRIER, BENCH_TCP (cuts per interval), BENCH_TCP_INTERVALS, BENCH_BFD_KINDS (pair, host, port), BENCH_BFD_PARTS (cuts, cpu, loss), BENCH_STARTS, BENCH_IDLE_SECS, BENCH_SCALE_ROWS (interval/peers, comma-separated), BENCH_SCALE_SECS, BENCH_SCALE_CUT, BENCH_LOSS, BENCH_LOSS_SECS, BENCH_LOSS_INTERVAL, BENCH_BFD_INTERVALS, BENCH_BFD_CUTS, BENCH_BFD_CPU_SECS, BENCH_BFD_SESSIONS, BENCH_BFD_LOSS, BENCH_BFD_LOSS_SECS, BENCH_GRAY_INTERVALS, BENCH_GRAY_LOSS, BENCH_GRAY_SECS, BENCH_GRAY_CLEAN_SECS, BENCH_GRAY_MBPS, BENCH_GRAY_WINDOW, BENCH_GRAY_LOW, BENCH_GRAY_LOW_INTERVAL, BENCH_GRAY_LOW_SECS, BENCH_OUT, BENCH_LOAD_NOTE.
`
