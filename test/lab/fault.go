package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Failures are nftables rules in the switch's bridge-family forward chain
// ("table bridge faildlab"), matched on the switch ports a<n> and b<n>. A
// flooded frame passes that chain once per output port, so per-port rules
// hold for broadcasts too. Each injection is one nft transaction: it is in
// force, whole, when the call returns. Heal flushes the chain.

// Direction says which way CutPort drops frames, seen from the node.
type Direction int

// Directions for CutPort.
const (
	Both     Direction = iota // nothing in or out
	ToNode                    // the node sends, but hears nothing
	FromNode                  // the node hears, but what it sends is lost
)

func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case ToNode:
		return "to-node"
	case FromNode:
		return "from-node"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// CutPair drops every frame between nodes n1 and n2 on one LAN, both ways;
// both keep their carrier and their other peers.
func (l *Lab) CutPair(lan LAN, n1, n2 int) error {
	if err := l.checkPorts(lan, n1, n2); err != nil {
		return err
	}
	if n1 == n2 {
		return fmt.Errorf("failed to cut pair: node %d with itself", n1)
	}
	p1, p2 := lan.port(n1), lan.port(n2)
	c := fmt.Sprintf("cut-pair %v %d-%d", lan, n1, n2)
	return l.addRules(
		rule(c, iif(p1), oif(p2)),
		rule(c, iif(p2), oif(p1)),
	)
}

// HealPair removes what CutPair(lan, n1, n2) injected, with the nodes in
// the same order, and leaves every other failure in force.
func (l *Lab) HealPair(lan LAN, n1, n2 int) error {
	if err := l.checkPorts(lan, n1, n2); err != nil {
		return err
	}
	return l.removeRules(fmt.Sprintf("cut-pair %v %d-%d", lan, n1, n2))
}

// CutOneWay drops the frames from node from to node to on one LAN, and
// nothing the other way. On a split LAN A both must be on the same
// switch: the rule matches the two nodes' ports on one bridge.
func (l *Lab) CutOneWay(lan LAN, from, to int) error {
	if err := l.checkPorts(lan, from, to); err != nil {
		return err
	}
	if from == to || l.bridgeOf(lan, from) != l.bridgeOf(lan, to) {
		return fmt.Errorf("failed to cut one way: nodes %d and %d are not two nodes on one switch", from, to)
	}
	c := fmt.Sprintf("cut-one-way %v %d->%d", lan, from, to)
	return l.addRules(rule(c, iif(lan.port(from)), oif(lan.port(to))))
}

// CutTrunk cuts the trunk between the two switches of a split LAN A
// (Options.SplitA): both ends lose carrier, and the LAN falls into two
// groups.
func (l *Lab) CutTrunk() error {
	if l.splitA == 0 {
		return errors.New("failed to cut the trunk: LAN A is one switch (Options.SplitA)")
	}
	return ipIn(l.sw, "link", "set", trunk, "down")
}

// CutPort drops frames to and/or from node n's port on one LAN; the
// node's carrier stays up.
func (l *Lab) CutPort(lan LAN, n int, dir Direction) error {
	rules, err := l.cutPortRules(lan, n, dir)
	if err != nil {
		return err
	}
	return l.addRules(rules...)
}

func (l *Lab) cutPortRules(lan LAN, n int, dir Direction) ([]string, error) {
	if err := l.checkPorts(lan, n); err != nil {
		return nil, err
	}
	p := lan.port(n)
	c := fmt.Sprintf("cut-port %v %d %v", lan, n, dir)
	switch dir {
	case Both:
		return []string{rule(c, iif(p)), rule(c, oif(p))}, nil
	case ToNode:
		return []string{rule(c, oif(p))}, nil
	case FromNode:
		return []string{rule(c, iif(p))}, nil
	}
	return nil, fmt.Errorf("failed to cut port: bad direction %v", dir)
}

// Prepared is an injection whose nft process already runs, waiting for its
// script: Fire costs no process start, only the transaction. For tests
// that time the moment a fault begins or ends on a loaded machine, where
// starting "ip netns exec ... nft" takes up to a few hundred milliseconds.
type Prepared struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    bytes.Buffer
	script string
}

// PrepareCutPort is CutPort, prepared.
func (l *Lab) PrepareCutPort(lan LAN, n int, dir Direction) (*Prepared, error) {
	rules, err := l.cutPortRules(lan, n, dir)
	if err != nil {
		return nil, err
	}
	return l.prepare(strings.Join(rules, "\n") + "\n")
}

// PrepareClearRules is ClearRules, prepared.
func (l *Lab) PrepareClearRules() (*Prepared, error) {
	return l.prepare(flushRules)
}

func (l *Lab) prepare(script string) (*Prepared, error) {
	p := &Prepared{cmd: exec.Command("ip", "netns", "exec", l.sw, "nft", "-f", "-"), script: script}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start nft in %s: %w", l.sw, err)
	}
	return p, nil
}

