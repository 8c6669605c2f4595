package lab

// Do runs fn in the node's network namespace, on a thread of its own.
// Sockets fn opens stay in the namespace for their whole life, so a test
// can open them in Do and use them afterwards from any goroutine: this is
// how tests play a peer (a spoofer, a replayer) with hand-made packets.
func (n *Node) Do(fn func() error) error { return inNS(n.NS, fn) }
