package daemon

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// DefaultStatusSocket is where the daemon serves its status unless told
// otherwise; systemd's RuntimeDirectory=faild creates the directory.
const DefaultStatusSocket = "/run/faild/faild.sock"

// Status is one snapshot of the daemon, as "faild status --json" prints
// it. The man page documents every field; add fields, never rename them.
type Status struct {
	Version         string    `json:"version"`
	Node            string    `json:"node"`
	Time            time.Time `json:"time"`
	Requestor       bool      `json:"requestor"`
	IntervalSeconds float64   `json:"interval_seconds"`
	Misses          int       `json:"misses"`
	Successes       int       `json:"successes"`
	// MaxLossPercent and MaxRTTSeconds are --max-loss and --max-rtt, 0
	// when off; LossWindow is the loss window in intervals.
	MaxLossPercent float64           `json:"max_loss_percent"`
	LossWindow     int               `json:"loss_window"`
	MaxRTTSeconds  float64           `json:"max_rtt_seconds"`
	LANs           []StatusLAN       `json:"lans"`
	Peers          int               `json:"peers"`
	PathsDown      int               `json:"paths_down"`
	Paths          []StatusPath      `json:"paths"`
	Drops          map[string]uint64 `json:"drops"`
	// AddrRefused counts addresses peers announced that another peer owns
	// (see routes/claim.go): a misconfigured or hostile node.
	AddrRefused uint64      `json:"addr_refused"`
	Hooks       StatusHooks `json:"hooks"`
	// LogLinesLost counts the event log's lines lost to write errors (a
	// full disk, say) since start.
	LogLinesLost uint64 `json:"log_lines_lost"`
	// Diagnosis is the most likely fault of each LAN that has one, from
	// the cluster's matrix (faild status --cluster).
	Diagnosis []Diagnosis `json:"diagnosis"`
}

// StatusLAN is one of this node's LANs.
type StatusLAN struct {
	Name  string `json:"name"` // A, B, ...
	Dev   string `json:"dev"`
	Addr  string `json:"addr"`  // our addresses with prefix length, comma-separated; "-" with none
	State string `json:"state"` // up, or why not: no carrier, no address, gone
}

// StatusPath is one (peer, LAN) path.
type StatusPath struct {
	Peer                string  `json:"peer"`
	LAN                 string  `json:"lan"`
	Dev                 string  `json:"dev"`
	Addr                string  `json:"addr"`   // the peer's address on the LAN
	State               string  `json:"state"`  // valid or invalid
	Reason              string  `json:"reason"` // why invalid: missed, carrier, loss, rtt, peer; "" when valid
	Heard               bool    `json:"heard"`  // the path has carried evidence
	LastEvidenceSeconds float64 `json:"last_evidence_seconds"`
	Misses              int     `json:"misses"` // whole intervals without evidence since the last
	Goods               int     `json:"goods"`  // consecutive good intervals
	RTTSeconds          float64 `json:"rtt_seconds"`
	Failovers           int     `json:"failovers"`
	Switchbacks         int     `json:"switchbacks"`
	Needs               int     `json:"needs"` // good intervals needed to be valid again; above -s while damped
	// Loss over the window and since the path began, as --max-loss
	// judges it (see routes.Quality); in and round trip over the window,
	// each from the expected packets its window holds (slots).
	LossWindowPercent    float64 `json:"loss_window_percent"`
	LossTotalPercent     float64 `json:"loss_total_percent"`
	LossInPercent        float64 `json:"loss_in_percent"`
	LossInSlots          int     `json:"loss_in_slots"`
	LossRoundTripPercent float64 `json:"loss_round_trip_percent"`
	LossRoundTripSlots   int     `json:"loss_round_trip_slots"`
	// RTT percentiles of the latest round trips (RTTSamples of them).
	RTTP50Seconds float64 `json:"rtt_p50_seconds"`
	RTTP99Seconds float64 `json:"rtt_p99_seconds"`
	RTTSamples    int     `json:"rtt_samples"`
	// Route is what the kernel holds for the peer's address on this LAN:
	// faild's host route (RouteState installed), another's route that
	// holds the destination faild wants (blocked), the error of a write
	// that is tried again (pending); "" with no route wanted or held.
	Route      string `json:"route"`
	RouteState string `json:"route_state"`
}

