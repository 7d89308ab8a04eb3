#!/bin/sh
# One stopped KVM/QEMU guest state, saved four ways by QEMU itself:
#   qemu.elf            monitor `dump-guest-memory` (ELF)
#   migration.stream    monitor `migrate "exec:cat > FILE"` (the stream behind virsh save)
#   disk.qcow2          monitor `savevm vmcrash-snap` (vmstate inside the qcow2 image)
# all taken while the VM is stopped, so all hold the same memory and vCPU state.
# Usage: run-qemu-snapshots.sh BUILD_DIR RUN_DIR [MEM]
# Needs the kernel and initramfs from build-kernel.sh and make-initramfs.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/qemu-lib.sh"
build=$(cd "${1:?build dir}" && pwd); run=${2:?run dir}; mem=${3:-128M}
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
cp "$build/linux-source-6.1/arch/x86/boot/bzImage" "$build/initramfs.cpio.gz" "$run/"
qemu-img create -q -f qcow2 "$run/disk.qcow2" 16M
sock="$run/monitor.sock"
set -- timeout 900 qemu-system-x86_64 -machine pc -cpu max -smp 2 -m "$mem" \
	-display none -no-reboot -monitor "unix:$sock,server,nowait" -serial "file:$run/console.log" \
	-device vmcoreinfo \
	-drive "file=$run/disk.qcow2,if=virtio,format=qcow2" \
	-kernel "$run/bzImage" -initrd "$run/initramfs.cpio.gz" \
	-append "console=ttyS0 vmcrash.mode=live init_on_free=1" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
start_qemu_until_ready "$run" "VMCRASH: READY" "$@"
sleep 10   # let the spinner run and the shell go to sleep
python3 "$here/hmp.py" "$sock" stop "info status" "info registers -a" \
	"dump-guest-memory $run/qemu.elf" \
	"savevm vmcrash-snap" \
	"migrate \"exec:cat > $run/migration.stream\"" \
	"info migrate" \
	"info snapshots" \
	"info registers -a" quit > "$run/monitor.txt"
wait "$qpid" || true
qemu-img snapshot -l "$run/disk.qcow2" > "$run/qemu-img-snapshot-l.txt"
echo "done after $(( $(date +%s) - start )) s"
ls -l "$run"
