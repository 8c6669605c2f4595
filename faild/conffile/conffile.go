// Package conffile reads faild's config file: INI, the long option names
// as keys, into a go-flags parser, with what go-flags leaves out: the line
// of every value, so that a bad one is named with its file and line even
// when it is found only after the parse; and the refusal of what go-flags
// takes silently (a scalar given twice, a section that names no group, a
// list split over two sections).
package conffile

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/jessevdk/go-flags"
)

// Load parses file into p, refusing what Scan refuses; every error names
// the file and, where there is one, the line. It returns where each
// option's values were.
func Load(p *flags.Parser, file string) (*Lines, error) {
	lines, err := scan(p, file)
	if err != nil {
		return nil, fileError(file, err)
	}
	// Not ParseAsDefaults: it keeps only the last of repeated keys such as
	// interface. The file's values count as set, and a later ParseArgs
	// overwrites them flag by flag, clearing a list before its first flag.
	if err := flags.NewIniParser(p).ParseFile(file); err != nil {
		return nil, fileError(file, err)
	}
	return &Lines{file: file, lines: lines}, nil
}

// Forget drops the lines of the options set on cmdline, whose values are
// the command line's and not the file's.
func (f *Lines) Forget(cmdline *flags.Parser) {
	eachOption(cmdline.Command.Group, func(o *flags.Option) {
		if o.IsSet() && !o.IsSetDefault() {
			delete(f.lines, o.LongName)
		}
	})
}

// Error is a bad value of the option with long name Long; Index picks the
// value of a list (-1 for a scalar), and First, for a value given twice,
// the earlier one (-1 if none). It lets Lines.Place say where in the file
// the value was.
type Error struct {
	Long         string
	Index, First int
	Err          error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Bad is the error for a bad value of a scalar option, formatted as by
// fmt.Errorf.
func Bad(long, format string, args ...any) error {
	return &Error{Long: long, Index: -1, First: -1, Err: fmt.Errorf(format, args...)}
}

// BadAt is the error for value i of a list option; first is the earlier
// copy of a value given twice, or -1.
func BadAt(long string, i, first int, format string, args ...any) error {
	return &Error{Long: long, Index: i, First: first, Err: fmt.Errorf(format, args...)}
}

// Lines says where a config file set each option: the lines of its
// values by long name, in order (one for a scalar, one a value for a list).
type Lines struct {
	file  string
	lines map[string][]int
}

// Place puts the file and line in front of err when it is about an option
// whose value came from the file.
func (f *Lines) Place(err error) error {
	var oe *Error
	if f == nil || !errors.As(err, &oe) {
		return err
	}
	lines := f.lines[oe.Long]
	i := oe.Index
	if i < 0 {
		i = len(lines) - 1
	}
	if i < 0 || i >= len(lines) {
		return err
	}
	msg := err.Error()
	if oe.First >= 0 && oe.First < len(lines) {
		msg += fmt.Sprintf(" (first on line %d)", lines[oe.First])
	}
	return fmt.Errorf("invalid config file %s:%d: %s", f.file, lines[i], msg)
}

// scan reads a config file as go-flags will, line by line, and
// refuses what go-flags takes silently or without a line number: a
// section that names no option group, a scalar option given twice (go-flags
// keeps the last), and a list split over two sections (go-flags visits
// sections in random order, and LAN order matters). It returns the lines of
// each option's values; keys it cannot place are left to go-flags to refuse.
func scan(p *flags.Parser, file string) (map[string][]int, error) {
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
	eachOption(g, func(o *flags.Option) {
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

// eachOption calls fn for every option of g and the groups under it.
func eachOption(g *flags.Group, fn func(*flags.Option)) {
	for _, o := range g.Options() {
		fn(o)
	}
	for _, sub := range g.Groups() {
		eachOption(sub, fn)
	}
}

// fileError names the file, line and key of a bad config file in one line.
func fileError(file string, err error) error {
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
