//go:build unix

package proto

import (
	"syscall"
	"testing"
)

// nullSyscall is the cheapest system call there is: what entering and
// leaving the kernel costs on this machine, and no more.
func nullSyscall() { syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0) }

// BenchmarkNullSyscall is that cost. Every batch faild reads or sends
// pays it; on a machine that isolates the kernel's page tables without
// PCID (or runs its kernel under a hypervisor that switches them) it is
// many times what it is on a plain host.
func BenchmarkNullSyscall(b *testing.B) {
	for b.Loop() {
		nullSyscall()
	}
}

// BenchmarkPerPacketAfterSyscall is BenchmarkPerPacket with a null system
// call before each packet, as when each packet came in a batch of its own:
// less BenchmarkNullSyscall, what is left is the per-packet work once the
// kernel has flushed the caches and the TLB it shares with it.
func BenchmarkPerPacketAfterSyscall(b *testing.B) { benchPerPacket(b, false, nullSyscall) }
