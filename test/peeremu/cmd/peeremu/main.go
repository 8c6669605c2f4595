// Command peeremu runs package peeremu: many fake faild peers on two LANs
// from one process. Run it inside a lab namespace, as root; it prints its
// counters on SIGTERM or SIGINT, and goes on after printing them on SIGUSR1.
// With -6 the LANs are 2001:db8:a::/64 and 2001:db8:b::/64 and the fake
// peers 2001:db8:a::1:0:0:1 and up (as the lab's IPv6 LANs are).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/faild/faild/test/peeremu"
)

func main() {
	var cfg peeremu.Config
	var a, b, ia, ib string
	var v6 bool
	flag.BoolVar(&v6, "6", false, "IPv6 LANs: changes the defaults of -a, -b and -first")
	flag.IntVar(&cfg.Peers, "n", 10, "number of fake peers")
	flag.IntVar(&cfg.First, "first", 10, "host number of the first fake peer in each subnet (-6: 65536, ::1:0:0:1)")
	flag.DurationVar(&cfg.Interval, "t", time.Second, "INQ interval of every fake peer")
	flag.IntVar(&cfg.Port, "p", 4117, "faild's UDP port")
	flag.StringVar(&a, "a", "192.0.2.0/24", "LAN A subnet")
	flag.StringVar(&b, "b", "198.51.100.0/24", "LAN B subnet")
	flag.StringVar(&ia, "ia", "eth0", "LAN A interface")
	flag.StringVar(&ib, "ib", "eth1", "LAN B interface")
	flag.Parse()
	if v6 {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, def := range map[string]*string{"a": &a, "b": &b} {
			if !set[name] {
				*def = map[string]string{"a": "2001:db8:a::/64", "b": "2001:db8:b::/64"}[name]
			}
		}
		if !set["first"] {
			cfg.First = peeremu.FirstV6
		}
	}
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "peeremu: failed to parse subnets: %v %v\n", err1, err2)
		os.Exit(2)
	}
	cfg.LANs = [2]peeremu.LAN{{Iface: ia, Prefix: pa}, {Iface: ib, Prefix: pb}}
	e, err := peeremu.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peeremu: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			fmt.Println(e.Stats.String())
		}
	}()
	fmt.Println("ready")
	if err := e.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "peeremu: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(e.Stats.String())
}