// StatusHooks counts --on-change runs.
type StatusHooks struct {
	Run     uint64 `json:"run"`
	Failed  uint64 `json:"failed"`
	Dropped uint64 `json:"dropped"`
}

// Healthy reports whether every path is valid: exit status 0.
func (s *Status) Healthy() bool { return s.PathsDown == 0 }

// Summary is the daemon's state in three numbers, the same for systemd's
// STATUS= line and the status report, and the LANs it cannot use, so that
// a faild started degraded (a LAN interface late at boot) says so in
// "systemctl status".
type Summary struct {
	Peers, Paths, Down int
	Unusable           string // "eB gone, eC no carrier"; empty when every LAN is up
}

func (s Summary) String() string {
	peers := "peers"
	if s.Peers == 1 {
		peers = "peer"
	}
	out := fmt.Sprintf("%d %s, %d of %d paths down", s.Peers, peers, s.Down, s.Paths)
	if s.Unusable != "" {
		out += "; " + s.Unusable
	}
	return out
}

// unusable names the LANs that are not up, with why: "eB gone".
func unusable(lans []platform.LAN) string {
	var out []string
	for _, l := range lans {
		if st := lanState(l); st != "up" {
			out = append(out, l.Name+" "+st)
		}
	}
	return strings.Join(out, ", ")
}

// summary counts the peers (a dual-stack peer, in both families' tables,
// once), the paths and the paths down.
func (d *Daemon) summary() Summary {
	s := Summary{Unusable: unusable(d.lans)}
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		p, n, down := f.table.Counts()
		s.Peers, s.Paths, s.Down = s.Peers+p, s.Paths+n, s.Down+down
	}
	if v4, v6 := d.fams[0], d.fams[1]; v4 != nil && v6 != nil {
		v6.table.EachPeer(func(id routes.PeerID) {
			if v4.table.Has(id) {
				s.Peers--
			}
		})
	}
	return s
}

// snapshot builds a Status as of now; the loop calls it.
func (d *Daemon) snapshot(now time.Time) *Status {
	s := &Status{
		Version: d.cfg.Version, Node: routes.PeerID(d.node).String(), Time: now,
		Requestor: d.cfg.Requestor, IntervalSeconds: d.cfg.Interval.Seconds(),
		Misses: d.cfg.Misses, Successes: d.cfg.Successes,
		MaxLossPercent: 100 * d.cfg.MaxLoss, LossWindow: d.lossWindow(), MaxRTTSeconds: d.cfg.MaxRTT.Seconds(),
		Paths: []StatusPath{}, Drops: map[string]uint64{},
	}
	for i, l := range d.lans {
		s.LANs = append(s.LANs, StatusLAN{Name: routes.LANName(i), Dev: l.Name, Addr: lanAddrs(l), State: lanState(l)})
	}
	for _, f := range d.fams {
		if f == nil {
			continue
		}
		f.table.Paths(now, func(id routes.PeerID, lan int, p routes.Path, _ routes.Route) {
			since := now.Sub(p.LastEvidence)
			q := p.Quality
			sp := StatusPath{
				Peer: id.String(), LAN: routes.LANName(lan), Dev: d.names[lan], Addr: p.Addr.String(),
				State: strings.ToLower(p.State.String()), Reason: p.Reason.String(), Heard: p.Heard,
				LastEvidenceSeconds: max(since, 0).Seconds(),
				Goods:               p.Goods, RTTSeconds: p.RTT.Seconds(), Failovers: p.Failovers, Switchbacks: p.Switchbacks,
				Needs:             p.Needs,
				LossWindowPercent: 100 * q.Loss, LossTotalPercent: 100 * q.LossTotal,
				LossInPercent: 100 * q.LossIn, LossInSlots: q.InSlots,
				LossRoundTripPercent: 100 * q.LossRoundTrip, LossRoundTripSlots: q.RoundTripSlots,
				RTTP50Seconds: q.RTT50.Seconds(), RTTP99Seconds: q.RTT99.Seconds(), RTTSamples: q.RTTSamples,
			}
			if p.Interval > 0 && since > 0 {
				sp.Misses = int(since / p.Interval)
			}
			if dst, ok := hostPrefix(p.Addr); ok {
				sp.Route, sp.RouteState = d.describeRoute(dst)
			}
			s.Paths = append(s.Paths, sp)
		})
	}
	sum := d.summary()
	s.Peers, s.PathsDown = sum.Peers, sum.Down
	slices.SortFunc(s.Paths, func(a, b StatusPath) int {
		return cmp.Or(cmpAddr(a.Peer, b.Peer), strings.Compare(a.LAN, b.LAN), cmpAddr(a.Addr, b.Addr))
	})
	for i, n := range d.drops() {
		s.Drops[proto.DropNames[i]] = n
	}
	s.AddrRefused = d.refused()
	s.Hooks = d.hooks.counts()
	if d.deps.LogLost != nil {
		s.LogLinesLost = d.deps.LogLost()
	}
	s.Diagnosis = d.diagnoses()
	return s
}

