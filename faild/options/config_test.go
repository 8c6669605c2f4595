//go:build unix

package options

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faild/faild/faild/daemon"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadOptions checks that a config file sets options by their long
// names, that the command line wins, and that a bad file is one error
// naming file, line and key.
func TestLoadOptions(t *testing.T) {
	good := "# a comment\nrequestor = true\ninterval = 0.25\nport = 5000\ninterface = eth1\ninterface = eth2\non-change = /bin/true\nlog-format = json\n"
	tests := []struct {
		name    string
		file    string
		args    []string
		check   func(o *Options) string
		wantErr string
	}{
		{name: "file sets", file: good, check: func(o *Options) string {
			if !o.Requestor || o.Interval != seconds(250*time.Millisecond) || o.Port != 5000 ||
				!reflect.DeepEqual(o.Interfaces, []string{"eth1", "eth2"}) || o.Ops.OnChange != "/bin/true" || o.Ops.LogFormat != "json" {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "flags win", file: good, args: []string{"-p", "6000", "-i", "eth7", "-i", "eth8", "--log-format", "text"}, check: func(o *Options) string {
			if o.Port != 6000 || !reflect.DeepEqual(o.Interfaces, []string{"eth7", "eth8"}) || o.Ops.LogFormat != "text" || o.Interval != seconds(250*time.Millisecond) {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "defaults stay", file: "port = 5000\n", check: func(o *Options) string {
			if o.Misses != 3 || o.Ops.HookTimeout != 10*time.Second || o.Ops.StatusSocket != daemon.DefaultStatusSocket {
				return fmt.Sprintf("%+v", o)
			}
			return ""
		}},
		{name: "unknown key", file: "port = 5000\nbogus = 1\n", wantErr: ":2: unknown option: bogus"},
		{name: "bad value", file: "\nport = abc\n", wantErr: ":2: port: "},
		{name: "bad choice", file: "log-format = xml\n", wantErr: ":1: Invalid value `xml' for option `--log-format'"},
		{name: "missing file", wantErr: "failed to read config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.conf")
			if tt.file != "" {
				path = writeFile(t, "faild.conf", tt.file)
			}
			o, _, err := Load(append([]string{"-c", path}, tt.args...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err %v; want one naming %s and %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(o); msg != "" {
				t.Errorf("options %s", msg)
			}
			if _, err := o.Validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestValidateOps(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"hook timeout", []string{"--hook-timeout", "250ms"}, true},
		{"zero hook timeout", []string{"--hook-timeout", "0s"}, false},
		{"empty socket", []string{"--status-socket", ""}, false},
		{"unknown status group", []string{"--status-group", "faild-no-such-group"}, false},
		{"metrics on loopback", []string{"--metrics-listen", "127.0.0.1:9117"}, true},
		{"metrics on every address", []string{"--metrics-listen", ":9117"}, true},
		{"metrics on IPv6", []string{"--metrics-listen", "[::1]:9117"}, true},
		{"metrics without a port", []string{"--metrics-listen", "127.0.0.1"}, false},
		{"metrics on port 0", []string{"--metrics-listen", "127.0.0.1:0"}, false},
		{"metrics on port 70000", []string{"--metrics-listen", "127.0.0.1:70000"}, false},
		{"metrics on a host name", []string{"--metrics-listen", "localhost:9117"}, false},
	}
	if g, err := user.LookupGroupId("0"); err == nil {
		tests = append(tests, struct {
			name string
			args []string
			ok   bool
		}{"gid 0 by name", []string{"--status-group", g.Name}, true})
	}
	for _, tt := range tests {
		o, _, err := Load(tt.args)
		if err == nil {
			_, err = o.Validate()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v: err %v, want ok=%v", tt.name, tt.args, err, tt.ok)
		}
	}
}

func TestRestartOnly(t *testing.T) {
	a, _, _ := Load([]string{"-p", "4117", "-l", "/a"})
	b, _, _ := Load([]string{"-p", "5000", "-l", "/b", "--on-change", "/x", "--status-group", "adm"})
	got := RestartOnly(a, b, nil, nil)
	if want := []string{"port", "status-group"}; !reflect.DeepEqual(got, want) {
		t.Errorf("restartOnly = %v, want %v", got, want)
	}
}

// TestRestartOnlyKeys: a reload does not apply new keys, so a key file
// whose keys changed is reported under needs_restart, also when its path
// did not change; the same keys are not.
func TestRestartOnlyKeys(t *testing.T) {
	const k1, k2 = "0123456789abcdef", "fedcba9876543210"
	path := keyFile(t, k1+"\n", 0o600)
	load := func(args ...string) (*Options, [][]byte) {
		t.Helper()
		o, _, err := Load(args)
		var cfg daemon.Config
		if err == nil {
			cfg, err = o.Validate()
		}
		if err != nil {
			t.Fatal(err)
		}
		return o, cfg.Keys
	}
	running, keys := load("--key-file", path)
	if o, k := load("--key-file", path); len(RestartOnly(running, o, keys, k)) != 0 {
		t.Errorf("same keys: restartOnly = %v, want none", RestartOnly(running, o, keys, k))
	}
	if err := os.WriteFile(path, []byte(k1+"\n"+k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, k := load("--key-file", path); !reflect.DeepEqual(RestartOnly(running, o, keys, k), []string{"key-file"}) {
		t.Errorf("next key added: restartOnly = %v, want [key-file]", RestartOnly(running, o, keys, k))
	}
	if o, k := load(); !reflect.DeepEqual(RestartOnly(running, o, keys, k), []string{"key-file"}) {
		t.Errorf("key file dropped: restartOnly = %v, want [key-file]", RestartOnly(running, o, keys, k))
	}
}

// TestConfigErrors: every bad config file names the file and the line,
// whether go-flags or validate finds the fault; a scalar key given twice is
// an error naming both lines, while a list key repeats; and an option the
// command line sets is the command line's to answer for.
func TestConfigErrors(t *testing.T) {
	long := "/run/" + strings.Repeat("x", maxSocketPath)
	tests := []struct {
		name string
		file string
		args []string
		want string // part of the error after the file name; "" means no error
	}{
		{"misses out of range", "requestor = true\nmisses = 5000\n", nil, ":2: invalid -f/--misses 5000: must be 1 to 1000"},
		{"port out of range", "# faild\n\nport = 70000\n", nil, ":3: invalid -p/--port 70000: must be 1 to 65535"},
		{"interface given twice", "interface = eth0\ninterface = eth1\n\ninterface = eth0\n", nil,
			":4: invalid -i/--interface eth0: given twice (first on line 1)"},
		{"interface name too long", "interface = eth0\ninterface = abcdefghijklmnop\n", nil, ":2: invalid -i/--interface"},
		{"peer given twice", "peer = 192.0.2.2\npeer = 198.51.100.2\npeer = 192.0.2.2\n", nil,
			":3: invalid --peer 192.0.2.2: given twice (first on line 1)"},
		{"bad peer", "peer = 192.0.2.2\npeer = node3\n", nil, `:2: invalid --peer "node3"`},
		{"interval below minimum", "interval = 0.001\n", nil, ":1: invalid -t/--interval"},
		{"status socket too long", "status-socket = " + long + "\n", nil, ":1: invalid --status-socket"},
		{"hook timeout in its section", "requestor = true\n[Operation Options]\nhook-timeout = 2h\n", nil, ":3: invalid --hook-timeout"},
		{"key file missing", "key-file = /nonexistent/faild.key\n", nil, ":1: invalid --key-file"},
		{"damp max", "\n\n\n\ndamp-max = 0\n", nil, ":5: invalid --damp-max"},
		{"unknown section", "port = 4117\n[Bogus]\nport = 4118\n", nil, ":2: unknown section [Bogus]"},
		{"malformed section header", "[Operation Options\n", nil, ":1: malformed section header"},
		{"empty section name", "port = 4117\n[ ]\n", nil, ":2: empty section name"},
		{"scalar twice", "interval = 1\nmisses = 3\ninterval = 2\n", nil, ":3: interval: given twice, first on line 1"},
		{"scalar twice under two names", "interval = 1\nt = 2\n", nil, ":2: t: given twice, first on line 1"},
		{"scalar twice in two sections", "port = 4117\n[Application Options]\nport = 4118\n", nil, ":3: port: given twice, first on line 1"},
		{"flag twice", "requestor = true\nrequestor = true\n", nil, ":2: requestor: given twice, first on line 1"},
		{"list split over sections", "interface = eth0\n[Application Options]\ninterface = eth1\n", nil, ":3: interface: a list split over two sections"},
		{"bad value", "port = abc\n", nil, ":1: port: strconv.ParseInt"},
		{"unknown key", "prot = 4117\n", nil, ":1: unknown option: prot"},

		{"a list repeats", "interface = eth0\ninterface = eth1\npeer = 192.0.2.2\npeer = 192.0.2.3\n", nil, ""},
		{"sections", "[Application Options]\nrequestor = true\n[Operation Options]\nlog-format = json\n", nil, ""},
		{"the command line wins over a bad value", "port = 70000\n", []string{"-p", "4117"}, ""},
		{"the command line replaces a bad list", "interface = eth0\ninterface = eth0\n", []string{"-i", "eth1", "-i", "eth2"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "faild.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			o, _, err := Load(append([]string{"-c", path}, tt.args...))
			if err == nil {
				_, err = o.Validate()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("no error, want %q", path+tt.want)
			case !strings.Contains(err.Error(), "config file "+path+tt.want) || strings.Contains(err.Error(), "\n"):
				t.Fatalf("error %q\nwant one line with %q", err, "config file "+path+tt.want)
			}
		})
	}
}

// TestConfigErrorFromFlag: a bad value given on the command line is the
// flag's, and names no file, even with -c.
func TestConfigErrorFromFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faild.conf")
	if err := os.WriteFile(path, []byte("port = 5000\nmisses = 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, _, err := Load([]string{"-c", path, "-p", "70000"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Validate()
	if err == nil || err.Error() != "invalid -p/--port 70000: must be 1 to 65535" {
		t.Errorf("error %v, want the flag's own", err)
	}
}

// TestDistConfig: the shipped config file loads and validates.
func TestDistConfig(t *testing.T) {
	o, _, err := Load([]string{"-c", "../../dist/faild.conf"})
	if err == nil {
		_, err = o.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
}
