package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/proto"
	"github.com/faild/faild/routes"
)

// defaultStatusSocket is where the daemon serves its status unless told
// otherwise; systemd's RuntimeDirectory=faild creates the directory.
const defaultStatusSocket = "/run/faild/faild.sock"

// Status is one snapshot of the daemon, as "faild status --json" prints
// it. The man page documents every field; add fields, never rename them.
type Status struct {
	Version         string            `json:"version"`
	Node            string            `json:"node"`
	Time            time.Time         `json:"time"`
	Requestor       bool              `json:"requestor"`
	IntervalSeconds float64           `json:"interval_seconds"`
	Misses          int               `json:"misses"`
	Successes       int               `json:"successes"`
	LANs            []StatusLAN       `json:"lans"`
	Peers           int               `json:"peers"`
	PathsDown       int               `json:"paths_down"`
	Paths           []StatusPath      `json:"paths"`
	Drops           map[string]uint64 `json:"drops"`
	// AddrRefused counts addresses peers announced that another peer owns
	// (see routes.Table.claim): a misconfigured or hostile node.
	AddrRefused uint64      `json:"addr_refused"`
	Hooks       StatusHooks `json:"hooks"`
}

// StatusLAN is one of this node's LANs.
type StatusLAN struct {
	Name string `json:"name"` // A, B, ...
	Dev  string `json:"dev"`
	Addr string `json:"addr"` // our address with prefix length
}

// StatusPath is one (peer, LAN) path.
type StatusPath struct {
	Peer                string  `json:"peer"`
	LAN                 string  `json:"lan"`
	Dev                 string  `json:"dev"`
	Addr                string  `json:"addr"`  // the peer's address on the LAN
	State               string  `json:"state"` // valid or invalid
	LastEvidenceSeconds float64 `json:"last_evidence_seconds"`
	Misses              int     `json:"misses"` // whole intervals without evidence since the last
	Goods               int     `json:"goods"`  // consecutive good intervals
	RTTSeconds          float64 `json:"rtt_seconds"`
	Failovers           int     `json:"failovers"`
	Switchbacks         int     `json:"switchbacks"`
	Needs               int     `json:"needs"` // good intervals needed to be valid again; above -s while damped
	Route               string  `json:"route"` // the host route carrying the path's traffic, "" if none
}

// StatusHooks counts --on-change runs.
type StatusHooks struct {
	Run     uint64 `json:"run"`
	Failed  uint64 `json:"failed"`
	Dropped uint64 `json:"dropped"`
}

// Healthy reports whether every path is valid: exit status 0.
func (s *Status) Healthy() bool { return s.PathsDown == 0 }

// snapshot builds a Status from the table; only the decide loop, which
// owns the table, calls it.
func (d *daemon) snapshot(now time.Time) *Status {
	s := &Status{
		Version: version, Node: routes.PeerID(d.node).String(), Time: now,
		Requestor: d.opts.Requestor, IntervalSeconds: time.Duration(d.opts.Interval).Seconds(),
		Misses: d.opts.Misses, Successes: d.opts.Successes,
		Paths: []StatusPath{}, Drops: map[string]uint64{},
	}
	for i, l := range d.lans {
		s.LANs = append(s.LANs, StatusLAN{Name: lanName(i), Dev: l.Name, Addr: lanAddrs(l)})
	}
	peers := map[routes.PeerID]bool{}
	d.fams.Paths(now, func(id routes.PeerID, lan int, p routes.Path, r routes.Route) {
		peers[id] = true
		since := now.Sub(p.LastEvidence)
		sp := StatusPath{
			Peer: id.String(), LAN: lanName(lan), Dev: d.lans[lan].Name, Addr: p.Addr.String(),
			State: strings.ToLower(p.State.String()), LastEvidenceSeconds: max(since, 0).Seconds(),
			Goods: p.Goods, RTTSeconds: p.RTT.Seconds(), Failovers: p.Failovers, Switchbacks: p.Switchbacks,
			Needs: p.Needs,
		}
		if p.Interval > 0 && since > 0 {
			sp.Misses = int(since / p.Interval)
		}
		if !r.IsZero() {
			sp.Route = d.kernelRoute(r).String()
		}
		if p.State != routes.Valid {
			s.PathsDown++
		}
		s.Paths = append(s.Paths, sp)
	})
	s.Peers = len(peers)
	slices.SortFunc(s.Paths, func(a, b StatusPath) int {
		return cmp.Or(cmpAddr(a.Peer, b.Peer), strings.Compare(a.LAN, b.LAN))
	})
	for i, n := range d.fams.Drops() {
		s.Drops[proto.DropNames[i]] = n
	}
	s.AddrRefused = d.fams.Refused()
	if d.hooks != nil {
		s.Hooks = d.hooks.counts()
	}
	return s
}

func cmpAddr(a, b string) int {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return pa.Compare(pb)
}

// summary is the short line for systemd's STATUS=.
func (s *Status) summary() string {
	return fmt.Sprintf("%d peers, %d of %d paths down", s.Peers, s.PathsDown, len(s.Paths))
}

