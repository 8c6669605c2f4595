package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// Config is what the daemon is told to do, validated by its caller.
type Config struct {
	Version    string
	Requestor  bool
	Interval   time.Duration // -t; INQs are sent at it only with Requestor
	Misses     int           // -f
	Successes  int           // -s
	Port       int
	Interfaces []string     // -i, in priority order; none: every interface that qualifies
	NodeID     uint32       // --node-id; 0: from LAN A's address
	Peers      []netip.Addr // --peer
	Keys       [][]byte     // --key-file's keys
	MaxPeers   int
	DampWindow time.Duration
	DampMax    int
	// MaxLoss (a fraction; 0 off), LossWindow (intervals; 0 for the
	// default) and MaxRTT (0 off): --max-loss, --loss-window, --max-rtt.
	MaxLoss    float64
	LossWindow int
	MaxRTT     time.Duration

	StatusSocket string // "" serves no status socket
	StatusGID    int
	// MetricsListen is where the Prometheus endpoint listens
	// (--metrics-listen, host:port); "" serves none.
	MetricsListen string
	OnChange      string
	HookTimeout   time.Duration
}

// Deps are what the daemon acts through: the system's in production, fakes
// in the tests.
type Deps struct {
	Log        *slog.Logger
	Routes     platform.Writer
	Interfaces platform.Interfaces
	// Listen opens the transport of one address family on every LAN.
	Listen func(port int, v6 bool) (proto.Conn, error)
	// Notify sends one state to systemd; nil outside systemd.
	Notify func(state string) error
	// Watchdog is how often to tell systemd the loop is alive; 0 for never.
	Watchdog time.Duration
	// Reload re-reads the configuration and reopens the log (SIGHUP,
	// faild reload); nil when there is nothing to re-read.
	Reload func() (Reloaded, error)
	// Signals delivers SIGHUP (reload), SIGUSR1 (status to the log) and
	// SIGUSR2 (stop, keeping the routes for the next start to adopt).
	Signals <-chan os.Signal
	// LogLost counts the log lines lost to write errors, for the status
	// report; nil for none.
	LogLost func() uint64
}

// Reloaded is what a reload changed, for the loop to apply and log.
type Reloaded struct {
	OnChange     string
	HookTimeout  time.Duration
	LogFile      string
	LogFormat    string
	NeedsRestart []string // options that changed but take a restart
}

// ConfigError is a start-up error that is the configuration's fault (an
// interface that is no LAN, say), not the system's: the command exits with
// its own status, which the unit does not retry.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return &ConfigError{fmt.Errorf(format, args...)}
}

// Daemon is one faild. New builds it; Run runs it.
type Daemon struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	node  uint32
	boot  uint32
	start time.Time

	lans  []platform.LAN // as they are now; refreshLANs replaces an entry when its interface changes
	names []string       // the LANs' interfaces by name, fixed for the run
	fams  [2]*family     // IPv4, IPv6; nil until some LAN has an address of the family
	rec   *reconciler
	// adopted holds the routes an earlier run left, until their paths
	// have shown what they are (see reconcile in loop.go).
	adopted     map[netip.Prefix]platform.Route
	adoptedOnce map[netip.Prefix]bool // every destination adopted, for the words of the log
	adoptEnd    time.Time
	blocked     map[netip.Prefix]string // destinations held by another's route, as logged

	hooks  *hooks
	notify *notifier
	events *eventStream         // the log's lines for the clients that follow them
	sent   map[string]time.Time // when a send failure was last logged, by packet and LAN

	evs  []routes.Event
	acts []Action
	// diags is the diagnosis of each LAN, evaluated at diagAt (cluster.go).
	diags  [routes.MaxLANs]diagState
	diagAt time.Time
	want   map[netip.Prefix]platform.Route

	// spawn starts a receiver for a family opened after Run started; nil
	// when no goroutines run (the simulation drives the steps itself).
	spawn func(*family)
	// keep, set by SIGUSR2, stops Run without removing the routes.
	keep bool
}

