package proto

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
)

// Key sizes. HMAC-SHA256 hashes longer keys down to 32 bytes, so nothing
// above that adds strength; the upper bound only keeps a wrong file (a
// binary, a log) from being taken as a key.
const (
	MinKeyLen = 16
	MaxKeyLen = 1024
	// MaxKeys is the current key and the next one, for rotation without an
	// outage: every node accepts both while they are rolled out.
	MaxKeys = 2
)

// Authentication errors; Verify wraps one of them.
var (
	ErrNoTag  = errors.New("packet has no tag")
	ErrBadTag = errors.New("tag does not verify")
	ErrKeys   = errors.New("bad keys")
)

// MAC signs and verifies packets with up to MaxKeys keys: it signs with the
// first and accepts a tag made with any of them. The HMAC states are made
// once and reset per packet, so the per-packet path does not allocate; a
// MAC is not safe for concurrent use, so each goroutine makes its own.
//
// A MAC serves one address family, and the tag covers the family byte (4 or
// 6) before the packet's bytes. The IPv4 and IPv6 exchanges number their
// packets from counters of their own and keep replay windows of their own,
// so a packet signed for one family must not verify on the other: replayed
// there, it would be new to that window and push it ahead of the peer's
// real packets.
type MAC struct {
	hs  []hash.Hash
	fam [1]byte // the family byte the tag covers first
	sum [sha256.Size]byte
}

// CheckKeys reports whether keys is a usable key list.
func CheckKeys(keys [][]byte) error {
	if len(keys) == 0 || len(keys) > MaxKeys {
		return fmt.Errorf("proto: %w: %d keys, want 1 to %d", ErrKeys, len(keys), MaxKeys)
	}
	for i, k := range keys {
		if len(k) < MinKeyLen || len(k) > MaxKeyLen {
			return fmt.Errorf("proto: %w: key %d has %d bytes, want %d to %d", ErrKeys, i+1, len(k), MinKeyLen, MaxKeyLen)
		}
	}
	return nil
}

// NewMAC returns a MAC for IPv4 packets with keys, or nil and no error when
// keys is empty: authentication is off.
func NewMAC(keys [][]byte) (*MAC, error) { return newMAC(keys, 4) }

// NewMAC6 is NewMAC for IPv6 packets.
func NewMAC6(keys [][]byte) (*MAC, error) { return newMAC(keys, 6) }

func newMAC(keys [][]byte, family byte) (*MAC, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if err := CheckKeys(keys); err != nil {
		return nil, err
	}
	m := &MAC{fam: [1]byte{family}}
	for _, k := range keys {
		m.hs = append(m.hs, hmac.New(sha256.New, k))
	}
	return m, nil
}

// Sign fills in the tag of b, a packet encoded from a Packet with Auth set
// (its last TagLen bytes are the tag's place), with the first key.
func (m *MAC) Sign(b []byte) error {
	if len(b) < HeaderLen+TagLen || b[flagsOff]&FlagAuth == 0 {
		return fmt.Errorf("proto: sign: %w", ErrNoTag)
	}
	body := len(b) - TagLen
	m.tag(0, b[:body])
	copy(b[body:], m.sum[:])
	return nil
}

// Verify checks b's tag against every key in constant time per key. It
// looks at the flags byte and the length only, so it can run before or
// after Decode.
func (m *MAC) Verify(b []byte) error {
	if len(b) < HeaderLen+TagLen || b[flagsOff]&FlagAuth == 0 {
		return fmt.Errorf("proto: verify: %w", ErrNoTag)
	}
	body := len(b) - TagLen
	for i := range m.hs {
		m.tag(i, b[:body])
		if hmac.Equal(m.sum[:], b[body:]) {
			return nil
		}
	}
	return fmt.Errorf("proto: verify: %w", ErrBadTag)
}

func (m *MAC) tag(key int, body []byte) {
	h := m.hs[key]
	h.Reset()
	h.Write(m.fam[:])
	h.Write(body)
	h.Sum(m.sum[:0])
}
