package platform

import "fmt"

// Preflight returns a warning, with its fix, for every setting that would
// make faild misbehave on these LANs. None of them stops faild: the
// operator may know better.
func Preflight(lans []LAN) []string {
	var warns []string
	for i, a := range lans {
		for _, b := range lans[i+1:] {
			for _, pa := range a.Prefixes() {
				for _, pb := range b.Prefixes() {
					if pa.Masked().Overlaps(pb.Masked()) {
						warns = append(warns, fmt.Sprintf(
							"%s (%s) and %s (%s) share a subnet: faild cannot tell the LANs apart by source address; give each LAN its own subnet",
							a.Name, pa, b.Name, pb))
					}
				}
			}
		}
		if a.NoBroadcast {
			warns = append(warns, fmt.Sprintf(
				"%s has no broadcast address; INQs go to %s, derived from %s; set one with: ip addr change %s brd + dev %s",
				a.Name, a.Broadcast, a.Addr, a.Addr, a.Name))
		}
	}
	return append(warns, rpFilterWarnings(lans)...)
}
