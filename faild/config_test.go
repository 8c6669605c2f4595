package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
		{"the command line replaces a bad list", "interface = eth0\ninterface = eth0\n", []string{"-i", "eth1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "faild.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			o, _, err := loadOptions(append([]string{"-c", path}, tt.args...))
			if err == nil {
				err = o.validate()
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
	o, _, err := loadOptions([]string{"-c", path, "-p", "70000"})
	if err != nil {
		t.Fatal(err)
	}
	err = o.validate()
	if err == nil || err.Error() != "invalid -p/--port 70000: must be 1 to 65535" {
		t.Errorf("error %v, want the flag's own", err)
	}
}

// TestDistConfig: the shipped config file loads and validates.
func TestDistConfig(t *testing.T) {
	o, _, err := loadOptions([]string{"-c", "../dist/faild.conf"})
	if err == nil {
		err = o.validate()
	}
	if err != nil {
		t.Fatal(err)
	}
}