// New checks what the daemon can check before it touches anything: the
// LANs are found (named interfaces that are missing come up degraded,
// waiting for them), the node id is chosen, and the --peer addresses fit
// the LANs. It opens nothing.
func New(cfg Config, deps Deps) (*Daemon, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	events := newEventStream()
	// Every line goes to the event stream too, for faild status --watch.
	deps.Log = slog.New(&teeHandler{next: deps.Log.Handler(), e: events})
	d := &Daemon{cfg: cfg, deps: deps, log: deps.Log, boot: randomUint32(), events: events,
		rec:     newReconciler(deps.Routes),
		adopted: make(map[netip.Prefix]platform.Route), adoptedOnce: make(map[netip.Prefix]bool),
		blocked: make(map[netip.Prefix]string),
		sent:    make(map[string]time.Time), want: make(map[netip.Prefix]platform.Route),
		hooks:  newHooks(deps.Log, cfg.OnChange, cfg.HookTimeout),
		notify: &notifier{log: deps.Log, send: deps.Notify, watchdog: deps.Watchdog},
	}
	lans, err := d.findLANs()
	if err != nil {
		return nil, err
	}
	d.lans = lans
	for _, l := range lans {
		d.names = append(d.names, l.Name)
	}
	if d.node, err = nodeID(cfg, lans); err != nil {
		return nil, err
	}
	if err := checkPeers(cfg.Peers, lans); err != nil {
		return nil, err
	}
	return d, nil
}

// Run serves until ctx ends, a task fails, or SIGUSR2 asks for a stop that
// keeps the routes. On the way out it removes every route of faild's,
// except after SIGUSR2, when they stay for the next start to adopt.
func (d *Daemon) Run(ctx context.Context) error {
	// The status socket first: it is what tells a second faild (one with
	// another -p, so its UDP sockets bound) that one is running already,
	// and that one must fail before it touches the running one's routes.
	var ln *net.UnixListener
	if d.cfg.StatusSocket != "" {
		var err error
		if ln, err = listenStatus(d.cfg.StatusSocket, d.cfg.StatusGID); err != nil {
			return err
		}
		defer ln.Close()
	}
	var mln net.Listener
	if d.cfg.MetricsListen != "" {
		var err error
		if mln, err = listenMetrics(d.cfg.MetricsListen); err != nil {
			return err
		}
		defer mln.Close()
	}
	now := time.Now()
	if err := d.begin(now); err != nil {
		return err
	}
	defer d.closeFamilies()

	// The loop ends the run when it returns (SIGUSR2), like a task's error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	ch := newChannels()
	d.spawn = func(f *family) { g.Go(func() error { return d.receive(gctx, f, ch) }) }
	for _, f := range d.fams {
		if f != nil {
			d.spawn(f)
		}
	}
	// Closing the sockets is what ends the receivers.
	stop := context.AfterFunc(gctx, d.closeFamilies)
	defer stop()
	if ln != nil {
		g.Go(func() error { return serveStatus(gctx, ln, ch.requests, d.events, d.log) })
	}
	if mln != nil {
		g.Go(func() error { return serveMetrics(gctx, mln, ch.requests, d.log) })
	}
	g.Go(func() error { return d.events.serve(gctx) })
	g.Go(func() error { return d.hooks.serve(gctx) })
	g.Go(func() error {
		return d.deps.Interfaces.WatchLinks(gctx, func(c platform.LinkChange) { post(gctx, ch.links, c) },
			func(err error) { d.log.Warn("link-watch", "err", err) })
	})
	g.Go(func() error {
		return d.deps.Routes.WatchRoutes(gctx, func(c platform.RouteChange) { post(gctx, ch.routes, c) },
			func(err error) { d.log.Warn("route-watch", "err", err) })
	})
	g.Go(func() error {
		defer cancel()
		return d.loop(gctx, ch)
	})
	err := g.Wait()
	d.notify.stopping()
	return errors.Join(err, d.end(time.Now()))
}

