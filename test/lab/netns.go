package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNS runs fn on an OS thread switched into the named namespace. Sockets
// created by fn stay in that namespace for their whole life, whichever thread
// uses them later. fn runs on a goroutine of its own: should switching back
// fail, that goroutine ends still locked and Go discards its thread, so no
// other goroutine ever runs in the wrong namespace.
func inNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("failed to get current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("failed to open namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("failed to enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("failed to leave namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setSysctls writes /proc/sys/net/<key> inside a namespace; /proc/sys/net
// shows the network namespace of the thread that opens it.
func setSysctls(ns string, kv map[string]string) error {
	return inNS(ns, func() error {
		for k, v := range kv {
			p := filepath.Join("/proc/sys/net", k)
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				return fmt.Errorf("failed to set %s=%s in %s: %w", k, v, ns, err)
			}
		}
		return nil
	})
}