// Fire hands the script to the waiting nft and returns once the
// transaction is in force.
func (p *Prepared) Fire() error {
	_, werr := io.WriteString(p.stdin, p.script)
	cerr := p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err = errors.Join(werr, cerr, err); err != nil {
			return fmt.Errorf("failed to run nft: %w: %s\nscript:\n%s", err, bytes.TrimSpace(p.out.Bytes()), p.script)
		}
		return nil
	case <-time.After(cmdTimeout):
		p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("nft did not finish within %v:\n%s", cmdTimeout, p.script)
	}
}

// Close ends a Prepared that was never fired; after Fire it does nothing.
func (p *Prepared) Close() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// Loss drops percent of the frames to node n's port on one LAN and,
// independently, percent of those from it.
func (l *Lab) Loss(lan LAN, n, percent int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	if percent < 0 || percent > 100 {
		return fmt.Errorf("failed to add loss: %d%% is not a percentage", percent)
	}
	p := lan.port(n)
	c := fmt.Sprintf("loss %v %d %d%%", lan, n, percent)
	switch percent {
	case 0:
		return nil
	case 100: // nft refuses "mod 100 < 100"
		return l.addRules(rule(c, iif(p)), rule(c, oif(p)))
	}
	random := fmt.Sprintf("numgen random mod 100 < %d", percent)
	return l.addRules(rule(c, iif(p), random), rule(c, oif(p), random))
}

// LossOneWay drops percent of the frames to node n's port on one LAN
// (ToNode) or of those from it (FromNode), and none the other way.
func (l *Lab) LossOneWay(lan LAN, n, percent int, dir Direction) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	if percent < 1 || percent > 99 {
		return fmt.Errorf("failed to add one-way loss: %d%%, want 1 to 99", percent)
	}
	p := lan.port(n)
	c := fmt.Sprintf("loss %v %d %v %d%%", lan, n, dir, percent)
	random := fmt.Sprintf("numgen random mod 100 < %d", percent)
	switch dir {
	case ToNode:
		return l.addRules(rule(c, oif(p), random))
	case FromNode:
		return l.addRules(rule(c, iif(p), random))
	}
	return fmt.Errorf("failed to add one-way loss: direction %v, want to-node or from-node", dir)
}

// LANDown drops every frame on one LAN.
func (l *Lab) LANDown(lan LAN) error {
	if !l.hasLAN(lan) {
		return fmt.Errorf("failed to take LAN down: bad LAN %v", lan)
	}
	c := fmt.Sprintf("lan-down %v", lan)
	var rules []string
	for _, n := range l.Nodes {
		rules = append(rules, rule(c, iif(lan.port(n.ID))))
	}
	return l.addRules(rules...)
}

// LinkDown sets node n's own interface on one LAN administratively down,
// as "ip link set eth0 down" on the node would: its addresses stay, its
// connected route goes, and the switch port loses carrier.
func (l *Lab) LinkDown(lan LAN, n int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	return ipIn(l.Node(n).NS, "link", "set", lan.Iface(), "down")
}

// LinkUp undoes LinkDown.
func (l *Lab) LinkUp(lan LAN, n int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	return ipIn(l.Node(n).NS, "link", "set", lan.Iface(), "up")
}

// CarrierDown sets node n's switch port on one LAN down, as a pulled
// cable: the node's interface stays administratively up but has no carrier.
func (l *Lab) CarrierDown(lan LAN, n int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	return ipIn(l.sw, "link", "set", lan.port(n), "down")
}

// CarrierUp undoes CarrierDown.
func (l *Lab) CarrierUp(lan LAN, n int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	return ipIn(l.sw, "link", "set", lan.port(n), "up")
}

