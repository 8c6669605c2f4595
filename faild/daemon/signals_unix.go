//go:build unix

package daemon

import (
	"os"
	"syscall"
)

// The signals the daemon handles beside SIGTERM and SIGINT (which end its
// context): SIGHUP reloads, SIGUSR1 writes the status to the log, SIGUSR2
// stops it keeping its routes for the next start to adopt.
var (
	reloadSignal   os.Signal = syscall.SIGHUP
	statusSignal   os.Signal = syscall.SIGUSR1
	handoverSignal os.Signal = syscall.SIGUSR2
)
