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

// Bulk is a TCP transfer from one node to a lab address, paced at a rate
// so that it measures the path rather than the machine's CPU. It shows what
// a lossy LAN does to throughput and what a failover gives back. The
// caller stops it (Lab.Close does not).
type Bulk struct {
	From, To *Node
	Dst      string

	conn   net.Conn
	ln     net.Listener
	stop   chan struct{}
	wg     sync.WaitGroup
	got    atomic.Int64 // bytes the server read
	errMu  sync.Mutex
	err    error
	closed atomic.Bool
}

// bulkBurst is how far behind its pace a Bulk may fall and still catch up:
// after a stall (a lossy path, a failover) it goes on at its pace rather
// than sending all it missed at once, which would hide the stall in the
// average.
const bulkBurst = 20 * time.Millisecond

// StartBulk starts a transfer from node from to dst (a lab address, whose
// owner reads it) at mbps megabits a second, or as fast as it goes with 0.
func (l *Lab) StartBulk(from int, dst string, mbps int) (*Bulk, error) {
	if from < 1 || from > len(l.Nodes) {
		return nil, fmt.Errorf("failed to start bulk transfer: no node %d", from)
	}
	if mbps < 0 {
		return nil, fmt.Errorf("failed to start bulk transfer: %d Mbit/s", mbps)
	}
	to, err := l.owner(dst)
	if err != nil {
		return nil, err
	}
	b := &Bulk{From: l.Node(from), To: to, Dst: dst, stop: make(chan struct{})}
	addr := net.JoinHostPort(dst, strconv.Itoa(int(flowPort.Add(1))))
	if err := inNS(to.NS, func() (err error) {
		b.ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("failed to listen on %s in %s: %w", addr, to, err)
	}
	if err := inNS(b.From.NS, func() (err error) {
		b.conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		b.ln.Close()
		return nil, fmt.Errorf("failed to connect from %s to %s: %w", b.From, addr, err)
	}
	b.wg.Add(2)
	go b.serve()
	go b.send(mbps)
	return b, nil
}

func (b *Bulk) serve() {
	defer b.wg.Done()
	c, err := b.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	go func() { <-b.stop; c.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b.got.Add(int64(n))
		if err != nil {
			return
		}
	}
}

func (b *Bulk) send(mbps int) {
	defer b.wg.Done()
	chunk := make([]byte, 16<<10)
	var next time.Time // when the next byte is due at the pace
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		if mbps > 0 {
			now := time.Now()
			next = later(next, now.Add(-bulkBurst))
			if wait := next.Sub(now); wait > 0 {
				time.Sleep(wait)
			}
		}
		_ = b.conn.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := b.conn.Write(chunk)
		if mbps > 0 {
			// n bytes at mbps Mbit/s take n·8·1000/mbps ns.
			next = next.Add(time.Duration(float64(n*8) * 1e3 / float64(mbps)))
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			if !b.closed.Load() {
				b.errMu.Lock()
				b.err = err
				b.errMu.Unlock()
			}
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Bytes is how many bytes have arrived so far.
func (b *Bulk) Bytes() int64 { return b.got.Load() }

// Stop ends the transfer and returns the bytes that arrived and the error
// that ended it early, if any. It is safe to call more than once.
func (b *Bulk) Stop() (int64, error) {
	if b.closed.Swap(true) {
		return b.Bytes(), nil
	}
	close(b.stop)
	b.conn.Close()
	b.ln.Close()
	b.wg.Wait()
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.Bytes(), b.err
}