// Heal removes every injected rule and brings every node interface,
// switch port and trunk up.
func (l *Lab) Heal() error {
	if err := l.ClearRules(); err != nil {
		return err
	}
	if l.splitA > 0 {
		if err := ipIn(l.sw, "link", "set", trunk, "up"); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		for _, lan := range l.lans {
			if err := ipIn(n.NS, "link", "set", lan.Iface(), "up"); err != nil {
				return err
			}
			if err := ipIn(l.sw, "link", "set", lan.port(n.ID), "up"); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClearRules removes every injected rule in one nft transaction, and
// nothing else: the quick half of Heal, for a test that times the moment
// frames pass again.
func (l *Lab) ClearRules() error {
	return nftIn(l.sw, flushRules)
}

const flushRules = "flush chain bridge faildlab forward\n"

// Dropped is how many frames the injected rules have dropped since they
// were added (Heal and ClearRules reset it), so a test can tell that a
// rule matched anything at all.
func (l *Lab) Dropped() (int, error) {
	return l.countChain("forward")
}

// Rules lists the injected nft rules, for logs of a failed test.
func (l *Lab) Rules() (string, error) {
	return output("ip", "netns", "exec", l.sw, "nft", "list", "chain", "bridge", "faildlab", "forward")
}

func (l *Lab) checkPorts(lan LAN, nodes ...int) error {
	if !l.hasLAN(lan) {
		return fmt.Errorf("failed to inject failure: bad LAN %v", lan)
	}
	for _, n := range nodes {
		if n < 1 || n > len(l.Nodes) {
			return fmt.Errorf("failed to inject failure: no node %d (have %d)", n, len(l.Nodes))
		}
	}
	return nil
}

// rule builds one drop rule from nft matches, tagged with a comment so a
// listing shows which injection it belongs to, and counting what it drops.
func rule(comment string, match ...string) string {
	return fmt.Sprintf("add rule bridge faildlab forward %s counter drop comment %q", strings.Join(match, " "), comment)
}

// iif and oif match the switch port a frame comes in on or goes out of.
func iif(port string) string { return fmt.Sprintf("iifname %q", port) }
func oif(port string) string { return fmt.Sprintf("oifname %q", port) }

func (l *Lab) addRules(rules ...string) error {
	return nftIn(l.sw, strings.Join(rules, "\n")+"\n")
}

// removeRules deletes the injected rules tagged with comment, in one
// transaction; it is an error if there are none.
func (l *Lab) removeRules(comment string) error {
	out, err := output("ip", "netns", "exec", l.sw, "nft", "-a", "list", "chain", "bridge", "faildlab", "forward")
	if err != nil {
		return err
	}
	// nft -a ends each rule with its handle: ... comment "cut-pair A 1-2" # handle 7
	tag := fmt.Sprintf("comment %q # handle ", comment)
	var dels []string
	for _, line := range strings.Split(out, "\n") {
		if _, h, ok := strings.Cut(line, tag); ok {
			dels = append(dels, "delete rule bridge faildlab forward handle "+strings.TrimSpace(h))
		}
	}
	if len(dels) == 0 {
		return fmt.Errorf("failed to heal: no rules %q in force", comment)
	}
	return l.addRules(dels...)
}

// Recreate deletes node n's interface on one LAN (and with it its switch
// port, the veth's other end) and builds a new veth pair in its place with
// the same names and address, as replacing a NIC or a container's
// interface does: the node's interface comes back with a new index.
func (l *Lab) Recreate(lan LAN, n int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	node := l.Node(n)
	if err := ipIn(node.NS, "link", "del", lan.Iface()); err != nil {
		return err
	}
	port, dev := lan.port(n), lan.Iface()
	for _, s := range [][]string{
		{l.sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", node.NS},
		{l.sw, "link", "set", port, "master", l.bridgeOf(lan, n), "up"},
		{node.NS, "addr", "add", lan.Addr(n) + "/24", "brd", "+", "dev", dev},
		{node.NS, "link", "set", dev, "up"},
	} {
		if err := ipIn(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return setSysctls(node.NS, map[string]string{"ipv4/conf/" + dev + "/rp_filter": "2"})
}

// Readdress replaces node n's address on one LAN with host number host of
// the same subnet, as renumbering a node does.
func (l *Lab) Readdress(lan LAN, n, host int) error {
	if err := l.checkPorts(lan, n); err != nil {
		return err
	}
	if host < 1 || host > 254 {
		return fmt.Errorf("failed to readdress: bad host number %d", host)
	}
	node := l.Node(n)
	// The old first: deleting a primary address deletes its secondaries.
	if err := ipIn(node.NS, "addr", "del", lan.Addr(n)+"/24", "dev", lan.Iface()); err != nil {
		return err
	}
	return ipIn(node.NS, "addr", "add", lan.Addr(host)+"/24", "brd", "+", "dev", lan.Iface())
}

// BlockBroadcast makes the switch drop what a network that forbids
// broadcast and multicast drops: IPv4 broadcast frames and frames to
// faild's IPv6 group ff12::4117 (MAC 33:33:00:00:41:17), on every LAN,
// for the rest of the lab's life. ARP and neighbour discovery still pass,
// so unicast works. The rules sit in a chain of their own that Heal leaves
// alone, and count what they drop (BlockedFrames).
func (l *Lab) BlockBroadcast() error {
	return nftIn(l.sw, "add chain bridge faildlab block { type filter hook forward priority -10; policy accept; }\n"+
		`add rule bridge faildlab block ether type ip ether daddr ff:ff:ff:ff:ff:ff counter drop comment "block IPv4 broadcast"`+"\n"+
		`add rule bridge faildlab block ether daddr 33:33:00:00:41:17 counter drop comment "block faild's IPv6 group"`+"\n")
}

// BlockedFrames is how many frames the BlockBroadcast rules dropped.
func (l *Lab) BlockedFrames() (int, error) {
	return l.countChain("block")
}

// countChain sums the packet counters of a chain's rules.
func (l *Lab) countChain(chain string) (int, error) {
	out, err := output("ip", "netns", "exec", l.sw, "nft", "list", "chain", "bridge", "faildlab", chain)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range strings.Split(out, "counter packets ")[1:] {
		var k int
		if _, err := fmt.Sscan(f, &k); err == nil {
			n += k
		}
	}
	return n, nil
}
