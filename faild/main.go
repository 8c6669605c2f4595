// Command faild keeps traffic between the nodes of a dual-homed cluster
// flowing when one LAN fails between two of them: it watches every peer on
// every LAN and routes a peer's address over the LAN that still works.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/jessevdk/go-flags"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(faild(os.Args[1:]))
}

// faild runs the command and returns its exit status: 0 after a clean stop,
// 1 when start-up or the daemon fails, 2 for a bad command line or config
// file. "faild status" is the one subcommand; anything else is the daemon's
// own command line, as it always was.
func faild(args []string) int {
	if len(args) > 0 && args[0] == "status" {
		return status(args[1:], os.Stdout, os.Stderr)
	}
	sigs := catchSignals()
	opts, rest, err := loadOptions(args)
	if err != nil {
		if flags.WroteHelp(err) {
			// A parser that has parsed shows the defaults in its help.
			p := newParser(&options{})
			p.ParseArgs(nil)
			p.WriteHelp(os.Stdout)
			return 0
		}
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return 2
	}
	if opts.Version {
		fmt.Println("faild", version)
		return 0
	}
	if len(rest) > 0 {
		fmt.Fprintf(os.Stderr, "faild: unexpected argument %q (see --help)\n", rest[0])
		return 2
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return 2
	}
	log, out, err := newLogger(opts.LogFile, opts.Ops.LogFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faild: failed to open log file: %v\n", err)
		return 1
	}
	defer out.Close()
	opts.session = &session{args: args, log: out, signals: sigs}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts, log); err != nil {
		if opts.LogFile != "" {
			log.Error("failed", "err", err)
		}
		fmt.Fprintf(os.Stderr, "faild: %v\n", err)
		return 1
	}
	return 0
}
