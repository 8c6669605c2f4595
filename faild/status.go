package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/daemon"
	"github.com/faild/faild/faild/options"
)

// clientOptions is the command line of "faild status" and "faild reload".
type clientOptions struct {
	JSON         bool   `long:"json" description:"Print the status as JSON (schema in faild(8)); status only"`
	Cluster      bool   `long:"cluster" description:"Print every LAN's matrix of who hears whom in the cluster, and the diagnosis; status only"`
	Watch        bool   `long:"watch" description:"Follow the daemon's events, one line each in the log's format, until interrupted; status only"`
	StatusSocket string `long:"status-socket" value-name:"PATH" description:"The daemon's status socket (default: from -c, else /run/faild/faild.sock)"`
	Config       string `short:"c" long:"config" value-name:"FILE" description:"Take --status-socket from the daemon's config file"`
}

// Exit statuses of "faild status"; "faild reload" exits 0 when the daemon
// reloaded, 1 when the reload failed, 2 when it cannot be reached.
const (
	statusHealthy     = 0
	statusPathsDown   = 1
	statusUnreachable = 2
)

// clientSocket parses a client's command line and finds the daemon's
// socket; ok is false, with the exit status, when it cannot.
func clientSocket(name string, args []string, stdout, stderr io.Writer) (o clientOptions, path string, code int, ok bool) {
	p := flags.NewParser(&o, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = "faild " + name
	rest, err := p.ParseArgs(args)
	switch {
	case flags.WroteHelp(err):
		p.WriteHelp(stdout)
		return o, "", statusHealthy, false
	case err != nil:
		fmt.Fprintf(stderr, "faild: %v\n", err)
		return o, "", statusUnreachable, false
	case len(rest) > 0:
		fmt.Fprintf(stderr, "faild: unexpected argument %q (see faild %s --help)\n", rest[0], name)
		return o, "", statusUnreachable, false
	}
	path = o.StatusSocket
	if path == "" && o.Config != "" {
		opts, _, err := options.Load([]string{"-c", o.Config})
		if err != nil {
			fmt.Fprintf(stderr, "faild: %v\n", err)
			return o, "", statusUnreachable, false
		}
		path = opts.Ops.StatusSocket
	}
	if path == "" {
		path = daemon.DefaultStatusSocket
	}
	return o, path, 0, true
}

// status is "faild status": it prints the daemon's table (or JSON) and
// says the health in its exit status, so a monitoring check is one line.
func status(args []string, stdout, stderr io.Writer) int {
	o, path, code, ok := clientSocket("status", args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case o.Watch && (o.Cluster || o.JSON):
		fmt.Fprintln(stderr, "faild: --watch takes neither --cluster nor --json")
		return statusUnreachable
	case o.Watch:
		return watch(path, stdout, stderr)
	}
	if o.Cluster {
		return show(func() (report, []byte, error) { return daemon.FetchCluster(path) }, o.JSON, stdout, stderr)
	}
	return show(func() (report, []byte, error) { return daemon.FetchStatus(path) }, o.JSON, stdout, stderr)
}

// report is what "faild status" prints: the daemon's status, or with
// --cluster the cluster's matrices.
type report interface {
	WriteTable(io.Writer)
	Healthy() bool
}

// show fetches a report and prints it as a table or the daemon's JSON;
// the exit status is the health.
func show(fetch func() (report, []byte, error), asJSON bool, stdout, stderr io.Writer) int {
	r, raw, err := fetch()
	if err != nil {
		fmt.Fprintf(stderr, "faild: failed to reach the daemon: %v\n", err)
		return statusUnreachable
	}
	if asJSON {
		stdout.Write(raw)
	} else {
		r.WriteTable(stdout)
	}
	if !r.Healthy() {
		return statusPathsDown
	}
	return statusHealthy
}

// watch is "faild status --watch": the daemon's events as they happen,
// until interrupted (exit 0) or the daemon stops (exit 2).
func watch(path string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := daemon.Watch(ctx, path, stdout)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "faild: failed to reach the daemon: %v\n", err)
		return statusUnreachable
	case ctx.Err() == nil:
		fmt.Fprintln(stderr, "faild: the daemon closed the event stream")
		return statusUnreachable
	}
	return statusHealthy
}

// reload is "faild reload": the daemon re-reads its configuration and
// reopens its log, and the command waits for it and reports how it went,
// as systemctl reload wants.
func reload(args []string, stdout, stderr io.Writer) int {
	_, path, code, ok := clientSocket("reload", args, stdout, stderr)
	if !ok {
		return code
	}
	err := daemon.Reload(path)
	switch {
	case errors.Is(err, daemon.ErrNoDaemon):
		fmt.Fprintf(stderr, "faild: failed to reach the daemon: %v\n", err)
		return statusUnreachable
	case err != nil:
		fmt.Fprintf(stderr, "faild: reload: %v\n", err)
		return 1
	}
	return 0
}
