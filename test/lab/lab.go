// Package lab builds a throw-away network for end-to-end tests of faild: a
// "switch" namespace holding two bridges (LAN A and LAN B), or three with
// LAN C, and up to eight node namespaces wired to every LAN, in which the
// real faild binary runs.
// Failures are injected at the switch with nftables, so the nodes see what a
// real broken LAN looks like: frames vanish, carrier stays up.
//
// Everything the lab creates lives in namespaces whose names start with
// NSPrefix; Close removes them, and New removes those of earlier runs whose
// process has died. The host's own interfaces and routes are never touched.
//
// The package does not import testing so that the demo program can use it;
// ForTest adapts it to tests.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NSPrefix starts the name of every namespace a lab creates, so that a stale
// one left by a crashed run can be recognised and removed.
const NSPrefix = "faildlab-"

// MaxNodes is the most nodes a lab holds; addresses are 192.0.2.i,
// 198.51.100.i (and 203.0.113.i), and switch ports a1..a8, b1..b8 (c1..c8).
const MaxNodes = 8

// cmdTimeout bounds every helper command (ip, nft) the lab runs.
const cmdTimeout = 10 * time.Second

// LAN names one of the redundant LANs.
type LAN int

// The LANs. Node i has 192.0.2.i/24 on eth0 (LAN A), 198.51.100.i/24 on
// eth1 (LAN B) and, in a lab with Options.LANC, 203.0.113.i/24 on eth2
// (LAN C).
const (
	A LAN = iota
	B
	C
)

// LANs lists the two LANs every lab has, for loops; Lab.LANs adds C where
// the lab has it.
var LANs = []LAN{A, B}

func (l LAN) String() string {
	switch l {
	case A:
		return "A"
	case B:
		return "B"
	case C:
		return "C"
	}
	return "LAN(" + strconv.Itoa(int(l)) + ")"
}

// Iface is the node-side interface name on this LAN.
func (l LAN) Iface() string { return "eth" + strconv.Itoa(int(l)) }

// Addr is node n's address on this LAN.
func (l LAN) Addr(n int) string { return l.net() + strconv.Itoa(n) }

// Addr6 is node n's IPv6 address on this LAN: 2001:db8:a::n on LAN A,
// 2001:db8:b::n on LAN B, 2001:db8:c::n on LAN C.
func (l LAN) Addr6(n int) string {
	return "2001:db8:" + strings.ToLower(l.String()) + "::" + strconv.FormatInt(int64(n), 16)
}

func (l LAN) net() string {
	switch l {
	case A:
		return "192.0.2."
	case B:
		return "198.51.100."
	}
	return "203.0.113."
}

// port is node n's switch-side interface on this LAN: a1, b3, ...
func (l LAN) port(n int) string { return strings.ToLower(l.String()) + strconv.Itoa(n) }

func (l LAN) bridge() string { return "br" + l.String() }

// The second switch of a split LAN A, and the trunk between the two.
const (
	splitBridge = "brA2"
	trunk       = "tA"
	trunk2      = "tA2"
)

// bridgeOf is the bridge node n's port on lan is a member of.
func (l *Lab) bridgeOf(lan LAN, n int) string {
	if lan == A && l.splitA > 0 && n > l.splitA {
		return splitBridge
	}
	return lan.bridge()
}

// Family says which address families the LANs carry.
type Family int

