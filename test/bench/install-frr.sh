#!/bin/sh
# Installs FRR (Debian package frr) for the bfd section of make bench,
# without letting the package start FRR in the host's namespace: the bench
# runs zebra and bfdd only inside lab namespaces. Does nothing when FRR is
# there already, when BENCH_NO_FRR_INSTALL is set, or when this is not a
# root Debian-like system; the bench then skips its bfd section and says why.
set -u
[ -x /usr/lib/frr/bfdd ] && [ -x /usr/lib/frr/zebra ] && exit 0
if [ -n "${BENCH_NO_FRR_INSTALL:-}" ]; then
	echo "bench: BENCH_NO_FRR_INSTALL set; not installing FRR" >&2
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "bench: FRR missing and no root apt-get to install it" >&2
	exit 0
fi
# policy-rc.d exiting 101 tells invoke-rc.d and deb-systemd-invoke not to
# start the service; put one in place for the install unless one is there.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	own_policy=1
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT INT TERM
fi
echo "bench: installing FRR (apt-get install frr) for the bfd section" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q frr >&2 ||
	{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q frr >&2; } ||
	{ echo "bench: failed to install FRR" >&2; exit 0; }
# Keep the unit from starting FRR in the host namespace at the next boot.
if [ -d /run/systemd/system ]; then
	systemctl disable --now frr.service >/dev/null 2>&1 || true
fi
[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
exit 0
