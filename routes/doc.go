// Package routes owns the decision logic: per (peer, LAN) path states driven
// by evidence and deadlines, and the host routes the node should have. It is
// pure: no goroutines, sockets or sleeps; time is always passed in. It is
// also the vocabulary the other packages share: peer ids, LAN indices and
// names, observations and routes.
package routes
