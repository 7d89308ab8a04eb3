#!/bin/sh
# Make the two chroots that provide newer crash/makedumpfile than Debian 12:
#   BUILD_DIR/trixie : Debian 13, crash 8.0.6, makedumpfile 1.7.6
#                      (Debian 12's crash 8.0.2 cannot list the tasks of a 6.1.y kernel)
#   BUILD_DIR/sid    : Debian unstable, crash 9.0.2 at the time of writing
#                      (crash 8.0.6 cannot open QEMU dumps of this kernel, see README)
# The mirror's sid Release file had expired, hence Acquire::Check-Valid-Until=false.
# Usage: make-chroots.sh BUILD_DIR      (needs debootstrap; run as root)
set -eu
build=$(mkdir -p "${1:?build dir}" && cd "$1" && pwd)
for suite in trixie sid; do
	root="$build/$suite"
	if [ ! -x "$root/usr/bin/crash" ]; then
		[ -d "$root/etc" ] || debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian
		cp /etc/resolv.conf "$root/etc/" 2>/dev/null || true
		mountpoint -q "$root/proc" || mount --bind /proc "$root/proc"
		chroot "$root" sh -c 'apt-get -o Acquire::Check-Valid-Until=false update &&
			DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false install -y --no-install-recommends crash makedumpfile'
	fi
	# makedumpfile needs /proc/meminfo: without it, it loops for ever in cyclic mode
	mountpoint -q "$root/proc" || mount --bind /proc "$root/proc"
	echo "$suite: $(chroot "$root" crash --version | grep -m1 "^crash"), $(chroot "$root" makedumpfile -v | head -1)"
done
