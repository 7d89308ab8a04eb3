#!/bin/bash
# One QEMU TCG boot: Xen 4.17.5 + PV dom0 (dom0-init-pvh) + PVH domU, then `xl debug-keys C`
# and the crash kernel saves /proc/vmcore into RUN_DIR/kdump/vmcore.raw.
# Usage: run-pvh.sh XEN_BUILD_DIR IMAGES_DIR RUN_DIR [QEMU_MEM] [DOM0_MEM]
#   XEN_BUILD_DIR: has xen-4.17*/xen/xen (the build whose xen-syms is ../../xen-kernel/xen-syms.xz)
#   IMAGES_DIR: output of make-pvh-initramfs.sh; BZIMAGE (env) = the sample kernel
# Bounded by `timeout` (TIMEOUT env, default 1500 s).
set -eu
build=$(cd "${1:?xen build dir}" && pwd); img=$(cd "${2:?images dir}" && pwd); run=${3:?run dir}
mem=${4:-768M}; dom0mem=${5:-384M}
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
src=$(ls -d "$build"/xen-4.17*/ | head -1)
cp "$src/xen/xen" "$run/xen"
cp "${BZIMAGE:-/work/build/linux-source-6.1/arch/x86/boot/bzImage}" "$run/bzImage"
cp "$img"/{dom0,pvh,crash}-initramfs.cpio "$run/"
xenargs="console=com1 com1=115200,8n1 dom0_mem=$dom0mem,max:$dom0mem smap=0 loglvl=all guest_loglvl=all crashkernel=128M"
dom0args="console=hvc0 earlyprintk=xen loglevel=7 init_on_free=1"
set -- timeout "${TIMEOUT:-1500}" qemu-system-x86_64 -machine pc -cpu "${QEMU_CPU:-max,-fsgsbase}" -smp 2 -m "$mem" \
	-display none -no-reboot -serial "file:$run/console.log" \
	-kernel "$run/xen" -append "$xenargs" \
	-initrd "$run/bzImage $dom0args,$run/dom0-initramfs.cpio" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
echo "$*" > "$run/qemu.cmd"
start=$(date +%s)
"$@" || echo "qemu exit status $?"
echo "done after $(( $(date +%s) - start )) s"
grep -a 'VMCRASH' "$run/console.log" || true
ls -l "$run" "$run/kdump" 2>/dev/null || true
