package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopTimeout bounds how long Stop waits for faild to exit after SIGTERM
// before it kills it.
const StopTimeout = 5 * time.Second

// Node is one node namespace: eth0 on LAN A, eth1 on LAN B.
type Node struct {
	// ID is the node number, 1-based; it is the last octet of its addresses.
	ID int
	// NS is the namespace name.
	NS string

	lab *Lab

	mu      sync.Mutex
	starts  int
	proc    *process // the latest faild started, running or not
	bin     string   // this node's faild binary, if not the lab's
	wrapper []string // runs bin: qemu-arm-static for a foreign CPU
}

// process is one faild run.
type process struct {
	cmd  *exec.Cmd
	log  string // faild's -l file
	sock string // faild's --status-socket
	out  string // faild's stdout and stderr
	done chan struct{}
	err  error // from Wait, valid once done is closed
}

func (n *Node) String() string { return fmt.Sprintf("node%d", n.ID) }

// Addr is the node's address on a LAN: its IPv4 address, or its IPv6 one
// in an IPv6-only lab.
func (n *Node) Addr(lan LAN) string {
	if n.lab != nil && !n.lab.Family.Has4() {
		return lan.Addr6(n.ID)
	}
	return lan.Addr(n.ID)
}

// Addr6 is the node's IPv6 address on a LAN (in a lab with IPv6).
func (n *Node) Addr6(lan LAN) string { return lan.Addr6(n.ID) }

// SetBinary makes the node's next Start run bin, through wrapper if one
// is given: a cross-built faild under qemu-user ("qemu-arm-static"), as
// an embedded node of another CPU. qemu-user runs the program in its own
// process, so signals and Pid reach faild as without it.
func (n *Node) SetBinary(bin string, wrapper ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bin, n.wrapper = bin, wrapper
}

// Start runs the lab's faild binary (or the node's, see SetBinary) in the
// node's namespace as "faild --status-socket <socket> args... -l <log
// file>", or without the -l when args give one (-l PATH, --log-file PATH
// or --log-file=PATH), which is then the log Log reads. faild gets
// SIGKILL should the calling process die, so it never outlives a crashed
// test.
func (n *Node) Start(args ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	bin := n.bin
	if bin == "" {
		bin = n.lab.Bin
	}
	if bin == "" {
		return errors.New("failed to start faild: lab has no binary (Options.Bin)")
	}
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("failed to start faild on %s: already running", n)
	}
	n.starts++
	base := filepath.Join(n.lab.Dir, fmt.Sprintf("%s.%d", n, n.starts))
	p := &process{log: base + ".log", out: base + ".out", sock: base + ".sock", done: make(chan struct{})}
	out, err := os.Create(p.out)
	if err != nil {
		return fmt.Errorf("failed to create output file: %w", err)
	}
	defer out.Close()
	// Each node its own status socket, never the host's default one;
	// first, so that args may still name another.
	argv := append(append([]string{"netns", "exec", n.NS}, n.wrapper...), bin, "--status-socket", p.sock)
	argv = append(argv, args...)
	if path, ok := logArg(args); ok {
		p.log = path
	} else {
		argv = append(argv, "-l", p.log)
	}
	// "ip netns exec" execs in place, so the pid is faild's own and signals
	// reach it directly. Its own process group keeps a terminal's Ctrl-C
	// for us: the lab decides how faild ends.
	p.cmd = exec.Command("ip", argv...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start faild on %s: %w", n, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	n.proc = p
	return nil
}

