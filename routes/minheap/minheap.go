// Package minheap is a binary min-heap kept in a slice. It is typed,
// where container/heap takes its elements as interfaces and so allocates
// for each one pushed: the path table's expiry queue is pushed for every
// packet that moves a deadline, and the simulated cluster's event queue
// for every event.
package minheap

// Push adds x to the heap h ordered by less.
func Push[T any](h *[]T, x T, less func(a, b T) bool) {
	s := append(*h, x)
	for i := len(s) - 1; i > 0; {
		up := (i - 1) / 2
		if !less(s[i], s[up]) {
			break
		}
		s[i], s[up] = s[up], s[i]
		i = up
	}
	*h = s
}

// Pop removes and returns the least element of the heap h ordered by
// less; h must not be empty. The slot it leaves is zeroed, so that the
// slice holds no pointer to what was popped.
func Pop[T any](h *[]T, less func(a, b T) bool) T {
	s := *h
	top, n := s[0], len(s)-1
	s[0] = s[n]
	var zero T
	s[n] = zero
	s = s[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && less(s[l], s[least]) {
			least = l
		}
		if r < n && less(s[r], s[least]) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}
