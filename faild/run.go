package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// daemon holds what the tasks of one run share.
type daemon struct {
	opts *options
	log  *slog.Logger
	// mu guards the path tables (fams), the LANs and all that follows from
	// a change of either. The responders take it to feed evidence to the
	// tables themselves, so that a packet costs no hand-off to another
	// goroutine; the decide loop takes it for deadlines, interface
	// changes and status.
	mu sync.Mutex
	// lans are the LANs as they are now; refreshLANs replaces an entry
	// when its interface changes. names are the interfaces' names, fixed
	// for the run: a LAN is the interface of that name, whatever its index.
	lans    []platform.LAN
	names   []string
	lookup  func(name string) (platform.LAN, error)
	fams    families // per address family: the exchange and its path table
	apply   *applier
	links   chan platform.LinkChange
	evs     []routes.Event // scratch, under mu
	desired []routes.Route // scratch, under mu
	// kick wakes the decide loop after a packet changed something, since
	// a path armed again may have an earlier deadline than its timer's.
	kick chan struct{}

	// Operations (status.go, hooks.go, notify.go): the decide loop serves
	// snapshots of the table it owns through snaps, feeds the hooks and
	// keeps systemd informed.
	node   uint32
	snaps  chan chan *Status
	hooks  *hooks
	notify *notifier

	errMu   sync.Mutex
	errLogs map[string]func() bool
}

// run starts faild and blocks until ctx ends or a task fails. Every route it
// installed is gone when it returns.
func run(ctx context.Context, opts *options, log *slog.Logger) error {
	lans, err := platform.Discover(opts.Interfaces)
	if err != nil {
		return fmt.Errorf("failed to find LAN interfaces: %w", err)
	}
	if len(lans) < 2 {
		return fmt.Errorf("failed to find LAN interfaces: need at least two, found %d (%s); name them with -i", len(lans), describe(lans))
	}
	if len(lans) > proto.MaxLANs {
		return fmt.Errorf("failed to find LAN interfaces: found %d, at most %d; name them with -i", len(lans), proto.MaxLANs)
	}
	node, err := nodeID(opts, lans)
	if err != nil {
		return err
	}
	w, err := platform.NewWriter()
	if err != nil {
		return err
	}
	var interval time.Duration
	if opts.Requestor {
		interval = time.Duration(opts.Interval)
	}
	forget := forgetAfter(opts)
	pcfg := proto.Config{Port: opts.Port, Node: node, Boot: randomUint32(), Interval: interval,
		Keys: opts.keys, MaxPeers: opts.MaxPeers, Forget: forget, Log: log}
	rcfg := routes.Config{LANs: len(lans), Interval: interval, Misses: opts.Misses, Successes: opts.Successes,
		Forget: forget, MaxPeers: opts.MaxPeers, DampWindow: opts.DampWindow, DampMax: opts.DampMax}
	fams, err := listenFamilies(pcfg, rcfg, lans, opts.peers, log)
	if err != nil {
		return err
	}
	defer fams.Close()

	d := &daemon{
		opts: opts, log: log, lans: lans, fams: fams, lookup: platform.Lookup,
		apply: newApplier(w, log),
		// Deep enough for a burst from thousands of peers at once.
		kick:    make(chan struct{}, 1),
		links:   make(chan platform.LinkChange, 16),
		errLogs: make(map[string]func() bool),
		node:    node,
		snaps:   make(chan chan *Status),
		hooks:   newHooks(log, opts.Ops.OnChange, opts.Ops.HookTimeout),
		notify:  newNotifier(log),
	}
	for _, l := range lans {
		d.names = append(d.names, l.Name)
	}
	// The status socket first: it is what tells a second faild (one with
	// another -p, so its UDP sockets bound) that one is running already,
	// and that one must fail before it removes the running one's routes as
	// stale.
	statusLn, err := listenStatus(opts.Ops.StatusSocket, opts.Ops.statusGID)
	if err != nil {
		return err
	}
	defer statusLn.Close()
	if err := d.apply.removeStale(); err != nil {
		return fmt.Errorf("failed to remove stale routes: %w", err)
	}
	for _, w := range platform.Preflight(lans) {
		log.Warn("preflight", "warning", w)
	}
	log.Info("start", "version", version, "node", routes.PeerID(node).String(), "requestor", opts.Requestor,
		"interval", time.Duration(opts.Interval).String(), "misses", opts.Misses, "successes", opts.Successes,
		"port", opts.Port, "lans", describe(lans), "auth", len(opts.keys) > 0, "max_peers", opts.MaxPeers,
		"damp_window", opts.DampWindow.String(), "damp_max", opts.DampMax)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.serveStatus(gctx, statusLn) })
	g.Go(func() error { return d.hooks.serve(gctx) })
	g.Go(func() error { return d.signals(gctx) })
	d.notify.ready(d.fams.summary())
	fams.start(g, gctx, opts.Requestor, d.onHeard, d.sendFailed)
	g.Go(func() error {
		return platform.WatchLinks(gctx, func(c platform.LinkChange) {
			select {
			case d.links <- c:
			case <-gctx.Done():
			}
		}, func(err error) { log.Warn("link-watch", "err", err) })
	})
	g.Go(func() error { return d.decide(gctx) })
	g.Go(func() error { return d.apply.run(gctx) })
	err = g.Wait()
	d.notify.stopping()

	n, rerr := d.apply.removeAll()
	log.Info("stop", "routes_removed", n, "drops", d.dropSummary(), "addr_refused", d.fams.Refused())
	return errors.Join(err, rerr)
}

