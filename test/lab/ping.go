package lab

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// Ping sends ICMP echo requests from the node to dst every 100 ms until one
// is answered or timeout passes. It is built in so that the lab needs no
// ping binary; dst must be a lab address.
func (n *Node) Ping(dst string, timeout time.Duration) error {
	if _, err := n.lab.owner(dst); err != nil {
		return fmt.Errorf("failed to ping: %s is no lab address", dst)
	}
	ip := net.ParseIP(dst)
	var c net.PacketConn
	err := inNS(n.NS, func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to open ICMP socket in %s: %w", n, err)
	}
	defer c.Close()

	id := uint16(rand.Uint32())
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		if _, err := c.WriteTo(echoRequest(id, seq), &net.IPAddr{IP: ip}); err != nil {
			// No route or the like: the same as no answer.
			time.Sleep(min(100*time.Millisecond, time.Until(deadline)))
			continue
		}
		round := time.Now().Add(100 * time.Millisecond)
		if round.After(deadline) {
			round = deadline
		}
		_ = c.SetReadDeadline(round)
		for {
			m, from, err := c.ReadFrom(buf)
			if err != nil {
				break // this round timed out
			}
			// Go strips the IPv4 header: buf is the ICMP message.
			if m >= 8 && buf[0] == 0 && buf[1] == 0 &&
				binary.BigEndian.Uint16(buf[4:]) == id &&
				from.(*net.IPAddr).IP.Equal(ip) {
				return nil
			}
		}
	}
	return fmt.Errorf("no ping reply from %s to %s within %v", n, dst, timeout)
}

func echoRequest(id, seq uint16) []byte {
	b := make([]byte, 16)
	b[0] = 8 // echo request
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "faildlab")
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
