package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/faild/faild/faild/daemon"
)

// opsOptions are the options for running faild in production: config file,
// status socket, hooks and log format. They are a go-flags group of their
// own, so --help lists them together; a config file names them without a
// section, like every other option.
type opsOptions struct {
	Config       string        `short:"c" long:"config" value-name:"FILE" description:"Read options from FILE (INI, the long option names as keys); options on the command line win"`
	StatusSocket string        `long:"status-socket" value-name:"PATH" default:"/run/faild/faild.sock" description:"Unix socket that 'faild status' reads; mode 0660, owner root"`
	StatusGroup  string        `long:"status-group" value-name:"GROUP" description:"Group that may read the status socket (default: root's group)"`
	OnChange     string        `long:"on-change" value-name:"SCRIPT" description:"Run SCRIPT on every failover and switchback, one at a time, with the event in FAILD_* environment variables"`
	HookTimeout  time.Duration `long:"hook-timeout" value-name:"DURATION" default:"10s" description:"Kill an --on-change script (and its process group) that runs longer than this"`
	LogFormat    string        `long:"log-format" value-name:"FORMAT" default:"text" choice:"text" choice:"json" description:"Event log format: text (key=value) or json"`
}

// validate checks the production options into cfg; options.validate
// calls it.
func (o *opsOptions) validate(cfg *daemon.Config) error {
	switch {
	case o.StatusSocket == "":
		return bad("status-socket", "invalid --status-socket: empty path")
	case len(o.StatusSocket) > maxSocketPath:
		return bad("status-socket", "invalid --status-socket %s: %d bytes, longer than a Unix socket path can be here (%d)",
			o.StatusSocket, len(o.StatusSocket), maxSocketPath)
	case o.HookTimeout <= 0 || o.HookTimeout > time.Hour:
		return bad("hook-timeout", "invalid --hook-timeout %v: must be above 0 and at most 1h", o.HookTimeout)
	case o.LogFormat != "text" && o.LogFormat != "json":
		return bad("log-format", "invalid --log-format %q: want text or json", o.LogFormat)
	}
	cfg.StatusSocket, cfg.OnChange, cfg.HookTimeout = o.StatusSocket, o.OnChange, o.HookTimeout
	// Resolved here, not when the socket is bound, so that a typo is a bad
	// command line caught before any route is touched.
	if o.StatusGroup != "" {
		g, err := user.LookupGroup(o.StatusGroup)
		var unknown user.UnknownGroupError
		switch {
		case errors.As(err, &unknown):
			return bad("status-group", "invalid --status-group %q: no such group", o.StatusGroup)
		case err != nil:
			return bad("status-group", "invalid --status-group %q: %w", o.StatusGroup, err)
		}
		gid, err := strconv.Atoi(g.Gid)
		if err != nil {
			return bad("status-group", "invalid --status-group %q: gid %q is not a number", o.StatusGroup, g.Gid)
		}
		cfg.StatusGID = gid
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
func newParser(opts *options) *flags.Parser {
	p := flags.NewParser(opts, flags.HelpFlag|flags.PassDoubleDash)
	p.Name = "faild"
	p.Usage = "[-r] [-t SECS] [-f N] [-s N] [-p PORT] [-l PATH] [-i IFACE]... [-c FILE]\n  faild status [--json] [--status-socket PATH]"
	return p
}

// loadOptions parses the command line and, with -c, the config file under
// it: the file is read first and the command line on top, so any flag
// given wins, and a repeated flag such as -i replaces the file's list rather
// than adding to it. It does not validate, but it records where in the file
// each option that the command line left alone was set, so that validate
// can name the line of a bad value.
func loadOptions(args []string) (*options, []string, error) {
	opts := &options{}
	cmdline := newParser(opts)
	rest, err := cmdline.ParseArgs(args)
	if err != nil || opts.Ops.Config == "" {
		return opts, rest, err
	}
	file := opts.Ops.Config
	opts = &options{}
	p := newParser(opts)
	lines, err := scanConfig(p, file)
	if err != nil {
		return nil, nil, configError(file, err)
	}
	// Not ParseAsDefaults: it keeps only the last of repeated keys such as
	// interface. The file's values count as set, and ParseArgs then
	// overwrites them flag by flag, clearing a list before its first flag.
	ini := flags.NewIniParser(p)
	if err := ini.ParseFile(file); err != nil {
		return nil, nil, configError(file, err)
	}
	rest, err = p.ParseArgs(args)
	eachOption(cmdline, func(o *flags.Option) {
		if o.IsSet() && !o.IsSetDefault() { // given on the command line: it wins
			delete(lines, o.LongName)
		}
	})
	opts.src = &fileLines{file: file, lines: lines}
	return opts, rest, err
}

// fileLines says where a config file set each option: the lines of its
// values by long name, in order (one for a scalar, one a value for a list).
type fileLines struct {
	file  string
	lines map[string][]int
}

// place puts the file and line in front of err when it is about an option
// whose value came from the file.
func (f *fileLines) place(err error) error {
	var oe *optionError
	if f == nil || !errors.As(err, &oe) {
		return err
	}
	lines := f.lines[oe.long]
	i := oe.index
	if i < 0 {
		i = len(lines) - 1
	}
	if i < 0 || i >= len(lines) {
		return err
	}
	msg := err.Error()
	if oe.first >= 0 && oe.first < len(lines) {
		msg += fmt.Sprintf(" (first on line %d)", lines[oe.first])
	}
	return fmt.Errorf("invalid config file %s:%d: %s", f.file, lines[i], msg)
}

// scanConfig reads a config file as go-flags will, line by line, and
// refuses what go-flags takes silently or without a line number: a
// section that names no option group, a scalar option given twice (go-flags
// keeps the last), and a list split over two sections (go-flags visits
// sections in random order, and LAN order matters). It returns the lines of
// each option's values; keys it cannot place are left to go-flags to refuse.
func scanConfig(p *flags.Parser, file string) (map[string][]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	lines := map[string][]int{}
	sectionOf := map[string]string{} // a list's section, by long name
	section := ""
	for n, line := range strings.Split(string(b), "\n") {
		n++
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			name, ok := strings.CutSuffix(line[1:], "]")
			name = strings.TrimSpace(name)
			switch {
			case !ok:
				return nil, &flags.IniError{Message: fmt.Sprintf("malformed section header %s: want [name]", line), File: file, LineNumber: uint(n)}
			case name == "":
				return nil, &flags.IniError{Message: "empty section name", File: file, LineNumber: uint(n)}
			case findGroup(p, name) == nil:
				return nil, &flags.IniError{Message: fmt.Sprintf("unknown section [%s]: want none, or one of %s", name, sectionNames(p)),
					File: file, LineNumber: uint(n)}
			}
			section = name
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			continue // go-flags says "malformed key=value", with the line
		}
		key = strings.TrimSpace(key)
		o := findOption(p, section, key)
		if o == nil {
			continue // go-flags says "unknown option", with the line
		}
		long, prev := o.LongName, lines[o.LongName]
		kind := o.Field().Type.Kind()
		switch {
		case len(prev) == 0:
		case kind != reflect.Slice && kind != reflect.Map:
			return nil, &flags.IniError{Message: fmt.Sprintf("%s: given twice, first on line %d", key, prev[0]), File: file, LineNumber: uint(n)}
		case sectionOf[long] != section:
			return nil, &flags.IniError{Message: fmt.Sprintf("%s: a list split over two sections (first on line %d): keep it in one", key, prev[0]),
				File: file, LineNumber: uint(n)}
		}
		lines[long] = append(prev, n)
		sectionOf[long] = section
	}
	return lines, nil
}

// findGroup returns the option group a config file section names, as
// go-flags matches it (case aside), or nil.
func findGroup(p *flags.Parser, name string) *flags.Group {
	var found *flags.Group
	var walk func(g *flags.Group)
	walk = func(g *flags.Group) {
		for _, sub := range g.Groups() {
			if strings.EqualFold(sub.ShortDescription, name) && found == nil {
				found = sub
			}
			walk(sub)
		}
	}
	walk(p.Command.Group)
	return found
}

// sectionNames lists the sections a config file may have, for errors.
func sectionNames(p *flags.Parser) string {
	var names []string
	var walk func(g *flags.Group)
	walk = func(g *flags.Group) {
		for _, sub := range g.Groups() {
			names = append(names, "["+sub.ShortDescription+"]")
			walk(sub)
		}
	}
	walk(p.Command.Group)
	return strings.Join(names, " ")
}

// findOption returns the option a config file key names in section ("" for
// none: any group), as go-flags matches it: by field name, then long name,
// then short name.
func findOption(p *flags.Parser, section, key string) *flags.Option {
	g := p.Command.Group
	if section != "" {
		if g = findGroup(p, section); g == nil {
			return nil
		}
	}
	var best *flags.Option
	prio := 0
	eachOptionOf(g, func(o *flags.Option) {
		switch {
		case key == o.Field().Name && prio < 3:
			best, prio = o, 3
		case key == o.LongName && prio < 2:
			best, prio = o, 2
		case o.ShortName != 0 && key == string(o.ShortName) && prio < 1:
			best, prio = o, 1
		}
	})
	return best
}

// eachOption calls fn for every option of the parser.
func eachOption(p *flags.Parser, fn func(*flags.Option)) { eachOptionOf(p.Command.Group, fn) }

func eachOptionOf(g *flags.Group, fn func(*flags.Option)) {
	for _, o := range g.Options() {
		fn(o)
	}
	for _, sub := range g.Groups() {
		eachOptionOf(sub, fn)
	}
}

// configError names the file, line and key of a bad config file in one line.
func configError(file string, err error) error {
	var ie *flags.IniError
	if errors.As(err, &ie) {
		// go-flags names the key for an unknown option but not for a bad
		// value; the line itself does.
		if key := keyAt(file, int(ie.LineNumber)); key != "" && !strings.Contains(ie.Message, key) {
			return fmt.Errorf("invalid config file %s:%d: %s: %s", file, ie.LineNumber, key, ie.Message)
		}
		return fmt.Errorf("invalid config file %s:%d: %s", file, ie.LineNumber, ie.Message)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("failed to read config file %s: %w", file, pe.Err)
	}
	return fmt.Errorf("invalid config file %s: %w", file, err)
}

// keyAt returns the key on line n (1-based) of an INI file, "" if none.
func keyAt(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil || n < 1 {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if n > len(lines) {
		return ""
	}
	key, _, ok := strings.Cut(lines[n-1], "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(key)
}

// restartOnly returns the long names of options that differ between the
// running and the re-read options but that a reload does not apply. The
// key file counts as changed when its keys do, even under the same path:
// a reload validates the file but the running exchange keeps its keys.
func restartOnly(running, reread *options, runningKeys, rereadKeys [][]byte) []string {
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