// lanState says whether a LAN is usable, or why not.
func lanState(l platform.LAN) string {
	switch {
	case l.Index == 0:
		return "gone"
	case !l.Up:
		return "no carrier"
	case len(l.Prefixes()) == 0:
		return "no address"
	}
	return "up"
}

func cmpAddr(a, b string) int {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return pa.Compare(pb)
}

// request is one question to the loop from the status server, or from
// the metrics endpoint (scrape set, reply nil).
type request struct {
	verb   string
	reply  chan []byte
	scrape chan *scrape
}

// answer answers a request; the loop calls it.
func (d *Daemon) answer(r request, now time.Time) {
	var v any
	switch r.verb {
	case "metrics":
		r.scrape <- d.scrapeSnapshot(now)
		return
	case "cluster":
		v = d.cluster(now)
	case "reload":
		res := result{OK: true}
		if err := d.reload(now); err != nil {
			res = result{Error: err.Error()}
		}
		v = res
	default:
		v = d.snapshot(now)
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(result{Error: err.Error()})
	}
	r.reply <- append(b, '\n')
}

// result is the answer to a verb that is not "status".
type result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// listenStatus binds the status socket at path (--status-socket), mode
// 0660, owned by root and gid (the --status-group). A missing directory is
// created 0755. A socket file left by a run that died is replaced; one that
// a running faild answers on is an error, and so is anything at path that
// is not a socket: a mistyped path must never make faild delete a file.
func listenStatus(path string, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create status socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("failed to bind status socket %s: another faild is serving it (give each faild its own --status-socket)", path)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("failed to check --status-socket %s: %w", path, err)
	case fi.Mode().Type() != os.ModeSocket:
		return nil, fmt.Errorf("invalid --status-socket %s: exists and is not a socket (%s); not removing it", path, fileKind(fi.Mode()))
	default:
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("failed to remove stale status socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("failed to bind status socket: %w", err)
	}
	// Bound with the umask's mode; tighten before anyone can rely on it.
	// Without --status-group the owner is already right, and skipping the
	// chown spares faild the need for CAP_CHOWN.
	if err := chownIfNeeded(path, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to set status socket owner: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("failed to set status socket mode: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// fileKind names what a file is, for an error.
func fileKind(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symbolic link"
	case os.ModeNamedPipe:
		return "a named pipe"
	case os.ModeDevice, os.ModeDevice | os.ModeCharDevice:
		return "a device"
	}
	return "mode " + m.String()
}

func chownIfNeeded(path string, gid int) error {
	if os.Geteuid() == 0 && os.Getegid() == gid {
		return nil
	}
	return os.Chown(path, 0, gid)
}

// serveStatus answers every connection until ctx ends. A client writes one
// line, its verb ("status", "cluster", "reload", "events"); one that
// writes nothing within half a second, or closes its side, gets the
// status. "events" follows the event stream until the client hangs up.
func serveStatus(ctx context.Context, ln *net.UnixListener, requests chan<- request, events *eventStream, log *slog.Logger) error {
	return accept(ctx, ln, "status socket", func(c net.Conn) {
		// One at a time: an answer is cheap, and a slow client is cut
		// off by the deadline rather than piling up goroutines. Only a
		// client that follows the events (at most maxWatchers) gets a
		// goroutine of its own.
		switch verb, ok := readVerb(c); {
		case !ok:
			c.Close()
		case verb == "events":
			go events.follow(ctx, c)
		default:
			answerConn(ctx, c, verb, requests, log)
		}
	})
}

// accept hands every connection on ln to serve, one after the other,
// until ctx ends; what names the socket in an error.
func accept(ctx context.Context, ln net.Listener, what string, serve func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("failed to accept on %s: %w", what, err)
		}
		serve(c)
	}
}

