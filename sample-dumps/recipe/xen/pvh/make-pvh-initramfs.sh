#!/bin/bash
# Make the three uncompressed cpio images of the Xen PVH kdump sample in OUT_DIR:
#   pvh-initramfs.cpio    busybox + vmcrash-sleeper/-spinner, /init = domU-pvh-init
#   dom0-initramfs.cpio   ../make-xen-initramfs.sh's dom0 root (Debian's Xen 4.17.5 toolstack,
#                         kexec, busybox) with /init = dom0-init-pvh and /etc/xen/vmcrash-pvh.cfg
#   crash-initramfs.cpio  busybox, /init = dom0-init-pvh (its /proc/vmcore branch)
# Usage: make-pvh-initramfs.sh XEN_BUILD_DIR OUT_DIR
#   XEN_BUILD_DIR: where ../make-xen-initramfs.sh ran (needs its dom0-root/)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?xen build dir}" && pwd)
out=$(mkdir -p "${2:?out dir}" && cd "$2" && pwd)
[ -x "$build/dom0-root/usr/lib/xen-4.17/bin/xl" ] || { echo "run ../make-xen-initramfs.sh $build first" >&2; exit 1; }
pack() { (cd "$1" && find . | sort | cpio -o -H newc --quiet -R 0:0) > "$2"; ls -l "$2"; }
base_root() {
	rm -rf "$1"; mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,mnt,tmp,run,usr/bin,usr/sbin}
	cp /bin/busybox "$1/bin/busybox"; ln -s busybox "$1/bin/sh"
}
# ---- PVH domU ----
r="$out/pvh-root"; base_root "$r"
for p in sleeper spinner; do gcc -static -O1 -o "$r/bin/vmcrash-$p" "$here/../../guest/vmcrash-$p.c"; done
install -m 755 "$here/domU-pvh-init" "$r/init"
pack "$r" "$out/pvh-initramfs.cpio"
# ---- crash kernel ----
r="$out/crash-root"; base_root "$r"
install -m 755 "$here/dom0-init-pvh" "$r/init"
pack "$r" "$out/crash-initramfs.cpio"
# ---- dom0 ----
r="$out/dom0-root"; rm -rf "$r"; cp -a "$build/dom0-root" "$r"
install -m 755 "$here/dom0-init-pvh" "$r/init"
rm -f "$r/etc/xen/vmcrash-domU.cfg"
install -m 644 "$here/vmcrash-pvh.cfg" "$r/etc/xen/vmcrash-pvh.cfg"
pack "$r" "$out/dom0-initramfs.cpio"
