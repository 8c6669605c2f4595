//go:build unix

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadStatusGroupExits2: an unknown --status-group is a bad command
// line, exit 2, found before anything is touched (the socket is not bound).
func TestBadStatusGroupExits2(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	if got := faild([]string{"--status-socket", sock, "--status-group", "faild-no-such-group"}); got != 2 {
		t.Errorf("exit %d, want 2", got)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket touched: %v", err)
	}
	o, _, _ := loadOptions([]string{"--status-group", "faild-no-such-group"})
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "--status-group") || strings.Contains(err.Error(), "\n") {
		t.Errorf("validate = %v; want one line naming --status-group", err)
	}
}

// TestListenStatusPath: listenStatus replaces a stale socket, refuses one a
// daemon serves, and never removes anything at the path that is not a
// socket (a mistyped --status-socket naming the config file, say).
func TestListenStatusPath(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string) // leaves something at path
		root  bool                            // binding needs chown to root
		err   string                          // "" if the bind must work
	}{
		{"nothing there", func(*testing.T, string) {}, true, ""},
		{"stale socket", func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, true, ""},
		{"live socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, false, "another faild is serving it"},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("port = 4117\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a regular file)"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a directory)"},
		{"symlink to a socket", func(t *testing.T, path string) {
			target := path + ".real"
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, false, "is not a socket (a symbolic link)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to give the socket to root")
			}
			path := filepath.Join(t.TempDir(), "s")
			tt.setup(t, path)
			before, _ := os.Lstat(path)
			ln, err := listenStatus(path, os.Getegid())
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				fi, err := os.Lstat(path)
				if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
					t.Errorf("socket %v, %v; want a socket of mode 0660", fi, err)
				}
				return
			}
			if err == nil {
				ln.Close()
				t.Fatal("bound; want an error")
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q; want one naming %s and saying %q", err, path, tt.err)
			}
			if after, err := os.Lstat(path); err != nil || !os.SameFile(before, after) {
				t.Errorf("%s at the path was removed or replaced: %v", tt.name, err)
			}
		})
	}
}
