package routes

// rounds tells the peer's INQs that were lost from those it never sent.
// Each interval a requestor sends one INQ on each of its LANs, one right
// after the other, so the sequence numbers of a round lie a step or two
// apart (an ACK it encodes meanwhile can come between), and two rounds lie
// as far apart as all it sends in an interval. A round heard on another LAN
// but not on this one was lost here; a round heard on none is no loss: a
// peer whose loop was held up sends no INQs for the intervals it missed,
// rather than a burst, and its sequence numbers are shared by all its
// packets, so they cannot count its INQs on one LAN alone. (The time
// between two INQs cannot either: at -t 0.01 on a loaded host, a clean LAN
// read as 15 % lossy that way.) A round lost on every LAN counts on none.
type rounds struct {
	seq [roundRing]uint64 // the first sequence number heard of each of the latest rounds, oldest first
	n   int
	// spacing is the least step between two INQs of the peer's on one
	// LAN: a round is at most half of it wide.
	spacing uint64
}

// roundRing is how many rounds back a gap in one LAN's INQs is counted; a
// longer gap is an outage (see maxRun).
const roundRing = 32

// width is how far apart two INQs of one round may lie.
func (r *rounds) width(lans int) uint64 {
	if r.spacing == 0 {
		return uint64(lans) + 1 // before two INQs on one LAN were heard
	}
	return max(r.spacing/2, 1)
}

// step notes the step between two INQs of the peer's on one LAN.
func (r *rounds) step(d uint64) {
	if r.spacing == 0 || d < r.spacing {
		r.spacing = d
	}
}

// heard notes an INQ of the peer's with sequence number s.
func (r *rounds) heard(s uint64, lans int) {
	w := r.width(lans)
	for i := max(r.n-4, 0); i < r.n; i++ {
		if v := r.at(i); s+w >= v && s <= v+w {
			return // a round heard already
		}
	}
	if r.n > 0 && s < r.at(r.n-1) {
		return // an old round, out of order: too late to tell
	}
	if r.n == roundRing {
		copy(r.seq[:], r.seq[1:])
		r.n--
	}
	r.seq[r.n] = s
	r.n++
}

func (r *rounds) at(i int) uint64 { return r.seq[i] }

// between counts the rounds heard strictly between the rounds of a and b
// (a < b), or -1 when the ring no longer reaches back to a's round.
func (r *rounds) between(a, b uint64, lans int) int {
	w := r.width(lans)
	if r.n == 0 || r.at(0) > a+w {
		return -1
	}
	n := 0
	for i := range r.n {
		if v := r.at(i); v > a+w && v+w < b {
			n++
		}
	}
	return n
}
