package daemon

import (
	"context"
	"net/netip"
	"os"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// channels carry everything that reaches the loop from the other
// goroutines.
type channels struct {
	heard    chan *batch
	links    chan platform.LinkChange
	routes   chan platform.RouteChange
	requests chan request
}

// batch is the evidence a family's receiver gathered until its socket had
// nothing more waiting (see proto.Receiver.Serve), handed to the loop and
// back to the receiver for reuse.
type batch struct {
	f    *family
	hs   []proto.Heard
	free chan *batch
}

// batches is how many batches each receiver fills ahead of the loop; past
// them it waits, and the socket's buffer holds what comes meanwhile.
const batches = 4

func newChannels() *channels {
	return &channels{
		heard:  make(chan *batch, 2*batches),
		links:  make(chan platform.LinkChange, 16),
		routes: make(chan platform.RouteChange, 256),
		// Status requests wait for the loop; one at a time is plenty.
		requests: make(chan request),
	}
}

// post hands v to the loop unless the run is over.
func post[T any](ctx context.Context, c chan<- T, v T) bool {
	select {
	case c <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// receive is one family's receiver goroutine: it reads, answers and hands
// the evidence to the loop until the family's socket is closed.
func (d *Daemon) receive(ctx context.Context, f *family, ch *channels) error {
	free := make(chan *batch, batches)
	for range batches {
		free <- &batch{f: f, hs: make([]proto.Heard, 0, proto.BatchSize), free: free}
	}
	logged := make(map[string]time.Time) // this goroutine's own
	return f.rx.Serve(f.conn, func(hs []proto.Heard) {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		b.hs = append(b.hs[:0], hs...)
		post(ctx, ch.heard, b)
	}, func(lan int, err error) {
		d.sendFailed(logged, "ack", lan, err, time.Now())
	})
}

// loop is the decide loop: the one goroutine that owns the daemon's state
// (see the package doc). It runs every step as its input arrives: evidence,
// interface and route changes, status requests, signals, and the timer of
// the next deadline.
func (d *Daemon) loop(ctx context.Context, ch *channels) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var watchdog <-chan time.Time
	if iv := d.notify.watchdog; iv > 0 {
		// Half the timeout, as sd_watchdog_enabled(3) advises; from this
		// loop, so that systemd restarts a daemon whose loop is stuck.
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		timer.Reset(time.Until(d.next()))
		select {
		case <-ctx.Done():
			return nil
		case b := <-ch.heard:
			d.onHeard(b.f, b.hs, time.Now())
			b.free <- b
		case c := <-ch.links:
			d.onLink(c, time.Now())
		case c := <-ch.routes:
			d.onRoute(c, time.Now())
		case r := <-ch.requests:
			d.answer(r, time.Now())
		case s := <-d.deps.Signals:
			if d.onSignal(s, time.Now()) {
				return nil
			}
		case <-timer.C:
			d.wake(time.Now())
		case <-watchdog:
			d.notify.petWatchdog(time.Now())
		}
	}
}

// next is when the loop has work to do without news: a path's deadline,
// the next INQs, a route write to retry or the periodic read of the
// routing table, the end of the adoption.
func (d *Daemon) next() time.Time {
	at := d.rec.next()
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		if t, ok := f.table.NextDeadline(); ok && t.Before(at) {
			at = t
		}
		if d.cfg.Requestor && f.nextINQ.Before(at) {
			at = f.nextINQ
		}
	}
	if len(d.adopted) > 0 && d.adoptEnd.Before(at) {
		at = d.adoptEnd
	}
	if d.diagAt.Before(at) {
		at = d.diagAt
	}
	return at
}

// onHeard feeds what a family's receiver heard to its path table. An ACK
// counts only when it answers one of our recent INQs on its LAN; that
// match gives the path's round trip.
func (d *Daemon) onHeard(f *family, hs []proto.Heard, now time.Time) {
	for i := range hs {
		h := &hs[i]
		o := routes.Observation{Peer: h.Node, LAN: h.LAN, Addrs: h.Addrs[:len(d.lans)], Interval: h.Interval, Deaf: h.Deaf,
			INQ: h.Echo, Boot: h.Boot, At: h.At}
		if h.Type == proto.ACK {
			n, rtt, ok := f.tx.Answered(h.LAN, h.Echo, h.At)
			if !ok {
				continue
			}
			o.RTT, o.INQ = max(rtt, time.Nanosecond), n
		}
		d.evs = f.table.Observe(o, d.evs)
		f.heardView(h)
	}
	d.settle(now, false)
}

// wake does what is due at now: expired paths, INQs, a route write to
// retry, the periodic read of the routing table.
func (d *Daemon) wake(now time.Time) {
	for _, f := range d.fams {
		if f != nil {
			d.evs = f.table.Expire(now, d.evs)
		}
	}
	d.sendINQs(now)
	if !now.Before(d.diagAt) {
		d.diagAt = d.diagnose(now)
	}
	replan := len(d.adopted) > 0 && !now.Before(d.adoptEnd)
	if !d.rec.retryAt.IsZero() && !now.Before(d.rec.retryAt) {
		d.acts = d.rec.retry(now, d.acts)
	}
	if !now.Before(d.rec.fullAt) {
		d.rec.fullAt = now.Add(reconcileEvery)
		if err := d.rec.read(); err != nil {
			d.log.Error("route-read-failed", "err", err, "detail", "judging by the routes last seen")
		}
		replan = true
	}
	d.settle(now, replan)
}

// sendINQs sends each family's INQs when they are due.
func (d *Daemon) sendINQs(now time.Time) {
	if !d.cfg.Requestor {
		return
	}
	for _, f := range d.fams {
		if f == nil || now.Before(f.nextINQ) {
			continue
		}
		f.nextINQ = f.nextINQ.Add(d.cfg.Interval)
		if f.nextINQ.Before(now) {
			f.nextINQ = now.Add(d.cfg.Interval) // the loop was held up: do not send a burst
		}
		f.nextINQ = f.table.Place(f.nextINQ, now) // its place among the requestors' INQs
		ms, err := f.tx.INQs(now, proto.Round{Deaf: f.deaf, View: f.view(now), V1: len(f.v1) > 0}, f.out[:0])
		f.out = ms
		if err != nil {
			d.log.Error("inq-failed", "family", f.name(), "err", err)
		}
		// The table counts the ACKs it expects against the INQs sent.
		for lan := range d.lans {
			n, at := f.tx.Sent(lan)
			f.table.Sent(lan, n, at)
		}
		proto.WriteAll(f.conn, ms, func(m *proto.Message, err error) {
			d.sendFailed(d.sent, "inq", f.x.LANOf(m.IfIndex), err, now)
		})
	}
}

// sendFailed logs that a packet could not be sent on a LAN, at most once
// every 10 s per packet kind and LAN (a LAN whose link is down fails every
// interval). last is the calling goroutine's own record.
func (d *Daemon) sendFailed(last map[string]time.Time, what string, lan int, err error, now time.Time) {
	key := what + routes.LANName(lan)
	if t, ok := last[key]; ok && now.Sub(t) < 10*time.Second {
		return
	}
	last[key] = now
	dev := ""
	if lan >= 0 && lan < len(d.names) {
		dev = d.names[lan]
	}
	d.log.Warn("send-failed", "packet", what, "lan", routes.LANName(lan), "dev", dev, "err", err)
}

// onLink follows an interface change: a LAN whose interface lost its
// carrier, its address or its existence fails every path on it at once;
// one that came back, was recreated or readdressed is taken into use.
func (d *Daemon) onLink(c platform.LinkChange, now time.Time) {
	if !d.concerns(c) {
		return
	}
	moved := d.refreshLANs(now)
	// Routes name the interface by index: put them on the new one.
	d.settle(now, moved)
	// A LAN gone or back changes STATUS= even when no path has changed.
	d.notify.setStatus(d.summary().String(), now)
}

// onRoute follows a change of the kernel's host routes, whoever made it,
// and brings the destination into line again.
func (d *Daemon) onRoute(c platform.RouteChange, now time.Time) {
	if c.Lost {
		if err := d.rec.read(); err != nil {
			d.log.Error("route-read-failed", "err", err, "detail", "judging by the routes last seen; reading again on the next retry")
			d.rec.retryAt = now.Add(d.rec.backoff)
			return
		}
		d.acts = d.rec.syncAll(now, d.acts)
	} else if d.rec.news(c) {
		d.rec.observe(c)
		d.acts = d.rec.sync(c.Route.Dst, now, d.acts)
	}
	d.settle(now, false)
}

// onSignal handles one signal; it reports whether the run must end.
func (d *Daemon) onSignal(s os.Signal, now time.Time) (stop bool) {
	switch s {
	case reloadSignal:
		if err := d.reload(now); err != nil {
			d.log.Error("reload-failed", "err", err, "detail", "kept the running configuration")
		}
	case statusSignal:
		d.logStatus(now)
	case handoverSignal:
		d.keep = true
		return true
	}
	return false
}

// settle acts on the events and actions the step gathered: with any event
// that can change a route (or replan set), the reconciler brings the
// kernel into line with what the tables want now; then one log line a
// happening, the hooks for what was written, systemd's status. The work
// is linear in the number of peers, so it must not run for what cannot
// change a route: at 1,000 peers, doing it for every discovery saturated a
// core.
func (d *Daemon) settle(now time.Time, replan bool) {
	// While adopted routes wait for their paths, any evidence may settle
	// one.
	replan = replan || len(d.adopted) > 0
	for _, e := range d.evs {
		if e.Kind == routes.Forgotten {
			for _, f := range d.fams {
				if f != nil && !f.table.Has(e.Peer) {
					f.forgetView(e.Peer)
				}
			}
		}
		if e.Kind != routes.Discovered && e.Kind != routes.Held {
			replan = true
		}
	}
	if replan {
		d.reconcile(now)
	}
	if len(d.evs) == 0 && len(d.acts) == 0 {
		return
	}
	d.report(now)
	d.evs, d.acts = d.evs[:0], d.acts[:0]
	d.notify.setStatus(d.summary().String(), now)
}

// reconcile gives the reconciler the routes the tables want, placed on the
// LANs' interfaces as they are now, and lets it bring every destination
// into line. An adopted route is wanted until its path has shown what it
// is (evidence on it, or its deadline passed) or the adoption ends.
func (d *Daemon) reconcile(now time.Time) {
	want := make(map[netip.Prefix]platform.Route, len(d.rec.want))
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		f.routes = f.table.Routes(f.routes[:0])
		for _, r := range f.routes {
			if pr, ok := d.place(r); ok {
				want[pr.Dst] = pr
			}
		}
	}
	for dst, r := range d.adopted {
		if !now.Before(d.adoptEnd) || d.settled(r) {
			delete(d.adopted, dst)
			continue
		}
		if _, ok := want[dst]; !ok {
			want[dst] = r
		}
	}
	d.rec.setWant(want)
	d.acts = d.rec.syncAll(now, d.acts)
}

// settled reports whether an adopted route r has had its say: the path it
// stands for switched back, or the path it goes by is down.
func (d *Daemon) settled(r platform.Route) bool {
	f := d.fams[familyOf(r.Dst.Addr())]
	if f == nil {
		return false
	}
	if p, ok := f.table.Path(r.Via); ok && p.State == routes.Invalid {
		return true
	}
	p, ok := f.table.Path(r.Dst.Addr())
	return ok && p.State == routes.Valid
}

// place puts a route the tables want on the interface its LAN has now.
func (d *Daemon) place(r routes.Route) (platform.Route, bool) {
	if r.LAN < 0 || r.LAN >= len(d.lans) || d.lans[r.LAN].Index == 0 {
		return platform.Route{}, false
	}
	l := d.lans[r.LAN]
	return platform.Route{Dst: r.Dst, Via: r.Via, Dev: l.Name, Index: l.Index}, true
}

// closeFamilies closes every family's socket, which ends its receiver.
func (d *Daemon) closeFamilies() {
	for _, f := range d.fams {
		if f != nil {
			f.conn.Close()
		}
	}
}
