package test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// TestUnwritableLog is finding 2 of issue 15. A start with -l /dev/full
// fails with exit 1 and one line, touching nothing. A log on a file
// system that fills up under a running faild loses lines, counted and
// told on standard error once, while faild goes on failing over; once
// there is room again it says so and the log resumes.
func TestUnwritableLog(t *testing.T) {
	t.Parallel()
	// A small tmpfs of its own, mounted before the lab so that it is
	// unmounted after every faild is gone.
	dir := t.TempDir()
	must(t, syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0755"))
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("failed to unmount %s: %v", dir, err)
		}
	})
	l, b := newLab(t, 2, 60*time.Second)
	n1, n2 := l.Node(1), l.Node(2)

	must(t, n1.Start(append(requestor(fast...)(n1), "-l", "/dev/full")...))
	err := n1.Wait(5 * time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("faild -l /dev/full: %v, want exit status 1", err)
	}
	out := strings.TrimSuffix(n1.Output(), "\n")
	if out != "faild: failed to open log file: /dev/full cannot be written: no space left on device" {
		t.Errorf("faild -l /dev/full said %q, want one line naming the file and why", out)
	}
	if _, err := os.Stat(n1.StatusSocket()); err == nil {
		t.Errorf("faild -l /dev/full made its status socket")
	}
	noRoutes(t, n1)

	logs := map[*lab.Node]string{n1: filepath.Join(dir, "node1.log"), n2: filepath.Join(dir, "node2.log")}
	for _, n := range l.Nodes {
		must(t, n.Start(append(requestor(fast...)(n), "-l", logs[n])...))
	}
	for _, n := range l.Nodes {
		b.wait(n.String()+" discovers its peer", 5*time.Second, func() bool {
			return len(lab.Find(n.Events(), "msg", "discovered")) > 0
		})
	}
	// Fill the file system, and the last page of each log with blank
	// lines, then cut LAN A: the failover lines are lost.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	for _, path := range logs {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		for err == nil {
			_, err = f.Write([]byte("\n"))
		}
		f.Close()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filling %s: %v, want ENOSPC", path, err)
		}
	}
	must(t, l.CutPair(lab.A, 1, 2))
	b.wait("failover at both ends with the log full", 3*time.Second, func() bool {
		return n1.RoutesAre(overB(n2)) && n2.RoutesAre(overB(n1))
	})
	b.wait("node1 says on standard error that its log fails", 3*time.Second, func() bool {
		return strings.Contains(n1.Output(), "faild: failed to write the log to "+logs[n1]+": no space left on device")
	})
	if len(lab.Find(n1.Events(), "msg", "failover")) != 0 {
		t.Errorf("a failover line reached node1's full log:\n%s", n1.Log())
	}
	// Room again; the switchback is logged, and so is the recovery.
	must(t, os.Remove(filler))
	must(t, l.Heal())
	b.wait("switchback, logged", 5*time.Second, func() bool {
		return n1.RoutesAre() && len(lab.Find(n1.Events(), "msg", "switchback")) > 0
	})
	b.wait("node1 says its log works again", 2*time.Second, func() bool {
		return strings.Contains(n1.Output(), "faild: writing the log to "+logs[n1]+" again; ")
	})
	if n := strings.Count(n1.Output(), "failed to write the log"); n != 1 {
		t.Errorf("node1 told of its failing log %d times, want once:\n%s", n, n1.Output())
	}
	t.Logf("node1 standard error:\n%s", n1.Output())
	stopAll(t, l)
}

// TestFailedStartLog: a bad option (exit 78) touches no log file; a start
// that fails later (exit 1: the status socket's path is a regular file)
// has created the log file and left one msg=failed line in it, as faild(8)
// says.
func TestFailedStartLog(t *testing.T) {
	t.Parallel()
	l, _ := newLab(t, 1, 30*time.Second)
	n := l.Node(1)
	exit := func() int {
		t.Helper()
		err := n.Wait(5 * time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("faild: %v, want it to fail", err)
		}
		return ee.ExitCode()
	}
	must(t, n.Start("-f", "0"))
	if code := exit(); code != 78 {
		t.Errorf("faild -f 0: exit %d, want 78", code)
	}
	if _, err := os.Stat(n.LogPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("faild -f 0 touched its log file: %v", err)
	}
	notSocket := filepath.Join(t.TempDir(), "faild.conf")
	must(t, os.WriteFile(notSocket, []byte("port = 4117\n"), 0o644))
	must(t, n.Start("--status-socket", notSocket))
	if code := exit(); code != 1 {
		t.Errorf("faild --status-socket FILE: exit %d, want 1", code)
	}
	failed := lab.Find(n.Events(), "msg", "failed")
	if len(failed) != 1 || len(n.Events()) != 1 || !strings.Contains(failed[0]["err"], "is not a socket") {
		t.Errorf("log of the failed start:\n%s\nwant one msg=failed line", n.Log())
	}
	if out := n.Output(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "is not a socket") {
		t.Errorf("faild --status-socket FILE said %q, want one line", out)
	}
}
