package proto

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is cut by the umask
		t.Fatal(err)
	}
	return p
}

func TestReadKeyFile(t *testing.T) {
	const k1, k2 = "5f0e3c9a1b2d4e6f7a8b9c0d1e2f3a4b", "next key for rotation"
	long := strings.Repeat("k", MaxKeyLen)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    []string
		err     string
	}{
		{"one key", k1 + "\n", 0o600, []string{k1}, ""},
		{"two keys, comments, blanks", "# current\n" + k1 + "\n\n  " + k2 + "  \n", 0o400, []string{k1, k2}, ""},
		{"group may read", k1, 0o640, []string{k1}, ""},
		{"world-readable", k1, 0o644, nil, "readable or writable by others"},
		{"world-writable", k1, 0o602, nil, "readable or writable by others"},
		{"fix says what is checked", k1, 0o604, nil, "(mode 0604); chmod o-rw /"},
		{"others may only execute", k1, 0o601, []string{k1}, ""},
		{"short key", "fifteen bytes!!\n", 0o600, nil, "line 1: key of 15 bytes"},
		{"shortest key", "sixteen bytes!!!\n", 0o600, []string{"sixteen bytes!!!"}, ""},
		{"longest key, CRLF", "# rotated\r\n" + long + "\r\n", 0o600, []string{long}, ""},
		{"long key on line 3", "# rotated\n\n" + long + "x\n", 0o600, nil, "line 3: key of 1025 bytes"},
		{"twice the longest", strings.Repeat("k", 2*MaxKeyLen) + "\n", 0o600, nil, "line 1: key of 2048 bytes"},
		{"longest line", "#\n" + strings.Repeat(" ", maxKeyLine-MaxKeyLen-1) + long + "\n", 0o600, []string{long}, ""},
		{"line past the longest", "#\n" + strings.Repeat(" ", maxKeyLine-MaxKeyLen) + long + "\n", 0o600, nil, "line 2: longer than 4096 bytes"},
		{"no key", "# nothing\n\n", 0o600, nil, "0 keys"},
		{"three keys", k1 + "\n" + k2 + "\n" + k1 + "x\n", 0o600, nil, "3 keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ReadKeyFile(keyFile(t, tt.content, tt.mode))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, string(k))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("keys %q, want %q", got, tt.want)
			}
		})
	}
}
