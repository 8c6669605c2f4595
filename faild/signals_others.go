//go:build !unix

package main

import "syscall"

// Where there is no SIGUSR1, faild refuses to start anyway (no route
// writer); SIGHUP stands in for both so that the command still builds.
var reloadSignal, statusSignal = syscall.SIGHUP, syscall.SIGHUP
