#!/bin/sh
# Boot the sample kernel under QEMU TCG, panic it, and let the kdump kernel save
# /proc/vmcore with makedumpfile onto a virtio-9p share.
# Usage: run-kdump.sh MODE BUILD_DIR RUN_DIR [MEM] [CRASHKERNEL] [RAW]
#   MODE: sysrq (echo c > /proc/sysrq-trigger on CPU 0) | oops (insmod vmcrash_oops.ko on CPU 1)
#   MEM default 256M, CRASHKERNEL default 96M, RAW=1 also copies the raw /proc/vmcore.
# Output in RUN_DIR: console.log (serial), vmcore.* written by the crash kernel, qemu.cmd.
set -eu
mode=${1:?mode}; build=$(cd "${2:?build dir}" && pwd); run=${3:?run dir}
mem=${4:-256M}; ck=${5:-96M}; raw=${6:-0}
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
cp "$build/linux-source-6.1/arch/x86/boot/bzImage" "$build/initramfs.cpio.gz" "$run/"
set -- timeout 1800 qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m "$mem" \
	-display none -no-reboot -monitor none -serial "file:$run/console.log" \
	-kernel "$run/bzImage" -initrd "$run/initramfs.cpio.gz" \
	-append "console=ttyS0 crashkernel=$ck vmcrash.mode=$mode vmcrash.raw=$raw" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
echo "$*" > "$run/qemu.cmd"
start=$(date +%s)
rc=0; "$@" || rc=$?
echo "qemu exit $rc after $(( $(date +%s) - start )) s" | tee "$run/qemu.exit"
grep -a 'VMCRASH:' "$run/console.log" | tail -20
