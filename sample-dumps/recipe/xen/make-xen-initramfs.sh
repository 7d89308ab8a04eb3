#!/bin/bash
# Build the three initramfs images of the Xen samples:
#   BUILD_DIR/domU-initramfs.cpio   busybox + vmcrash-sleeper/-spinner, /init = guest/domU-init
#   BUILD_DIR/crash-initramfs.cpio  busybox, /init = guest/dom0-init (its /proc/vmcore branch)
#   BUILD_DIR/dom0-initramfs.cpio   busybox, /init = guest/dom0-init, Debian's Xen 4.17
#        toolstack (xl, xenstored, xenconsoled, xen-init-dom0, xenstore-*) and kexec with their
#        shared libraries, /etc/xen/{xl.conf,vmcrash-domU.cfg}.
# The images are NOT compressed, and the domU kernel (the sample bzImage) and the two small
# images are read by dom0 from the 9p share (/mnt): compressed data in guest RAM does not
# compress again, and every copy of it in RAM would grow the xz'd whole-machine dumps.
# Usage: make-xen-initramfs.sh BUILD_DIR
# Needs: busybox-static gcc libc6-dev cpio kexec-tools, and network access to
# Debian's mirror (apt-get download of the xen 4.17.5+72 binary packages).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(mkdir -p "${1:?usage: make-xen-initramfs.sh BUILD_DIR}" && cd "$1" && pwd)
V=${XEN_DEB_VERSION:-4.17.5+72-g01140da4e8-1}
debs="$build/debs-$V"
if [ ! -f "$debs/.done" ]; then
	mkdir -p "$debs"
	(cd "$debs" && apt-get download $(for p in xen-utils-4.17 xen-utils-common xenstore-utils \
		libxenmisc4.17 libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 \
		libxengnttab1 libxenhypfs1 libxenstore4 libxentoolcore1 libxentoollog1; do echo "$p=$V"; done))
	touch "$debs/.done"
fi
xr="$build/xenroot"
rm -rf "$xr"; mkdir -p "$xr"
for d in "$debs"/*.deb; do dpkg -x "$d" "$xr"; done
export LD_LIBRARY_PATH="$xr/usr/lib/x86_64-linux-gnu:$xr/usr/lib/xen-4.17/lib/x86_64-linux-gnu"

base_root() { # $1 = root dir
	rm -rf "$1"
	mkdir -p "$1"/{bin,sbin,lib64,lib/x86_64-linux-gnu,etc,proc,sys,dev,mnt,tmp,run,usr/bin,usr/sbin}
	cp /bin/busybox "$1/bin/busybox"
	ln -s busybox "$1/bin/sh"
}
add_prog() { # $1 = root, $2 = program, $3 = destination dir in root
	mkdir -p "$1/$3"
	cp "$2" "$1/$3/"
	ldd "$2" | while read -r name arrow path rest; do
		case "$name" in
		/lib64/ld-linux*|*/ld-linux*) cp -L "$name" "$1/lib64/" ;;
		linux-vdso*) ;;
		*) [ "$arrow" = "=>" ] && [ -f "$path" ] && cp -L "$path" "$1/lib/x86_64-linux-gnu/$name" ;;
		esac
	done
}
pack() { # $1 = root, $2 = output
	(cd "$1" && find . | sort | cpio -o -H newc --quiet -R 0:0) | cat > "$2"
	ls -l "$2"
}
file -L /bin/busybox | grep -q 'statically linked' || { echo "need busybox-static" >&2; exit 1; }

# ---- domU ----
r="$build/domU-root"; base_root "$r"
for p in sleeper spinner; do
	gcc -static -O1 -o "$r/bin/vmcrash-$p" "$here/../guest/vmcrash-$p.c"
done
install -m 755 "$here/guest/domU-init" "$r/init"
pack "$r" "$build/domU-initramfs.cpio"

# ---- crash kernel ----
r="$build/crash-root"; base_root "$r"
install -m 755 "$here/guest/dom0-init" "$r/init"
pack "$r" "$build/crash-initramfs.cpio"

# ---- dom0 ----
r="$build/dom0-root"; base_root "$r"
install -m 755 "$here/guest/dom0-init" "$r/init"
B=usr/lib/xen-4.17/bin
for p in xl xenstored xenconsoled xen-init-dom0 xenconsole libxl-save-helper; do
	add_prog "$r" "$xr/$B/$p" "$B"
done
ln -s "/$B/xl" "$r/usr/sbin/xl"
add_prog "$r" "$xr/usr/bin/xenstore" usr/bin
for p in read write ls list rm exists chmod watch; do ln -s xenstore "$r/usr/bin/xenstore-$p"; done
add_prog "$r" /usr/sbin/kexec sbin
# glibc dlopens libgcc_s for pthread_cancel (xl aborts without it)
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$r/lib/x86_64-linux-gnu/"
mkdir -p "$r/etc/xen" "$r/var/lib/xen" "$r/var/run/xen" "$r/var/log/xen" "$r/var/lib/xenstored"
cat > "$r/etc/xen/xl.conf" <<'XL'
autoballoon="off"
lockfile="/var/lock/xl"
XL
cat > "$r/etc/xen/vmcrash-domU.cfg" <<'CFG'
name = "vmcrash-domU"
type = "pv"
kernel = "/mnt/bzImage"
ramdisk = "/mnt/domU-initramfs.cpio"
cmdline = "console=hvc0 loglevel=7 init_on_free=1"
memory = 128
maxmem = 128
vcpus = 2
on_crash = "preserve"
on_poweroff = "destroy"
CFG
pack "$r" "$build/dom0-initramfs.cpio"
