// Command faild keeps traffic between the nodes of a dual-homed cluster
// flowing when one LAN fails between two of them: it watches every peer on
// every LAN and routes a peer's address over the LAN that still works.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/daemon"
	"github.com/faild/faild/faild/eventlog"
	"github.com/faild/faild/faild/options"
	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses of the daemon; "faild status" has its own (status.go).
const (
	exitOK      = 0
	exitFailure = 1  // it could not start, or failed while running
	exitConfig  = 78 // EX_CONFIG of sysexits(3): a bad command line or config file
)

func main() {
	// One decide loop and a receiver per family need no more than one P,
	// and with more the scheduler wakes a second thread for each hand-over
	// from a receiver to the loop: measured in the scale bench, a third to
	// a half of faild's CPU. GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(faild(os.Args[1:]))
}

// faild runs the command and returns its exit status. "faild status" and
// "faild reload" are its subcommands; anything else is the daemon's own
// command line, as it always was.
func faild(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return status(args[1:], os.Stdout, os.Stderr)
		case "reload":
			return reload(args[1:], os.Stdout, os.Stderr)
		}
	}
	sigs := catchSignals()
	opts, rest, err := options.Load(args)
	if err != nil {
		if flags.WroteHelp(err) {
			options.WriteHelp(os.Stdout)
			return exitOK
		}
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return exitConfig
	}
	if opts.Version {
		fmt.Println("faild", version)
		return exitOK
	}
	if len(rest) > 0 {
		fmt.Fprintf(os.Stderr, "faild: unexpected argument %q (see --help)\n", rest[0])
		return exitConfig
	}
	cfg, err := opts.Validate()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return exitConfig
	}
	cfg.Version = version
	// The log file is opened only once the configuration has passed New,
	// so that a start refused for a bad configuration leaves nothing
	// behind; until then the log goes to standard error.
	log, out, err := eventlog.Open("", opts.Ops.LogFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return exitFailure
	}
	defer out.Close()
	w, err := platform.NewWriter()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return exitFailure
	}
	notify, watchdog, werr := daemon.Systemd()
	logged := false // whether the error also goes in the log file
	d, err := daemon.New(cfg, daemon.Deps{Log: log, Routes: w, Interfaces: platform.Host, Listen: proto.Listen,
		Notify: notify, Watchdog: watchdog, Reload: reloader(args, out, opts, cfg.Keys), Signals: sigs, LogLost: out.WriteFailures})
	if err == nil {
		if err = out.Reopen(opts.LogFile, opts.Ops.LogFormat); err != nil {
			fmt.Fprintf(os.Stderr, "faild: failed to open log file: %v\n", err)
			return exitFailure
		}
		logged = opts.LogFile != ""
		if werr != nil {
			log.Warn("watchdog-disabled", "err", werr)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		err = d.Run(ctx)
	}
	if err == nil {
		return exitOK
	}
	if logged {
		log.Error("failed", "err", err)
	}
	fmt.Fprintf(os.Stderr, "faild: %v\n", err)
	var ce *daemon.ConfigError
	if errors.As(err, &ce) {
		return exitConfig
	}
	return exitFailure
}

// reloader re-reads the command line and config file the daemon started
// with, on SIGHUP or "faild reload": it reopens the log (so that logrotate
// never stalls, with the old settings when the new ones are bad) and
// returns what the daemon applies. The loop calls it, so cur is the loop's.
func reloader(args []string, out *eventlog.Output, running *options.Options, runningKeys [][]byte) func() (daemon.Reloaded, error) {
	cur := *running
	return func() (daemon.Reloaded, error) {
		next, rest, err := options.Load(args)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("unexpected argument %q", rest[0])
		}
		var cfg daemon.Config
		if err == nil {
			cfg, err = next.Validate()
		}
		if err != nil {
			if rerr := out.Reopen(cur.LogFile, cur.Ops.LogFormat); rerr != nil {
				err = errors.Join(err, fmt.Errorf("failed to reopen the log file %s: %w", cur.LogFile, rerr))
			}
			return daemon.Reloaded{}, err
		}
		if err := out.Reopen(next.LogFile, next.Ops.LogFormat); err != nil {
			return daemon.Reloaded{}, fmt.Errorf("failed to open the log file %s: %w (still logging to the old one)", next.LogFile, err)
		}
		cur = *next
		return daemon.Reloaded{OnChange: next.Ops.OnChange, HookTimeout: next.Ops.HookTimeout,
			LogFile: next.LogFile, LogFormat: next.Ops.LogFormat,
			NeedsRestart: options.RestartOnly(running, next, runningKeys, cfg.Keys)}, nil
	}
}