// onHeard feeds a packet's evidence to its path table and acts on what
// that changes. It runs on a responder's goroutine: nothing in it blocks
// (the applier, the hooks and systemd are handed work without waiting).
func (d *daemon) onHeard(h *proto.Heard) {
	d.mu.Lock()
	d.evs = d.fams.Observe(routes.Observation{
		Peer: routes.PeerID(h.Node), LAN: h.LAN, Addrs: h.Addrs[:len(d.lans)],
		Interval: h.Interval, RTT: h.RTT, At: h.At,
	}, d.evs[:0])
	changed := len(d.evs) > 0
	d.handle(d.evs)
	d.mu.Unlock()
	if changed {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// decide fires the tables' deadlines, follows interface changes, serves
// status snapshots and pets the systemd watchdog; evidence reaches the
// tables through onHeard.
func (d *daemon) decide(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	watchdog, stopWatchdog := d.notify.ticker()
	defer stopWatchdog()
	for {
		d.mu.Lock()
		at, ok := d.fams.NextDeadline()
		d.mu.Unlock()
		if ok {
			timer.Reset(time.Until(at))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-timer.C:
			d.mu.Lock()
			d.evs = d.fams.Expire(time.Now(), d.evs[:0])
			d.handle(d.evs)
			d.mu.Unlock()
		case c := <-d.links:
			d.mu.Lock()
			if d.concerns(c) {
				var moved bool
				d.evs, moved = d.refreshLANs(time.Now(), d.evs[:0])
				if moved {
					// Routes name the interface by index: put them on the new one.
					d.applyRoutes()
				}
				d.handle(d.evs)
			}
			d.mu.Unlock()
		case reply := <-d.snaps:
			d.mu.Lock()
			snap := d.snapshot(time.Now())
			d.mu.Unlock()
			reply <- snap
		case <-watchdog:
			// From this loop, which takes mu, so that systemd restarts a
			// daemon whose loop or table is stuck.
			d.notify.petWatchdog()
		}
	}
}

// handle acts on events, with mu held: the routes to the applier and the
// deaf lists to the requestors (unless every event is a discovery, which
// changes neither), a log line each, the hooks and systemd's status. The
// work for routes and status is linear in the number of peers, so it must
// not run for what cannot change them: at 1,000 peers, doing it for every
// discovery saturated a core.
func (d *daemon) handle(evs []routes.Event) {
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		if e.Kind != routes.Discovered {
			d.applyRoutes()
			d.fams.publishDeaf(len(d.lans))
			break
		}
	}
	for _, e := range evs {
		d.report(e)
		if ev, ok := d.hookEventFor(e); ok {
			d.hooks.enqueue(ev)
		}
	}
	d.notify.setStatus(d.fams.summary())
}

// applyRoutes hands the routes the tables want, placed on the LANs'
// interfaces as they are now, to the applier; mu must be held.
func (d *daemon) applyRoutes() {
	d.desired = d.fams.Routes(d.desired[:0])
	krs := make([]platform.Route, 0, len(d.desired))
	for _, r := range d.desired {
		krs = append(krs, d.kernelRoute(r))
	}
	d.apply.set(krs)
}

// concerns reports whether an interface change may touch one of our LANs:
// it names one of their interfaces, or has the index one of them has now.
func (d *daemon) concerns(c platform.LinkChange) bool {
	if c.Lost {
		return true
	}
	for i, l := range d.lans {
		if c.Index == l.Index && l.Index > 0 || c.Name != "" && c.Name == d.names[i] {
			return true
		}
	}
	return false
}

// refreshLANs looks every LAN's interface up again after the kernel changed
// one: an interface that lost its carrier, its address or its existence
// fails every path on its LAN over at once; one that came back, was
// recreated under the same name or readdressed is taken into use at once,
// by the exchange and the route writer alike. It reports whether any LAN
// moved to another index or address.
func (d *daemon) refreshLANs(now time.Time, evs []routes.Event) ([]routes.Event, bool) {
	moved := false
	for i, name := range d.names {
		nl, err := d.lookup(name)
		if err != nil {
			d.log.Warn("lan-lookup-failed", "lan", lanName(i), "dev", name, "err", err)
			continue
		}
		ol := d.lans[i]
		d.lans[i] = nl
		if nl.Index != ol.Index || nl.Addr != ol.Addr || nl.Addr6 != ol.Addr6 || nl.Broadcast != ol.Broadcast {
			moved = true
			d.log.Warn("lan-changed", "lan", lanName(i), "dev", name, "old", lanString(ol), "new", lanString(nl))
		}
		switch {
		case ol.Up && !nl.Up:
			reason := "no carrier"
			if nl.Index == 0 {
				reason = "interface gone"
			}
			d.log.Warn("carrier-lost", "lan", lanName(i), "dev", name, "reason", reason, "action", "every path on this LAN is invalid now")
		case !ol.Up && nl.Up:
			d.log.Info("carrier-restored", "lan", lanName(i), "dev", name)
		}
		if ol.Usable() && !nl.Usable() {
			if nl.Up {
				d.log.Warn("lan-down", "lan", lanName(i), "dev", name, "reason", "no address",
					"action", "every path on this LAN is invalid until it has one")
			}
			evs = d.fams.LANDown(i, now, evs)
		}
	}
	if moved {
		if err := d.fams.setLANs(d.lans, d.opts.peers); err != nil {
			d.log.Error("lan-update-failed", "err", err)
		}
	}
	return evs, moved
}

// lanString shows a LAN's interface for lan-changed: "index 3
// 192.0.2.1/24 brd 192.0.2.255", or why it has none.
func lanString(l platform.LAN) string {
	switch {
	case l.Index == 0:
		return "gone"
	case !l.Addr.IsValid() && !l.Addr6.IsValid():
		return fmt.Sprintf("index %d no address", l.Index)
	case !l.Addr.IsValid():
		return fmt.Sprintf("index %d %s", l.Index, l.Addr6)
	case l.Addr6.IsValid():
		return fmt.Sprintf("index %d %s brd %s %s", l.Index, l.Addr, l.Broadcast, l.Addr6)
	}
	return fmt.Sprintf("index %d %s brd %s", l.Index, l.Addr, l.Broadcast)
}

// kernelRoute places a decided route on the interface of its LAN.
func (d *daemon) kernelRoute(r routes.Route) platform.Route {
	l := d.lans[r.LAN]
	return platform.Route{Dst: r.Dst, Via: r.Via, Dev: l.Name, Index: l.Index}
}

// report logs one event as one line with fixed keys, so that
// `grep msg=failover` is a way to monitor.
func (d *daemon) report(e routes.Event) {
	peer := e.Peer.String()
	route := "none"
	if !e.Route.IsZero() {
		route = d.kernelRoute(e.Route).String()
	}
	switch e.Kind {
	case routes.Discovered:
		d.log.Info("discovered", "peer", peer, "lan", lanName(e.LAN), "dev", d.lans[e.LAN].Name, "addr", e.Addr.String())
	case routes.Failover:
		args := []any{"peer", peer, "lan", lanName(e.LAN), "dev", d.lans[e.LAN].Name, "addr", e.Addr.String(), "route", route}
		if e.Needs > d.opts.Successes {
			// The path flaps: say so, and what it takes to come back.
			args = append(args, "damping", fmt.Sprintf("needs %d good intervals", e.Needs))
		}
		d.log.Warn("failover", args...)
	case routes.Switchback:
		d.log.Info("switchback", "peer", peer, "lan", lanName(e.LAN), "dev", d.lans[e.LAN].Name, "addr", e.Addr.String(), "route", route)
	case routes.Unreachable:
		d.log.Warn("unreachable", "peer", peer, "detail", "every LAN to the peer is down; no route installed")
	case routes.Reachable:
		d.log.Info("reachable", "peer", peer)
	case routes.Rerouted:
		d.log.Info("reroute", "peer", peer, "lan", lanName(e.LAN), "dev", d.lans[e.LAN].Name, "addr", e.Addr.String(), "route", route)
	case routes.Forgotten:
		d.log.Info("forgotten", "peer", peer, "detail", "silent on every LAN; its routes are removed")
	}
}

// sendFailed returns the error callback for one sending task; it logs a
// LAN's failure at most once every 10 s (a LAN whose link is down fails
// every interval).
func (d *daemon) sendFailed(what string) func(lan int, err error) {
	return func(lan int, err error) {
		key := fmt.Sprintf("%s/%d", what, lan)
		d.errMu.Lock()
		ok := d.errLogs[key]
		if ok == nil {
			ok = every(10 * time.Second)
			d.errLogs[key] = ok
		}
		log := ok()
		d.errMu.Unlock()
		if log {
			d.log.Warn("send-failed", "packet", what, "lan", lanName(lan), "dev", d.names[lan], "err", err)
		}
	}
}

func (d *daemon) dropSummary() string {
	var parts []string
	for i, n := range d.fams.Drops() {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", proto.DropNames[i], n))
		}
	}
	return strings.Join(parts, ",")
}

// nodeID is --node-id, or else defaultNodeID of LAN A.
func nodeID(opts *options, lans []platform.LAN) (uint32, error) {
	if opts.NodeID == "" {
		return defaultNodeID(lans[0])
	}
	b := netip.MustParseAddr(opts.NodeID).As4() // validated
	return binary.BigEndian.Uint32(b[:]), nil
}

func randomUint32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// describe lists LANs for logs: "A=eth0:192.0.2.1/24 B=eth1:198.51.100.1/24",
// with both addresses of a dual-stack LAN comma-separated.
func describe(lans []platform.LAN) string {
	var parts []string
	for i, l := range lans {
		parts = append(parts, fmt.Sprintf("%s=%s:%s", lanName(i), l.Name, lanAddrs(l)))
	}
	return strings.Join(parts, " ")
}
