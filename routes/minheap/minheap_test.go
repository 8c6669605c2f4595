package minheap

import "testing"

// TestOrder pushes and pops in a mixed order and checks that every pop is
// the least element left, and that a popped slot holds nothing.
func TestOrder(t *testing.T) {
	less := func(a, b *int) bool { return *a < *b }
	var h []*int
	var want []int
	x := uint32(1)
	popMin := func() {
		least := 0
		for i, w := range want {
			if w < want[least] {
				least = i
			}
		}
		if got := *Pop(&h, less); got != want[least] {
			t.Fatalf("Pop = %d, want the least, %d (of %v)", got, want[least], want)
		}
		if h[:len(h)+1][len(h)] != nil {
			t.Fatal("the popped slot still points at an element")
		}
		want = append(want[:least], want[least+1:]...)
	}
	for i := range 500 {
		x = x*1664525 + 1013904223 // an LCG: the same order every run
		v := int(x >> 22)
		Push(&h, &v, less)
		want = append(want, v)
		if i%3 == 2 {
			popMin()
		}
	}
	for len(want) > 0 {
		popMin()
	}
	if len(h) != 0 {
		t.Fatalf("%d elements left", len(h))
	}
}
