#!/bin/sh
# Build the three initramfs images of the kvm-host sample.
# Usage: make-initramfs.sh BUILD_DIR
#   -> BUILD_DIR/inner-initramfs.cpio.gz  inner KVM guest: busybox, sleeper, spinner, inner-init
#      BUILD_DIR/crash-initramfs.cpio.gz  kdump kernel: busybox, makedumpfile (+libs), host-init
#      BUILD_DIR/host-initramfs.cpio.gz   KVM host: busybox, kexec, qemu-system-x86_64 (+libs,
#                                         3 firmware files), trigger, host-init, and /inner/
#                                         (the same bzImage + inner-initramfs)
# Needs (Debian 12): busybox-static kexec-tools makedumpfile qemu-system-x86 seabios gcc cpio gzip
# The host's crash kernel gets its own small initramfs: the host one (~20 MB gzip,
# ~60 MB unpacked, mostly QEMU) would not fit in crashkernel=96M.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
guestsrc="$here/../guest"
build=$(mkdir -p "${1:?usage: make-initramfs.sh BUILD_DIR}" && cd "$1" && pwd)
bzimage="${BZIMAGE:-/work/build/linux-source-6.1/arch/x86/boot/bzImage}"

newroot() {	# newroot DIR: skeleton + busybox
	rm -rf "$1"
	mkdir -p "$1/bin" "$1/sbin" "$1/lib64" "$1/lib/x86_64-linux-gnu" "$1/etc" \
		"$1/proc" "$1/sys" "$1/dev" "$1/mnt" "$1/tmp"
	cp /bin/busybox "$1/bin/busybox"
	file -L /bin/busybox | grep -q 'statically linked' || { echo "need busybox-static" >&2; exit 1; }
	ln -s busybox "$1/bin/sh"
}
addprog() {	# addprog ROOT DESTDIR PROG: PROG and its shared libraries (ldd)
	cp "$3" "$1/$2/"
	ldd "$3" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
		[ -f "$lib" ] || continue
		case "$lib" in
		*/ld-linux*) cp -L "$lib" "$1/lib64/" ;;
		*) cp -L "$lib" "$1/lib/x86_64-linux-gnu/" ;;
		esac
	done
}
pack() {	# pack ROOT OUT
	(cd "$1" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$2"
	ls -l "$2"
}
helper() {	# helper ROOT NAME: static helper from ../guest/vmcrash-NAME.c
	gcc -static -O1 -o "$1/bin/vmcrash-$2" "$guestsrc/vmcrash-$2.c"
}

# inner guest
r="$build/root-inner"; newroot "$r"
helper "$r" sleeper; helper "$r" spinner
cp "$here/inner-init" "$r/init"; chmod +x "$r/init"
pack "$r" "$build/inner-initramfs.cpio.gz"

# crash (kdump) kernel of the host
r="$build/root-crash"; newroot "$r"
addprog "$r" sbin /usr/bin/makedumpfile
cp "$here/host-init" "$r/init"; chmod +x "$r/init"
pack "$r" "$build/crash-initramfs.cpio.gz"

# host
r="$build/root-host"; newroot "$r"
addprog "$r" sbin /usr/sbin/kexec
mkdir -p "$r/usr/bin" "$r/usr/share/qemu" "$r/inner"
addprog "$r" usr/bin /usr/bin/qemu-system-x86_64
# the only data files QEMU opens for "-machine pc,accel=kvm -nodefaults -kernel"
# (found with strace): SeaBIOS, the Linux loader option ROM, the TPR-patching ROM
for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin; do
	cp -L "$f" "$r/usr/share/qemu/"
done
helper "$r" trigger
cp "$bzimage" "$r/inner/bzImage"
cp "$build/inner-initramfs.cpio.gz" "$r/inner/initramfs.cpio.gz"
cp "$here/host-init" "$r/init"; chmod +x "$r/init"
pack "$r" "$build/host-initramfs.cpio.gz"
du -sh "$r"
