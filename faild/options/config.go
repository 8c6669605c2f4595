package options

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/user"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/conffile"
	"github.com/faild/faild/faild/daemon"
)

// Ops are the options for running faild in production: config file,
// status socket, hooks and log format. They are a go-flags group of their
// own, so --help lists them together; a config file names them without a
// section, like every other option.
type Ops struct {
	Config        string        `short:"c" long:"config" value-name:"FILE" description:"Read options from FILE (INI, the long option names as keys); options on the command line win"`
	StatusSocket  string        `long:"status-socket" value-name:"PATH" default:"/run/faild/faild.sock" description:"Unix socket that 'faild status' reads; mode 0660, owner root"`
	StatusGroup   string        `long:"status-group" value-name:"GROUP" description:"Group that may read the status socket (default: root's group)"`
	OnChange      string        `long:"on-change" value-name:"SCRIPT" description:"Run SCRIPT on every failover and switchback, one at a time, with the event in FAILD_* environment variables"`
	HookTimeout   time.Duration `long:"hook-timeout" value-name:"DURATION" default:"10s" description:"Kill an --on-change script (and its process group) that runs longer than this"`
	LogFormat     string        `long:"log-format" value-name:"FORMAT" default:"text" choice:"text" choice:"json" description:"Event log format: text (key=value) or json"`
	MetricsListen string        `long:"metrics-listen" value-name:"ADDR:PORT" description:"Serve Prometheus metrics at http://ADDR:PORT/metrics (default: off)"`
}

// validate checks the production options into cfg; Options.Validate
// calls it.
func (o *Ops) validate(cfg *daemon.Config) error {
	switch {
	case o.StatusSocket == "":
		return conffile.Bad("status-socket", "invalid --status-socket: empty path")
	case len(o.StatusSocket) > maxSocketPath:
		return conffile.Bad("status-socket", "invalid --status-socket %s: %d bytes, longer than a Unix socket path can be here (%d)",
			o.StatusSocket, len(o.StatusSocket), maxSocketPath)
	case o.HookTimeout <= 0 || o.HookTimeout > time.Hour:
		return conffile.Bad("hook-timeout", "invalid --hook-timeout %v: must be above 0 and at most 1h", o.HookTimeout)
	case o.LogFormat != "text" && o.LogFormat != "json":
		return conffile.Bad("log-format", "invalid --log-format %q: want text or json", o.LogFormat)
	}
	if o.MetricsListen != "" {
		if err := checkListen(o.MetricsListen); err != nil {
			return conffile.Bad("metrics-listen", "invalid --metrics-listen %q: %w", o.MetricsListen, err)
		}
	}
	cfg.StatusSocket, cfg.OnChange, cfg.HookTimeout = o.StatusSocket, o.OnChange, o.HookTimeout
	cfg.MetricsListen = o.MetricsListen
	// Resolved here, not when the socket is bound, so that a typo is a bad
	// command line caught before any route is touched.
	if o.StatusGroup != "" {
		g, err := user.LookupGroup(o.StatusGroup)
		var unknown user.UnknownGroupError
		switch {
		case errors.As(err, &unknown):
			return conffile.Bad("status-group", "invalid --status-group %q: no such group", o.StatusGroup)
		case err != nil:
			return conffile.Bad("status-group", "invalid --status-group %q: %w", o.StatusGroup, err)
		}
		gid, err := strconv.Atoi(g.Gid)
		if err != nil {
			return conffile.Bad("status-group", "invalid --status-group %q: gid %q is not a number", o.StatusGroup, g.Gid)
		}
		cfg.StatusGID = gid
	}
	return nil
}

// checkListen checks a host:port to listen on: an IP address (or none,
// for every address) and a port of 1 to 65535. A host name is refused:
// what it resolves to can change under a running daemon.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want ADDR:PORT, such as 127.0.0.1:9117 or [::1]:9117")
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q is not an IP address", host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: must be 1 to 65535", port)
	}
	return nil
}

// maxSocketPath is the longest path a Unix socket can be bound to: the
// kernel's sun_path (108 bytes on Linux, 104 on the BSDs and macOS) less
// the NUL that ends it.
const maxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

// reloadable lists the options a SIGHUP applies to a running daemon, by
// long name. Every other option takes a restart: changing interfaces, port
// or timing under a running detector would mean a different daemon.
var reloadable = []string{"log-file", "log-format", "on-change", "hook-timeout"}

// newParser returns the command-line parser for opts.
func newParser(opts *Options) *flags.Parser {
	p := flags.NewParser(opts, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = "faild"
	p.Usage = "[-r] [-t SECS] [-f N] [-s N] [-p PORT] [-l PATH] [-i IFACE]... [-c FILE]\n  faild status [--json] [--status-socket PATH]"
	return p
}

// Load parses the command line and, with -c, the config file under
// it: the file is read first and the command line on top, so any flag
// given wins, and a repeated flag such as -i replaces the file's list rather
// than adding to it. It does not validate, but it keeps where in the file
// each option the command line left alone was set, so that Validate can
// name the line of a bad value.
func Load(args []string) (*Options, []string, error) {
	opts := &Options{}
	cmdline := newParser(opts)
	rest, err := cmdline.ParseArgs(args)
	if err != nil || opts.Ops.Config == "" {
		return opts, rest, err
	}
	file := opts.Ops.Config
	opts = &Options{}
	p := newParser(opts)
	lines, err := conffile.Load(p, file)
	if err != nil {
		return nil, nil, err
	}
	rest, err = p.ParseArgs(args)
	lines.Forget(cmdline)
	opts.src = lines
	return opts, rest, err
}

// RestartOnly returns the long names of options that differ between the
// running and the re-read options but that a reload does not apply. The
// key file counts as changed when its keys do, even under the same path:
// a reload validates the file but the running exchange keeps its keys.
func RestartOnly(running, reread *Options, runningKeys, rereadKeys [][]byte) []string {
	var names []string
	var walk func(a, b reflect.Value)
	walk = func(a, b reflect.Value) {
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("group") != "" {
				walk(a.Field(i), b.Field(i))
				continue
			}
			name := f.Tag.Get("long")
			if name == "" || name == "config" || name == "version" || isReloadable(name) {
				continue
			}
			differ := !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface())
			if name == "key-file" {
				differ = differ || !slices.EqualFunc(runningKeys, rereadKeys, bytes.Equal)
			}
			if differ {
				names = append(names, name)
			}
		}
	}
	walk(reflect.ValueOf(running).Elem(), reflect.ValueOf(reread).Elem())
	return names
}

func isReloadable(name string) bool { return slices.Contains(reloadable, name) }

// WriteHelp writes --help, with the defaults shown (a parser shows them
// once it has parsed).
func WriteHelp(w io.Writer) {
	p := newParser(&Options{})
	p.ParseArgs(nil)
	p.WriteHelp(w)
}
