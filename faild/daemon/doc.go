// Package daemon is faild's core: the decide loop that feeds evidence to
// the path tables and acts on what they decide, the reconciler that keeps
// faild's routes in the kernel what the tables want, the status server,
// the hooks and the systemd notifications. It takes its transport, route
// writer, interfaces and clock from its caller (Deps, and the time each
// step is given), so that a whole cluster of daemons runs in one process
// in the tests.
//
// Ownership: every piece of state has exactly one owner goroutine, and
// others get only immutable copies (channel messages; values behind an
// atomic pointer that are never modified after publication) or counters
// read through atomics. The loop goroutine owns the path tables, the LANs,
// the reconciler and its view of the kernel, the requestors, the cluster's
// views, matrices and diagnoses, the notifier and the hook queue's sending
// side; each receiver goroutine owns its exchange's proto.Receiver (replay
// windows, buffers); the hook runner owns the hook it runs; the event
// stream's goroutine owns the set of clients that follow the log. The
// status server and the metrics endpoint get their figures by asking the
// loop over its request channel. Nothing else is shared, and no mutex
// guards daemon state.
package daemon