// reloadTimeout bounds the wait for a reload, which re-reads the
// configuration file and reopens the log.
const reloadTimeout = 10 * time.Second

// readVerb reads a client's verb line; ok is false when the client is gone.
func readVerb(c net.Conn) (verb string, ok bool) {
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	line, err := bufio.NewReaderSize(io.LimitReader(c, 64), 64).ReadString('\n')
	verb = strings.TrimSpace(line)
	if verb == "" {
		var ne net.Error
		if err != nil && err != io.EOF && !(errors.As(err, &ne) && ne.Timeout()) {
			return "", false
		}
		verb = "status"
	}
	return verb, true
}

func answerConn(ctx context.Context, c net.Conn, verb string, requests chan<- request, log *slog.Logger) {
	defer c.Close()
	timeout := 2 * time.Second
	if verb == "reload" {
		timeout = reloadTimeout
	}
	c.SetDeadline(time.Now().Add(timeout))
	if verb != "status" && verb != "reload" && verb != "cluster" {
		b, _ := json.Marshal(result{Error: fmt.Sprintf("unknown request %q", verb)})
		c.Write(append(b, '\n'))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := request{verb: verb, reply: make(chan []byte, 1)}
	if !post(ctx, requests, r) {
		return
	}
	select {
	case b := <-r.reply:
		if _, err := c.Write(b); err != nil {
			log.Debug("status-write-failed", "err", err)
		}
	case <-ctx.Done():
	}
}

// ErrNoDaemon: no daemon answers on the status socket.
var ErrNoDaemon = errors.New("no daemon answers")

// Ask sends verb to the daemon serving the socket at path and returns its
// answer.
func Ask(path, verb string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDaemon, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, verb+"\n"); err != nil {
		return nil, fmt.Errorf("failed to ask %s: %w", path, err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("no answer from %s", path)
	}
	return raw, nil
}

// FetchStatus reads one snapshot from the daemon at path.
func FetchStatus(path string) (*Status, []byte, error) { return fetch[Status](path, "status") }

// fetch asks the daemon at path for verb and decodes its JSON answer.
func fetch[T any](path, verb string) (*T, []byte, error) {
	raw, err := Ask(path, verb, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, nil, fmt.Errorf("failed to decode the %s from %s: %w", verb, path, err)
	}
	return &v, raw, nil
}

// Reload asks the daemon at path to reload and waits until it has; the
// error is the daemon's when the reload failed.
func Reload(path string) error {
	raw, err := Ask(path, "reload", reloadTimeout+2*time.Second)
	if err != nil {
		return err
	}
	var r result
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("failed to decode the answer from %s: %w", path, err)
	}
	if !r.OK {
		return errors.New(r.Error)
	}
	return nil
}

