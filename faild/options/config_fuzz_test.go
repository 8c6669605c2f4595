package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfig feeds arbitrary bytes to the config file loader and the
// validation after it: neither may panic, and a file that is refused is
// refused with one line that names it.
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("../../dist/faild.conf"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"requestor = true\ninterval = 0.1\nmisses = 3\n",
		"interface = eth0\ninterface = eth1\n",
		"[Application Options]\nport = 4117\n",
		"interval = 0.001\n",
		"port = x\n",
		"bogus = 1\n",
		"=\n[\n",
		"log-format = yaml\n",
		"damp-window = -1s\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "faild.conf")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		opts, _, err := Load([]string{"-c", path})
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q does not name the file in one line", msg)
			}
			return
		}
		if _, err := opts.Validate(); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("validation error spans lines: %q", err)
		}
	})
}