// begin is the start of a run: the families' sockets, the kernel's table
// read and faild's routes in it adopted, the start line, READY.
func (d *Daemon) begin(now time.Time) error {
	d.start = now
	for _, v6 := range []bool{false, true} {
		if !d.hasFamily(v6) {
			continue
		}
		if err := d.openFamily(v6, now); err != nil {
			d.closeFamilies()
			return err
		}
	}
	for _, w := range platform.Preflight(d.lans) {
		d.log.Warn("preflight", "warning", w)
	}
	if err := d.rec.read(); err != nil {
		d.closeFamilies()
		return fmt.Errorf("failed to read the routing table: %w", err)
	}
	d.rec.fullAt = now.Add(reconcileEvery)
	d.diagAt = now.Add(d.cfg.Interval)
	d.adopt(now)
	// Now, so that whatever the reconciler does first (the route watch's
	// first news is a whole read) already counts the adopted routes.
	d.reconcile(now)
	d.log.Info("start", "version", d.cfg.Version, "node", routes.PeerID(d.node).String(), "requestor", d.cfg.Requestor,
		"interval", d.cfg.Interval.String(), "misses", d.cfg.Misses, "successes", d.cfg.Successes,
		"port", d.cfg.Port, "lans", describe(d.lans), "auth", len(d.cfg.Keys) > 0, "max_peers", d.cfg.MaxPeers,
		"damp_window", d.cfg.DampWindow.String(), "damp_max", d.cfg.DampMax,
		"max_loss", FormatPercent(d.cfg.MaxLoss), "loss_window", d.lossWindow(), "max_rtt", d.cfg.MaxRTT.String(),
		"adopted", len(d.adopted))
	for i, l := range d.lans {
		if !l.Usable() {
			d.log.Warn("lan-waiting", "lan", routes.LANName(i), "dev", l.Name, "state", lanString(l),
				"detail", "not usable yet: its paths count as down until it is")
		}
	}
	d.notify.ready(d.summary().String())
	return nil
}

// end is the end of a run: the routes removed, or kept after SIGUSR2, and
// the stop line.
func (d *Daemon) end(now time.Time) error {
	drops := dropSummary(d.drops())
	if d.keep {
		d.log.Info("stop", "routes_kept", d.rec.ours(), "detail", "kept for the next start to adopt (SIGUSR2)",
			"drops", drops, "addr_refused", d.refused())
		return nil
	}
	n, err := d.rec.removeAll()
	d.log.Info("stop", "routes_removed", n, "drops", drops, "addr_refused", d.refused())
	return err
}

// adopt takes the routes of faild's that the kernel holds at start, left
// by an earlier run that crashed, was killed or stopped with SIGUSR2. The
// paths they stand for start invalid, as that run left them, and must earn
// their switchback; a route stays until the tables want it themselves (its
// gateway heard), its path switches back or its gateway's goes down, or one
// detection time has passed without any of that (reconcile in loop.go). So
// a restart never opens a hole in traffic.
func (d *Daemon) adopt(now time.Time) {
	iv := d.cfg.Interval
	if !d.cfg.Requestor || iv <= 0 {
		iv = time.Second // a responder judges at its peers' interval, unknown yet
	}
	d.adoptEnd = now.Add(time.Duration(d.cfg.Misses)*iv + iv)
	for _, rs := range d.rec.kernel {
		for _, kr := range rs {
			if kr.Ours {
				d.adopted[kr.Dst], d.adoptedOnce[kr.Dst] = kr.Route, true
				if f := d.fams[familyOf(kr.Dst.Addr())]; f != nil {
					f.table.StartInvalid(kr.Dst.Addr())
				}
				d.log.Info("adopt", "route", kr.Route.String(), "detail", "left by an earlier run; kept while it may still be wanted")
			}
		}
	}
}

func randomUint32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
