#!/bin/sh
# Build the busybox-static initramfs used by every vmcrash sample run.
# Usage: make-initramfs.sh BUILD_DIR [live]
#   -> BUILD_DIR/initramfs.cpio.gz, or with "live" BUILD_DIR/initramfs-live.cpio.gz:
#      the same without kexec, makedumpfile and their libraries (the QEMU live dump
#      contains every page, so a smaller page cache makes a smaller dump)
# Needs (Debian 12): busybox-static kexec-tools makedumpfile gcc libc6-dev cpio gzip
# Contents: /init (guest/init), busybox, Debian's kexec and makedumpfile with their
# shared libraries, three static helpers (guest/*.c) and, if built, vmcrash_oops.ko.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(mkdir -p "${1:?usage: make-initramfs.sh BUILD_DIR [live]}" && cd "$1" && pwd)
flavour=${2:-kdump}
if [ "$flavour" = live ]; then out="$build/initramfs-live.cpio.gz"; else out="$build/initramfs.cpio.gz"; fi
root="$build/initramfs-root-$flavour"
rm -rf "$root"
mkdir -p "$root/bin" "$root/sbin" "$root/lib64" "$root/lib/x86_64-linux-gnu" "$root/etc" \
	"$root/proc" "$root/sys" "$root/dev" "$root/mnt" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
file -L /bin/busybox | grep -q 'statically linked' || { echo "need busybox-static" >&2; exit 1; }
ln -s busybox "$root/bin/sh"
progs="/usr/sbin/kexec /usr/bin/makedumpfile"
[ "$flavour" = live ] && progs=""
for prog in $progs; do
	cp "$prog" "$root/sbin/"
	ldd "$prog" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
		[ -f "$lib" ] || continue
		case "$lib" in
		*/ld-linux*) cp -L "$lib" "$root/lib64/" ;;
		*) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
		esac
	done
done
for p in sleeper spinner trigger; do
	gcc -static -O1 -o "$root/bin/vmcrash-$p" "$here/guest/vmcrash-$p.c"
done
ko="$build/oops-module/vmcrash_oops.ko"
[ -f "$ko" ] && [ "$flavour" != live ] && cp "$ko" "$root/vmcrash_oops.ko"
cp "$here/guest/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$out"
ls -l "$out"
