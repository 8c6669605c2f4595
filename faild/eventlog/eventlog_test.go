package eventlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLogUnwritable: a log file that cannot be written is refused when it
// is opened, at start and on a reopen, which keeps the old one.
func TestLogUnwritable(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	_, _, err := Open("/dev/full", "text")
	if err == nil || !strings.Contains(err.Error(), "/dev/full cannot be written") || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open(/dev/full): %v; want it refused for ENOSPC", err)
	}
	path := filepath.Join(t.TempDir(), "faild.log")
	log, out, err := Open(path, "text")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Reopen("/dev/full", "text"); err == nil {
		t.Fatal("reopen to /dev/full accepted")
	}
	log.Info("still-here")
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "msg=still-here") {
		t.Errorf("after the refused reopen the old log got %q", b)
	}
}

// failingWriter fails while fail is set.
type failingWriter struct {
	fail bool
	buf  bytes.Buffer
}

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.fail {
		return 0, syscall.ENOSPC
	}
	return w.buf.Write(b)
}

// TestLogWriteFailures: lines the log cannot take are counted, and
// standard error hears of it once a run of failures, and when it works
// again.
func TestLogWriteFailures(t *testing.T) {
	log, out, err := Open(filepath.Join(t.TempDir(), "faild.log"), "text")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var warn bytes.Buffer
	fw := &failingWriter{fail: true}
	out.mu.Lock()
	out.w, out.stderr = fw, &warn
	out.mu.Unlock()

	for range 3 {
		log.Info("lost")
	}
	if n := out.WriteFailures(); n != 3 {
		t.Errorf("WriteFailures = %d after 3 lost lines, want 3", n)
	}
	fw.fail = false
	log.With("k", "v").Info("kept")
	fw.fail = true
	log.Info("lost")
	log.Info("lost")
	if n := out.WriteFailures(); n != 5 {
		t.Errorf("WriteFailures = %d, want 5", n)
	}
	if !strings.Contains(fw.buf.String(), "msg=kept k=v") {
		t.Errorf("log got %q, want the line written between failures", fw.buf.String())
	}
	lines := strings.Split(strings.TrimSuffix(warn.String(), "\n"), "\n")
	want := []string{"faild: failed to write the log to ", "faild: writing the log to ", "faild: failed to write the log to "}
	if len(lines) != len(want) {
		t.Fatalf("standard error got %d lines, want %d:\n%s", len(lines), len(want), warn.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("standard error line %d = %q, want it to start %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "no space left on device") || !strings.Contains(lines[1], "again; lines lost: 3") {
		t.Errorf("standard error:\n%s", warn.String())
	}
}

// TestLogDevFull: a log that becomes /dev/full under a running faild (the
// file's disk filling up) loses lines, counted, and faild goes on.
func TestLogDevFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here")
	}
	defer full.Close()
	log, out, err := Open(filepath.Join(t.TempDir(), "faild.log"), "json")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var warn bytes.Buffer
	out.mu.Lock()
	out.w, out.stderr = full, &warn
	out.mu.Unlock()
	log.Warn("failover", "peer", "192.0.2.2")
	log.Info("switchback", "peer", "192.0.2.2")
	if n := out.WriteFailures(); n != 2 {
		t.Errorf("WriteFailures = %d, want 2", n)
	}
	if strings.Count(warn.String(), "\n") != 1 || !strings.Contains(warn.String(), "no space left on device") {
		t.Errorf("standard error: %q, want one line saying why", warn.String())
	}
}

func TestLogFormats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log, out, err := Open(path, "json")
	if err != nil {
		t.Fatal(err)
	}
	log.With("k", "v").Info("failover", "peer", "192.0.2.2")
	if err := out.Reopen(path, "text"); err != nil {
		t.Fatal(err)
	}
	log.Info("switchback", "peer", "192.0.2.2")
	out.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var m map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["msg"] != "failover" || m["k"] != "v" ||
		!strings.Contains(lines[1], "msg=switchback peer=192.0.2.2") {
		t.Errorf("log:\n%s", b)
	}

}
