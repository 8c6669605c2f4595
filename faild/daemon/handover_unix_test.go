//go:build unix

package daemon

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/faild/faild/platform"
	"github.com/faild/faild/proto"
)

// TestRunHandover: SIGUSR2 ends Run, every task of it, with the routes
// kept; a new daemon on the same kernel adopts them and never lets them go
// while the cut lasts; SIGTERM's way (the context) then removes them.
func TestRunHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := &chanNet{}
		kernels := []*platform.Memory{platform.NewMemory(), platform.NewMemory()}
		newDaemon := func(id int) (*Daemon, chan os.Signal) {
			lans := []platform.LAN{
				{Name: "e0", Index: 2, Addr: netip.PrefixFrom(simAddr(id, 0, false), 24), Broadcast: simAddr(255, 0, false), Up: true},
				{Name: "e1", Index: 3, Addr: netip.PrefixFrom(simAddr(id, 1, false), 24), Broadcast: simAddr(255, 1, false), Up: true},
			}
			sigs := make(chan os.Signal, 1)
			d, err := New(Config{Requestor: true, Interval: 100 * time.Millisecond, Misses: 3, Successes: 3, Port: 4117,
				Interfaces: []string{"e0", "e1"}, MaxPeers: 256, DampMax: 16},
				Deps{Routes: kernels[id-1], Interfaces: fakeInterfaces{"e0": lans[0], "e1": lans[1]}, Signals: sigs,
					Listen: func(int, bool) (proto.Conn, error) { return net.conn(id), nil }})
			if err != nil {
				t.Fatal(err)
			}
			return d, sigs
		}
		run := func(d *Daemon, ctx context.Context) chan error {
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			return done
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d1, sigs := newDaemon(1)
		d2, _ := newDaemon(2)
		done1, done2 := run(d1, ctx), run(d2, ctx)
		time.Sleep(time.Second)
		net.cut(1, 2, 0, true)
		time.Sleep(time.Second)
		want := kernels[0].Ours()
		if len(want) != 1 {
			t.Fatalf("routes %v after the cut, want one", want)
		}
		deleted := 0
		kernels[0].Subscribe(func(c platform.RouteChange) {
			if c.Deleted {
				deleted++
			}
		})
		sigs <- syscall.SIGUSR2
		select {
		case err := <-done1:
			if err != nil {
				t.Fatalf("Run after SIGUSR2 = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of SIGUSR2")
		}
		if got := kernels[0].Ours(); !slices.Equal(got, want) {
			t.Fatalf("routes %v after SIGUSR2, want %v kept", got, want)
		}
		d1, _ = newDaemon(1)
		ctx1, cancel1 := context.WithCancel(ctx)
		done1 = run(d1, ctx1)
		time.Sleep(2 * time.Second)
		if got := kernels[0].Ours(); deleted != 0 || !slices.Equal(got, want) {
			t.Errorf("after the restart: %d deletions, routes %v; want none, %v", deleted, got, want)
		}
		cancel1()
		if err := <-done1; err != nil || len(kernels[0].Ours()) != 0 {
			t.Errorf("Run = %v, routes %v after the stop; want nil, none", err, kernels[0].Ours())
		}
		cancel()
		<-done2
	})
}