// Families for Options.Family.
const (
	IPv4 Family = iota // 192.0.2.0/24 and 198.51.100.0/24, IPv6 off (the default)
	IPv6               // 2001:db8:a::/64 and 2001:db8:b::/64 only
	Dual               // both
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case Dual:
		return "dual-stack"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Has4 and Has6 report whether the LANs carry IPv4 or IPv6.
func (f Family) Has4() bool { return f != IPv6 }
func (f Family) Has6() bool { return f != IPv4 }

// Options configures a lab.
type Options struct {
	// Family is the address families of the LANs; the zero value is IPv4.
	Family Family
	// Nodes is the number of nodes, 1..MaxNodes; 0 means 3.
	Nodes int
	// Bin is the faild binary that Node.Start runs.
	Bin string
	// Dir receives the faild log files; empty means a temporary directory
	// that Close removes.
	Dir string
	// LANC adds a third LAN: bridge brC, eth2 on every node.
	LANC bool
	// SplitA, when above 0, builds LAN A of two switches: nodes 1 to
	// SplitA on bridge brA, the others on brA2, joined by a veth trunk
	// (tA on brA, tA2 on brA2) that CutTrunk cuts, as the link between
	// two switches fails.
	SplitA int
}

// Lab is one running lab. Its methods are safe for concurrent use.
type Lab struct {
	// Run is this lab's short random id, part of every namespace name.
	Run string
	// Bin is the faild binary Node.Start runs.
	Bin string
	// Dir holds the faild log files.
	Dir string
	// Nodes are the nodes; Nodes[0] is node 1.
	Nodes []*Node
	// Family is the address families of the LANs.
	Family Family

	lans   []LAN  // A, B and, with Options.LANC, C
	sw     string // switch namespace
	ownDir bool
	splitA int

	mu         sync.Mutex
	namespaces []string // created so far, in order
	flows      []*Flow
	closed     bool
}

// live holds every lab not yet closed, for CloseAll.
var (
	liveMu sync.Mutex
	live   = map[*Lab]bool{}
)

// New builds a lab: the switch with bridges brA and brB (and brC), and
// opts.Nodes nodes, each with eth0 on LAN A and eth1 on LAN B (and eth2 on
// LAN C), addressed, up, and with
// loose reverse-path filtering (faild answers on one LAN for an address of
// the other). On error everything already created is removed.
func New(opts Options) (*Lab, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("failed to create lab: %d nodes, want 1..%d", opts.Nodes, MaxNodes)
	}
	if err := RemoveStale(); err != nil {
		return nil, err
	}
	run, err := newRunID()
	if err != nil {
		return nil, err
	}
	if opts.SplitA < 0 || opts.SplitA >= opts.Nodes && opts.SplitA > 0 {
		return nil, fmt.Errorf("failed to create lab: SplitA %d, want 1..%d (or 0 for one switch)", opts.SplitA, opts.Nodes-1)
	}
	l := &Lab{Run: run, Bin: opts.Bin, Dir: opts.Dir, Family: opts.Family, lans: LANs, splitA: opts.SplitA}
	if opts.LANC {
		l.lans = []LAN{A, B, C}
	}
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", NSPrefix+run+"-"); err != nil {
			return nil, fmt.Errorf("failed to create log directory: %w", err)
		}
		l.ownDir = true
	}
	l.sw = l.nsName("sw")
	for i := 1; i <= opts.Nodes; i++ {
		l.Nodes = append(l.Nodes, &Node{ID: i, NS: l.nsName("n" + strconv.Itoa(i)), lab: l})
	}
	liveMu.Lock()
	live[l] = true
	liveMu.Unlock()
	if err := l.build(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func newRunID() (string, error) {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make run id: %w", err)
	}
	return "fl" + hex.EncodeToString(b), nil
}

// nsName is faildlab-<run>-<pid>-<role>; the pid lets RemoveStale tell a
// crashed run's namespaces from those of a run still going in parallel.
func (l *Lab) nsName(role string) string {
	return fmt.Sprintf("%s%s-%d-%s", NSPrefix, l.Run, os.Getpid(), role)
}

// Prefix is the start of every namespace name of this lab.
func (l *Lab) Prefix() string { return fmt.Sprintf("%s%s-", NSPrefix, l.Run) }

// LANs lists the lab's LANs in priority order: A, B and, with
// Options.LANC, C.
func (l *Lab) LANs() []LAN { return l.lans }

// hasLAN reports whether the lab has LAN lan.
func (l *Lab) hasLAN(lan LAN) bool {
	for _, x := range l.lans {
		if x == lan {
			return true
		}
	}
	return false
}

// Switch is the name of the switch namespace.
func (l *Lab) Switch() string { return l.sw }

