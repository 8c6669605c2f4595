//go:build unix

package daemon

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the hook in a process group of its own and makes
// a timeout kill the whole group, so that a hook's children (a sleep in a
// shell script, say) cannot outlive it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