// askSnapshot gets a snapshot from the decide loop; it never touches the
// table itself.
func (d *daemon) askSnapshot(ctx context.Context) (*Status, error) {
	reply := make(chan *Status, 1)
	select {
	case d.snaps <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// listenStatus binds the status socket at path (--status-socket), mode
// 0660, owned by root and gid (the --status-group). A socket file left by a
// run that died is replaced; one that a running faild answers on is an
// error, and so is anything at path that is not a socket: a mistyped path
// must never make faild delete a file.
func listenStatus(path string, gid int) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create status socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("failed to bind status socket %s: another faild is serving it", path)
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

// serveStatus answers every connection with one JSON snapshot until ctx ends.
func (d *daemon) serveStatus(ctx context.Context, ln *net.UnixListener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
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
			return fmt.Errorf("failed to accept on status socket: %w", err)
		}
		// One at a time: a snapshot is cheap, and a slow client is cut
		// off by the deadline rather than piling up goroutines.
		d.answerStatus(ctx, c)
	}
}

func (d *daemon) answerStatus(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := d.askSnapshot(ctx)
	if err != nil {
		return
	}
	if err := json.NewEncoder(c).Encode(s); err != nil {
		d.log.Debug("status-write-failed", "err", err)
	}
}

// statusOptions is the command line of "faild status".
type statusOptions struct {
	JSON         bool   `long:"json" description:"Print the status as JSON (schema in faild(8))"`
	StatusSocket string `long:"status-socket" value-name:"PATH" description:"The daemon's status socket (default: from -c, else /run/faild/faild.sock)"`
	Config       string `short:"c" long:"config" value-name:"FILE" description:"Take --status-socket from the daemon's config file"`
}

// Exit statuses of "faild status".
const (
	statusHealthy     = 0
	statusPathsDown   = 1
	statusUnreachable = 2
)

// status is "faild status": it prints the daemon's table (or JSON) and
// says the health in its exit status, so a monitoring check is one line.
func status(args []string, stdout, stderr io.Writer) int {
	var so statusOptions
	p := flags.NewParser(&so, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = "faild status"
	rest, err := p.ParseArgs(args)
	if err != nil {
		if flags.WroteHelp(err) {
			p.WriteHelp(stdout)
			return statusHealthy
		}
		fmt.Fprintf(stderr, "faild: %v\n", err)
		return statusUnreachable
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "faild: unexpected argument %q (see faild status --help)\n", rest[0])
		return statusUnreachable
	}
	path := so.StatusSocket
	if path == "" && so.Config != "" {
		opts, _, err := loadOptions([]string{"-c", so.Config})
		if err != nil {
			fmt.Fprintf(stderr, "faild: %v\n", err)
			return statusUnreachable
		}
		path = opts.Ops.StatusSocket
	}
	if path == "" {
		path = defaultStatusSocket
	}
	s, raw, err := fetchStatus(path)
	if err != nil {
		fmt.Fprintf(stderr, "faild: failed to reach the daemon: %v\n", err)
		return statusUnreachable
	}
	if so.JSON {
		stdout.Write(raw)
	} else {
		writeTable(stdout, s)
	}
	if !s.Healthy() {
		return statusPathsDown
	}
	return statusHealthy
}

// fetchStatus reads one snapshot from the socket at path.
func fetchStatus(path string) (*Status, []byte, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	raw, err := io.ReadAll(c)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var s Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("failed to decode status from %s: %w", path, err)
	}
	return &s, raw, nil
}

// writeTable prints a snapshot for people: a header, one row per path,
// and the drop and hook counters.
func writeTable(w io.Writer, s *Status) {
	role := "responder"
	if s.Requestor {
		role = "requestor"
	}
	fmt.Fprintf(w, "faild %s node %s, %s, interval %gs, misses %d, successes %d\n",
		s.Version, s.Node, role, s.IntervalSeconds, s.Misses, s.Successes)
	var lans []string
	for _, l := range s.LANs {
		lans = append(lans, fmt.Sprintf("%s=%s:%s", l.Name, l.Dev, l.Addr))
	}
	fmt.Fprintf(w, "LANs %s; %s\n\n", strings.Join(lans, " "), s.summary())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tLAN\tDEV\tADDR\tSTATE\tLAST\tMISSES\tGOODS\tRTT\tFAILOVERS\tSWITCHBACKS\tROUTE")
	for _, p := range s.Paths {
		route := p.Route
		if route == "" {
			route = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\n",
			p.Peer, p.LAN, p.Dev, p.Addr, p.State, fmtSeconds(p.LastEvidenceSeconds), p.Misses, p.Goods,
			fmtSeconds(p.RTTSeconds), p.Failovers, p.Switchbacks, route)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndrops %s\naddresses refused %d\nhooks run=%d failed=%d dropped=%d\n",
		fmtDrops(s.Drops), s.AddrRefused, s.Hooks.Run, s.Hooks.Failed, s.Hooks.Dropped)
}

// fmtSeconds shows a duration rounded for reading: 312µs, 1.25s.
func fmtSeconds(sec float64) string {
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

// fmtDrops lists drop counters in the order proto names them.
func fmtDrops(drops map[string]uint64) string {
	var parts []string
	for _, name := range proto.DropNames {
		parts = append(parts, fmt.Sprintf("%s=%d", name, drops[name]))
	}
	return strings.Join(parts, " ")
}
