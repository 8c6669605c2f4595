package main

// In-process cuts for the side-by-side with bfdd: each one is a single
// netlink transaction from this process (nftables through
// github.com/google/nftables, links through vishvananda/netlink), with no
// nft or ip process to start, so the moment a cut is in force is known to
// well under a millisecond: the call's return, with its length recorded.

import (
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/faild/faild/test/lab"
)

// cutter is one kind of cut between node1 and node2 on LAN A.
type cutter interface {
	// cut puts it in force and returns when it is, with the length of
	// the call that did it; heal takes it away the same way.
	cut() (time.Time, time.Duration, error)
	heal() (time.Time, time.Duration, error)
	close()
}

// timed runs one injection and reports when it returned and how long it
// took.
func timed(fn func() error) (time.Time, time.Duration, error) {
	t0 := time.Now()
	err := fn()
	t1 := time.Now()
	return t1, t1.Sub(t0), err
}

// nftConn opens a lasting nftables netlink connection in namespace ns.
func nftConn(ns string) (*nftables.Conn, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("failed to open namespace %s: %w", ns, err)
	}
	defer h.Close() // the socket, once open, stays in the namespace
	c, err := nftables.New(nftables.WithNetNSFd(int(h)), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("failed to open nftables in %s: %w", ns, err)
	}
	return c, nil
}

// ifname is an interface name as nftables compares it: NUL-padded to
// IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// pairCut drops every frame between node1's and node2's LAN-A switch
// ports, both ways, in the lab's own bridge chain (lab.CutPair's rules,
// made in-process): both nodes keep their carrier and their other peers.
type pairCut struct {
	c     *nftables.Conn
	chain *nftables.Chain
	ports [2]string
}

func newPairCut(l *lab.Lab) (*pairCut, error) {
	c, err := nftConn(l.Switch())
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Name: "faildlab", Family: nftables.TableFamilyBridge}
	return &pairCut{c: c, chain: &nftables.Chain{Name: "forward", Table: t}, ports: [2]string{"a1", "a2"}}, nil
}

func (p *pairCut) cut() (time.Time, time.Duration, error) {
	return timed(func() error {
		for _, dir := range [][2]string{{p.ports[0], p.ports[1]}, {p.ports[1], p.ports[0]}} {
			p.c.AddRule(&nftables.Rule{Table: p.chain.Table, Chain: p.chain, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(dir[0])},
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(dir[1])},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
		return p.c.Flush()
	})
}

func (p *pairCut) heal() (time.Time, time.Duration, error) {
	return timed(func() error {
		p.c.FlushChain(p.chain)
		return p.c.Flush()
	})
}

func (p *pairCut) close() { _ = p.c.CloseLasting() }

// hostCut drops everything in and out of node2's LAN-A interface at the
// node itself (netdev ingress and egress hooks on eth0): the whole port
// is dead to every peer, and the carrier stays up.
type hostCut struct {
	c   *nftables.Conn
	dev string
}

// hostTable is the bench's own table in node2's namespace.
var hostTable = &nftables.Table{Name: "faildbench", Family: nftables.TableFamilyNetdev}

func newHostCut(l *lab.Lab) (*hostCut, error) {
	c, err := nftConn(l.Node(2).NS)
	if err != nil {
		return nil, err
	}
	return &hostCut{c: c, dev: lab.A.Iface()}, nil
}

func (h *hostCut) cut() (time.Time, time.Duration, error) {
	return timed(func() error {
		t := h.c.AddTable(hostTable)
		drop := nftables.ChainPolicyDrop
		for _, c := range []struct {
			name string
			hook *nftables.ChainHook
		}{{"in", nftables.ChainHookIngress}, {"out", nftables.ChainHookEgress}} {
			h.c.AddChain(&nftables.Chain{Name: c.name, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: c.hook, Priority: nftables.ChainPriorityFilter, Device: h.dev, Policy: &drop})
		}
		return h.c.Flush()
	})
}

func (h *hostCut) heal() (time.Time, time.Duration, error) {
	return timed(func() error {
		h.c.DelTable(hostTable)
		return h.c.Flush()
	})
}

func (h *hostCut) close() {
	h.c.DelTable(hostTable) // in case a cut was left in force
	_ = h.c.Flush()
	_ = h.c.CloseLasting()
}

// portDown sets node2's LAN-A port on the switch down, as a switch that
// disables a port does: node2's eth0 loses its carrier, node1's keeps it.
type portDown struct {
	h    *netlink.Handle
	link netlink.Link
}

func newPortDown(l *lab.Lab) (*portDown, error) {
	ns, err := netns.GetFromName(l.Switch())
	if err != nil {
		return nil, fmt.Errorf("failed to open namespace %s: %w", l.Switch(), err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("failed to open netlink in %s: %w", l.Switch(), err)
	}
	link, err := h.LinkByName("a2")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("failed to find switch port a2: %w", err)
	}
	return &portDown{h: h, link: link}, nil
}

func (p *portDown) cut() (time.Time, time.Duration, error) {
	return timed(func() error { return p.h.LinkSetDown(p.link) })
}

func (p *portDown) heal() (time.Time, time.Duration, error) {
	return timed(func() error { return p.h.LinkSetUp(p.link) })
}

func (p *portDown) close() {
	_ = p.h.LinkSetUp(p.link)
	p.h.Close()
}
