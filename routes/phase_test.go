package routes

import (
	"net/netip"
	"testing"
	"time"
)

// heardINQ has the table hear an INQ from peer id (192.0.2.id on LAN A)
// at its interval iv, at.
func heardINQ(tab *Table, id byte, iv time.Duration, at time.Time) {
	a := netip.AddrFrom4([4]byte{192, 0, 2, id})
	tab.Observe(Observation{Peer: PeerID(0xc0000200 | uint32(id)), LAN: 0, Addrs: []netip.Addr{a, {}}, Interval: iv, At: at}, nil)
}

// TestPlace: a requestor's next INQ moves early, to r/n of an interval
// after the INQs of the requestor with the highest id, where r of the n
// requestors that count have higher ids than ours; the highest keeps its
// time, and so does one within an eighth of an interval of its place, or
// held after a move. Peers at another interval, or not heard for two of
// our intervals, do not count.
func TestPlace(t *testing.T) {
	iv := 100 * time.Millisecond
	type heard struct {
		id byte
		iv time.Duration
		at int
	}
	for _, tt := range []struct {
		name  string
		self  byte
		peers []heard
		due   int // now is an interval before it
		want  time.Duration
	}{
		{"alone", 5, nil, 1100, 1100 * time.Millisecond},
		{"highest", 5, []heard{{4, iv, 930}}, 1100, 1100 * time.Millisecond},
		{"pair", 5, []heard{{6, iv, 930}}, 1100, 1080 * time.Millisecond},
		{"pair, placed", 5, []heard{{6, iv, 950}}, 1100, 1100 * time.Millisecond},
		{"pair, within an eighth", 5, []heard{{6, iv, 940}}, 1100, 1100 * time.Millisecond},
		{"pair, an eighth early", 5, []heard{{6, iv, 960}}, 1100, 1100 * time.Millisecond},
		{"pair, just over", 5, []heard{{6, iv, 937}}, 1100, 1087 * time.Millisecond},
		{"pair, anchor before", 5, []heard{{6, iv, 999}}, 1100, 1049 * time.Millisecond},
		{"lowest of three", 1, []heard{{6, iv, 900}, {3, iv, 960}}, 1100, 900*time.Millisecond + 2*iv/3 + iv},
		{"middle of three", 3, []heard{{6, iv, 930}, {1, iv, 960}}, 1100, 930*time.Millisecond + iv/3 + iv},
		{"another interval", 5, []heard{{6, 2 * iv, 930}}, 1100, 1100 * time.Millisecond},
		{"another interval, not counted", 1, []heard{{6, iv, 930}, {3, 2 * iv, 960}}, 1100, 1080 * time.Millisecond},
		{"silent", 5, []heard{{6, iv, 800}}, 1100, 1100 * time.Millisecond},
		{"just heard", 5, []heard{{6, iv, 801}}, 1100, 1051 * time.Millisecond},
	} {
		tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, Self: PeerID(0xc0000200 | uint32(tt.self))})
		for _, h := range tt.peers {
			heardINQ(tab, h.id, h.iv, ms(h.at))
		}
		if got := tab.Place(ms(tt.due), ms(tt.due-100)); got.Sub(t0) != tt.want {
			t.Errorf("%s: INQ at %v, want %v", tt.name, got.Sub(t0), tt.want)
		}
	}
}

// TestPlaceHolds: after a move, the INQs stay where they are for
// placeHold intervals, however far off they are; then they move again.
func TestPlaceHolds(t *testing.T) {
	iv := 100 * time.Millisecond
	tab := New(Config{LANs: 2, Interval: iv, Misses: 3, Successes: 3, Self: PeerID(0xc0000205)})
	heardINQ(tab, 6, iv, t0.Add(930*time.Millisecond))
	now := t0.Add(time.Second)
	if got, want := tab.Place(now.Add(iv), now), now.Add(80*time.Millisecond); !got.Equal(want) {
		t.Fatalf("first move to %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	// The anchor moved meanwhile: we are off again.
	last := now.Add(placeHold*iv - iv)
	heardINQ(tab, 6, iv, last.Add(-20*time.Millisecond))
	if due := last.Add(iv); !tab.Place(due, last).Equal(due) {
		t.Errorf("moved again %v after the first", last.Sub(now))
	}
	last = now.Add(placeHold * iv)
	heardINQ(tab, 6, iv, last.Add(-20*time.Millisecond))
	if due, want := last.Add(iv), last.Add(30*time.Millisecond); !tab.Place(due, last).Equal(want) {
		t.Errorf("after the hold: INQ at %v, want %v", tab.Place(due, last).Sub(t0), want.Sub(t0))
	}
}

// TestShortenedInterval: INQs sent before one sent early are spaced at
// our interval back from the last of them, not from the newest: spaced
// from the newest they would seem to have gone earlier than they did and
// expire before their ACKs could come. At -f 2, with INQs 11 and 12 sent
// at 1.0 s and 1.1 s unanswered and 13 early at 1.13 s, the path goes
// silent when 12's slot expires, at 1.105 s, not at 1.035 s.
func TestShortenedInterval(t *testing.T) {
	tab := answered(2, 10)
	tab.Sent(0, 11, ms(1000))
	tab.Sent(0, 12, ms(1100))
	tab.Sent(0, 13, ms(1130))
	p := tab.peers[peerID]
	if got, want := tab.silentAt(p, p.paths[0], 0, ms(1130)), ms(1105); !got.Equal(want) {
		t.Errorf("silent at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	// Once the ACKs passed the early INQ, the INQs after it are spaced
	// from the newest as usual.
	tab.Observe(Observation{Peer: peerID, LAN: 0, Addrs: peerAddrs[:2], RTT: time.Millisecond, INQ: 13, At: ms(1131)}, nil)
	tab.Sent(0, 14, ms(1230))
	tab.Sent(0, 15, ms(1330))
	if got, want := tab.silentAt(p, p.paths[0], 0, ms(1330)), ms(1335); !got.Equal(want) {
		t.Errorf("after: silent at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}
