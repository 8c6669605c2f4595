// Command peeremu runs package peeremu: many fake faild peers on two LANs
// from one process. Run it inside a lab namespace, as root; it prints its
// counters on SIGTERM or SIGINT.
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
	flag.IntVar(&cfg.Peers, "n", 10, "number of fake peers")
	flag.IntVar(&cfg.First, "first", 10, "host number of the first fake peer in each subnet")
	flag.DurationVar(&cfg.Interval, "t", time.Second, "INQ interval of every fake peer")
	flag.IntVar(&cfg.Port, "p", 4117, "faild's UDP port")
	flag.StringVar(&a, "a", "192.0.2.0/24", "LAN A subnet")
	flag.StringVar(&b, "b", "198.51.100.0/24", "LAN B subnet")
	flag.StringVar(&ia, "ia", "eth0", "LAN A interface")
	flag.StringVar(&ib, "ib", "eth1", "LAN B interface")
	flag.Parse()
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
	fmt.Println("ready")
	if err := e.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "peeremu: %v\n", err)
		os.Exit(1)
	}
	s := &e.Stats
	fmt.Printf("inq_sent=%d ack_sent=%d inq_heard=%d ack_heard=%d send_errors=%d\n",
		s.INQsSent.Load(), s.ACKsSent.Load(), s.INQsHeard.Load(), s.ACKsHeard.Load(), s.SendErrors.Load())
}
