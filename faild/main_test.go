package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestExitStatus: a bad command line or config is EX_CONFIG (78), which
// the unit does not restart; a failure to start is 1, which it does.
func TestExitStatus(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(key, 0o644) // others may read it: refused
	longSocket := "/" + strings.Repeat("s", len(syscall.RawSockaddrUnix{}.Path)-1)
	for args, want := range map[string]int{
		"--version":                     exitOK,
		"--help":                        exitOK,
		"-f 0":                          exitConfig,
		"stray":                         exitConfig,
		"-t 0.001":                      exitConfig,
		"--bogus=1":                     exitConfig,
		"-i eth0":                       exitConfig,
		"--max-loss 100":                exitConfig,
		"--max-loss 10 --loss-window 5": exitConfig,
		"--key-file " + key:             exitConfig,
		"--status-socket " + longSocket: exitConfig,
		"-l /nonexistent-dir/faild.log": exitFailure,
	} {
		if got := faild(strings.Fields(args)); got != want {
			t.Errorf("faild %s = %d, want %d", args, got, want)
		}
	}
}
