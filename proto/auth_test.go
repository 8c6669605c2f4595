package proto

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	nextKey  = []byte("next key, sixteen bytes at least")
	otherKey = []byte("a key nobody in the cluster has!")
)

func signed(t testing.TB, keys [][]byte, p Packet) []byte {
	t.Helper()
	m, err := NewMAC(keys)
	if err != nil {
		t.Fatal(err)
	}
	p.Auth = true
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Sign(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testPacket() Packet {
	return Packet{Type: INQ, NodeID: 0xc0000202, BootID: 9, Seq: 1234, Interval: 100 * time.Millisecond,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("198.51.100.2/24")}}
}

func TestVerify(t *testing.T) {
	good := signed(t, [][]byte{testKey}, testPacket())
	byNext := signed(t, [][]byte{nextKey}, testPacket())
	byOther := signed(t, [][]byte{otherKey}, testPacket())
	plain, _ := (&Packet{Type: INQ, NodeID: 1}).Append(nil)
	flipped := bytes.Clone(good)
	flipped[20] ^= 1 // the sequence number
	flagOff := bytes.Clone(good)
	flagOff[flagsOff] = 0
	tests := []struct {
		name string
		keys [][]byte
		b    []byte
		want error
	}{
		{"current key", [][]byte{testKey}, good, nil},
		{"signed with the next key, we have both", [][]byte{testKey, nextKey}, byNext, nil},
		{"signed with the current key, we have both", [][]byte{nextKey, testKey}, good, nil},
		{"unknown key", [][]byte{testKey, nextKey}, byOther, ErrBadTag},
		{"changed after signing", [][]byte{testKey}, flipped, ErrBadTag},
		{"flag cleared", [][]byte{testKey}, flagOff, ErrNoTag},
		{"unsigned", [][]byte{testKey}, plain, ErrNoTag},
		{"short", [][]byte{testKey}, good[:HeaderLen], ErrNoTag},
		{"truncated tag", [][]byte{testKey}, good[:len(good)-1], ErrBadTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMAC(tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Verify(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignShortest: Sign and Verify look at the length and the flag only;
// the shortest buffer they take is a header and a tag.
func TestSignShortest(t *testing.T) {
	m, err := NewMAC([][]byte{testKey})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, HeaderLen+TagLen)
	b[flagsOff] = FlagAuth
	if err := m.Sign(b); err != nil {
		t.Fatalf("Sign of %d bytes: %v", len(b), err)
	}
	if err := m.Verify(b); err != nil {
		t.Errorf("Verify of %d bytes: %v", len(b), err)
	}
	if err := m.Sign(b[:len(b)-1]); !errors.Is(err, ErrNoTag) {
		t.Errorf("Sign of %d bytes = %v, want %v", len(b)-1, err, ErrNoTag)
	}
}

func TestSignedCodec(t *testing.T) {
	b := signed(t, [][]byte{testKey}, testPacket())
	if len(b) != HeaderLen+2*addr4Len+1+TagLen || b[flagsOff] != FlagAuth { // +1: the empty deaf list
		t.Fatalf("signed packet: %d bytes, flags %#x", len(b), b[flagsOff])
	}
	var p Packet
	if err := p.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := testPacket()
	want.Version, want.Auth, want.Tag = Version, true, [TagLen]byte(b[len(b)-TagLen:])
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Decode (-want +got):\n- %+v\n+ %+v", want, p)
	}
	if err := (&Packet{}).Decode(b[:HeaderLen+TagLen-1]); !errors.Is(err, ErrShort) {
		t.Errorf("Decode of a signed header with a short tag = %v, want %v", err, ErrShort)
	}
}

func TestKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys [][]byte
		ok   bool
	}{
		{"one", [][]byte{testKey}, true},
		{"two", [][]byte{testKey, nextKey}, true},
		{"three", [][]byte{testKey, nextKey, otherKey}, false},
		{"15 bytes", [][]byte{testKey[:15]}, false},
		{"16 bytes", [][]byte{testKey[:16]}, true},
		{"the longest", [][]byte{make([]byte, MaxKeyLen)}, true},
		{"huge", [][]byte{make([]byte, MaxKeyLen+1)}, false},
	} {
		if err := CheckKeys(tt.keys); (err == nil) != tt.ok {
			t.Errorf("%s: CheckKeys = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	// The error names the bad key as the key file counts: from 1.
	if err := CheckKeys([][]byte{testKey, testKey[:15]}); !errors.Is(err, ErrKeys) || !strings.Contains(err.Error(), "key 2 has 15 bytes") {
		t.Errorf("CheckKeys with a short second key = %v; want %v naming key 2", err, ErrKeys)
	}
	if m, err := NewMAC(nil); m != nil || err != nil {
		t.Errorf("NewMAC(nil) = %v, %v; want no MAC and no error", m, err)
	}
}

// TestVerifyAllocs pins down that the per-packet path does not allocate.
func TestVerifyAllocs(t *testing.T) {
	m, _ := NewMAC([][]byte{otherKey, testKey})
	b := signed(t, [][]byte{testKey}, testPacket())
	if n := testing.AllocsPerRun(100, func() {
		if m.Verify(b) != nil || m.Sign(b) != nil {
			t.Fatal("verify or sign failed")
		}
	}); n != 0 {
		t.Errorf("Verify+Sign allocate %v times a packet, want 0", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, tt := range []struct {
		name string
		keys [][]byte
	}{
		{"first key", [][]byte{testKey, nextKey}},
		{"second key", [][]byte{nextKey, testKey}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			m, _ := NewMAC(tt.keys)
			in := signed(b, [][]byte{testKey}, testPacket())
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Verify(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzVerify feeds arbitrary bytes to the keyed receive path: decode, then
// verify. Neither may panic; whatever verifies must re-encode to the same
// bytes, and re-signing it must give the same tag.
func FuzzVerify(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(signed(f, [][]byte{testKey}, p))
	}
	m, _ := NewMAC([][]byte{testKey})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if p.Decode(b) != nil || m.Verify(b) != nil {
			return
		}
		out, err := p.Append(nil)
		if err != nil {
			t.Fatalf("Append of a verified packet: %v", err)
		}
		want := bytes.Clone(b)
		want[flagsOff] &= FlagAuth | FlagV2
		if b[4] == Version2 {
			want[flagsOff] &= FlagAuth // implied by the version
		}
		if !bytes.Equal(out, want) {
			// Reserved flag bits are covered by the tag, so a packet that
			// verifies with them set no longer does once they are cleared.
			if m.Verify(out) == nil {
				t.Fatalf("re-encoded\n% x\nwant\n% x", out, want)
			}
			return
		}
		if err := m.Sign(out); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-signed %v\n% x\nwant\n% x", err, out, b)
		}
	})
}

// seedPackets are what faild really sends: INQs and ACKs of requestors and
// responders with two and more LANs.
func seedPackets() []Packet {
	two := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("198.51.100.1/24")}
	three := append(append([]netip.Prefix{}, two...), netip.MustParsePrefix("203.0.113.1/24"))
	v6 := append(append([]netip.Prefix{}, two...), netip.MustParsePrefix("2001:db8::1/64"))
	return []Packet{
		{Type: INQ, NodeID: 0xc0000201, BootID: 0x1234abcd, Seq: 1767225600000000001, Interval: time.Second, Addrs: two},
		{Type: ACK, NodeID: 0xc0000202, BootID: 0x5678ef01, Seq: 1767225600000000002, Echo: 1767225600000000001, Interval: 100 * time.Millisecond, Addrs: two},
		{Type: ACK, NodeID: 0xc0000203, BootID: 7, Seq: 42, Echo: 41, Addrs: three},
		{Type: INQ, NodeID: 0xc0000204, BootID: 8, Seq: 1 << 62, Interval: 10 * time.Millisecond, Addrs: v6},
		{Version: Version2, Type: INQ, NodeID: 0xc0000201, BootID: 9, Seq: 1767225600000000003, Interval: time.Second, Addrs: two, V2: true,
			Deaf: []uint32{0xc0000203}, ViewTotal: 3,
			View: []ViewEntry{{Node: 0xc0000202, Known: 3, Heard: 3}, {Node: 0xc0000203, Known: 3, Heard: 2}, {Node: 0xc0000204, Known: 1}}},
		{Type: ACK, NodeID: 0xc0000202, BootID: 10, Seq: 1767225600000000004, Echo: 1767225600000000003, Interval: time.Second, Addrs: two, V2: true},
	}
}

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

// TestSeedCorpus keeps testdata/fuzz in step with the encoder: the seeds are
// real encodes, plain and signed with testKey for FuzzDecode, signed for
// FuzzVerify. Run with -update after a format change.
func TestSeedCorpus(t *testing.T) {
	type seed struct {
		target string
		sign   bool
	}
	for _, s := range []seed{{"FuzzDecode", false}, {"FuzzDecode", true}, {"FuzzVerify", true}} {
		dir := filepath.Join("testdata", "fuzz", s.target)
		for i, p := range seedPackets() {
			b, _ := p.Append(nil)
			name := "seed-" + p.Type.String()
			if s.sign {
				b, name = signed(t, [][]byte{testKey}, p), "seed-signed-"+p.Type.String()
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%d", name, i))
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(file)
			if err != nil || string(got) != content {
				t.Errorf("%s is stale or missing (%v); run go test ./proto -run TestSeedCorpus -update", file, err)
			}
		}
	}
}

func TestAuthenticate(t *testing.T) {
	keyed, _ := NewMAC([][]byte{testKey})
	good := signed(t, [][]byte{testKey}, testPacket())
	bad := signed(t, [][]byte{otherKey}, testPacket())
	plain, _ := (&Packet{Type: INQ, NodeID: 2}).Append(nil)
	tests := []struct {
		name string
		mac  *MAC
		b    []byte
		want int
	}{
		{"keyed, good tag", keyed, good, -1},
		{"keyed, wrong key", keyed, bad, DropAuth},
		{"keyed, no tag", keyed, plain, DropNoTag},
		{"no key, no tag", nil, plain, -1},
		{"no key, signed by a keyed peer", nil, good, DropAuth},
	}
	for _, tt := range tests {
		var p Packet
		if err := p.Decode(tt.b); err != nil {
			t.Fatal(err)
		}
		r := &Receiver{mac: tt.mac, in: p}
		if got := r.authenticate(tt.b); got != tt.want {
			t.Errorf("%s: authenticate = %s, want %s", tt.name, dropName(got), dropName(tt.want))
		}
	}
}

// TestFamilyBound: the tag covers the address family, so a packet signed
// for one family's exchange never verifies on the other's, where its
// sequence number would push a window that counts another series.
func TestFamilyBound(t *testing.T) {
	p := testPacket()
	p.Auth = true
	for _, tt := range []struct {
		name         string
		sign, verify func([][]byte) (*MAC, error)
		want         error
	}{
		{"IPv4 on IPv4", NewMAC, NewMAC, nil},
		{"IPv6 on IPv6", NewMAC6, NewMAC6, nil},
		{"IPv6 replayed to IPv4", NewMAC6, NewMAC, ErrBadTag},
		{"IPv4 replayed to IPv6", NewMAC, NewMAC6, ErrBadTag},
	} {
		s, _ := tt.sign([][]byte{testKey})
		v, _ := tt.verify([][]byte{nextKey, testKey})
		b, _ := p.Append(nil)
		if err := s.Sign(b); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(b); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestExchangeMACFamily: each exchange signs and verifies for its own
// family, so an IPv6 INQ sent to the IPv4 socket is dropped as forged.
func TestExchangeMACFamily(t *testing.T) {
	x4, x6 := testExchange(t), testExchange6(t)
	x4.cfg.Keys, x6.cfg.Keys = [][]byte{testKey}, [][]byte{testKey}
	r4, err := x4.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	r6, err := x6.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	x6.packet(&p, INQ, r6.mac)
	b, _ := encode(&p, r6.mac, nil)
	for _, r := range []*Receiver{r4, r6} {
		if err := r.in.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	if d := r6.authenticate(b); d != -1 {
		t.Errorf("IPv6 exchange drops its own family's INQ: %s", dropName(d))
	}
	if d := r4.authenticate(b); d != DropAuth {
		t.Errorf("IPv4 exchange on an IPv6 INQ: %s, want %s", dropName(d), DropNames[DropAuth])
	}
}