// Node returns node i (1-based); it panics on a bad number, as an index does.
func (l *Lab) Node(i int) *Node {
	if i < 1 || i > len(l.Nodes) {
		panic(fmt.Sprintf("lab: no node %d (have %d)", i, len(l.Nodes)))
	}
	return l.Nodes[i-1]
}

func (l *Lab) build() error {
	if err := l.addNS(l.sw); err != nil {
		return err
	}
	// IPv6 only adds chatter (router solicitations, MLD) that faild ignores.
	if err := setSysctls(l.sw, map[string]string{
		"ipv6/conf/all/disable_ipv6":     "1",
		"ipv6/conf/default/disable_ipv6": "1",
	}); err != nil {
		return err
	}
	for _, lan := range l.lans {
		br := lan.bridge()
		if err := ipIn(l.sw, "link", "add", br, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"); err != nil {
			return err
		}
		if err := ipIn(l.sw, "link", "set", br, "up"); err != nil {
			return err
		}
	}
	if l.splitA > 0 {
		for _, step := range [][]string{
			{"link", "add", splitBridge, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
			{"link", "set", splitBridge, "up"},
			{"link", "add", trunk, "type", "veth", "peer", "name", trunk2},
			{"link", "set", trunk, "master", A.bridge(), "up"},
			{"link", "set", trunk2, "master", splitBridge, "up"},
		} {
			if err := ipIn(l.sw, step...); err != nil {
				return err
			}
		}
	}
	if err := nftIn(l.sw, "add table bridge faildlab\n"+
		"add chain bridge faildlab forward { type filter hook forward priority 0; policy accept; }\n"); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := l.buildNode(n); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) buildNode(n *Node) error {
	if err := l.addNS(n.NS); err != nil {
		return err
	}
	ipv6Off := "1"
	if l.Family.Has6() {
		ipv6Off = "0"
	}
	// With IPv6 on, routers are neither sought nor heard: the lab has none,
	// and a stray advertisement must not add routes.
	if err := setSysctls(n.NS, map[string]string{
		"ipv6/conf/all/disable_ipv6":             ipv6Off,
		"ipv6/conf/default/disable_ipv6":         ipv6Off,
		"ipv6/conf/all/accept_ra":                "0",
		"ipv6/conf/default/accept_ra":            "0",
		"ipv6/conf/default/router_solicitations": "0",
		"ipv4/conf/all/rp_filter":                "2",
		"ipv4/conf/default/rp_filter":            "2",
	}); err != nil {
		return err
	}
	if err := ipIn(n.NS, "link", "set", "lo", "up"); err != nil {
		return err
	}
	for _, lan := range l.lans {
		port, dev := lan.port(n.ID), lan.Iface()
		steps := [][]string{
			{l.sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", n.NS},
			{l.sw, "link", "set", port, "master", l.bridgeOf(lan, n.ID), "up"},
		}
		if l.Family.Has4() {
			steps = append(steps, []string{n.NS, "addr", "add", lan.Addr(n.ID) + "/24", "brd", "+", "dev", dev})
		}
		if l.Family.Has6() {
			// nodad: usable at once, rather than tentative for a second or
			// two; the lab's addresses are unique by construction.
			steps = append(steps, []string{n.NS, "addr", "add", lan.Addr6(n.ID) + "/64", "dev", dev, "nodad"})
		}
		steps = append(steps, []string{n.NS, "link", "set", dev, "up"})
		for _, s := range steps {
			if err := ipIn(s[0], s[1:]...); err != nil {
				return err
			}
		}
		if err := setSysctls(n.NS, map[string]string{"ipv4/conf/" + dev + "/rp_filter": "2"}); err != nil {
			return err
		}
	}
	return nil
}

// addNS creates a namespace and records it for Close, so that even a half
// built lab is removed.
func (l *Lab) addNS(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("failed to add namespace: lab is closed")
	}
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, name)
	return nil
}

