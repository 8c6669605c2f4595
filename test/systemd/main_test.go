// Package systemd tests faild's Debian package and systemd unit under a
// real systemd: a bookworm container booted with systemd-nspawn, faild
// installed from its .deb, a second faild as its peer over two veth LANs.
// It needs root, debootstrap and systemd-nspawn, and takes minutes, so it
// runs only when asked: make test-systemd, or FAILD_TEST_SYSTEMD=1.
package systemd

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// optIn is the variable that asks for this test.
const optIn = "FAILD_TEST_SYSTEMD"

// TestMain shuts the container down and removes its overlay also when
// the run is interrupted, which t.Cleanup does not cover.
func TestMain(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "systemd test: %v: removing the container\n", sig)
		liveMu.Lock()
		c := live
		liveMu.Unlock()
		if c != nil {
			if err := c.close(); err != nil {
				fmt.Fprintf(os.Stderr, "systemd test: %v\n", err)
			}
		}
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	os.Exit(m.Run())
}

// requireOptIn skips unless the test was asked for, and then fails
// rather than skips for want of root or tools: whoever asked wants it run.
func requireOptIn(t *testing.T) {
	t.Helper()
	if os.Getenv(optIn) == "" {
		t.Skipf("boots a systemd container (root, debootstrap, systemd-nspawn, minutes): set %s=1 or run make test-systemd", optIn)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is set but this is not root: the test mounts an overlay and runs systemd-nspawn", optIn)
	}
	for _, tool := range []struct{ cmd, pkg string }{
		{"systemd-nspawn", "systemd-container"}, {"debootstrap", "debootstrap"},
		{"nsenter", "util-linux"}, {"unshare", "util-linux"}, {"nft", "nftables"}, {"dpkg-deb", "dpkg"},
	} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			t.Fatalf("%s not found (package %s); .ci/deps systemd installs it", tool.cmd, tool.pkg)
		}
	}
}
