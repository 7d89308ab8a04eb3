#!/bin/sh
# Boot the sample kernel as a KVM HOST under QEMU TCG (nested SVM emulated by TCG's
# "-cpu max", no KVM on the outer machine), let it run a small KVM guest with its
# own QEMU, panic the host with sysrq c, and let the host's kdump kernel save
# /proc/vmcore with makedumpfile -d 23 (user pages, hence the guest RAM, kept).
# Usage: run.sh BUILD_DIR RUN_DIR [MEM] [CRASHKERNEL] [DUMPLEVEL]
#   BUILD_DIR holds host-initramfs.cpio.gz + crash-initramfs.cpio.gz (make-initramfs.sh)
#   MEM default 384M, CRASHKERNEL default 96M, DUMPLEVEL default 23.
# Output in RUN_DIR: console.log (host serial), inner-console.log, host-facts/,
# vmcore.elf, vmcore.kdump-zlib, makedumpfile-*.log, qemu.cmd, qemu.exit.
set -eu
build=$(cd "${1:?build dir}" && pwd); run=${2:?run dir}
mem=${3:-384M}; ck=${4:-96M}; dl=${5:-23}
bzimage="${BZIMAGE:-/work/build/linux-source-6.1/arch/x86/boot/bzImage}"
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
cp "$bzimage" "$build/crash-initramfs.cpio.gz" "$run/"
set -- timeout 1200 qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m "$mem" \
	-display none -no-reboot -monitor none -serial "file:$run/console.log" \
	-kernel "$run/bzImage" -initrd "$build/host-initramfs.cpio.gz" \
	-append "console=ttyS0 crashkernel=$ck vmcrash.wait=900 vmcrash.dumplevel=$dl" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
echo "$*" > "$run/qemu.cmd"
start=$(date +%s)
rc=0; "$@" || rc=$?
echo "qemu exit $rc after $(( $(date +%s) - start )) s" | tee "$run/qemu.exit"
grep -a 'VMCRASH' "$run/console.log" | tail -30
