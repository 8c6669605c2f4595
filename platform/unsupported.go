//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package platform

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

// errUnsupported stops faild at start on an OS it has no route writer for;
// it wraps os.ErrNotExist so that callers can tell it from a failure.
var errUnsupported = fmt.Errorf("faild is not supported on %s (only Linux, FreeBSD, OpenBSD, NetBSD, DragonFly and macOS): %w",
	runtime.GOOS, os.ErrNotExist)

// NewWriter returns the Writer for this operating system.
func NewWriter() (Writer, error) { return nil, errUnsupported }

func discover([]string) ([]LAN, error) { return nil, errUnsupported }

func lookup(name string) (LAN, error) { return LAN{Name: name}, errUnsupported }

func watchLinks(context.Context, func(LinkChange), func(error)) error { return errUnsupported }

func rpFilterWarnings([]LAN) []string { return nil }
