#!/bin/sh
# Re-make the whole vmcrash sample-dump corpus from a fresh Debian 12 (bookworm)
# x86_64 machine, as root.  Usage: make-samples.sh [BUILD_DIR] [DEST_DIR]
#   BUILD_DIR (scratch, ~3 GB) default /work/build; DEST_DIR default: this recipe's
#   parent (sample-dumps/).  Every step is logged under BUILD_DIR/*.log.
# Timings on the 2-core, 24 GB, no-KVM machine that made the stored corpus:
#   kernel build ~15 min, chroots ~2 min, each QEMU run 25-35 s, facts 3-9 min per sample,
#   xz of vmlinux ~2.5 min.
# Everything is random per run (KASLR, PIDs, timings): a re-run gives new dumps whose
# facts.json must be re-checked by hand (recipe/samples/*.extra.json hold the
# hand-written parts of the stored run and must be updated).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-/work/build}; dest=${2:-$(dirname "$here")}
mkdir -p "$build"; build=$(cd "$build" && pwd)
export BUILD="$build"

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y \
	linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev dwarves \
	qemu-system-x86 qemu-utils busybox-static kexec-tools makedumpfile crash \
	debootstrap xz-utils zstd cpio file python3 python3-pip socat
python3 -c 'import drgn' 2>/dev/null || pip install drgn   # 0.3.0 was used (PyPI wheel, with libkdumpfile)

# 1. kernel + module (KASLR, 2 vCPUs, see kernel.fragment)
[ -f "$build/linux-source-6.1/vmlinux" ] || "$here/build-kernel.sh" "$build" > "$build/kbuild.log" 2>&1
# 2. initramfs (kdump flavour with kexec + makedumpfile; live flavour without)
"$here/make-initramfs.sh" "$build"
"$here/make-initramfs.sh" "$build" live
# 3. crash 8.0.6 / makedumpfile 1.7.6 (trixie) and crash 9.0.2 (sid) chroots
"$here/make-chroots.sh" "$build"

# 4. the kernel as stored: vmlinux without the .rela.* sections of --emit-relocs, nor
#    .debug_loclists (where local variables live: nothing here reads them; 4 MB of xz)
k="$build/samples/kernel"; mkdir -p "$k"
objcopy -R '.rela*' -R .debug_loclists "$build/linux-source-6.1/vmlinux" "$k/vmlinux"
cp "$build/linux-source-6.1/System.map" "$k/System.map"
cp "$build/linux-source-6.1/.config" "$k/config"
cp "$build/oops-module/vmcrash_oops.ko" "$k/"

# 5. sample 1: sysrq-c panic, kdump saved by makedumpfile in 4 formats + raw copy
"$here/run-kdump.sh" sysrq "$build" "$build/run-sysrq" 128M 48M 1 > "$build/run-sysrq.log" 2>&1
s="$build/samples/linux-6.1-sysrq"; mkdir -p "$s"
for f in vmcore.elf vmcore.kdump-zlib vmcore.kdump-lzo vmcore.flat-zlib; do ln -f "$build/run-sysrq/$f" "$s/$f"; done
rm -f "$s/vmcore.kdump-zstd"
# the build dir is bind-mounted at /data in the chroots (crash_facts.py does the same);
# NB: never rm -rf a chroot while this bind mount is in place
mkdir -p "$build/trixie/data"; mountpoint -q "$build/trixie/data" || mount --bind "$build" "$build/trixie/data"
chroot "$build/trixie" makedumpfile --message-level 22 -z -d 31 /data/run-sysrq/vmcore.raw /data/samples/linux-6.1-sysrq/vmcore.kdump-zstd
"$here/facts.sh" "$s" "$k" "$here/samples/linux-6.1-sysrq.manifest" vmcore.elf

# 6. sample 2: QEMU dump-guest-memory of a live (stopped) guest
"$here/run-qemu-live.sh" "$build" "$build/run-live" 128M > "$build/run-live.log" 2>&1
s="$build/samples/linux-6.1-qemu-live"; mkdir -p "$s"
for f in qemu.elf qemu.kdump-zlib.flat; do ln -f "$build/run-live/$f" "$s/$f"; done
PRIMARY=9.0.2 "$here/facts.sh" "$s" "$k" "$here/samples/linux-6.1-qemu-live.manifest" qemu.elf

# 7. sample 3: NULL dereference in a module on CPU 1, panic_on_oops=1
"$here/run-kdump.sh" oops "$build" "$build/run-oops" 128M 48M 0 > "$build/run-oops.log" 2>&1
s="$build/samples/linux-6.1-module-oops"; mkdir -p "$s"
for f in vmcore.elf vmcore.kdump-zlib; do ln -f "$build/run-oops/$f" "$s/$f"; done
"$here/facts.sh" "$s" "$k" "$here/samples/linux-6.1-module-oops.manifest" vmcore.elf vmcrash_oops="$k/vmcrash_oops.ko"

# 8. copy into the repo
"$here/package-sample.sh" "$build/samples/linux-6.1-sysrq" "$build/run-sysrq" "$here/samples/linux-6.1-sysrq.manifest" "$dest/linux-6.1-sysrq"
"$here/package-sample.sh" "$build/samples/linux-6.1-qemu-live" "$build/run-live" "$here/samples/linux-6.1-qemu-live.manifest" "$dest/linux-6.1-qemu-live"
"$here/package-sample.sh" "$build/samples/linux-6.1-module-oops" "$build/run-oops" "$here/samples/linux-6.1-module-oops.manifest" "$dest/linux-6.1-module-oops"
cp "$k/vmcrash_oops.ko" "$dest/linux-6.1-module-oops/"
mkdir -p "$dest/kernel"
xz -9 -T2 -c "$k/vmlinux" > "$dest/kernel/vmlinux.xz"
xz -9e -c "$k/System.map" > "$dest/kernel/System.map.xz"
cp "$k/config" "$k/vmcrash_oops.ko" "$dest/kernel/"
du -sh "$dest"
