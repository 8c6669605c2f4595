package main

import "testing"

// TestCountSamples: a sample with a softirq anywhere in its chain is the
// softirq's; of the rest, one whose innermost frame is a kernel address is
// the kernel's, one in user space (short addresses, as perf prints them)
// is neither.
func TestCountSamples(t *testing.T) {
	script := []byte(`	ffffffff81369741 fib6_node_lookup_1
	ffffffff81369742 handle_softirqs
	ffffffff81c00000 __sys_sendmmsg
	          4a1b20 github.com/faild/faild/proto.(*batch).call

	ffffffff81d00000 udpv6_sendmsg
	ffffffff81c00000 __sys_sendmmsg
	          4a1b20 github.com/faild/faild/proto.(*batch).call

	          4a1b30 github.com/faild/faild/routes.(*Table).Observe

	ffffffff81e00000 br_handle_frame
	ffffffff81f00000 __do_softirq
	          58cd0 runtime.schedule
`)
	want := sampleCounts{all: 4, softirq: 2, kernel: 1}
	if got := countSamples(script); got != want {
		t.Fatalf("countSamples = %+v, want %+v", got, want)
	}
}
