package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FlowInterval is how often a flow sends a message.
const FlowInterval = 10 * time.Millisecond

// flowPort hands each flow its own port, well away from faild's 4117.
var flowPort atomic.Int32

func init() { flowPort.Store(7000) }

// Flow is an echo conversation from one node to a lab address: the client
// sends an 8-byte sequence number every FlowInterval, the server echoes it,
// and the client records the gaps between echoes. It shows what an
// application sees while faild moves routes under it.
type Flow struct {
	Network string // "tcp" or "udp"
	From    *Node
	To      *Node  // owner of Dst
	Dst     string // the address the client talks to

	conn   net.Conn  // client socket, in From's namespace
	server io.Closer // listener or packet conn, in To's namespace
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	sent    int
	echoed  int
	last    time.Time // last echo, or start
	maxGap  time.Duration
	err     error
	stopped time.Time
}

// FlowStats is a snapshot of a flow.
type FlowStats struct {
	Sent, Echoed int
	// MaxGap is the longest time without an echo so far, counting the
	// current one while the flow runs and the wait for the first echo.
	MaxGap time.Duration
	// LastEcho is when the latest echo came back (zero if none).
	LastEcho time.Time
	// Err is the first error that ended the flow, if any.
	Err error
}

func (s FlowStats) String() string {
	return fmt.Sprintf("sent %d, echoed %d, longest gap %v, err %v", s.Sent, s.Echoed, s.MaxGap.Round(time.Millisecond), s.Err)
}

// StartFlow starts an echo flow over network ("tcp" or "udp") from node
// from to dst, which must be a lab address; its owner runs the server,
// bound to dst so replies come from dst whatever route they take.
func (l *Lab) StartFlow(network string, from int, dst string) (*Flow, error) {
	if network != "tcp" && network != "udp" {
		return nil, fmt.Errorf("failed to start flow: network %q, want tcp or udp", network)
	}
	if from < 1 || from > len(l.Nodes) {
		return nil, fmt.Errorf("failed to start flow: no node %d", from)
	}
	to, err := l.owner(dst)
	if err != nil {
		return nil, err
	}
	f := &Flow{Network: network, From: l.Node(from), To: to, Dst: dst, stop: make(chan struct{})}
	addr := net.JoinHostPort(dst, strconv.Itoa(int(flowPort.Add(1))))
	if err := f.open(addr); err != nil {
		if f.server != nil {
			f.server.Close()
		}
		return nil, err
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.flows = append(l.flows, f)
	}
	l.mu.Unlock()
	if closed {
		f.Stop()
		return nil, errors.New("failed to start flow: lab is closed")
	}
	f.last = time.Now()
	f.wg.Add(2)
	go f.send()
	go f.receive()
	return f, nil
}

// owner finds the node that has addr.
func (l *Lab) owner(addr string) (*Node, error) {
	for _, n := range l.Nodes {
		for _, lan := range l.lans {
			if n.Addr(lan) == addr || n.Addr6(lan) == addr {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("failed to start flow: %s is no lab address", addr)
}

func (f *Flow) open(addr string) error {
	var err error
	switch f.Network {
	case "tcp":
		var ln net.Listener
		err = inNS(f.To.NS, func() (err error) {
			ln, err = net.Listen("tcp", addr)
			return err
		})
		if err != nil {
			return fmt.Errorf("failed to listen on %s in %s: %w", addr, f.To, err)
		}
		f.server = ln
		f.wg.Add(1)
		go f.serveTCP(ln)
	case "udp":
		var pc net.PacketConn
		err = inNS(f.To.NS, func() (err error) {
			pc, err = net.ListenPacket("udp", addr)
			return err
		})
		if err != nil {
			return fmt.Errorf("failed to listen on %s in %s: %w", addr, f.To, err)
		}
		f.server = pc
		f.wg.Add(1)
		go f.serveUDP(pc)
	}
	err = inNS(f.From.NS, func() (err error) {
		f.conn, err = net.DialTimeout(f.Network, addr, 2*time.Second)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to connect from %s to %s: %w", f.From, addr, err)
	}
	return nil
}

func (f *Flow) serveTCP(ln net.Listener) {
	defer f.wg.Done()
	c, err := ln.Accept()
	if err != nil {
		return
	}
	go func() { <-f.stop; c.Close() }()
	_, _ = io.Copy(c, c)
}

func (f *Flow) serveUDP(pc net.PacketConn) {
	defer f.wg.Done()
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

func (f *Flow) send() {
	defer f.wg.Done()
	t := time.NewTicker(FlowInterval)
	defer t.Stop()
	var msg [8]byte
	for seq := uint64(1); ; seq++ {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		binary.BigEndian.PutUint64(msg[:], seq)
		_ = f.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := f.conn.Write(msg[:])
		f.mu.Lock()
		f.sent++
		f.mu.Unlock()
		// A UDP write fails when an ICMP error came back; that is a lost
		// message, not the end of the flow. A TCP write error is the end.
		if err != nil && f.Network == "tcp" {
			select {
			case <-f.stop: // Stop closed the socket under us
			default:
				f.fail(fmt.Errorf("failed to send: %w", err))
			}
			return
		}
	}
}

func (f *Flow) receive() {
	defer f.wg.Done()
	buf := make([]byte, 64)
	for {
		var err error
		if f.Network == "tcp" {
			_, err = io.ReadFull(f.conn, buf[:8])
		} else {
			_, err = f.conn.Read(buf)
		}
		now := time.Now()
		if err != nil {
			select {
			case <-f.stop:
				return
			default:
			}
			if f.Network == "udp" && !errors.Is(err, net.ErrClosed) {
				continue // ICMP error on a connected UDP socket
			}
			f.fail(fmt.Errorf("failed to receive: %w", err))
			return
		}
		f.mu.Lock()
		if g := now.Sub(f.last); g > f.maxGap {
			f.maxGap = g
		}
		f.last = now
		f.echoed++
		f.mu.Unlock()
	}
}

func (f *Flow) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// Stats returns the flow's figures so far.
func (f *Flow) Stats() FlowStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.stopped
	if end.IsZero() {
		end = time.Now()
	}
	s := FlowStats{Sent: f.sent, Echoed: f.echoed, MaxGap: f.maxGap, Err: f.err}
	if g := end.Sub(f.last); g > s.MaxGap {
		s.MaxGap = g
	}
	if f.echoed > 0 {
		s.LastEcho = f.last
	}
	return s
}

// Stop ends the flow, closes its sockets and returns the final figures.
// It is safe to call more than once.
func (f *Flow) Stop() FlowStats {
	f.mu.Lock()
	first := f.stopped.IsZero()
	if first {
		f.stopped = time.Now()
	}
	f.mu.Unlock()
	if first {
		close(f.stop)
		f.conn.Close()
		f.server.Close()
		done := make(chan struct{})
		go func() { f.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			f.fail(errors.New("flow goroutines did not end within 5s of Stop"))
		}
	}
	return f.Stats()
}
