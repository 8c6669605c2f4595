package main

import "testing"

func TestSoftirqSamples(t *testing.T) {
	script := []byte(`	ffffffff81a0 fib6_node_lookup_1
	ffffffff81b0 handle_softirqs
	ffffffff81c0 __sys_sendmmsg
	4a1b20 github.com/faild/faild/proto.(*batch).call

	ffffffff81d0 udpv6_sendmsg
	ffffffff81c0 __sys_sendmmsg

	4a1b30 github.com/faild/faild/routes.(*Table).Observe

	ffffffff81e0 br_handle_frame
	ffffffff81f0 __do_softirq
`)
	in, all := softirqSamples(script)
	if in != 2 || all != 4 {
		t.Fatalf("softirqSamples = %d of %d, want 2 of 4", in, all)
	}
}
