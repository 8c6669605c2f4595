//go:build unix

package eventlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestJournal: when standard error is journald's stream (JOURNAL_STREAM
// names its device and inode), each line carries its syslog priority and
// no timestamp; with another stream named, or a file, neither.
func TestJournal(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Fstat(syscall.Stderr, &st); err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		env     string
		journal bool
	}{
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"", false},
	} {
		t.Setenv("JOURNAL_STREAM", tt.env)
		var buf bytes.Buffer
		log, _, err := open("", "text", &buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Warn("failover", "peer", "192.0.2.2")
		log.With("k", "v").Error("route-failed")
		log.Info("switchback")
		log.Debug("detail")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("JOURNAL_STREAM=%q: lines %q", tt.env, lines)
		}
		for i, prio := range []string{"<4>", "<3>", "<6>", "<7>"} {
			if got := strings.HasPrefix(lines[i], prio+"level="); got != tt.journal || strings.Contains(lines[i], "time=") == tt.journal {
				t.Errorf("JOURNAL_STREAM=%q: line %q; want priority and no time: %v", tt.env, lines[i], tt.journal)
			}
		}
	}
	// A log file is no journal, whatever standard error is.
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	path := filepath.Join(t.TempDir(), "faild.log")
	log, out, err := open(path, "text", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("failover", "peer", "192.0.2.2")
	out.Close()
	b, err := os.ReadFile(path)
	if line := string(b); err != nil || !strings.HasPrefix(line, "time=") {
		t.Errorf("log file with standard error the journal's: %q, %v; want a time and no priority", line, err)
	}
}
