package systemd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The container's root file system: Debian bookworm, minbase, with what
// booting systemd and running faild need. procps is left out on purpose:
// the unit must not need /bin/kill.
var rootfsSpec = struct {
	Suite, Variant string
	Include        []string
}{
	Suite:   "bookworm",
	Variant: "minbase",
	Include: []string{"systemd", "systemd-sysv", "dbus", "iproute2"},
}

// cacheDir holds the root file systems, one per spec, and the overlays
// of the runs using them. FAILD_TEST_CACHE moves it.
func cacheDir() string {
	if d := os.Getenv("FAILD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/faild-test"
}

// rootfsKey names a root file system by what it contains, so a change of
// the spec builds a new one and an unchanged one is reused.
func rootfsKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s %s", rootfsSpec.Suite, rootfsSpec.Variant, runtime.GOARCH, strings.Join(rootfsSpec.Include, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// rootfs returns the cached root file system, building it with debootstrap
// first if it is missing (about 2 to 6 minutes, by the mirror). Runs on one
// machine share it under a lock; a build that fails or is interrupted
// leaves only a temporary directory that the next build removes.
func rootfs(ctx context.Context, logf func(string, ...any)) (string, error) {
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create cache directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("failed to open cache lock: %w", err)
	}
	defer lock.Close()
	if err := flock(ctx, lock); err != nil {
		return "", err
	}
	root := filepath.Join(dir, "rootfs-"+rootfsKey())
	if _, err := os.Stat(filepath.Join(root, ".faild-complete")); err == nil {
		logf("root file system: cached %s", root)
		return root, nil
	}
	// Under the lock nobody else builds: a .tmp is left over from an
	// interrupted build, and other keys from older specs, unless a run
	// still has one as the lower layer of its overlay.
	old, _ := filepath.Glob(filepath.Join(dir, "rootfs-*"))
	for _, o := range old {
		if o == root || inUse(o) {
			continue
		}
		if err := os.RemoveAll(o); err != nil {
			return "", fmt.Errorf("failed to remove old root file system: %w", err)
		}
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("failed to remove a half-built root file system: %w", err)
	}
	mirror := debianMirror()
	logf("root file system: building %s with debootstrap from %s (a few minutes)", root, mirror)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant="+rootfsSpec.Variant,
		"--include="+strings.Join(rootfsSpec.Include, ","), rootfsSpec.Suite, tmp, mirror)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("failed to debootstrap: %w\n%s", err, tail(string(out), 20))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".faild-complete"), []byte(rootfsKey()+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", fmt.Errorf("failed to move root file system in place: %w", err)
	}
	logf("root file system: built in %v", time.Since(start).Round(time.Second))
	return root, nil
}

// flock takes an exclusive lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("failed to lock the cache: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to lock the cache: another run holds it: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// debianMirror is the Debian archive apt uses here (FAILD_TEST_MIRROR
// overrides it), so that the container comes from the same place as the
// host's packages.
func debianMirror() string {
	if m := os.Getenv("FAILD_TEST_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	for _, name := range files {
		if m := mirrorIn(name); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorIn finds the main archive's URI in an apt sources file, one-line
// ("deb URI suite ...") or deb822 ("URIs: ..."); security archives do not
// serve the base system.
func mirrorIn(name string) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		var uri string
		switch {
		case len(fs) >= 3 && fs[0] == "deb":
			uri = fs[1]
			if strings.HasPrefix(uri, "[") { // deb [options] URI
				for i, s := range fs {
					if strings.HasSuffix(s, "]") && i+1 < len(fs) {
						uri = fs[i+1]
						break
					}
				}
			}
		case len(fs) >= 2 && fs[0] == "URIs:":
			uri = fs[1]
		}
		if strings.HasSuffix(strings.TrimSuffix(uri, "/"), "/debian") {
			return uri
		}
	}
	return ""
}

// removeStaleRuns deletes the overlays of runs whose test process is gone
// (killed before its cleanup ran): unmount, then remove.
func removeStaleRuns() error {
	runs, _ := filepath.Glob(filepath.Join(cacheDir(), "run-*"))
	var errs []error
	for _, r := range runs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(r), "run-"))
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		errs = append(errs, removeRun(r))
	}
	return errors.Join(errs...)
}

// removeRun unmounts a run's overlay, if mounted, and removes its
// directory.
func removeRun(dir string) error {
	merged := filepath.Join(dir, "merged")
	if mounted(merged) {
		if err := syscall.Unmount(merged, 0); err != nil {
			// Busy: detach it now, the kernel frees it when the
			// last user goes.
			if err := syscall.Unmount(merged, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("failed to unmount %s: %w", merged, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to remove %s: %w", dir, err)
	}
	return nil
}

// inUse reports whether a mount names dir, as an overlay's lowerdir does.
func inUse(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), "lowerdir="+dir+",")
}

// mounted reports whether path is a mount point of this mount namespace.
func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
