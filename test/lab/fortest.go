package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// TB is the part of testing.TB the lab uses; *testing.T satisfies it. The
// lab does not import testing so that programs can use it too.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// RequireEnv skips the test when not root and fails it when a tool is
// missing: CI installs the tools, and a skip there would hide a broken setup.
// With FAILD_LAB=require (as .ci/run sets it) not being root fails too, so
// a run that was meant to include the lab cannot pass without it.
func RequireEnv(t TB) {
	t.Helper()
	err := CheckEnv()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotRoot) && os.Getenv(RequireVar) != "require":
		t.Skip(err.Error())
	case errors.Is(err, ErrNotRoot):
		t.Fatalf("%v (%s=require)", err, RequireVar)
	default:
		t.Fatalf("%v", err)
	}
}

// RequireVar names the variable that, set to "require", makes the lab's
// skip a failure.
const RequireVar = "FAILD_LAB"

// ForTest builds a lab for a test: it skips or fails as RequireEnv does,
// keeps the logs in t.TempDir(), prints them when the test has failed, and
// closes the lab when the test ends, failed or not.
func ForTest(t TB, opts Options) *Lab {
	t.Helper()
	RequireEnv(t)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	l, err := New(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.Dump(t.Logf)
		}
		if err := l.Close(); err != nil {
			t.Errorf("failed to close lab: %v", err)
		}
	})
	return l
}

// Dump writes what helps explain a failure: each node's faild log and
// output and faild routes, and the injected rules.
func (l *Lab) Dump(logf func(format string, args ...any)) {
	for _, n := range l.Nodes {
		rs, err := n.Routes()
		logf("%s (%s): faild running %v, routes %v %v\n--- log %s\n%s--- output\n%s",
			n, n.NS, n.Running(), rs, errOrEmpty(err), n.LogPath(), n.Log(), n.Output())
	}
	rules, err := l.Rules()
	logf("switch rules: %v\n%s", errOrEmpty(err), rules)
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Build compiles faild into dir and returns the binary's path. It must run
// inside the module (tests and "go run ./test/demo" do).
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "faild")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/faild/faild/faild")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build faild: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// BuildCross compiles a static faild for Linux on another CPU into dir,
// named faild-GOARCH (faild-armv7 for GOARCH=arm GOARM=7), and returns its
// path. MIPS builds use soft float, as make cross does.
func BuildCross(dir, goarch, goarm string) (string, error) {
	name := "faild-" + goarch
	if goarm != "" {
		name += "v" + goarm
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/faild/faild/faild")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm,
		"GOMIPS=softfloat", "GOMIPS64=softfloat")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build faild for %s: %w\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// BuildForTest builds faild into a temporary directory of the test, or fails
// it; it skips first where the lab cannot run, to spare the build.
func BuildForTest(t TB) string {
	t.Helper()
	RequireEnv(t)
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	return bin
}

// CleanupOnSignal closes every open lab and exits when SIGINT or SIGTERM
// arrives, since t.Cleanup does not run then. Call it first in TestMain or
// main; the returned function uninstalls it.
func CleanupOnSignal() (stop func()) {
	c := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-c:
			fmt.Fprintf(os.Stderr, "lab: %v: removing lab namespaces\n", sig)
			if err := CloseAll(); err != nil {
				fmt.Fprintf(os.Stderr, "lab: %v\n", err)
			}
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}
