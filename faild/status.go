package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/daemon"
)

// clientOptions is the command line of "faild status" and "faild reload".
type clientOptions struct {
	JSON         bool   `long:"json" description:"Print the status as JSON (schema in faild(8)); status only"`
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
		opts, _, err := loadOptions([]string{"-c", o.Config})
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
	s, raw, err := daemon.FetchStatus(path)
	if err != nil {
		fmt.Fprintf(stderr, "faild: failed to reach the daemon: %v\n", err)
		return statusUnreachable
	}
	if o.JSON {
		stdout.Write(raw)
	} else {
		s.WriteTable(stdout)
	}
	if !s.Healthy() {
		return statusPathsDown
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
