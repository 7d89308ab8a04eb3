#!/bin/sh
# The whole kvm-host sample, end to end (about 10 minutes on 2 CPUs):
#   make-initramfs.sh -> run.sh (TCG host + KVM guest + sysrq c + kdump) -> facts.sh -> package.sh
# Usage: make-sample.sh [BUILD_DIR [DEST_DIR]]
#   BUILD_DIR default /work/build/kvm-host (must be under /work/build for the crash chroots),
#   the kernel is /work/build/linux-source-6.1/arch/x86/boot/bzImage (or $BZIMAGE) and
#   /work/build/samples/kernel/vmlinux (or $KERNEL_DIR/vmlinux);
#   DEST_DIR default: ../../kvm-host (sample-dumps/kvm-host).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-/work/build/kvm-host}; dest=${2:-$here/../../kvm-host}
"$here/make-initramfs.sh" "$build"
"$here/run.sh" "$build" "$build/run"
grep -q 'VMCRASH: DONE kdump' "$build/run/console.log" || { echo "no dump" >&2; exit 1; }
"$here/facts.sh" "$build/run" "${KERNEL_DIR:-/work/build/samples/kernel}"
"$here/package.sh" "$build/run" "$dest"