// WriteTable prints a snapshot for people: the diagnosis, a header, one
// row per path, and the drop and hook counters.
func (s *Status) WriteTable(w io.Writer) {
	if len(s.Diagnosis) > 0 {
		WriteDiagnosis(w, s.Diagnosis)
		fmt.Fprintln(w)
	}
	role := "responder"
	if s.Requestor {
		role = "requestor"
	}
	fmt.Fprintf(w, "faild %s node %s, %s, interval %gs, misses %d, successes %d",
		s.Version, s.Node, role, s.IntervalSeconds, s.Misses, s.Successes)
	if s.MaxLossPercent > 0 {
		fmt.Fprintf(w, ", max-loss %g%%", s.MaxLossPercent)
	}
	if s.MaxRTTSeconds > 0 {
		fmt.Fprintf(w, ", max-rtt %s", FormatSeconds(s.MaxRTTSeconds))
	}
	fmt.Fprintf(w, ", loss window %d\n", s.LossWindow)
	var lans []string
	for _, l := range s.LANs {
		lan := fmt.Sprintf("%s=%s:%s", l.Name, l.Dev, l.Addr)
		if l.State != "" && l.State != "up" {
			lan += " (" + l.State + ")"
		}
		lans = append(lans, lan)
	}
	fmt.Fprintf(w, "LANs %s; %s\n\n", strings.Join(lans, " "), Summary{Peers: s.Peers, Paths: len(s.Paths), Down: s.PathsDown})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tLAN\tDEV\tADDR\tSTATE\tLAST\tMISSES\tGOODS\tLOSS\tLOSS-ALL\tRTT\tP50/P99\tFAILOVERS\tSWITCHBACKS\tROUTE")
	for _, p := range s.Paths {
		route := p.Route
		switch p.RouteState {
		case "":
			route = "-"
		case "blocked":
			route = "blocked by " + route
		case "pending":
			route = "pending: " + route
		}
		state := p.State
		switch {
		case !p.Heard && p.State == "valid":
			state = "unheard"
		case p.Reason != "":
			state += " (" + p.Reason + ")"
		}
		loss, all := "-", "-"
		if p.LossInSlots+p.LossRoundTripSlots > 0 {
			loss, all = FormatPercent(p.LossWindowPercent/100), FormatPercent(p.LossTotalPercent/100)
		}
		pct := "-"
		if p.RTTSamples > 0 {
			pct = FormatSeconds(p.RTTP50Seconds) + "/" + FormatSeconds(p.RTTP99Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
			p.Peer, p.LAN, p.Dev, p.Addr, state, FormatSeconds(p.LastEvidenceSeconds), p.Misses, p.Goods,
			loss, all, FormatSeconds(p.RTTSeconds), pct, p.Failovers, p.Switchbacks, route)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndrops %s\naddresses refused %d\nhooks run=%d failed=%d dropped=%d\n",
		formatDrops(s.Drops), s.AddrRefused, s.Hooks.Run, s.Hooks.Failed, s.Hooks.Dropped)
	if s.LogLinesLost > 0 {
		fmt.Fprintf(w, "log lines lost %d (the log cannot be written; see standard error)\n", s.LogLinesLost)
	}
}

// FormatSeconds shows a duration rounded for reading: 312µs, 1.25s; "-"
// for none.
func FormatSeconds(sec float64) string {
	if sec == 0 {
		return "-"
	}
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// formatDrops lists drop counters in the order proto names them.
func formatDrops(drops map[string]uint64) string {
	var parts []string
	for _, name := range proto.DropNames {
		parts = append(parts, fmt.Sprintf("%s=%d", name, drops[name]))
	}
	return strings.Join(parts, " ")
}

// dropSummary lists the nonzero drop counters for the stop line.
func dropSummary(drops proto.Drops) string {
	var parts []string
	for i, n := range drops {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", proto.DropNames[i], n))
		}
	}
	return strings.Join(parts, ",")
}
