package proto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
)

// ErrKeyMode says a key file can be read or changed by users other than
// its owner and group: a leaked key lets anyone on the LAN move routes.
var ErrKeyMode = errors.New("readable or writable by others")

// maxKeyLine is the longest line a key file may hold, white space around
// the key included; a longer one is refused by its number.
const maxKeyLine = 4096

// ReadKeyFile reads --key-file: one key a line, the current key first and
// optionally the next one (for rotation), each at least 16 bytes. A line is
// taken as it is, byte for byte, after trimming surrounding white space:
// "openssl rand -hex 32" makes a good line, and the hex text itself is the
// key (it is not decoded). Empty lines and lines starting with # are
// skipped. Others must not be able to read or write the file (no o+r, no
// o+w); o+x alone is harmless and allowed.
func ReadKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if m := fi.Mode().Perm(); m&0o006 != 0 {
		return nil, fmt.Errorf("%w (mode %04o); chmod o-rw %s", ErrKeyMode, m, path)
	}
	var keys [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, maxKeyLine), maxKeyLine)
	n := 1
	for ; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(line) < MinKeyLen || len(line) > MaxKeyLen {
			return nil, fmt.Errorf("line %d: key of %d bytes, want %d to %d", n, len(line), MinKeyLen, MaxKeyLen)
		}
		keys = append(keys, bytes.Clone(line))
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("line %d: longer than %d bytes, want a key of %d to %d", n, maxKeyLine, MinKeyLen, MaxKeyLen)
	} else if err != nil {
		return nil, err
	}
	if len(keys) == 0 || len(keys) > MaxKeys {
		return nil, fmt.Errorf("%d keys, want 1 (current) or 2 (current, next)", len(keys))
	}
	return keys, nil
}
