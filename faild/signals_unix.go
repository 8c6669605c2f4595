//go:build unix

package main

import "syscall"

// SIGHUP reopens the log and re-reads the config; SIGUSR1 logs the status.
var reloadSignal, statusSignal = syscall.SIGHUP, syscall.SIGUSR1
