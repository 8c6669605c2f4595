//go:build !linux

package platform

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

var errUnsupported = fmt.Errorf("faild is not supported on %s yet: %w", runtime.GOOS, os.ErrNotExist)

// NewWriter returns the Writer for this operating system.
func NewWriter() (Writer, error) { return nil, errUnsupported }

// Discover finds the LAN interfaces.
func Discover(names []string) ([]LAN, error) { return nil, errUnsupported }

// Lookup describes one interface as a LAN.
func Lookup(name string) (LAN, error) { return LAN{Name: name}, errUnsupported }

// WatchLinks reports interface changes.
func WatchLinks(ctx context.Context, fn func(LinkChange), onErr func(error)) error {
	return errUnsupported
}

func rpFilterWarnings([]LAN) []string { return nil }
