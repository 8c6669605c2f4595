//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

// rpFilterWarnings has nothing to check here: the BSDs and macOS have no
// rp_filter sysctl. Reverse-path checks are packet-filter rules there (pf
// urpf-failed, ipfw verrevpath), which faild cannot judge; README says to
// leave them off the LAN interfaces.
func rpFilterWarnings([]LAN) []string { return nil }
