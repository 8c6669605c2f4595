package test

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// embedded are the CPUs the mixed-architecture lab runs besides this
// machine's own, each under qemu-user. The big-endian builds (mips,
// mips64, s390x) cannot run this way: qemu 7.2's netlink translation
// fails even Go's net.Interfaces() with "invalid argument" on them, so
// only their codec tests and vet cover them.
var embedded = []struct {
	name, goarch, goarm, qemu string
}{
	{"armv7", "arm", "7", "qemu-arm-static"},
	{"arm64", "arm64", "", "qemu-aarch64-static"},
	{"mipsle", "mipsle", "", "qemu-mipsel-static"},
	{"riscv64", "riscv64", "", "qemu-riscv64-static"},
}

// TestMixedArch runs one node per CPU, this machine's own faild and the
// cross-built ones under qemu-user, all against each other at -t 0.1
// -f 3: each node in turn loses LAN A at its switch port, every node
// fails over around it and back, whatever CPU either end has.
func TestMixedArch(t *testing.T) {
	lab.RequireEnv(t)
	var missing []string
	for _, e := range embedded {
		if e.goarch == runtime.GOARCH {
			continue
		}
		if _, err := exec.LookPath(e.qemu); err != nil {
			missing = append(missing, e.qemu)
		}
	}
	if len(missing) > 0 {
		t.Skipf("needs %s (package qemu-user-static; .ci/deps test installs it as root)", strings.Join(missing, ", "))
	}
	native := sharedBin(t)
	// Cross builds in parallel: they are most of this test's time.
	bins := make([]string, len(embedded))
	errs := make([]error, len(embedded))
	dir := t.TempDir()
	var wg sync.WaitGroup
	buildStart := time.Now()
	for i, e := range embedded {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bins[i], errs[i] = lab.BuildCross(dir, e.goarch, e.goarm)
		}()
	}
	wg.Wait()
	t.Logf("cross builds took %v", ms(time.Since(buildStart)))
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	l := lab.ForTest(t, lab.Options{Nodes: 1 + len(embedded), Bin: native})
	b := newBudget(t, 3*time.Minute)
	arch := map[*lab.Node]string{l.Node(1): runtime.GOARCH}
	for i, e := range embedded {
		n := l.Node(2 + i)
		arch[n] = e.name
		if e.goarch == runtime.GOARCH {
			n.SetBinary(bins[i])
		} else {
			n.SetBinary(bins[i], e.qemu)
		}
	}
	// Emulated CPUs start slowly: give discovery its time.
	startAll(t, b, l, requestor(slices.Concat(fast, []string{"-i", "eth0", "-i", "eth1"})...))
	for _, n := range l.Nodes {
		if v := lab.Find(n.Events(), "msg", "start"); len(v) == 0 {
			t.Fatalf("%v (%s): no start event", n, arch[n])
		}
	}

	// The promise at -t 0.1 -f 3 plus room for emulation and a busy
	// machine; the benchmarks own the figures.
	const limit = 3 * time.Second
	for _, cut := range l.Nodes {
		around := isolatedOnA(l, cut)
		at := time.Now()
		must(t, l.CutPort(lab.A, cut.ID, lab.Both))
		took := failedOver(t, b, at, limit, around)
		healed := time.Now()
		must(t, l.Heal())
		back := switchedBack(t, b, healed, limit, around)
		t.Logf("LAN A cut at %v (%s): every node failed over in %v, switched back in %v",
			cut, arch[cut], ms(took), ms(back))
		record(t, fmt.Sprintf("mixed_arch_failover_%s", arch[cut]), ms(took))
	}
	stopAll(t, l)
}
