package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// container is one booted systemd-nspawn container on an overlay of the
// cached root file system: what the test changes lands in the overlay's
// upper layer and goes with it.
type container struct {
	dir    string    // the run directory: upper, work, merged, console.log
	root   string    // the merged overlay, the container's /
	cmd    *exec.Cmd // unshare, which runs systemd-nspawn
	nspawn int       // systemd-nspawn's pid
	leader int       // the container's PID 1 (systemd), as the host sees it
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// live is the container of this process, for the signal handler.
var (
	liveMu sync.Mutex
	live   *container
)

// boot mounts an overlay of lower, boots systemd in it with
// systemd-nspawn in the background, and waits for the boot to finish.
// On error everything it made is removed.
func boot(ctx context.Context, lower string, logf func(string, ...any)) (*container, error) {
	if err := removeStaleRuns(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir(), fmt.Sprintf("run-%d", os.Getpid()))
	c := &container{dir: dir, root: filepath.Join(dir, "merged"), done: make(chan struct{})}
	liveMu.Lock()
	live = c
	liveMu.Unlock()
	if err := c.start(ctx, lower, logf); err != nil {
		return nil, errors.Join(err, c.close())
	}
	return c, nil
}

func (c *container) start(ctx context.Context, lower string, logf func(string, ...any)) error {
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("failed to create run directory: %w", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"))
	if err := syscall.Mount("overlay", c.root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("failed to mount overlay on %s: %w", c.root, err)
	}
	console, err := os.Create(filepath.Join(c.dir, "console.log"))
	if err != nil {
		return err
	}
	defer console.Close()
	// --register=no --keep-unit: no machined, no host bus needed (without
	// them nspawn stops at once with "Failed to open system bus").
	// nspawn runs as PID 1 of a PID namespace of its own, so that the
	// container (a process of that namespace too) dies with it: should
	// the test die, unshare gets SIGKILL, then nspawn (--kill-child), then
	// everything in the namespace. Without it the container's systemd
	// would outlive a killed nspawn.
	c.cmd = exec.Command("unshare", "--pid", "--kill-child", "systemd-nspawn",
		"-D", c.root, "--private-network", "--register=no", "--keep-unit",
		"--machine=faild-test", "-b", "--console=read-only")
	c.cmd.Stdout, c.cmd.Stderr = console, console
	// Its own process group keeps a terminal's Ctrl-C for us, so that the
	// container is shut down in order.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start systemd-nspawn: %w", err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	start := time.Now()
	if err := c.findLeader(ctx); err != nil {
		return err
	}
	// systemctl fails until PID 1 has its private socket; then --wait
	// waits for the boot to finish.
	var state string
	for {
		out, _ := c.run(ctx, "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" || ctx.Err() != nil || c.exited() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state != "running" {
		failed, _ := c.run(ctx, "systemctl", "--failed", "--no-legend")
		return fmt.Errorf("container did not boot to running but %q (failed units: %s); console:\n%s", state, strings.TrimSpace(failed), c.console())
	}
	logf("container: systemd is PID %d on the host, booted in %v", c.leader, time.Since(start).Round(10*time.Millisecond))
	return nil
}

// findLeader waits for unshare's child, systemd-nspawn, and for its
// child that runs systemd.
func (c *container) findLeader(ctx context.Context) error {
	for {
		if c.nspawn == 0 {
			c.nspawn = childNamed(c.cmd.Process.Pid, "systemd-nspawn")
		}
		if c.nspawn != 0 {
			if c.leader = childNamed(c.nspawn, "systemd"); c.leader != 0 {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("systemd-nspawn exited during boot; console:\n%s", c.console())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to find the container's systemd: %w; console:\n%s", ctx.Err(), c.console())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childNamed is the first child of pid whose command is comm, 0 if none.
func childNamed(pid int, comm string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			child, _ := strconv.Atoi(f)
			if name, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child)); strings.TrimSpace(string(name)) == comm {
				return child
			}
		}
	}
	return 0
}

func (c *container) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// console is the tail of what the container wrote to its console.
func (c *container) console() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "console.log"))
	return tail(string(b), 30)
}

// cmdTimeout bounds every command run in the container that has no
// tighter bound of its own.
const cmdTimeout = 60 * time.Second

// run runs a command in every namespace of the container (as
// "nsenter -t PID -a") and returns its combined output; a non-zero exit
// is an *exec.ExitError, wrapped with the output.
func (c *container) run(ctx context.Context, args ...string) (string, error) {
	return c.runIn(ctx, nil, args...)
}

func (c *container) runIn(ctx context.Context, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-a"}, args...)...)
	// The container's own PATH, not the host's (which may lack sbin).
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// sh runs a shell command line in the container.
func (c *container) sh(ctx context.Context, script string) (string, error) {
	return c.run(ctx, "sh", "-c", script)
}

// writeFile writes a file in the container, through the overlay.
func (c *container) writeFile(path, text string, mode os.FileMode) error {
	p := filepath.Join(c.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(text), mode)
}

// hostRun runs a host binary (nft) in one of the container's network
// namespaces: ns is a path such as /proc/PID/ns/net.
func hostRun(ctx context.Context, ns string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// sigPoweroff is SIGRTMIN+3 as systemd counts (glibc's SIGRTMIN is 34):
// what makes systemd power off, and what nspawn sends it on SIGTERM.
const sigPoweroff = syscall.Signal(34 + 3)

// close shuts the container down in order (systemd powers off, and nspawn
// and unshare exit with it), kills it if that takes too long (killing
// unshare kills nspawn, and with it the whole PID namespace), then
// unmounts the overlay and removes the run directory. Safe to call more
// than once.
func (c *container) close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if c.cmd != nil && c.cmd.Process != nil && !c.exited() {
			// Not SIGTERM to nspawn: as PID 1 of its namespace it does
			// not get signals it has no handler for, and it has none
			// (it reads them from a signalfd).
			if c.leader != 0 {
				_ = syscall.Kill(c.leader, sigPoweroff)
			} else {
				_ = c.cmd.Process.Kill()
			}
			select {
			case <-c.done:
			case <-time.After(20 * time.Second):
				_ = c.cmd.Process.Kill()
				select {
				case <-c.done:
				case <-time.After(10 * time.Second):
					errs = append(errs, fmt.Errorf("unshare and systemd-nspawn (pid %d) survived SIGKILL", c.cmd.Process.Pid))
				}
			}
		}
		errs = append(errs, removeRun(c.dir))
		liveMu.Lock()
		if live == c {
			live = nil
		}
		liveMu.Unlock()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
