//go:build !unix

package daemon

import (
	"os"
	"syscall"
)

// Where there are no user signals faild refuses to start anyway (no route
// writer); SIGHUP stands in for all three so that the package builds.
var reloadSignal, statusSignal, handoverSignal os.Signal = syscall.SIGHUP, syscall.SIGHUP, syscall.SIGHUP