// logArg returns the log file that args give faild, if any.
func logArg(args []string) (string, bool) {
	for i, a := range args {
		if path, ok := strings.CutPrefix(a, "--log-file="); ok {
			return path, true
		}
		if (a == "-l" || a == "--log-file") && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Running reports whether the faild started last is still running.
func (n *Node) Running() bool {
	p := n.current()
	return p != nil && !p.exited()
}

// Pid is the pid of the faild started last, 0 if none.
func (n *Node) Pid() int {
	if p := n.current(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Stop sends SIGTERM and waits up to StopTimeout; faild must exit by
// itself. It returns faild's exit error (nil for status 0), or an error
// saying it had to be killed.
func (n *Node) Stop() error {
	return n.signal(syscall.SIGTERM, StopTimeout)
}

// Handover sends SIGUSR2, which stops faild and keeps its routes for the
// next start to adopt (what the unit sends on a restart), and waits for it
// to exit; it returns faild's exit error, nil for status 0.
func (n *Node) Handover() error {
	return n.signal(syscall.SIGUSR2, StopTimeout)
}

// Kill sends SIGKILL and waits for faild to go.
func (n *Node) Kill() error {
	err := n.signal(syscall.SIGKILL, StopTimeout)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // killed, as asked
	}
	return err
}

// Wait waits up to timeout for faild to exit by itself and returns its exit
// error; for a daemon expected to fail on bad input.
func (n *Node) Wait(timeout time.Duration) error {
	p := n.current()
	if p == nil {
		return fmt.Errorf("failed to wait for faild on %s: never started", n)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("faild on %s still running after %v", n, timeout)
	}
}

func (n *Node) signal(sig syscall.Signal, timeout time.Duration) error {
	p := n.current()
	if p == nil {
		return fmt.Errorf("failed to signal faild on %s: never started", n)
	}
	if p.exited() {
		return fmt.Errorf("faild on %s had already exited: %v", n, p.err)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("failed to send %v to faild on %s: %w", sig, n, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("faild on %s did not exit within %v of %v; killed it", n, timeout, sig)
	case <-time.After(timeout):
		return fmt.Errorf("faild on %s (pid %d) survived SIGKILL for %v", n, p.cmd.Process.Pid, timeout)
	}
}

// LogPath is the log file of the faild started last ("" if none).
func (n *Node) LogPath() string {
	if p := n.current(); p != nil {
		return p.log
	}
	return ""
}

// StatusSocket is the --status-socket of the faild started last ("" if
// none); "faild status --status-socket" reads it from outside the namespace.
func (n *Node) StatusSocket() string {
	if p := n.current(); p != nil {
		return p.sock
	}
	return ""
}

// Log returns the log file of the faild started last; "" if there is none
// yet.
func (n *Node) Log() string {
	p := n.current()
	if p == nil {
		return ""
	}
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Output returns what the faild started last wrote to stdout and stderr,
// where errors from before the log file was opened end up.
func (n *Node) Output() string {
	p := n.current()
	if p == nil {
		return ""
	}
	b, _ := os.ReadFile(p.out)
	return string(b)
}

// Events parses Log.
func (n *Node) Events() []Event { return ParseLog(n.Log()) }

// Route is one route of the main table.
type Route struct {
	Dst string `json:"dst"` // "192.0.2.2" or "2001:db8:a::2" for a host route
	Via string `json:"gateway"`
	Dev string `json:"dev"`
}

func (r Route) String() string {
	s := r.Dst
	if r.Via != "" {
		s += " via " + r.Via
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// ProtoFaild is the route protocol number faild marks its routes with.
const ProtoFaild = "157"

// Routes returns faild's routes in the node: "ip -4 route show proto 157",
// followed in a lab with IPv6 by "ip -6 route show proto 157".
func (n *Node) Routes() ([]Route, error) {
	var rs []Route
	for _, f := range []string{"-4", "-6"} {
		if f == "-6" && (n.lab == nil || !n.lab.Family.Has6()) {
			continue
		}
		out, err := n.IP(f, "-j", "route", "show", "proto", ProtoFaild)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(out) == "" {
			continue
		}
		var got []Route
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			return nil, fmt.Errorf("failed to parse routes of %s: %w: %s", n, err, out)
		}
		rs = append(rs, got...)
	}
	return rs, nil
}

// RoutesAre reports whether the node's faild routes are exactly want, in
// any order: a route more or less is false. Errors are false too (for
// WaitFor conditions).
func (n *Node) RoutesAre(want ...Route) bool {
	rs, err := n.Routes()
	if err != nil || len(rs) != len(want) {
		return false
	}
	left := slices.Clone(want)
	for _, r := range rs {
		i := slices.Index(left, r)
		if i < 0 {
			return false
		}
		left = slices.Delete(left, i, i+1)
	}
	return true
}

// IP runs "ip -n NS args..." and returns its stdout; cheaper than Exec.
func (n *Node) IP(args ...string) (string, error) {
	return output("ip", append([]string{"-n", n.NS}, args...)...)
}

// Exec runs a command in the node's namespace, bounded by 10 s, and returns
// its combined output.
func (n *Node) Exec(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.NS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("failed to run %s in %s: %w: %s", name, n, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
