package proto

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func hdr(typ, naddr byte) []byte {
	return []byte{
		'f', 'a', 'l', 'd', 1, typ, 0, naddr,
		0xc0, 0x00, 0x02, 0x01, // node id 192.0.2.1
		0xde, 0xad, 0xbe, 0xef, // boot id
		0, 0, 0, 0, 0, 0, 0, 7, // seq
		0, 0, 0, 0, 0, 0, 0, 0, // echo
		0, 0x01, 0x86, 0xa0, // 100000 µs
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// hdr2 is hdr for a version-2 INQ.
func hdr2(naddr byte) []byte {
	b := hdr(1, naddr)
	b[4] = 2
	return b
}

// TestCodec checks bytes->struct and struct->bytes from one table.
func TestCodec(t *testing.T) {
	base := Packet{Version: 1, Type: INQ, NodeID: 0xc0000201, BootID: 0xdeadbeef, Seq: 7, Interval: 100 * time.Millisecond}
	withAddrs := base
	withAddrs.Addrs = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"),
		netip.MustParsePrefix("2001:db8:b::1/64"),
	}
	ack := base
	ack.Type, ack.Echo, ack.Interval = ACK, 0x0102030405060708, 0
	deaf := base
	deaf.Deaf = []uint32{0xc0000202, 0xc0000203}
	flagged := ack
	flagged.V2 = true
	two := Packet{Version: 2, Type: INQ, NodeID: 0xc0000201, BootID: 0xdeadbeef, Seq: 7, Interval: 100 * time.Millisecond, V2: true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("198.51.100.1/24")},
		Deaf:  []uint32{0xc0000203}, ViewTotal: 3, ViewOffset: 0,
		View: []ViewEntry{{Node: 0xc0000202, Known: 3, Heard: 3}, {Node: 0xc0000203, Known: 3, Heard: 2}, {Node: 0xc0000204, Known: 2, Heard: 0}}}
	window := two
	window.Deaf, window.ViewTotal, window.ViewOffset = nil, 1000, 200
	window.View = []ViewEntry{{Node: 0xc0000301, Known: 1, Heard: 1}}
	empty := two
	empty.Addrs, empty.Deaf, empty.ViewTotal, empty.View = nil, nil, 0, nil
	nine := empty // more LANs than a view speaks of: fine while it lists nobody
	for range 9 {
		nine.Addrs = append(nine.Addrs, netip.MustParsePrefix("192.0.2.1/24"))
	}
	five := two
	five.Deaf, five.ViewTotal = nil, 1
	five.Addrs = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("198.51.100.1/24"),
		netip.MustParsePrefix("203.0.113.1/26"), netip.MustParsePrefix("203.0.113.65/26"), netip.MustParsePrefix("203.0.113.129/26")}
	five.View = []ViewEntry{{Node: 0xc0000202, Known: 0x1f, Heard: 0x15, Lossy: 0x10}}

	tests := []struct {
		name  string
		bytes []byte
		pkt   Packet
	}{
		{"INQ without addresses", cat(hdr(1, 0), []byte{0}), base},
		{"INQ with IPv4 and IPv6", cat(hdr(1, 2),
			[]byte{4, 24, 192, 0, 2, 1},
			[]byte{6, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
			[]byte{0}), withAddrs},
		{"INQ with a deaf list", cat(hdr(1, 0), []byte{2, 0xc0, 0, 2, 2, 0xc0, 0, 2, 3}), deaf},
		{"ACK", func() []byte {
			b := hdr(2, 0)
			copy(b[24:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
			copy(b[32:], []byte{0, 0, 0, 0})
			return cat(b, []byte{0})
		}(), ack},
		{"ACK of a node that reads version 2", func() []byte {
			b := hdr(2, 0)
			b[6] = FlagV2
			copy(b[24:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
			copy(b[32:], []byte{0, 0, 0, 0})
			return cat(b, []byte{0})
		}(), flagged},
		// Heard on both LANs, heard on B only (01 10 -> 0b1001), known on B only (0b0010).
		{"version 2: the whole view", cat(hdr2(2), []byte{4, 24, 192, 0, 2, 1}, []byte{4, 24, 198, 51, 100, 1},
			[]byte{1, 0xc0, 0, 2, 3},
			[]byte{0, 3, 0, 0, 3},
			[]byte{0xc0, 0, 2, 2, 0b0101_0000}, []byte{0xc0, 0, 2, 3, 0b1001_0000}, []byte{0xc0, 0, 2, 4, 0b0010_0000}), two},
		{"version 2: one window of a large view", cat(hdr2(2), []byte{4, 24, 192, 0, 2, 1}, []byte{4, 24, 198, 51, 100, 1},
			[]byte{0}, []byte{0x03, 0xe8, 0, 200, 1}, []byte{0xc0, 0, 3, 1, 0b0100_0000}), window},
		{"version 2: nobody known", cat(hdr2(0), []byte{0}, []byte{0, 0, 0, 0, 0}), empty},
		{"version 2: nine LANs, nobody known", cat(hdr2(9), bytes.Repeat([]byte{4, 24, 192, 0, 2, 1}, 9),
			[]byte{0}, []byte{0, 0, 0, 0, 0}), nine},
		{"version 2: five LANs take two bytes", cat(hdr2(5), []byte{4, 24, 192, 0, 2, 1}, []byte{4, 24, 198, 51, 100, 1},
			[]byte{4, 26, 203, 0, 113, 1}, []byte{4, 26, 203, 0, 113, 65}, []byte{4, 26, 203, 0, 113, 129},
			[]byte{0}, []byte{0, 1, 0, 0, 1}, []byte{0xc0, 0, 2, 2, 0b0110_0110, 0b1100_0000}), five},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Packet
			if err := got.Decode(tt.bytes); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(got.Addrs) == 0 {
				got.Addrs = nil
			}
			if len(got.Deaf) == 0 {
				got.Deaf = nil
			}
			if len(got.View) == 0 {
				got.View = nil
			}
			if !reflect.DeepEqual(got, tt.pkt) {
				t.Errorf("Decode (-want +got):\n- %+v\n+ %+v", tt.pkt, got)
			}
			b, err := tt.pkt.Append(nil)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(b, tt.bytes) {
				t.Errorf("Append (-want +got):\n- % x\n+ % x", tt.bytes, b)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	badMagic := hdr(1, 0)
	badMagic[0] = 'x'
	badVersion := hdr(1, 0)
	badVersion[4] = 9
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"one short of a header", hdr(1, 0)[:HeaderLen-1], ErrShort},
		{"magic", badMagic, ErrMagic},
		{"version", badVersion, ErrVersion},
		{"type 0", hdr(0, 0), ErrType},
		{"type 3", hdr(3, 0), ErrType},
		{"too many addresses", hdr(1, MaxAddrs+1), ErrAddrs},
		{"entry missing", hdr(1, 1), ErrShort},
		{"entry truncated v4", cat(hdr(1, 1), []byte{4, 24, 192, 0, 2}), ErrShort},
		{"entry truncated v6", cat(hdr(1, 1), []byte{6, 64, 0x20, 0x01}), ErrShort},
		{"family 5", cat(hdr(1, 1), []byte{5, 24, 192, 0, 2, 1}), ErrAddrs},
		{"family 5 in an entry cut short", cat(hdr(1, 1), []byte{5, 24}), ErrAddrs},
		{"prefix 33", cat(hdr(1, 1), []byte{4, 33, 192, 0, 2, 1}), ErrAddrs},
		{"prefix 129", cat(hdr(1, 1), []byte{6, 129, 0x20, 0x01, 0x0d, 0xb8, 0, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0}), ErrAddrs},
		{"no deaf count", hdr(1, 0), ErrShort},
		{"deaf list truncated", cat(hdr(1, 0), []byte{2, 0xc0, 0, 2, 2}), ErrShort},
		{"deaf list in an ACK", cat(hdr(2, 0), []byte{1, 0xc0, 0, 2, 2}), ErrDeaf},
		{"trailing byte", cat(hdr(1, 0), []byte{0, 0}), ErrTrailer},
		{"version 2 ACK", func() []byte { b := hdr(2, 0); b[4] = 2; return cat(b, []byte{0}) }(), ErrVersion},
		{"version 2 without a view", cat(hdr2(0), []byte{0}), ErrShort},
		{"view header truncated", cat(hdr2(0), []byte{0, 0, 0, 0}), ErrShort},
		{"view truncated", cat(hdr2(1), []byte{4, 24, 192, 0, 2, 1}, []byte{0}, []byte{0, 2, 0, 0, 2}, []byte{0xc0, 0, 2, 2, 0x40}), ErrShort},
		{"view past its total", cat(hdr2(1), []byte{4, 24, 192, 0, 2, 1}, []byte{0}, []byte{0, 1, 0, 1, 1}, []byte{0xc0, 0, 2, 2, 0x40}), ErrView},
		{"view without addresses", cat(hdr2(0), []byte{0}, []byte{0, 1, 0, 0, 1}, []byte{0xc0, 0, 2, 2}), ErrView},
		{"view state for a LAN not listed", cat(hdr2(1), []byte{4, 24, 192, 0, 2, 1}, []byte{0}, []byte{0, 1, 0, 0, 1}, []byte{0xc0, 0, 2, 2, 0x50}), ErrView},
		{"view ids not ascending", cat(hdr2(1), []byte{4, 24, 192, 0, 2, 1}, []byte{0}, []byte{0, 2, 0, 0, 2},
			[]byte{0xc0, 0, 2, 3, 0x40}, []byte{0xc0, 0, 2, 2, 0x40}), ErrView},
		{"view after a version-2 view", cat(hdr2(0), []byte{0}, []byte{0, 0, 0, 0, 0}, []byte{0}), ErrTrailer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.Decode(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want error
	}{
		{"type 0", Packet{Type: 0}, ErrType},
		{"interval past 32 bits of µs", Packet{Type: INQ, Interval: 2 * time.Hour}, ErrInterval},
		{"negative interval", Packet{Type: INQ, Interval: -time.Millisecond}, ErrInterval},
		{"too many addresses", Packet{Type: INQ, Addrs: make([]netip.Prefix, MaxAddrs+1)}, ErrAddrs},
		{"invalid prefix", Packet{Type: INQ, Addrs: []netip.Prefix{{}}}, ErrAddrs},
		{"deaf list in an ACK", Packet{Type: ACK, Deaf: []uint32{1}}, ErrDeaf},
		{"deaf list too long", Packet{Type: INQ, Deaf: make([]uint32, MaxDeaf+1)}, ErrDeaf},
		{"version 3", Packet{Version: 3, Type: INQ}, ErrVersion},
		{"version 2 ACK", Packet{Version: 2, Type: ACK}, ErrVersion},
		{"a view in version 1", Packet{Type: INQ, ViewTotal: 1, View: []ViewEntry{{Node: 1}}}, ErrView},
		{"a view too long", Packet{Version: 2, Type: INQ, ViewTotal: 1000, View: make([]ViewEntry, MaxView+1),
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, ErrView},
		{"a view past its total", Packet{Version: 2, Type: INQ, ViewTotal: 1, ViewOffset: 1, View: []ViewEntry{{Node: 1}},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, ErrView},
		{"a view lossy where not heard", Packet{Version: 2, Type: INQ, ViewTotal: 1, View: []ViewEntry{{Node: 1, Known: 1, Lossy: 1}},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, ErrView},
		{"a view heard where not known", Packet{Version: 2, Type: INQ, ViewTotal: 1, View: []ViewEntry{{Node: 1, Heard: 1}},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, ErrView},
		{"a view of a LAN without an address", Packet{Version: 2, Type: INQ, ViewTotal: 1, View: []ViewEntry{{Node: 1, Known: 2}},
			Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, ErrView},
	}
	for _, tt := range tests {
		_, err := tt.p.Append(nil)
		switch {
		case err == nil:
			t.Errorf("%s: Append succeeded, want an error", tt.name)
		case !errors.Is(err, tt.want):
			t.Errorf("%s: Append error %v, want %v", tt.name, err, tt.want)
		}
	}
	past := Packet{Version: 2, Type: INQ, ViewTotal: 4, ViewOffset: 3, View: []ViewEntry{{Node: 1}, {Node: 2}},
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	if _, err := past.Append(nil); err == nil || !strings.Contains(err.Error(), "entries 3 to 5 of 4") {
		t.Errorf("a view past its total: error %v, want it to name entries 3 to 5 of 4", err)
	}
	// The limits themselves are accepted, and decode back.
	many := make([]netip.Prefix, MaxAddrs)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 32)
	}
	many[0] = netip.MustParsePrefix("2001:db8::1/128")
	for _, p := range []Packet{
		{Type: INQ, Interval: (1<<32 - 1) * time.Microsecond},
		{Type: INQ, Addrs: many},
		{Type: INQ, Deaf: make([]uint32, MaxDeaf)},
	} {
		b, err := p.Append(nil)
		if err != nil {
			t.Errorf("Append at the limits (interval %v, %d addresses, %d deaf): %v", p.Interval, len(p.Addrs), len(p.Deaf), err)
			continue
		}
		var got Packet
		if err := got.Decode(b); err != nil || got.Interval != p.Interval || len(got.Addrs) != len(p.Addrs) || len(got.Deaf) != len(p.Deaf) {
			t.Errorf("Decode at the limits: %v, %+v", err, got)
		}
		if len(p.Addrs) > 0 && (got.Addrs[0] != many[0] || got.Addrs[1] != many[1]) {
			t.Errorf("Decode of /128 and /32 entries: %v, want %v", got.Addrs[:2], many[:2])
		}
	}
	// One past the interval's 32 bits of µs wraps to 0 unless refused.
	if _, err := (&Packet{Type: INQ, Interval: (1 << 32) * time.Microsecond}).Append(nil); err == nil {
		t.Error("Append with an interval of 2^32 µs succeeded")
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// encodes back to the same bytes and decodes to the same packet.
func FuzzDecode(f *testing.F) {
	for _, s := range [][]byte{
		cat(hdr(1, 0), []byte{0}), cat(hdr(2, 0), []byte{0}),
		cat(hdr(1, 2), []byte{4, 24, 192, 0, 2, 1}, []byte{4, 24, 198, 51, 100, 1}, []byte{1, 0xc0, 0, 2, 2}),
		cat(hdr(1, 1), []byte{6, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0}),
		cat(hdr2(2), []byte{4, 24, 192, 0, 2, 1}, []byte{4, 24, 198, 51, 100, 1}, []byte{1, 0xc0, 0, 2, 3},
			[]byte{0, 3, 0, 0, 3}, []byte{0xc0, 0, 2, 2, 0x50}, []byte{0xc0, 0, 2, 3, 0x90}, []byte{0xc0, 0, 2, 4, 0x20}),
		cat(hdr2(0), []byte{0}, []byte{1, 0, 0, 9, 0}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if p.Decode(b) != nil {
			return
		}
		out, err := p.Append(nil)
		if err != nil {
			t.Fatalf("Append of a decoded packet: %v", err)
		}
		// The flags byte is ignored on receipt but for FlagAuth and
		// FlagV2, and the other bits are sent as zero; so is FlagV2 in
		// version 2, which implies it.
		want := bytes.Clone(b)
		want[6] &= FlagAuth | FlagV2
		if b[4] == Version2 {
			want[6] &= FlagAuth
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", out, want)
		}
		var q Packet
		if err := q.Decode(out); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("second decode: %v\n%+v\n%+v", err, p, q)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	in, _ := (&Packet{Type: INQ, NodeID: 1, Seq: 9, Interval: time.Second, Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("198.51.100.1/24")}}).Append(nil)
	var p Packet
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := p.Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
