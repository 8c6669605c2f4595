package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/daemon"
)

func parse(args []string) (*Options, daemon.Config, error) {
	var o Options
	if _, err := flags.NewParser(&o, flags.HelpFlag).ParseArgs(args); err != nil {
		return nil, daemon.Config{}, err
	}
	cfg, err := o.Validate()
	return &o, cfg, err
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
		want string // part of the error, naming the flag
	}{
		{"defaults", nil, true, ""},
		{"original command line", strings.Fields("-r -t 2 -f 4 -s 5 -p 5000 -l /tmp/x"), true, ""},
		{"decimal interval", strings.Fields("-t 0.05"), true, ""},
		{"minimum interval", strings.Fields("-t 0.01"), true, ""},
		{"below minimum", strings.Fields("-t 0.009"), false, "-t/--interval"},
		{"zero interval", strings.Fields("-t 0"), false, "-t/--interval"},
		{"negative interval", strings.Fields("-t -1"), false, "-t/--interval"},
		{"huge interval", strings.Fields("-t 1e9"), false, "-t/--interval"},
		{"not a number", strings.Fields("-t fast"), false, "-t/--interval"},
		{"NaN", strings.Fields("-t NaN"), false, "-t/--interval"},
		{"zero misses", strings.Fields("-f 0"), false, "-f/--misses"},
		{"misses not a number", strings.Fields("-f x"), false, "--misses"},
		{"zero successes", strings.Fields("-s 0"), false, "-s/--successes"},
		{"port 0", strings.Fields("-p 0"), false, "-p/--port"},
		{"port too big", strings.Fields("-p 65536"), false, "-p/--port"},
		{"interfaces in order", strings.Fields("-i eth1 -i eth0"), true, ""},
		{"one interface", strings.Fields("-i eth0"), false, "-i/--interface"},
		{"interface with a slash", strings.Fields("-i eth0/1 -i eth1"), false, "-i/--interface"},
		{"peers of both families", strings.Fields("--peer 192.0.2.2 --peer 198.51.100.2 --peer 2001:db8:a::2"), true, ""},
		{"peer not an address", strings.Fields("--peer node2"), false, "--peer"},
		{"peer with a prefix", strings.Fields("--peer 192.0.2.2/24"), false, "--peer"},
		{"peer with a zone", strings.Fields("--peer 2001:db8:a::2%eth0"), false, "--peer"},
		{"peer unspecified", strings.Fields("--peer 0.0.0.0"), false, "--peer"},
		{"peer unspecified IPv6", strings.Fields("--peer ::"), false, "--peer"},
		{"peer multicast", strings.Fields("--peer 224.0.0.1"), false, "--peer"},
		{"peer IPv6 multicast", strings.Fields("--peer ff12::4117"), false, "--peer"},
		{"peer broadcast", strings.Fields("--peer 255.255.255.255"), false, "--peer"},
		{"peer link-local", strings.Fields("--peer fe80::2"), false, "--peer"},
		{"peer twice", strings.Fields("--peer 192.0.2.2 --peer 192.0.2.2"), false, "--peer"},
		{"interface twice", strings.Fields("-i eth0 -i eth0"), false, "-i/--interface"},
		{"interface name too long", strings.Fields("-i abcdefghijklmnop"), false, "-i/--interface"},
		{"too many interfaces", strings.Fields("-i a -i b -i c -i d -i e -i f -i g -i h -i i"), false, "-i/--interface"},
		{"node id", strings.Fields("--node-id 192.0.2.9"), true, ""},
		{"node id not IPv4", strings.Fields("--node-id 2001:db8::1"), false, "--node-id"},
		{"damping off", strings.Fields("--damp-window 0"), true, ""},
		{"damping window", strings.Fields("--damp-window 1m --damp-max 8"), true, ""},
		{"negative damping window", strings.Fields("--damp-window -1s"), false, "--damp-window"},
		{"damping window not a duration", strings.Fields("--damp-window 30"), false, "--damp-window"},
		{"zero damp max", strings.Fields("--damp-max 0"), false, "--damp-max"},
		{"max loss", strings.Fields("--max-loss 10"), true, ""},
		{"max loss with decimals and a percent sign", strings.Fields("--max-loss 2.5%"), true, ""},
		{"max loss lowest", strings.Fields("--max-loss 1"), true, ""},
		{"max loss highest", strings.Fields("--max-loss 99"), true, ""},
		{"max loss 0", strings.Fields("--max-loss 0"), false, "--max-loss 0: must be 1 to 99"},
		{"max loss below 1", strings.Fields("--max-loss 0.5"), false, "--max-loss 0.5: must be 1 to 99"},
		{"max loss 100", strings.Fields("--max-loss 100"), false, "--max-loss 100: must be 1 to 99"},
		{"max loss negative", strings.Fields("--max-loss=-5"), false, "--max-loss -5: must be 1 to 99"},
		{"max loss not a number", strings.Fields("--max-loss lots"), false, `--max-loss "lots": not a percentage`},
		{"max loss NaN", strings.Fields("--max-loss NaN"), false, "--max-loss"},
		{"loss window", strings.Fields("--max-loss 10 --loss-window 50"), true, ""},
		{"loss window as short as can be", strings.Fields("--max-loss 10 --loss-window 10"), true, ""},
		{"loss window too short for the threshold", strings.Fields("--max-loss 10 --loss-window 9"), false,
			"--loss-window 9: too short to measure --max-loss 10% (a loss at that rate needs at least 10 intervals)"},
		{"loss window too short for 1%", strings.Fields("--max-loss 1 --loss-window 99"), false, "--loss-window 99: too short"},
		{"loss window without max loss", strings.Fields("--loss-window 1000"), true, ""},
		{"loss window too long", strings.Fields("--loss-window 10001"), false, "--loss-window 10001: must be 1 to 10000"},
		{"negative loss window", strings.Fields("--loss-window=-1"), false, "--loss-window -1: must be 1 to 10000"},
		{"max rtt", strings.Fields("-r -t 0.1 --max-rtt 200ms"), true, ""},
		{"max rtt of 7 intervals", strings.Fields("-r -t 0.1 --max-rtt 700ms"), true, ""},
		{"max rtt without -r", strings.Fields("--max-rtt 200ms"), false, "--max-rtt 200ms: needs -r/--requestor"},
		{"max rtt beyond 7 intervals", strings.Fields("-r -t 0.1 --max-rtt 701ms"), false, "--max-rtt 701ms: at most 7 intervals (700ms at -t 0.1)"},
		{"max rtt tiny", strings.Fields("-r --max-rtt 10us"), false, "--max-rtt 10µs: must be at least 1ms"},
		{"max rtt negative", strings.Fields("-r --max-rtt=-1s"), false, "--max-rtt -1s: must be at least 1ms"},
		{"max rtt not a duration", strings.Fields("-r --max-rtt 2"), false, "max-rtt"},
		{"unknown flag", strings.Fields("-x"), false, "unknown flag"},
		{"status socket as long as can be", []string{"--status-socket", "/" + strings.Repeat("s", maxSocketPath-1)}, true, ""},
		{"status socket too long", []string{"--status-socket", "/" + strings.Repeat("s", maxSocketPath)}, false, "--status-socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parse(tt.args)
			if tt.ok && err != nil {
				t.Fatalf("error %v, want none", err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestIntervalSeconds(t *testing.T) {
	_, cfg, err := parse(strings.Fields("-t 0.05 -i eth0 -i eth1 --node-id 192.0.2.9"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != 50*time.Millisecond {
		t.Errorf("-t 0.05 = %v, want 50ms", cfg.Interval)
	}
	if cfg.Port != 4117 || cfg.Misses != 3 || cfg.Successes != 3 || cfg.NodeID != 0xc0000209 ||
		len(cfg.Interfaces) != 2 || cfg.StatusSocket != daemon.DefaultStatusSocket {
		t.Errorf("config %+v", cfg)
	}
}

// TestQualityOptions: --max-loss, --loss-window and --max-rtt reach the
// daemon's configuration as fractions, intervals and durations; without
// them nothing is judged and the window is the default.
func TestQualityOptions(t *testing.T) {
	tests := []struct {
		args   string
		loss   float64
		window int
		rtt    time.Duration
	}{
		{"", 0, 0, 0},
		{"--max-loss 10", 0.10, 0, 0},
		{"--max-loss 2.5 --loss-window 400", 0.025, 400, 0},
		{"-r -t 0.1 --max-rtt 150ms", 0, 0, 150 * time.Millisecond},
	}
	for _, tt := range tests {
		_, cfg, err := parse(strings.Fields(tt.args))
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if cfg.MaxLoss != tt.loss || cfg.LossWindow != tt.window || cfg.MaxRTT != tt.rtt {
			t.Errorf("%q: max loss %v, window %d, max rtt %v; want %v, %d, %v", tt.args, cfg.MaxLoss, cfg.LossWindow, cfg.MaxRTT,
				tt.loss, tt.window, tt.rtt)
		}
	}
}

// TestKeyFileFlag: a bad key file is a bad command line, named as such.
func TestKeyFileFlag(t *testing.T) {
	open := keyFile(t, "0123456789abcdef\n", 0o644)
	if _, _, err := parse([]string{"--key-file", open}); err == nil || !strings.Contains(err.Error(), "--key-file "+open) {
		t.Errorf("error %v, want one naming --key-file and the file", err)
	}
	if _, _, err := parse([]string{"--key-file", filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("missing file: error %v, want one naming --key-file", err)
	}
	_, cfg, err := parse([]string{"--key-file", keyFile(t, "0123456789abcdef\n", 0o600)})
	if err != nil || len(cfg.Keys) != 1 {
		t.Errorf("good key file: %v, %d keys", err, len(cfg.Keys))
	}
	for _, bad := range []string{"0", "65537"} {
		if _, _, err := parse([]string{"--max-peers", bad}); err == nil || !strings.Contains(err.Error(), "--max-peers") {
			t.Errorf("--max-peers %s: error %v, want one naming the flag", bad, err)
		}
	}
}

func keyFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}