// Close stops the flows, kills every faild the lab started and deletes every
// namespace it created, which removes the veths, bridges and nft table with
// them. It is safe to call more than once and from several goroutines.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	flows, namespaces := l.flows, l.namespaces
	l.mu.Unlock()

	var errs []error
	for _, f := range flows {
		f.Stop()
	}
	for _, n := range l.Nodes {
		if n.Running() {
			if err := n.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for i := len(namespaces) - 1; i >= 0; i-- {
		if err := deleteNS(namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if left, err := ListNamespaces(l.Prefix()); err != nil {
		errs = append(errs, err)
	} else if len(left) > 0 {
		errs = append(errs, fmt.Errorf("failed to remove namespaces: %s still there", strings.Join(left, " ")))
	}
	if l.ownDir {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove log directory: %w", err))
		}
	}
	liveMu.Lock()
	delete(live, l)
	liveMu.Unlock()
	return errors.Join(errs...)
}

// deleteNS kills whatever still runs inside a namespace (a namespace lives on
// while a process is in it, even after its name is gone) and deletes it.
func deleteNS(name string) error {
	out, err := output("ip", "netns", "pids", name)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return run("ip", "netns", "del", name)
}

// CloseAll closes every lab of this process that is still open; it is what
// runs on SIGINT/SIGTERM.
func CloseAll() error {
	liveMu.Lock()
	labs := make([]*Lab, 0, len(live))
	for l := range live {
		labs = append(labs, l)
	}
	liveMu.Unlock()
	var errs []error
	for _, l := range labs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// ListNamespaces returns the names of the namespaces starting with prefix.
func ListNamespaces(prefix string) ([]string, error) {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// Lines look like "name" or "name (id: 3)".
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// RemoveStale deletes lab namespaces whose creating process is gone, as left
// behind by a test binary that was killed or timed out. Namespaces of labs of
// live processes (parallel test packages) are left alone.
func RemoveStale() error {
	names, err := ListNamespaces(NSPrefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if pid := ownerPID(name); pid > 0 && !alive(pid) {
			errs = append(errs, removeStale(name))
		}
	}
	return errors.Join(errs...)
}

// removeStale deletes the stale namespace name. One already gone is no
// error: test packages run in parallel, and each one's lab sweeps the
// stale namespaces when it starts, so another may have deleted it first.
func removeStale(name string) error {
	err := deleteNS(name)
	if err == nil {
		return nil
	}
	if left, lerr := ListNamespaces(name); lerr == nil && !slices.Contains(left, name) {
		return nil
	}
	return fmt.Errorf("failed to remove stale namespace: %w", err)
}

// ownerPID parses the pid out of faildlab-<run>-<pid>-<role>; 0 if none.
func ownerPID(name string) int {
	f := strings.Split(strings.TrimPrefix(name, NSPrefix), "-")
	if len(f) != 3 {
		return 0
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return pid
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// ErrNotRoot is returned by CheckEnv when the lab cannot run for want of
// privileges; tests skip on it.
var ErrNotRoot = errors.New("lab tests need root: they create network namespaces, veths, bridges and nftables rules")

// CheckEnv reports whether the lab can run here: ErrNotRoot when not root,
// another error when a tool it needs is missing (that is a broken setup, not
// a reason to skip).
func CheckEnv() error {
	if geteuid() != 0 {
		return ErrNotRoot
	}
	var missing []string
	for _, tool := range []struct{ cmd, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", tool.cmd, tool.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab needs %s on PATH", strings.Join(missing, " and "))
	}
	return nil
}

// geteuid is os.Geteuid, replaced by tests of the non-root path.
var geteuid = os.Geteuid

// ipIn runs "ip -n NS args...".
func ipIn(ns string, args ...string) error {
	return run("ip", append([]string{"-n", ns}, args...)...)
}

// nftIn loads an nft script in a namespace; a script is one transaction.
func nftIn(ns, script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to run nft in %s: %w: %s\nscript:\n%s", ns, err, bytes.TrimSpace(out), script)
	}
	return nil
}

func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

// output runs a command bounded by cmdTimeout and returns its stdout; the
// error carries stderr.
func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("failed to run %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}
